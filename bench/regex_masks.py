#!/usr/bin/env python
"""Regex token-mask benchmark: constrain vs llguidance, xgrammar and outlines-core.

For a set of realistic regexes and, for each, a few strings it matches, every
engine (in this one process, one after another) is measured on:

1. **compile time** per regex, always cold: from the pattern to an object that
   can produce masks.  Tokenizer-level preparation (constrain's
   ``Vocabulary.from_file`` plus its token trie, llguidance's LLTokenizer,
   xgrammar's TokenizerInfo, outlines-core's Vocabulary) is built once per
   tokenizer beforehand and is excluded (reported separately as "prep").  Caches are defeated: constrain's
   per-pattern DFA cache is cleared before each compile, xgrammar's compiler
   runs with ``cache_enabled=False``.
2. **per-token mask time**: each valid string is tokenised by the tokenizer
   (the Hugging Face tokenizer, no special tokens) and forced through the
   matcher token by token; only the mask call is timed at each step, then the
   next token is checked against the mask (a miss is counted, never fatal) and
   the matcher advances.  After the last token one more mask is computed and
   the tokenizer's EOS id must be allowed.  Two passes per compiled regex:

   * **cold**: the first pass right after compiling, a fresh matcher per string.
     For constrain this is where masks are computed (trie walk) on the first
     visit of each DFA state and memoised; later strings of the same regex may
     hit states memoised by earlier ones, exactly as successive requests would.
   * **warm**: a second pass over the same strings with fresh matchers from the
     same compiled object (constrain: every state already memoised, so a mask is
     a copy).  llguidance has no separate compiled object: its "compiled" form is
     a pristine LLMatcher built at compile time and each string runs on
     ``deep_copy()`` of it (``reset()`` and brand-new matchers time the same).

Everything is single-threaded (xgrammar ``max_threads=1``; RAYON/OMP/NUMBA
thread counts 1).  Timings use ``time.perf_counter_ns`` around the single mask
call, so they include each library's Python-binding overhead.

Masks are also compared with constrain's (outside the timed region, EOS ids
ignored) and the number of steps whose allowed sets differ is reported: a
diagnostic, not a failure (llguidance deliberately narrows forced bytes to the
canonical token, for example).

Peak RSS is ``ru_maxrss`` of the process after the engine ran (cumulative over
everything before it in the process), with the growth of current RSS during
that engine's run beside it.

Example::

    python bench/regex_masks.py --tokenizers qwen3 llama3 \
        --engines constrain,llguidance,xgrammar,outlines --repeat 3 \
        --json bench/results/regex_masks.json --plot bench/results/regex_masks.png
"""

from __future__ import annotations

import os

