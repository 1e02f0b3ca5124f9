#!/usr/bin/env python
"""Grammar token-mask benchmark: constrain vs llguidance (lark) and xgrammar (EBNF).

Cases (each engine gets the same language, written in its own front end):

* ``json``: ``grammars/json.lark`` -- constrain ``compile_grammar``, llguidance
  ``grammar_from("lark", text)``, xgrammar ``Grammar.from_ebnf`` of
  ``bench/grammars/json.ebnf``;
* ``sql``: ``grammars/sql.lark`` the same way (``bench/grammars/sql.ebnf``);
* ``schema_any``: the JSON Schema ``{}`` (any JSON value, compact) --
  constrain ``compile_json_schema({}, vocab)`` (the grammar path), llguidance
  ``grammar_from_json_schema`` with ``whitespace_flexible: false``, xgrammar's
  builtin JSON grammar (object or array at the top, flexible whitespace: a
  superset, so only a speed reference).

The EBNF files were written by xgrammar's own lark converter
(``Grammar.from_lark``, see ``--write-ebnf``) and are checked in next to this
script; like constrain's they read lark's ``%ignore`` under all lexings.

Workload per case: strings sampled from the grammar
(:class:`constrain.grammar.sampler.GrammarSampler`, fixed seeds) and, for SQL,
hand-written realistic queries. Sampled lexemes are re-joined with a space
between two word characters and between two operator characters, and ignored
lexemes at both ends are dropped: llguidance's lexer is longest-match, so
``SELECTa`` (which constrain and xgrammar read as ``SELECT a``) would be one
identifier for it. Every string must then be accepted by every engine in the
run (checked untimed before measuring); strings some engine rejects are
dropped and counted (``rejected``).

Each string is tokenised by the Hugging Face tokenizer (no special tokens) and
forced through a fresh matcher token by token; only the mask call is timed,
then the forced token is checked against the mask and the matcher advances;
after the last token one more mask is computed and EOS must be allowed.
Two passes per compiled object (each stops starting new strings once
``--budget-s`` seconds of mask time are spent: xgrammar needs up to seconds
per mask on the converted grammars, so it measures fewer steps):

* **cold**: right after compiling, with every cache defeated: constrain's
  compiled-grammar and schema caches are cleared, so the lexer DFA, parser
  contexts and masks are built during this pass; xgrammar compiles with
  ``cache_enabled=False``; llguidance builds its lexer lazily anyway;
* **warm**: a second pass over the same strings with fresh matchers from the
  same compiled object (constrain: memoised masks are copies).
* **fresh**: then a pass over other strings of the same grammar (a second,
  disjoint sample), still on the same compiled object: what serving many
  different requests with one compiled grammar costs once it has seen some
  traffic (constrain reuses the masks and parser contexts that the new strings
  share with the old ones; llguidance and xgrammar keep no such memo, so their
  three passes differ only by noise).

``--repeat`` rounds of (compile, cold, warm, fresh) per case and engine. Single
thread (RAYON/OMP/NUMBA = 1, xgrammar ``max_threads=1``). Peak RSS is
``ru_maxrss`` after each engine (cumulative over the process), with the growth
of current RSS during the engine's run.

Example::

    python bench/grammar_masks.py --tokenizers qwen3 --repeat 2 \\
        --json bench/results/grammar_masks.json --plot bench/results/grammar_masks.png
"""

from __future__ import annotations

import os

