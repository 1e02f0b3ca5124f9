"""The grammar mask kernels and their twins (constrain/grammar/_kernels.py, masks.py).

* the numba lexer DFA (lazy rows, interned configurations, self-loop bytes)
  against an independent set-based implementation of the same transitions;
* each numba helper against its interpreted source (``py_func``) and plain
  Python references (dict for the hash map, a recursive walk for the
  per-node byte sets);
* ``build_child`` (cached local cascades) against ``build_set`` on the same
  completion items;
* masks on a small vocabulary cut from Qwen3: equal to a brute-force Earley
  step over every token at many points, equal between the numba engine and
  the interpreted twins, and equal to the whole-module pure-Python run
  (``NUMBA_DISABLE_JIT=1`` in a subprocess).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from constrain import Vocabulary
from constrain.grammar import GrammarConstraint, load_grammar
from constrain.grammar import _kernels as K
from constrain.grammar.earley import CompiledGrammar, ESet, build_child, build_set, step
from constrain.grammar.sampler import GrammarSampler
from constrain.tokens.bitmask import ids_from_mask
from constrain.tokens.trie import TokenTrie

from .conftest import tokenizer_path

REPO = Path(__file__).resolve().parent.parent
GRAMMARS = REPO / "grammars"

_CG: dict[str, CompiledGrammar] = {}


def compiled(name: str) -> CompiledGrammar:
    cg = _CG.get(name)
    if cg is None:
        cg = _CG[name] = CompiledGrammar(load_grammar(GRAMMARS / f"{name}.lark"))
    return cg


def small_vocab() -> Vocabulary:
    """~4k Qwen3 tokens: every single byte, the first 3000 merges, and SQL/JSON-looking pieces."""
    qwen = Vocabulary.from_file(tokenizer_path("qwen3").parent)
    tb = qwen.token_bytes
    keep = [b for b in tb[:3000] if b]
    extra = [b for b in tb if b and any(x in b for x in (b"SELECT", b"WHERE", b"\",", b"),", b"('", b"--", b"/*",
                                                           b"ect", b"and", b" AS", b"()"))][:1000]
    singles = [bytes([i]) for i in range(256)]
    toks = list(dict.fromkeys(singles + keep + extra))
    return Vocabulary(toks + [None], eos_ids={len(toks)})


_SMALL: list[Vocabulary] = []


def vocab() -> Vocabulary:
    if not _SMALL:
        _SMALL.append(small_vocab())
    return _SMALL[0]


def samples(name: str, n: int, seed: int) -> list[bytes]:
    sm = GrammarSampler(load_grammar(GRAMMARS / f"{name}.lark"))
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        s = sm.sample(rng, max_depth=7)
        if 0 < len(s) <= 120:
            out.append(s)
    return out


# -- lexer DFA ---------------------------------------------------------------------------


def reference_successor(lex, cid: int, g: int):
    """The successor configuration computed with Python sets (independent of the kernel)."""
    cg = lex.cg
    triples, rest = lex.config(cid)
    restart = dict(rest)
    b = int(np.nonzero(lex.gcls == g)[0][0])
    nxt = set()
    for t, s, k in triples:
        ns = cg.tab[t][s][cg.cls[t][b]]
        if ns < 0:
            continue
        nxt.add((t, ns, k))
        if lex.is_ignore[t] and cg.acc[t][ns]:
            for t2 in restart[k]:
                if t2 != t or not cg.ignore_closed.get(t, False):
                    nxt.add((t2, cg.start_state[t2], k))
    if not nxt:
        return None
    ranks = sorted({k for t, _s, k in nxt if lex.is_ignore[t]})
    return tuple(sorted(nxt)), tuple((k, restart[k]) for k in ranks)


@pytest.mark.parametrize("name", ["sql", "json", "python_like"])
def test_lexer_transitions_match_set_reference(name: str) -> None:
    cg = compiled(name)
    lex = cg.lexer_dfa()
    engine_vocab = vocab()
    c = GrammarConstraint(cg, engine_vocab)
    roots = set()
    for text in samples(name, 3, seed=5):
        m = c.matcher()
        for i in range(len(text)):
            if not m.accept_bytes(text[i:i + 1]):
                break
            if m.earley_set.scan:
                roots.add(c.engine.root_config(m.earley_set)[0])
    rng = random.Random(1)
    frontier = sorted(roots)
    checked = 0
    while frontier and checked < 400:
        cid = frontier.pop(rng.randrange(len(frontier)))
        for g in rng.sample(range(lex.num_classes), min(6, lex.num_classes)):
            got = lex.step(cid, g)
            want = reference_successor(lex, cid, g)
            assert (got < 0) == (want is None), (cid, g)
            if got >= 0:
                assert lex.config(got) == want
                frontier.append(got)
            checked += 1
        # the self-loop bytes of cid
        assert K.loop_bytes(lex.arrays(), lex.scratch, lex.gcls, cid) == 0
        bits = lex.loop[cid]
        for b in range(256):
            want_loop = reference_successor(lex, cid, int(lex.gcls[b])) == lex.config(cid)
            assert bool((int(bits[b >> 6]) >> (b & 63)) & 1) == want_loop, (cid, b)
    assert checked >= 100


def test_lexer_make_interns_and_grows() -> None:
    cg = compiled("json")
    lex = cg.lexer_dfa()
    start = cg.start_state
    seen = {}
    for t in range(cg.num_terminals):
        for k in range(40):  # many distinct configurations: forces the arrays and hash slots to grow
            cid = lex.make([(t, start[t], k), (t, start[t], k + 1)], {})
            assert lex.make([(t, start[t], k + 1), (t, start[t], k)], {}) == cid
            seen[(t, k)] = cid
    assert len(set(seen.values())) == len(seen)
    for (t, k), cid in seen.items():
        assert lex.config(cid) == (((t, start[t], k), (t, start[t], k + 1)), ())
    assert lex.make([], {}) == -1


# -- helpers against their interpreted source and plain Python --------------------------------


@pytest.mark.parametrize("impl", ["numba", "python"])
def test_hash_map_matches_dict(impl: str) -> None:
    get = K.hmap_get if impl == "numba" else K.hmap_get.py_func
    put = K.hmap_put if impl == "numba" else K.hmap_put.py_func
    rehash = K.hmap_rehash if impl == "numba" else K.hmap_rehash.py_func
    keys = np.full(16, -1, dtype=np.int64)
    vals = np.zeros(16, dtype=np.int32)
    meta = np.zeros(1, dtype=np.int64)
    ref: dict[int, int] = {}
    rng = random.Random(3)
    for _ in range(3000):
        key = rng.randrange(1 << 40) if rng.random() < 0.7 else rng.choice(list(ref) or [5])
        val = rng.randrange(1 << 30)
        r = put(keys, vals, meta, key, val)
        while r < 0:
            k2 = np.empty(2 * len(keys), dtype=np.int64)
            v2 = np.empty(2 * len(keys), dtype=np.int32)
            rehash(keys, vals, k2, v2)
            keys, vals = k2, v2
            r = put(keys, vals, meta, key, val)
        assert r == (0 if key in ref else 1)
        ref[key] = val
    assert meta[0] == len(ref)
    for key, val in ref.items():
        assert get(keys, vals, key) == val
    assert get(keys, vals, (1 << 41) + 7) == -1


def test_subtree_bytes_matches_reference() -> None:
    trie = TokenTrie.build([b"ab", b"abc", b"abd", b"b", b"ba\xff", b"c", b"ca"])
    below = np.empty((trie.num_nodes, 4), dtype=np.uint64)
    K.subtree_bytes(trie.node_byte, trie.node_end, below)
    twin = np.empty_like(below)
    K.subtree_bytes.py_func(trie.node_byte, trie.node_end, twin)
    assert np.array_equal(below, twin)
    for i in range(trie.num_nodes):
        want = set(int(x) for x in trie.node_byte[i + 1:trie.node_end[i]])
        got = {b for b in range(256) if (int(below[i, b >> 6]) >> (b & 63)) & 1}
        assert got == want, i


def test_filter_pending_twin() -> None:
    trie = TokenTrie.build([b"a", b"ab", b"abc", b"b", b"bc"])
    out = np.zeros(1, dtype=np.uint32)
    # allow every token except "abc" (id 2)
    for t in (0, 1, 3, 4):
        out[0] |= np.uint32(1 << t)
    nodes = np.arange(trie.num_nodes, dtype=np.int32)
    for fn in (K.filter_pending, K.filter_pending.py_func):
        pn, pc, pf = nodes.copy(), np.zeros_like(nodes), np.zeros_like(nodes)
        n = fn(out, trie.node_end, trie.tok_start, trie.tok_ids, pn, pc, pf, len(nodes))
        kept = [bytes(trie.node_byte[[j for j in range(i + 1) if trie.node_end[j] > i]]) for i in pn[:n]]
        assert kept == [b"a", b"ab"]  # the only nodes with a disallowed token strictly below


# -- build_child ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["sql", "arithmetic", "python_like"])
def test_build_child_equals_build_set(name: str) -> None:
    cg = compiled(name)

    def items(S: ESet) -> set:
        return {(x, d, -1 if o is S else id(o)) for x in set(S.waiting) | set(S.pred.waiting)
                for d, o in S.waiting_on(x)}

    n = 0
    for text in samples(name, 4, seed=9):
        S = cg.initial_set()
        for b in text:
            for X in (S,):
                for t in X.fresh:
                    if t >= cg.num_terminals or not X.waiting_on(~t):
                        continue
                    C1 = build_child(cg, ESet(-1), [(X, frozenset([t]))])
                    C2 = build_set(cg, ESet(-1), X.waiting_on(~t), {})
                    assert items(C1) == items(C2)
                    assert C1.fresh == C2.fresh and C1.accepting == C2.accepting
                    n += 1
            S = step(cg, S, b)
            assert S is not None
    assert n > 20


# -- masks on a small vocabulary ---------------------------------------------------------------


def brute_force(c: GrammarConstraint, S) -> set[int]:
    v = c.vocab
    allowed = set()
    for i, tb in enumerate(v.token_bytes):
        if not tb:
            continue
        X = S
        for b in tb:
            X = step(c.compiled, X, b)
            if X is None:
                break
        if X is not None:
            allowed.add(i)
    if S.accepting:
        allowed |= set(v.eos_ids)
    return allowed


@pytest.mark.parametrize("name", ["sql", "json", "python_like", "smiles"])
def test_small_vocab_masks_equal_brute_force(name: str) -> None:
    v = vocab()
    c = GrammarConstraint(compiled(name), v)
    twin = GrammarConstraint(compiled(name), v, use_numba=False)
    rng = random.Random(7)
    checked = 0
    heavy = name in ("sql", "python_like")
    for text in samples(name, 2 if heavy else 3, seed=21):
        m = c.matcher()
        cuts = sorted(rng.sample(range(len(text) + 1), min(3 if heavy else 4, len(text) + 1)))
        pos = 0
        for cut in cuts:
            assert m.accept_bytes(text[pos:cut]) or cut == pos
            pos = cut
            S = m.earley_set
            got = set(ids_from_mask(c.engine.compute(S), v.size).tolist())
            assert got == brute_force(c, S), (name, text[:cut][-40:])
            assert np.array_equal(c.engine.compute(S), twin.engine.compute(S))
            checked += 1
    assert checked >= 5


_CHILD = r"""
import json, sys
sys.path.insert(0, {repo!r})
from constrain import Vocabulary
from constrain.grammar import GrammarConstraint, load_grammar
from constrain.grammar.earley import CompiledGrammar
from constrain.tokens.bitmask import ids_from_mask
toks = json.load(open({toks!r}))
v = Vocabulary([bytes.fromhex(t) for t in toks] + [None], eos_ids={{len(toks)}})
c = GrammarConstraint(CompiledGrammar(load_grammar({grammar!r})), v)
out = []
for prefix in json.load(open({prefixes!r})):
    m = c.matcher()
    assert m.accept_bytes(bytes.fromhex(prefix))
    out.append(ids_from_mask(c.engine.compute(m.earley_set), v.size).tolist())