for _var in ("RAYON_NUM_THREADS", "OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "MKL_NUM_THREADS", "TOKENIZERS_PARALLELISM"):
    os.environ.setdefault(_var, "false" if _var == "TOKENIZERS_PARALLELISM" else "1")

import argparse
import gc
import json
import platform
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

# --------------------------------------------------------------------------- workload

#: (name, pattern, valid strings).  Patterns stay within the syntax all four engines
#: read the same way (explicit ASCII classes instead of \d / \w, whose meaning is
#: Unicode-wide in Rust regex).
REGEXES: list[tuple[str, str, list[str]]] = [
    (
        "iso_date",
        r"[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])",
        ["2024-02-29", "1999-12-31", "2031-07-04", "1970-01-01"],
    ),
    (
        "email",
        r"[a-zA-Z0-9._%+-]+@[a-zA-Z0-9-]+(\.[a-zA-Z0-9-]+)*\.[a-zA-Z]{2,}",
        ["ada.lovelace@example.com", "john+newsletter@mail.co.uk", "j.doe_42@cs.university.edu"],
    ),
    (
        "us_phone",
        r"\(?[0-9]{3}\)?[-. ]?[0-9]{3}[-. ]?[0-9]{4}",
        ["(415) 555-0132", "212-555-0199", "800.555.0100", "6175550123"],
    ),
    (
        "ipv4",
        r"((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])",
        ["192.168.1.254", "10.0.0.1", "255.255.255.0", "172.16.254.3"],
    ),
    (
        "uuid",
        r"[0-9a-f]{8}-[0-9a-f]{4}-[1-5][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
        ["123e4567-e89b-42d3-a456-426614174000", "550e8400-e29b-41d4-a716-446655440000",
         "f47ac10b-58cc-4372-a567-0e02b2c3d479"],
    ),
    (
        "enum5",
        r"(positive|negative|neutral|mixed|unknown)",
        ["positive", "neutral", "unknown"],
    ),
    (
        "json_person",
        r'\{"name":"[^"\\]{1,30}","age":[0-9]{1,3}\}',
        ['{"name":"Ada Lovelace","age":36}', '{"name":"José Martínez","age":41}',
         '{"name":"李小龙","age":32}', '{"name":"O\'Brien","age":7}'],
    ),
    (
        "sentence",
        r"[A-Z][^.!?\n]*[.!?]",
        ["The quick brown fox jumps over the lazy dog.",
         "After the meeting, we agreed to ship the new release on Thursday, pending one last review!",
         "Does this café serve crème brûlée on Sundays?",
         "Measure twice, cut once."],
    ),
]

from constrain.evaluation.peers import ENGINES  # noqa: E402 - after the sys.path fix-up


def _default_tokenizer_dir() -> Path:
    env = os.environ.get("CONSTRAIN_TOKENIZERS")
    return Path(env) if env else REPO.parent / "shared" / "data" / "tokenizers"


# --------------------------------------------------------------------------- memory

def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


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
    vocab: Any  # constrain.Vocabulary
    hf: Any  # transformers tokenizer
    eos_id: int  # the tokenizer's eos_token_id, required at the final step
    size: int  # mask length in tokens (= constrain vocab.size for every engine)
    words: int = field(init=False)

    def __post_init__(self) -> None:
        self.words = (self.size + 31) // 32


class Engine:
    """``prepare`` (untimed) -> ``compile`` (timed) -> ``matcher`` -> ``fill`` (timed).

    A thin shim over the adapters in :mod:`constrain.evaluation.peers` (shared
    with ``constrain maskbench``) that keeps one mask buffer per engine.
    """

    def __init__(self, name: str, ctx: TokenizerCtx) -> None:
        self.name = name
        self.ctx = ctx
        self.buf = np.zeros(ctx.words, dtype=np.uint32)
        self.adapter: Any = None

    def prepare(self) -> None:
        from constrain.evaluation.peers import PeerTokenizer, make_adapter

        tok = PeerTokenizer(self.ctx.vocab, path=self.ctx.folder / "tokenizer.json", hf=self.ctx.hf, name=self.ctx.name)
        self.adapter = make_adapter(self.name, tok)

    def compile(self, pattern: str) -> Any:
        return self.adapter.compile(regex=pattern)

    def clear_caches(self) -> None:
        clear = getattr(self.adapter, "clear_caches", None)
        if clear is not None:
            clear()

    def matcher(self, compiled: Any) -> Any:
        return self.adapter.matcher(compiled)

    def fill(self, m: Any) -> None:
        m.fill(self.buf)

    def advance(self, m: Any, token: int) -> bool:
        return m.accept(token)

    def words(self) -> np.ndarray:
        """The last mask as uint32 words (valid after ``fill``)."""
        return self.buf

    def first_visit(self, m: Any) -> bool | None:
        """constrain only: whether the next fill computes (rather than copies) the mask."""
        inner = getattr(m, "m", None)
        masks = getattr(getattr(inner, "constraint", None), "_masks", None)
        state = getattr(inner, "state", None)
        if self.name != "constrain" or masks is None or state is None or state < 0:
            return None
        return state not in masks

    def version(self) -> str:
        return self.adapter.version() if self.adapter is not None else ""


ENGINE_CLASSES: dict[str, Any] = {e: e for e in ENGINES}

# --------------------------------------------------------------------------- helpers

def _bit(words: np.ndarray, token: int) -> bool:
    return bool((int(words[token >> 5]) >> (token & 31)) & 1)


def stats_us(ns: list[int]) -> dict[str, float]:
    if not ns:
        return {"n": 0, "mean": float("nan"), "p50": float("nan"), "p99": float("nan"), "max": float("nan")}
    a = np.asarray(ns, dtype=np.float64) / 1e3
    return {
        "n": int(a.size),
        "mean": float(a.mean()),
        "p50": float(np.percentile(a, 50)),
        "p99": float(np.percentile(a, 99)),
        "max": float(a.max()),
    }


def stats_ms(ns: list[int]) -> dict[str, float]:
    s = stats_us(ns)
    return {k: (v / 1e3 if k != "n" else v) for k, v in s.items()}


def tokenise(ctx: TokenizerCtx, text: str) -> tuple[list[int], str]:
    """The HF tokenizer's ids for ``text`` (no specials), checked to spell it exactly."""
    data = text.encode("utf-8")
    ids = list(ctx.hf.encode(text, add_special_tokens=False))
    if ctx.vocab.decode(ids) == data:
        return ids, "hf"
    return list(ctx.vocab.encode(text)), "constrain-encode"


class Reference:
    """constrain's masks, used outside the timed region to diff the other engines' masks."""

    def __init__(self, ctx: TokenizerCtx) -> None:
        import constrain

        self.ctx = ctx
        self.compiled = {p: constrain.compile_regex(p, ctx.vocab) for _, p, _ in REGEXES}
        keep = np.full(ctx.words, 0xFFFFFFFF, dtype=np.uint32)
        for e in ctx.vocab.eos_ids:
            keep[e >> 5] &= ~np.uint32(1 << (e & 31))
        tail = ctx.size % 32
        if tail:
            keep[-1] &= np.uint32((1 << tail) - 1)
        self.keep = keep

    def diff(self, state_matcher: Any, words: np.ndarray) -> tuple[list[int], list[int]]:
        """(ids only constrain allows, ids only the engine allows), EOS ids ignored."""
        ref = np.zeros(self.ctx.words, dtype=np.uint32)
        state_matcher.fill_mask(ref)
        x = (ref ^ words) & self.keep
        if not x.any():
            return [], []
        only_ref = np.nonzero(np.unpackbits((x & ref).view(np.uint8), bitorder="little"))[0]
        only_eng = np.nonzero(np.unpackbits((x & words).view(np.uint8), bitorder="little"))[0]
        return only_ref.tolist(), only_eng.tolist()


# --------------------------------------------------------------------------- the run

def run_pass(
    eng: Engine,
    compiled: Any,
    pattern: str,
    token_lists: list[list[int]],
    ref: Reference | None,
    rec: dict[str, Any],
    phase: str,
) -> None:
    """Force every string through a fresh matcher, timing only ``eng.fill``."""
    times = rec[phase]
    first_visit = eng.name == "constrain"
    diff_on = ref is not None and phase == "cold" and eng.name != "constrain"
    fill, advance, eos = eng.fill, eng.advance, eng.ctx.eos_id
    perf = time.perf_counter_ns
    gc.collect()  # once per pass: a collection right before a step would leave the CPU caches cold for it
    gc.disable()
    try:
        for ids in token_lists:
            m = eng.matcher(compiled)
            r = ref.compiled[pattern].matcher() if diff_on else None
            steps = ids + [eos]
            for k, tok in enumerate(steps):
                fv = eng.first_visit(m) if first_visit else None
                t0 = perf()
                fill(m)
                dt = perf() - t0
                times.append(dt)
                if fv is not None and phase == "cold":
                    rec["constrain_first_visit" if fv else "constrain_cached"].append(dt)
                words = eng.words()
                if not _bit(words, tok):
                    rec["fails"][phase] += 1
                    if len(rec["fail_examples"]) < 5:
                        rec["fail_examples"].append({"pattern": pattern, "step": k, "token": tok, "phase": phase})
                if r is not None:
                    only_ref, only_eng = ref.diff(r, words)
                    nd = len(only_ref) + len(only_eng)
                    if nd:
                        rec["diff_steps"] += 1
                        rec["diff_tokens_max"] = max(rec["diff_tokens_max"], nd)
                        tb = eng.ctx.vocab.token_bytes
                        key = (pattern, len(only_ref), len(only_eng))
                        if len(rec["diff_examples"]) < 12 and key not in rec["_diff_seen"]:
                            rec["_diff_seen"].add(key)
                            rec["diff_examples"].append({
                                "regex": pattern,
                                "prefix": eng.ctx.vocab.decode(steps[:k]).decode("utf-8", "replace"),
                                "only_constrain": len(only_ref),
                                "only_engine": len(only_eng),
                                "only_constrain_sample": [repr(tb[i]) for i in only_ref[:6]],
                                "only_engine_sample": [repr(tb[i]) if tb[i] is not None else f"<id {i}>"
                                                       for i in only_eng[:6]],
                            })
                if k == len(steps) - 1:
                    break  # EOS: checked, not consumed
                try:
                    ok = advance(m, tok)
                except Exception:
                    ok = False
                if r is not None:
                    r.accept_token(tok)
                if not ok:
                    rec["advance_errors"][phase] += 1
                    break
    finally:
        gc.enable()


def bench_tokenizer(
    tok_name: str,
    tok_dir: Path,
    engines: list[str],
    repeat: int,
    diff: bool,
    bar: tqdm,
) -> dict[str, Any]:
    import transformers

    from constrain import Vocabulary

    from constrain.tokens.trie import trie_for

    folder = tok_dir / tok_name
    t0 = time.perf_counter()
    vocab = Vocabulary.from_file(folder)
    vocab_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    trie_for(vocab)  # constrain's tokenizer-level index (fingerprint + trie), built once per vocabulary
    trie_s = time.perf_counter() - t1
    hf = transformers.AutoTokenizer.from_pretrained(str(folder))
    eos_id = hf.eos_token_id if hf.eos_token_id in vocab.eos_ids else min(vocab.eos_ids)
    ctx = TokenizerCtx(tok_name, folder, vocab, hf, int(eos_id), vocab.size)
    load_s = time.perf_counter() - t0

    token_lists: dict[str, list[list[int]]] = {}
    tokenisation: dict[str, int] = {"hf": 0, "constrain-encode": 0}
    for name, pattern, strings in REGEXES:
        lists = []
        for s in strings:
            if not re.fullmatch(pattern, s):
                raise SystemExit(f"bug in the workload: {s!r} does not match {name} ({pattern})")
            ids, how = tokenise(ctx, s)
            tokenisation[how] += 1
            lists.append(ids)
        token_lists[name] = lists
    steps_per_pass = sum(len(ids) + 1 for lists in token_lists.values() for ids in lists)
    ref = Reference(ctx) if diff else None

    out: dict[str, Any] = {
        "tokenizer": tok_name,
        "vocab_size": vocab.size,
        "eos_id": ctx.eos_id,
        "load_s": load_s,
        "constrain_vocab_s": vocab_s,
        "constrain_trie_s": trie_s,
        "tokenisation": tokenisation,
        "mask_steps_per_pass": steps_per_pass,
        "tokens_per_string": {n: [len(i) for i in l] for n, l in token_lists.items()},
        "engines": {},
    }
    for eng_name in engines:
        rss0 = current_rss_mib()
        eng = Engine(eng_name, ctx)
        bar.set_description(f"{tok_name}/{eng_name} prep")
        t0 = time.perf_counter()
        eng.prepare()
        prep_s = time.perf_counter() - t0
        if eng_name == "constrain":  # its trie was built above (the reference needs it): count it here
            prep_s += vocab_s + trie_s
        # Warm-up outside every measurement: JIT loading, lazy imports, first allocations.
        warm = eng.compile(r"[a-z]{1,3}")
        wm = eng.matcher(warm)
        eng.fill(wm)
        del warm, wm
        rec: dict[str, Any] = {
            "compile": [],
            "compile_by_regex": {n: [] for n, _, _ in REGEXES},
            "cold": [],
            "warm": [],
            "cold_by_regex": {n: [] for n, _, _ in REGEXES},
            "warm_by_regex": {n: [] for n, _, _ in REGEXES},
            "constrain_first_visit": [],
            "constrain_cached": [],
            "fails": {"cold": 0, "warm": 0},
            "advance_errors": {"cold": 0, "warm": 0},
            "compile_errors": [],
            "fail_examples": [],
            "diff_steps": 0,
            "diff_tokens_max": 0,
            "diff_examples": [],
            "_diff_seen": set(),
        }
        for rnd in range(repeat):
            for name, pattern, _ in REGEXES:
                bar.set_description(f"{tok_name}/{eng_name} r{rnd + 1} {name}")
                eng.clear_caches()
                gc.collect()
                t0 = time.perf_counter_ns()
                try:
                    compiled = eng.compile(pattern)
                except Exception as exc:  # count, report, go on
                    rec["compile_errors"].append(f"{name}: {type(exc).__name__}: {exc}"[:300])
                    bar.update(1)
                    continue
                dt = time.perf_counter_ns() - t0
                rec["compile"].append(dt)
                rec["compile_by_regex"][name].append(dt)
                for phase in ("cold", "warm"):
                    n0 = len(rec[phase])
                    run_pass(eng, compiled, pattern, token_lists[name], ref if rnd == 0 else None, rec, phase)
                    rec[f"{phase}_by_regex"][name].extend(rec[phase][n0:])
                del compiled
                bar.update(1)
        result = {
            "version": eng.version(),
            "prep_s": prep_s,
            "compile_ms": stats_ms(rec["compile"]),
            "compile_ms_by_regex": {n: stats_ms(v) for n, v in rec["compile_by_regex"].items()},
            "mask_us_cold": stats_us(rec["cold"]),
            "mask_us_warm": stats_us(rec["warm"]),
            "mask_us_cold_by_regex": {n: stats_us(v) for n, v in rec["cold_by_regex"].items()},
            "mask_us_warm_by_regex": {n: stats_us(v) for n, v in rec["warm_by_regex"].items()},
            "mask_steps_per_pass": steps_per_pass,
            "fails": rec["fails"],
            "fail_examples": rec["fail_examples"],
            "advance_errors": rec["advance_errors"],
            "compile_errors": rec["compile_errors"],
            "steps_differing_from_constrain": rec["diff_steps"] if diff and eng_name != "constrain" else None,
            "max_tokens_differing_from_constrain": rec["diff_tokens_max"] if diff and eng_name != "constrain" else None,
            "diff_examples": rec["diff_examples"],
            "peak_rss_mib": peak_rss_mib(),
            "rss_growth_mib": current_rss_mib() - rss0,
        }
        if eng_name == "constrain":
            result["constrain_cold_first_visit_us"] = stats_us(rec["constrain_first_visit"])
            result["constrain_cold_cached_us"] = stats_us(rec["constrain_cached"])
        out["engines"][eng_name] = result
        del eng, rec
        gc.collect()
    return out


# --------------------------------------------------------------------------- output

def _f(x: float, nd: int = 1) -> str:
    if x != x:  # nan
        return "-"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.{nd}f}"