for _var in ("RAYON_NUM_THREADS", "OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "MKL_NUM_THREADS", "TOKENIZERS_PARALLELISM"):
    os.environ.setdefault(_var, "false" if _var == "TOKENIZERS_PARALLELISM" else "1")

import argparse
import gc
import json
import platform
import random
import re
import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
HERE = Path(__file__).resolve().parent
EBNF_DIR = HERE / "grammars"

CASES = ("json", "sql", "schema_any")
ENGINES = ("constrain", "llguidance", "xgrammar")

#: Realistic SQLite queries (all in sql.lark's language and in the peers').
SQL_QUERIES = [
    "SELECT id, name, email FROM users WHERE active = 1 ORDER BY created_at DESC LIMIT 10;",
    "SELECT c.name, COUNT(o.id) AS orders, SUM(o.total) AS revenue\nFROM customers c\n"
    "LEFT JOIN orders o ON o.customer_id = c.id\nWHERE o.created_at >= '2024-01-01'\n"
    "GROUP BY c.name\nHAVING COUNT(o.id) > 5\nORDER BY revenue DESC;",
    "INSERT INTO products (sku, title, price, stock) VALUES ('A-100', 'Desk lamp', 24.99, 12), "
    "('B-205', 'Office chair', 189.0, 3);",
    "UPDATE accounts SET balance = balance - 100, updated_at = CURRENT_TIMESTAMP WHERE id = 42 AND balance >= 100;",
    "SELECT department, AVG(salary) AS avg_salary FROM employees WHERE hire_date BETWEEN '2019-01-01' AND "
    "'2023-12-31' GROUP BY department ORDER BY avg_salary DESC",
    "SELECT p.title FROM posts AS p WHERE p.author_id IN (SELECT id FROM authors WHERE country = 'NL') "
    "AND p.title LIKE '%sql%' ORDER BY p.published DESC LIMIT 20 OFFSET 40;",
    "SELECT name,\n       CASE WHEN score >= 90 THEN 'A' WHEN score >= 80 THEN 'B' ELSE 'C' END AS grade\n"
    "FROM results\nWHERE exam_id = ? AND name IS NOT NULL;",
    "SELECT DISTINCT city FROM addresses WHERE zip NOT LIKE '9%' UNION SELECT city FROM stores ORDER BY city;",
]

#: Warm-up texts, forced through each case's grammar by every engine before anything is timed,
#: so that JIT loading (constrain's kernels: 3-20 ms each from numba's cache, the first time a
#: code path runs) is not charged to the first cold pass. Not part of the workload; the cold
#: passes still start from empty per-grammar caches.
WARMUP = {
    "json": '{"a": [1, -2.5e3, true, null, "x\\u00e9y"], "b": {"c": "hello world, again"}}',
    # llguidance's compact JSON Schema front end masks the "e" of "\\u00e9" (forced from "\\u00")
    "schema_any": '{"a":[1,-2.5e3,true,null,"x\\ny"],"b":{"c":"hello world, again"}}',
    "sql": "SELECT a.x, COUNT(*) AS n FROM t AS a WHERE a.y >= 'v' AND a.z IS NULL GROUP BY a.x LIMIT 5;",
}

_WORD = set(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_$")
_OPS = set(b"-+*/<>=!|&~%.:?@^")


def _default_tokenizer_dir() -> Path:
    env = os.environ.get("CONSTRAIN_TOKENIZERS")
    return Path(env) if env else REPO.parent / "shared" / "data" / "tokenizers"


def spell(lexemes: list[tuple[bytes, str | None]]) -> bytes:
    """Join sampled lexemes so that a longest-match lexer reads them the same way."""
    while lexemes and lexemes[0][1] is None:
        lexemes = lexemes[1:]
    while lexemes and lexemes[-1][1] is None:
        lexemes = lexemes[:-1]
    out = bytearray()
    prev = None  # last byte of the previous lexeme when nothing was ignored in between
    for lx, term in lexemes:
        if not lx:
            continue
        if term is None:
            out += lx
            prev = None
            continue
        if prev is not None and ((prev in _WORD and lx[0] in _WORD) or (prev in _OPS and lx[0] in _OPS)):
            out += b" "
        out += lx
        prev = lx[-1]
    return bytes(out)


def candidates(case: str, n: int, seed: int) -> list[str]:
    """Workload candidates for a case (more than needed: some may be rejected by a peer)."""
    from constrain.grammar import load_grammar
    from constrain.grammar.sampler import GrammarSampler

    grammar = "sql" if case == "sql" else "json"
    sm = GrammarSampler(load_grammar(REPO / "grammars" / f"{grammar}.lark"))
    rng = random.Random(seed)
    out: list[str] = list(SQL_QUERIES) if case == "sql" else []
    tries = 0
    while len(out) < n + (len(SQL_QUERIES) if case == "sql" else 0) and tries < 100 * n:
        tries += 1
        lex = sm.sample_lexemes(rng, max_depth=8 if case == "sql" else 7,
                                ignore_prob=0.0 if case == "schema_any" else 0.15)
        data = spell(lex)
        if not 8 <= len(data) <= 300:
            continue
        if case == "schema_any" and data[:1] not in (b"{", b"["):
            continue  # xgrammar's builtin JSON grammar wants an object or array
        try:
            out.append(data.decode("utf-8"))
        except UnicodeDecodeError:
            continue  # lone surrogates from \\u escapes are fine, but raw bytes must be UTF-8
    return out


# --------------------------------------------------------------------------- memory

def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def current_rss_mib() -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


# --------------------------------------------------------------------------- engines

@dataclass
class TokenizerCtx:
    name: str
    folder: Path
    vocab: Any
    hf: Any
    eos_id: int
    size: int
    words: int = field(init=False)

    def __post_init__(self) -> None:
        self.words = (self.size + 31) // 32


def grammar_text(case: str) -> str:
    return (REPO / "grammars" / f"{'sql' if case == 'sql' else 'json'}.lark").read_text(encoding="utf-8")


class Engine:
    """Adapter: ``prepare`` (untimed) -> ``compile(case)`` (timed) -> ``matcher`` -> ``fill`` (timed)."""

    name = "?"

    def __init__(self, ctx: TokenizerCtx) -> None:
        self.ctx = ctx
        self.buf = np.zeros(ctx.words, dtype=np.uint32)

    def prepare(self) -> None: ...

    def compile(self, case: str) -> Any: ...

    def matcher(self, compiled: Any) -> Any: ...

    def fill(self, m: Any) -> None: ...

    def advance(self, m: Any, token: int) -> bool: ...

    def words(self) -> np.ndarray:
        return self.buf

    def version(self) -> str:
        return ""


class ConstrainEngine(Engine):
    name = "constrain"

    def prepare(self) -> None:
        import constrain
        from constrain.grammar import compile_grammar
        from constrain.tokens.trie import trie_for

        self.constrain = constrain
        self.compile_grammar = compile_grammar
        trie_for(self.ctx.vocab)
        self.buf = constrain.allocate_mask(self.ctx.size)

    def clear_caches(self) -> None:
        import constrain.grammar as cgram

        cgram._compiled.cache_clear()
        try:
            from constrain.schema import compile as schema_compile

            schema_compile._byte_cache.clear()
        except (ImportError, AttributeError):
            pass

    def compile(self, case: str) -> Any:
        if case == "schema_any":
            from constrain.schema import compile_json_schema

            return compile_json_schema({}, self.ctx.vocab)
        return self.compile_grammar(REPO / "grammars" / f"{case}.lark", self.ctx.vocab)

    def matcher(self, compiled: Any) -> Any:
        return compiled.matcher()

    def fill(self, m: Any) -> None:
        m.fill_mask(self.buf)

    def advance(self, m: Any, token: int) -> bool:
        return m.accept_token(token)

    def accepts(self, compiled: Any, ids: list[int]) -> bool:
        m = compiled.matcher()
        return all(m.accept_token(t) for t in ids) and m.is_accepting()

    def version(self) -> str:
        return getattr(self.constrain, "__version__", "")


class LLGuidanceEngine(Engine):
    name = "llguidance"

    def prepare(self) -> None:
        import llguidance

        self.llg = llguidance
        text = (self.ctx.folder / "tokenizer.json").read_text(encoding="utf-8")
        self.tok = llguidance.LLTokenizer(text, n_vocab=self.ctx.size, eos_token=sorted(self.ctx.vocab.eos_ids))
        self.ptr = self.buf.ctypes.data
        self.nbytes = self.buf.nbytes

    def compile(self, case: str) -> Any:
        llg = self.llg
        if case == "schema_any":
            grm = llg.LLMatcher.grammar_from_json_schema('{"x-guidance": {"whitespace_flexible": false}}')
        else:
            grm = llg.grammar_from("lark", grammar_text(case))
        m = llg.LLMatcher(self.tok, grm)
        if m.is_error():
            raise RuntimeError(m.get_error())
        return m

    def matcher(self, compiled: Any) -> Any:
        return compiled.deep_copy()

    def fill(self, m: Any) -> None:
        m.unsafe_compute_mask_ptr(self.ptr, self.nbytes)

    def advance(self, m: Any, token: int) -> bool:
        return bool(m.consume_token(token))

    def accepts(self, compiled: Any, ids: list[int]) -> bool:
        m = compiled.deep_copy()
        return m.try_consume_tokens(ids) == len(ids) and m.is_accepting()

    def version(self) -> str:
        return _pkg_version("llguidance")


class XGrammarEngine(Engine):
    name = "xgrammar"

    def prepare(self) -> None:
        import xgrammar as xgr

        self.xgr = xgr
        info = xgr.TokenizerInfo.from_huggingface(self.ctx.hf, vocab_size=self.ctx.size,
                                                  stop_token_ids=sorted(self.ctx.vocab.eos_ids))
        self.compiler = xgr.GrammarCompiler(info, max_threads=1, cache_enabled=False)
        self.tbuf = xgr.allocate_token_bitmask(1, self.ctx.size)
        self.buf = self.tbuf[0].numpy().view(np.uint32)

    def compile(self, case: str) -> Any:
        if case == "schema_any":
            return self.compiler.compile_builtin_json_grammar()
        text = (EBNF_DIR / f"{case}.ebnf").read_text(encoding="utf-8")
        return self.compiler.compile_grammar(self.xgr.Grammar.from_ebnf(text))

    def matcher(self, compiled: Any) -> Any:
        return self.xgr.GrammarMatcher(compiled)

    def fill(self, m: Any) -> None:
        m.fill_next_token_bitmask(self.tbuf)

    def advance(self, m: Any, token: int) -> bool:
        return bool(m.accept_token(token))

    def accepts(self, compiled: Any, ids: list[int]) -> bool:
        m = self.xgr.GrammarMatcher(compiled)
        return all(m.accept_token(t) for t in ids) and bool(m.accept_token(self.ctx.eos_id))

    def version(self) -> str:
        return _pkg_version("xgrammar")


ENGINE_CLASSES: dict[str, type[Engine]] = {
    "constrain": ConstrainEngine,
    "llguidance": LLGuidanceEngine,
    "xgrammar": XGrammarEngine,
}


def _pkg_version(dist: str) -> str:
    try:
        from importlib.metadata import version

        return version(dist)
    except Exception:
        return ""


def write_ebnf() -> None:
    """Regenerate bench/grammars/*.ebnf with xgrammar's lark converter."""
    import xgrammar as xgr

    EBNF_DIR.mkdir(parents=True, exist_ok=True)
    for case in ("json", "sql"):
        text = str(xgr.Grammar.from_lark(grammar_text(case)))
        head = (f"# grammars/{case}.lark converted by xgrammar.Grammar.from_lark (xgrammar {_pkg_version('xgrammar')});\n"
                "# regenerate with: python bench/grammar_masks.py --write-ebnf\n")
        (EBNF_DIR / f"{case}.ebnf").write_text(head + text + "\n", encoding="utf-8")


# --------------------------------------------------------------------------- helpers

def _bit(words: np.ndarray, token: int) -> bool:
    return bool((int(words[token >> 5]) >> (token & 31)) & 1)


def stats_us(ns: list[int]) -> dict[str, float]:
    if not ns:
        return {"n": 0, "mean": float("nan"), "p50": float("nan"), "p99": float("nan"), "max": float("nan")}
    a = np.asarray(ns, dtype=np.float64) / 1e3
    return {"n": int(a.size), "mean": float(a.mean()), "p50": float(np.percentile(a, 50)),
            "p99": float(np.percentile(a, 99)), "max": float(a.max())}


def stats_ms(ns: list[int]) -> dict[str, float]:
    s = stats_us(ns)
    return {k: (v / 1e3 if k != "n" else v) for k, v in s.items()}


def tokenise(ctx: TokenizerCtx, text: str) -> list[int]:
    ids = list(ctx.hf.encode(text, add_special_tokens=False))
    if ctx.vocab.decode(ids) != text.encode("utf-8"):
        ids = list(ctx.vocab.encode(text))
    return ids


def run_pass(eng: Engine, compiled: Any, token_lists: list[list[int]], rec: dict[str, Any], phase: str,
             budget_s: float) -> None:
    """Force the strings in order; strings after the first ``budget_s`` seconds of mask time are skipped."""
    times = rec[phase]
    spent = 0
    fill, advance, eos = eng.fill, eng.advance, eng.ctx.eos_id
    perf = time.perf_counter_ns
    gc.collect()
    gc.disable()
    try:
        for ids in token_lists:
            if spent > budget_s * 1e9:
                rec["skipped_strings"][phase] += 1
                continue
            m = eng.matcher(compiled)
            steps = ids + [eos]
            for k, tok in enumerate(steps):
                t0 = perf()
                fill(m)
                dt = perf() - t0
                times.append(dt)
                spent += dt
                if not _bit(eng.words(), tok):
                    rec["fails"][phase] += 1
                    if len(rec["fail_examples"]) < 5:
                        rec["fail_examples"].append({"step": k, "token": tok, "phase": phase})
                if k == len(steps) - 1:
                    break
                try:
                    ok = advance(m, tok)
                except Exception:
                    ok = False
                if not ok:
                    rec["advance_errors"][phase] += 1
                    break
    finally:
        gc.enable()


def warm_up(eng: Engine, cases: list[str]) -> list[str]:
    """Force every case's :data:`WARMUP` text through ``eng`` with :func:`run_pass`, outside
    every measurement (its timings are dropped).

    Returns the cases whose text ``eng`` refused (its later code paths stay cold).
    """
    refused = []
    for case in cases:
        rec: dict[str, Any] = {"warm_up": [], "fails": {"warm_up": 0}, "advance_errors": {"warm_up": 0},
                               "fail_examples": [], "skipped_strings": {"warm_up": 0}}
        run_pass(eng, eng.compile(case), [tokenise(eng.ctx, WARMUP[case])], rec, "warm_up", float("inf"))
        if rec["fails"]["warm_up"] or rec["advance_errors"]["warm_up"]:
            refused.append(case)
    return refused


#: The passes over each compiled object, in order (see the module docstring).
PHASES = ("cold", "warm", "fresh")
#: Seed offset of the fresh strings' sample.
FRESH_SEED = 7919


def _accepted(ctx: TokenizerCtx, engs: dict[str, "Engine"], probes: dict[str, Any], cands: list[str],
              limit: int) -> tuple[list[str], dict[str, int], dict[str, list[str]]]:
    """The first ``limit`` candidates every engine accepts, and the rejections per engine."""
    kept: list[str] = []
    rejected = {e: 0 for e in engs}
    examples: dict[str, list[str]] = {e: [] for e in engs}
    for text in cands:
        if len(kept) >= limit:
            break
        ids = tokenise(ctx, text)
        ok = True
        for e, eng in engs.items():
            if not eng.accepts(probes[e], ids):
                rejected[e] += 1
                if len(examples[e]) < 3:
                    examples[e].append(text[:120])
                ok = False
        if ok:
            kept.append(text)
    return kept, rejected, examples


def bench_tokenizer(tok_name: str, tok_dir: Path, engines: list[str], cases: list[str], n_strings: int,
                    repeat: int, seed: int, budget_s: float, bar: tqdm) -> dict[str, Any]:
    import transformers

    from constrain import Vocabulary
    from constrain.tokens.trie import trie_for

    folder = tok_dir / tok_name
    t0 = time.perf_counter()
    vocab = Vocabulary.from_file(folder)
    trie_for(vocab)
    prep_constrain = time.perf_counter() - t0
    hf = transformers.AutoTokenizer.from_pretrained(str(folder))
    eos_id = hf.eos_token_id if hf.eos_token_id in vocab.eos_ids else min(vocab.eos_ids)
    ctx = TokenizerCtx(tok_name, folder, vocab, hf, int(eos_id), vocab.size)

    engs: dict[str, Engine] = {}
    prep_s: dict[str, float] = {}
    for e in engines:
        eng = ENGINE_CLASSES[e](ctx)
        t0 = time.perf_counter()
        eng.prepare()
        prep_s[e] = time.perf_counter() - t0 + (prep_constrain if e == "constrain" else 0.0)
        engs[e] = eng

    # Workload: candidates accepted by every engine (checked untimed, on throwaway compiled objects).
    # The fresh strings are a second, disjoint sample (other seed, no hand-written queries).
    workload: dict[str, dict[str, Any]] = {}
    for case in cases:
        bar.set_description(f"{tok_name} workload {case}")
        probes = {e: engs[e].compile(case) for e in engines}
        limit = n_strings + (len(SQL_QUERIES) if case == "sql" else 0)
        kept, rejected, examples = _accepted(ctx, engs, probes, candidates(case, n_strings, seed), limit)
        others = [c for c in candidates(case, n_strings, seed + FRESH_SEED) if c not in SQL_QUERIES and c not in kept]
        fresh, _r, _x = _accepted(ctx, engs, probes, others, n_strings)
        del probes
        if isinstance(engs.get("constrain"), ConstrainEngine):
            engs["constrain"].clear_caches()
        lists = [tokenise(ctx, s) for s in kept]
        fresh_lists = [tokenise(ctx, s) for s in fresh]
        workload[case] = {"strings": kept, "token_lists": lists, "rejected": rejected, "rejected_examples": examples,
                          "hand_written": sum(1 for s in kept if s in SQL_QUERIES),
                          "steps_per_pass": sum(len(i) + 1 for i in lists),
                          "bytes": sum(len(s.encode()) for s in kept),
                          "fresh_strings": fresh, "fresh_token_lists": fresh_lists,
                          "fresh_steps_per_pass": sum(len(i) + 1 for i in fresh_lists)}

    out: dict[str, Any] = {"tokenizer": tok_name, "vocab_size": vocab.size, "eos_id": ctx.eos_id,
                           "workload": {c: {k: v for k, v in w.items() if not k.endswith("token_lists")}
                                        for c, w in workload.items()},
                           "engines": {}}
    for e in engines:
        eng = engs[e]
        rss0 = current_rss_mib()
        refused = warm_up(eng, cases)
        if refused:
            bar.write(f"{tok_name}/{e}: warm-up refused by {', '.join(refused)}: their first cold pass pays JIT loading")
        res: dict[str, Any] = {"version": eng.version(), "prep_s": prep_s[e], "cases": {},
                               "warm_up_refused": refused}
        for case in cases:
            rec: dict[str, Any] = {"compile": [], "fail_examples": [], "compile_errors": [],
                                   **{k: {p: 0 for p in PHASES} for k in ("fails", "advance_errors", "skipped_strings")},
                                   **{p: [] for p in PHASES}}
            for rnd in range(repeat):
                bar.set_description(f"{tok_name}/{e} r{rnd + 1} {case}")
                if isinstance(eng, ConstrainEngine):
                    eng.clear_caches()
                gc.collect()
                t0 = time.perf_counter_ns()
                try:
                    compiled = eng.compile(case)
                except Exception as exc:
                    rec["compile_errors"].append(f"{type(exc).__name__}: {exc}"[:300])
                    bar.update(1)
                    continue
                rec["compile"].append(time.perf_counter_ns() - t0)
                for phase in PHASES:
                    lists = workload[case]["fresh_token_lists" if phase == "fresh" else "token_lists"]
                    run_pass(eng, compiled, lists, rec, phase, budget_s)
                del compiled
                bar.update(1)
            res["cases"][case] = {
                "compile_ms": stats_ms(rec["compile"]),
                "mask_us_cold": stats_us(rec["cold"]),
                "mask_us_warm": stats_us(rec["warm"]),
                "mask_us_fresh": stats_us(rec["fresh"]),
                "steps_per_pass": workload[case]["steps_per_pass"],
                "fails": rec["fails"], "advance_errors": rec["advance_errors"],
                "fail_examples": rec["fail_examples"], "compile_errors": rec["compile_errors"],
                "skipped_strings": rec["skipped_strings"],
            }
        res["peak_rss_mib"] = peak_rss_mib()
        res["rss_growth_mib"] = current_rss_mib() - rss0
        out["engines"][e] = res
        gc.collect()
    return out


# --------------------------------------------------------------------------- output

def _f(x: float, nd: int = 1) -> str:
    if x != x:
        return "-"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.{nd}f}"


def markdown(results: dict[str, Any]) -> str:
    head = " | ".join(f"{p} mask µs mean / p50 / p99 / max" for p in PHASES)
    lines = [f"| tokenizer | case | engine | compile ms | {head} | steps | misses | peak RSS MiB (+Δ) |",
             "|---|---|---|---|" + "---|" * len(PHASES) + "---|---|---|"]
    for t in results["tokenizers"]:
        cases = list(next(iter(t["engines"].values()))["cases"]) if t["engines"] else []
        for case in cases:
            for e, r in t["engines"].items():
                c = r["cases"][case]
                cells = []
                for p in PHASES:
                    k = c.get(f"mask_us_{p}")  # results saved before the fresh pass existed lack it
                    cells.append(" / ".join(_f(k[x]) for x in ("mean", "p50", "p99", "max")) if k else "-")
                misses = sum(c["fails"].values()) + sum(c["advance_errors"].values())
                if c["compile_errors"]:
                    misses = f"{misses} (+{len(c['compile_errors'])} compile err)"
                rounds = max(1, c["compile_ms"]["n"])
                skipped = sum(c.get("skipped_strings", {}).values())
                steps = f"{c['mask_us_cold']['n'] // rounds} × {rounds}" + (
                    f" ({skipped} strings over budget)" if skipped else "")
                lines.append(
                    f"| {t['tokenizer']} | {case} | {e} | {_f(c['compile_ms']['mean'], 2)} | {' | '.join(cells)} "
                    f"| {steps} | {misses} | {r['peak_rss_mib']:.0f} (+{r['rss_growth_mib']:.0f}) |")
    return "\n".join(lines)


def workload_table(results: dict[str, Any]) -> str:
    lines = ["| tokenizer | case | strings (hand-written) | bytes | mask steps / pass | fresh strings / steps "
             "| rejected by |", "|---|---|---|---|---|---|---|"]
    for t in results["tokenizers"]:
        for case, w in t["workload"].items():
            rej = ", ".join(f"{e} {n}" for e, n in w["rejected"].items() if n) or "-"
            fresh = f"{len(w['fresh_strings'])} / {w['fresh_steps_per_pass']}" if "fresh_strings" in w else "-"
            lines.append(f"| {t['tokenizer']} | {case} | {len(w['strings'])} ({w['hand_written']}) | {w['bytes']} "
                         f"| {w['steps_per_pass']} | {fresh} | {rej} |")
    return "\n".join(lines)


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    toks = results["tokenizers"]
    if not toks:
        return
    engines = list(toks[0]["engines"])
    cases = list(toks[0]["engines"][engines[0]]["cases"]) if engines else []
    panels = [("mask_us_cold", "mean", "cold mask mean (µs)"), ("mask_us_cold", "p99", "cold mask p99 (µs)"),
              ("mask_us_warm", "mean", "warm mask mean (µs)"), ("mask_us_fresh", "mean", "fresh mask mean (µs)"),
              ("compile_ms", "mean", "compile (ms)")]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4.8))
    colors = plt.get_cmap("tab10").colors
    series = [(t, e) for t in toks for e in engines]
    width = 0.8 / max(1, len(series))
    for ax, (key, stat, title) in zip(axes, panels):
        for j, (t, e) in enumerate(series):
            vals = [t["engines"][e]["cases"][c].get(key, {}).get(stat, float("nan")) for c in cases]
            xs = [i + (j - (len(series) - 1) / 2) * width for i in range(len(cases))]
            label = e if len(toks) == 1 else f"{t['tokenizer']} {e}"
            bars = ax.bar(xs, vals, width, label=label, color=colors[j % len(colors)])
            for b, v in zip(bars, vals):
                if v == v:
                    ax.annotate(f"{v:.3g}", (b.get_x() + b.get_width() / 2, v), ha="center", va="bottom",
                                fontsize=7, rotation=90, xytext=(0, 2), textcoords="offset points")
        ax.set_xticks(range(len(cases)))
        ax.set_xticklabels(cases)
        ax.set_yscale("log")
        ax.set_title(title)
        ax.grid(axis="y", which="both", alpha=0.3)
        lo, hi = ax.get_ylim()
        ax.set_ylim(lo, hi * 8)
    axes[0].legend(fontsize=8)
    meta = results["meta"]
    fig.suptitle(f"Grammar token masks, {', '.join(t['tokenizer'] for t in toks)}, single thread "
                 f"(load avg at start {meta['loadavg_start']})", fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)