print(json.dumps(out))
"""


def test_pure_python_run_matches_numba(tmp_path: Path) -> None:
    """The whole kernel module interpreted (NUMBA_DISABLE_JIT=1) gives the same masks."""
    v = vocab()
    toks = [tb for tb in v.token_bytes if tb][:1500]
    sv = Vocabulary(toks + [None], eos_ids={len(toks)})
    prefixes = [b"SELECT a", b"SELECT a, b FROM t WHERE x = ", b"UPDATE t SET c = 'x' --", b"INSERT INTO t VALUES (1, "]
    (tmp_path / "toks.json").write_text(json.dumps([t.hex() for t in toks]))
    (tmp_path / "prefixes.json").write_text(json.dumps([p.hex() for p in prefixes]))
    script = _CHILD.format(repo=str(REPO), toks=str(tmp_path / "toks.json"), grammar=str(GRAMMARS / "sql.lark"),
                           prefixes=str(tmp_path / "prefixes.json"))
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    python_masks = json.loads(res.stdout.strip().splitlines()[-1])
    c = GrammarConstraint(compiled("sql"), sv)
    for prefix, want in zip(prefixes, python_masks):
        m = c.matcher()
        assert m.accept_bytes(prefix)
        assert ids_from_mask(c.engine.compute(m.earley_set), sv.size).tolist() == want, prefix