def markdown(results: dict[str, Any]) -> str:
    lines = [
        "| tokenizer | engine | compile ms mean / p50 / p99 | cold mask µs mean / p50 / p99 / max "
        "| warm mask µs mean / p50 / p99 / max | mask steps | misses | ≠ constrain | prep s | peak RSS MiB (+Δ) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for t in results["tokenizers"]:
        for e, r in t["engines"].items():
            c, k, w = r["compile_ms"], r["mask_us_cold"], r["mask_us_warm"]
            misses = r["fails"]["cold"] + r["fails"]["warm"] + r["advance_errors"]["cold"] + r["advance_errors"]["warm"]
            if r["compile_errors"]:
                misses = f"{misses} (+{len(r['compile_errors'])} compile err)"
            d = r["steps_differing_from_constrain"]
            lines.append(
                f"| {t['tokenizer']} | {e} | {_f(c['mean'], 2)} / {_f(c['p50'], 2)} / {_f(c['p99'], 2)} "
                f"| {_f(k['mean'])} / {_f(k['p50'])} / {_f(k['p99'])} / {_f(k['max'])} "
                f"| {_f(w['mean'])} / {_f(w['p50'])} / {_f(w['p99'])} / {_f(w['max'])} "
                f"| {r['mask_steps_per_pass']} × {k['n'] // max(1, r['mask_steps_per_pass'])} "
                f"| {misses} | {'-' if d is None else d} | {r['prep_s']:.2f} "
                f"| {r['peak_rss_mib']:.0f} (+{r['rss_growth_mib']:.0f}) |"
            )
    return "\n".join(lines)


def markdown_by_regex(results: dict[str, Any]) -> str:
    engines = list(results["tokenizers"][0]["engines"]) if results["tokenizers"] else []
    head = "| tokenizer | regex | " + " | ".join(f"{e} compile ms / cold µs / warm µs" for e in engines) + " |"
    lines = [head, "|---|---|" + "---|" * len(engines)]
    for t in results["tokenizers"]:
        for name, _, _ in REGEXES:
            cells = []
            for e in engines:
                r = t["engines"][e]
                cells.append(
                    f"{_f(r['compile_ms_by_regex'][name]['mean'], 2)} / "
                    f"{_f(r['mask_us_cold_by_regex'][name]['mean'])} / {_f(r['mask_us_warm_by_regex'][name]['mean'])}"
                )
            lines.append(f"| {t['tokenizer']} | {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    toks = results["tokenizers"]
    engines = list(toks[0]["engines"]) if toks else []
    panels = [("mask_us_cold", "cold mask (µs, first pass after compile)"),
              ("mask_us_warm", "warm mask (µs, second pass)"),
              ("compile_ms", "compile (ms)")]
    fig, axes = plt.subplots(1, 3, figsize=(17, 5.2))
    series = [(t["tokenizer"], stat) for t in toks for stat in ("mean", "p99")]
    width = 0.8 / max(1, len(series))
    colors = plt.get_cmap("tab20").colors
    for ax, (key, title) in zip(axes, panels):
        for j, (tname, stat) in enumerate(series):
            tok = next(t for t in toks if t["tokenizer"] == tname)
            vals = [tok["engines"][e][key][stat] for e in engines]
            xs = [i + (j - (len(series) - 1) / 2) * width for i in range(len(engines))]
            bars = ax.bar(xs, vals, width, label=f"{tname} {stat}", color=colors[j % len(colors)])
            for b, v in zip(bars, vals):
                if v == v:
                    ax.annotate(f"{v:.3g}", (b.get_x() + b.get_width() / 2, v), ha="center", va="bottom",
                                fontsize=6, rotation=90, xytext=(0, 2), textcoords="offset points")
        tops = [tok["engines"][e][key][stat] for tok in toks for e in engines for stat in ("mean", "p99")]
        tops = [v for v in tops if v == v and v > 0]
        if tops:
            ax.set_ylim(min(tops) / 2, max(tops) * 6)  # room for the value labels under the title
        ax.set_xticks(range(len(engines)))
        ax.set_xticklabels(engines)
        ax.set_yscale("log")
        ax.set_title(title)
        ax.grid(axis="y", which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    meta = results["meta"]
    fig.suptitle(f"Regex token masks, {len(REGEXES)} regexes, single thread (load avg at start {meta['loadavg_start']})",
                 fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)


# --------------------------------------------------------------------------- main

def _split(values: list[str]) -> list[str]:
    return [x for v in values for x in re.split(r"[,\s]+", v) if x]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokenizers", nargs="+", default=["qwen3", "llama3"], help="folder names under --tokenizer-dir")
    ap.add_argument("--tokenizer-dir", type=Path, default=_default_tokenizer_dir())
    ap.add_argument("--engines", nargs="+", default=[",".join(ENGINES)], help="comma/space separated: " + ",".join(ENGINES))
    ap.add_argument("--repeat", type=int, default=3, help="rounds of (compile + cold pass + warm pass) per regex")
    ap.add_argument("--no-diff", action="store_true", help="skip comparing masks with constrain's")
    ap.add_argument("--verbose", action="store_true", help="print examples of masks that differ from constrain's")
    ap.add_argument("--json", type=Path, help="write all results here")
    ap.add_argument("--plot", type=Path, help="write a PNG bar chart here")
    ap.add_argument("--from-json", type=Path, help="do not measure: print tables / plot from a saved --json file")
    args = ap.parse_args(argv)

    if args.from_json:
        saved = json.loads(args.from_json.read_text(encoding="utf-8"))
        print(markdown(saved))
        print()
        print(markdown_by_regex(saved))
        if args.plot:
            plot(saved, args.plot)
        return 0

    engines = _split(args.engines)
    bad = [e for e in engines if e not in ENGINE_CLASSES]
    if bad:
        ap.error(f"unknown engine(s) {bad}; choose from {list(ENGINE_CLASSES)}")
    toks = _split(args.tokenizers)
    load0 = os.getloadavg()
    started = time.time()
    results: dict[str, Any] = {
        "meta": {
            "command": " ".join([Path(sys.executable).name, *sys.argv]) if argv is None else " ".join(argv),
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpu_count": os.cpu_count(),
            "loadavg_start": " ".join(f"{x:.2f}" for x in load0),
            "repeat": args.repeat,
            "regexes": [{"name": n, "pattern": p, "strings": s} for n, p, s in REGEXES],
            "notes": "compile: cold (caches cleared/disabled), tokenizer prep excluded; "
                     "cold mask: first pass after compile, fresh matcher per string; "
                     "warm mask: second pass, fresh matchers from the same compiled object; "
                     "mask steps include the final EOS step; single-threaded.",
        },
        "tokenizers": [],
    }
    total = len(toks) * len(engines) * args.repeat * len(REGEXES)
    with tqdm(total=total, unit="regex", dynamic_ncols=True, mininterval=2.0) as bar:
        for t in toks:
            results["tokenizers"].append(
                bench_tokenizer(t, args.tokenizer_dir, engines, args.repeat, not args.no_diff, bar)
            )
    results["meta"]["loadavg_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    results["meta"]["wall_s"] = time.time() - started
    results["meta"]["versions"] = {
        e: results["tokenizers"][0]["engines"][e]["version"] for e in engines
    } if results["tokenizers"] else {}

    print()
    print(markdown(results))
    print()
    print(markdown_by_regex(results))
    print()
    for t in results["tokenizers"]:
        c = t["engines"].get("constrain")
        if c:
            fv, ca = c["constrain_cold_first_visit_us"], c["constrain_cold_cached_us"]
            print(f"{t['tokenizer']}: constrain cold pass: {fv['n']} first-visit masks (trie walk) mean "
                  f"{_f(fv['mean'])} µs p99 {_f(fv['p99'])} max {_f(fv['max'])}; {ca['n']} memoised mean "
                  f"{_f(ca['mean'])} µs p99 {_f(ca['p99'])}")
        for e, r in t["engines"].items():
            if r["compile_errors"] or r["fail_examples"]:
                print(f"{t['tokenizer']}/{e}: compile errors {r['compile_errors']} misses {r['fail_examples']}")
            for d in r.get("diff_examples", [])[:4] if args.verbose else ():
                print(f"  {t['tokenizer']}/{e} differs from constrain after {d['prefix']!r} in {d['regex']!r}: "
                      f"{d['only_constrain']} only in constrain {d['only_constrain_sample']}, "
                      f"{d['only_engine']} only in {e} {d['only_engine_sample']}")
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