# --------------------------------------------------------------------------- main

def _split(values: list[str]) -> list[str]:
    return [x for v in values for x in re.split(r"[,\s]+", v) if x]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokenizers", nargs="+", default=["qwen3"])
    ap.add_argument("--tokenizer-dir", type=Path, default=_default_tokenizer_dir())
    ap.add_argument("--engines", nargs="+", default=[",".join(ENGINES)])
    ap.add_argument("--cases", nargs="+", default=[",".join(CASES)])
    ap.add_argument("--strings", type=int, default=20, help="sampled strings per case (SQL adds the hand-written ones)")
    ap.add_argument("--repeat", type=int, default=2, help="rounds of (compile + cold, warm and fresh passes)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--budget-s", type=float, default=60.0,
                    help="per engine, case and pass: stop starting new strings after this much mask time")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--plot", type=Path)
    ap.add_argument("--from-json", type=Path, help="print tables / plot from a saved --json file")
    ap.add_argument("--write-ebnf", action="store_true", help="regenerate bench/grammars/*.ebnf and exit")
    args = ap.parse_args(argv)

    if args.write_ebnf:
        write_ebnf()
        return 0
    if args.from_json:
        saved = json.loads(args.from_json.read_text(encoding="utf-8"))
        print(workload_table(saved))
        print()
        print(markdown(saved))
        if args.plot:
            plot(saved, args.plot)
        return 0
    engines = _split(args.engines)
    cases = _split(args.cases)
    bad = [e for e in engines if e not in ENGINE_CLASSES] + [c for c in cases if c not in CASES]
    if bad:
        ap.error(f"unknown engine(s)/case(s) {bad}")
    toks = _split(args.tokenizers)
    load0 = os.getloadavg()
    started = time.time()
    results: dict[str, Any] = {"meta": {
        "command": " ".join([Path(sys.executable).name, *sys.argv]) if argv is None else " ".join(argv),
        "python": platform.python_version(), "machine": platform.machine(), "cpu_count": os.cpu_count(),
        "loadavg_start": " ".join(f"{x:.2f}" for x in load0), "repeat": args.repeat, "strings": args.strings,
        "seed": args.seed, "budget_s": args.budget_s,
        "notes": "cold: first pass after compiling with constrain's caches cleared (xgrammar cache disabled); "
                 "warm: second pass, fresh matchers from the same compiled object; fresh: third pass, over a disjoint "
                 "sample of strings, same compiled object; mask steps include the "
                 "final EOS step; single-threaded; the workload holds only strings every engine accepts.",
    }, "tokenizers": []}
    total = len(toks) * len(engines) * len(cases) * args.repeat
    with tqdm(total=total, unit="run", dynamic_ncols=True, mininterval=2.0) as bar:
        for t in toks:
            results["tokenizers"].append(bench_tokenizer(t, args.tokenizer_dir, engines, cases, args.strings,
                                                         args.repeat, args.seed, args.budget_s, bar))
    results["meta"]["loadavg_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    results["meta"]["wall_s"] = time.time() - started
    results["meta"]["versions"] = ({e: results["tokenizers"][0]["engines"][e]["version"] for e in engines}
                                   if results["tokenizers"] else {})
    print()
    print(workload_table(results))
    print()
    print(markdown(results))
    for t in results["tokenizers"]:
        for e, r in t["engines"].items():
            for case, c in r["cases"].items():
                if c["compile_errors"] or c["fail_examples"]:
                    print(f"{t['tokenizer']}/{e}/{case}: compile errors {c['compile_errors']} misses {c['fail_examples']}")
    print(f"load average start {results['meta']['loadavg_start']}, end {results['meta']['loadavg_end']}; "
          f"wall {results['meta']['wall_s']:.0f} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    if args.plot:
        plot(results, args.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
