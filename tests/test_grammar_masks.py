"""Grammar matchers and token masks on real tokenizers.

* random derivations are accepted token by token (``vocab.encode(text)``) under
  the qwen3, llama3 and mistral tokenizers, each token inside the mask before
  it is accepted, EOS allowed exactly at the end;
* masks equal a brute-force reference (Earley steps over the vocabulary trie,
  and for one point literally ``copy(); accept_token(t)`` for every token) at
  random points of random derivations (gpt2, a few points per grammar);
* the numba kernel equals its Python twin; rollback, copy, accept_bytes,
  forced_bytes and EOS semantics.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from constrain import Vocabulary
from constrain.grammar import GrammarConstraint, compile_grammar, load_grammar
from constrain.grammar.earley import step
from constrain.grammar.gbnf import gbnf_to_ir
from constrain.grammar.sampler import GrammarSampler
from constrain.tokens.bitmask import allocate_mask, ids_from_mask, is_allowed

from .conftest import shared_data, tokenizer_path

GRAMMARS = Path(__file__).resolve().parent.parent / "grammars"
LARK = ["json", "arithmetic", "sql", "python_like", "smiles"]
GAD = ["asap_release/examples/grammars/json.ebnf", "research_gd/examples/sygus/SLIA/bikes.ebnf",
       "research_gd/examples/sygus/bv4/find_inv_bvsge_bvadd_4bit.ebnf"]

_VOCABS: dict[str, Vocabulary] = {}
_CONSTRAINTS: dict[tuple[str, str], GrammarConstraint] = {}


def vocab(name: str) -> Vocabulary:
    v = _VOCABS.get(name)
    if v is None:
        v = _VOCABS[name] = Vocabulary.from_file(tokenizer_path(name).parent)
    return v


def grammar_ir(key: str):
    if key in LARK:
        return load_grammar(GRAMMARS / f"{key}.lark")
    return gbnf_to_ir(shared_data("gad", *key.split("/")).read_text())


def constraint(key: str, vname: str) -> GrammarConstraint:
    c = _CONSTRAINTS.get((key, vname))
    if c is None:
        v = vocab(vname)
        c = _CONSTRAINTS[(key, vname)] = (
            compile_grammar(GRAMMARS / f"{key}.lark", v) if key in LARK else GrammarConstraint(grammar_ir(key), v))
    return c


def samples(key: str, n: int, seed: int, max_depth: int = 7) -> list[str]:
    sm = GrammarSampler(grammar_ir(key))
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        s = sm.sample(rng, max_depth=max_depth)
        if 0 < len(s) <= 160:
            out.append(s.decode())
    return out


# -- token-by-token acceptance -----------------------------------------------------------


@pytest.mark.parametrize("vname", ["qwen3", "llama3", "mistral"])
@pytest.mark.parametrize("key", LARK + GAD)
def test_derivations_accepted_token_by_token(key: str, vname: str) -> None:
    c = constraint(key, vname)
    v = c.vocab
    eos = min(v.eos_ids)
    buf = allocate_mask(v.size)
    for text in samples(key, 2, seed=len(key) * 7 + len(vname)):
        m = c.matcher()
        ids = v.encode(text)
        assert v.decode(ids) == text.encode()
        for i, t in enumerate(ids):
            m.fill_mask(buf)
            assert is_allowed(buf, t), (text, i, v.token_bytes[t])
            assert not is_allowed(buf, eos) or m.is_accepting()
            assert m.accept_token(t), (text, i)
        m.fill_mask(buf)
        assert m.is_accepting() and is_allowed(buf, eos), text
        assert m.accept_token(eos) and m.is_finished()
        m.fill_mask(buf)
        assert not buf.any() and not m.accept_token(ids[0]) and not m.is_dead()


# -- masks versus brute force -------------------------------------------------------------


class _Trie:
    """A dict trie of the vocabulary for the reference walk."""

    def __init__(self, v: Vocabulary) -> None:
        self.root: dict = {}
        for i, b in enumerate(v.token_bytes):
            if b:
                node = self.root
                for x in b:
                    node = node.setdefault(x, {})
                node.setdefault(None, []).append(i)


_TRIES: dict[str, _Trie] = {}


def reference_mask(c: GrammarConstraint, trie: _Trie, S) -> set[int]:
    """Tokens whose bytes step the Earley chart without dying (no lexer DFA, no kernel)."""
    cg = c.compiled
    allowed: list[int] = []
    stack = [(trie.root, S)]
    while stack:
        node, s = stack.pop()
        for b, child in node.items():
            if b is None:
                continue
            s2 = step(cg, s, b)
            if s2 is not None:
                allowed.extend(child.get(None, ()))
                stack.append((child, s2))
    if S.accepting:
        allowed.extend(t for t in c.vocab.eos_ids if t < c.vocab.size)
    return set(allowed)


@pytest.mark.parametrize("key", LARK + GAD[:2])
def test_masks_equal_brute_force(key: str) -> None:
    c = constraint(key, "gpt2")
    v = c.vocab
    trie = _TRIES.setdefault("gpt2", _Trie(v))
    rng = random.Random(11)
    n = 1 if key in ("sql", "python_like", "arithmetic") else 2
    for text in samples(key, n, seed=3 + len(key), max_depth=6):
        ids = v.encode(text)
        m = c.matcher()
        npts = 2 if key in ("sql", "python_like", "arithmetic") else 3
        points = sorted(rng.sample(range(len(ids) + 1), min(npts, len(ids) + 1)))
        for k in range(len(ids) + 1):
            if k in points:
                S = m.earley_set
                want = reference_mask(c, trie, S)
                got = set(ids_from_mask(c.engine.compute(S), v.size).tolist())
                assert got == want, (key, text[:60], k, sorted(got ^ want)[:10])
            if k < len(ids):
                assert m.accept_token(ids[k])


def test_mask_equals_copy_and_accept_for_every_token() -> None:
    """The literal definition, once: copy the matcher and try every token."""
    c = constraint("json", "gpt2")
    v = c.vocab
    m = c.matcher()
    assert m.accept_bytes(b'{"key": [1, tr')
    buf = allocate_mask(v.size)
    m.fill_mask(buf)
    allowed = set(ids_from_mask(buf, v.size).tolist())
    brute = {t for t in range(v.size) if m.copy().accept_token(t)}
    assert allowed == brute
    assert v.encode("ue")[0] in allowed


def test_python_twin_kernel_matches_numba() -> None:
    c = constraint("arithmetic", "gpt2")
    twin = GrammarConstraint(c.compiled, c.vocab, use_numba=False)
    for text in ["", "1 + ", "foo(2, x", "(3 * y) ^ -"]:
        m1, m2 = c.matcher(), twin.matcher()
        assert m1.accept_bytes(text.encode()) or not text
        assert m2.accept_bytes(text.encode()) or not text
        assert np.array_equal(c.engine.compute(m1.earley_set), twin.engine.compute(m2.earley_set)), text


# -- matcher semantics --------------------------------------------------------------------


def test_rollback_copy_and_eos() -> None:
    c = constraint("json", "qwen3")
    v = c.vocab
    eos = min(v.eos_ids)
    ids = v.encode('{"a": [1, 2], "b": "x"}')
    m = c.matcher()
    masks = []
    buf = allocate_mask(v.size)
    for t in ids:
        m.fill_mask(buf)
        masks.append(buf.copy())
        assert m.accept_token(t)
    assert m.is_accepting() and m.num_steps == len(ids)
    fork = m.copy()
    assert fork.accept_token(eos) and fork.is_finished() and not m.is_finished()
    m.rollback(3)
    m.fill_mask(buf)
    assert np.array_equal(buf, masks[-3])
    assert not m.is_accepting()
    assert m.accept_tokens(ids[-3:]) == 3 and m.is_accepting()
    m.rollback(len(ids))
    m.fill_mask(buf)
    assert np.array_equal(buf, masks[0]) and not is_allowed(buf, eos)
    with pytest.raises(ValueError):
        m.rollback(1)
    # Illegal tokens leave the matcher unchanged.
    bad = v.encode("]")[0]
    assert not m.accept_token(bad) and m.num_steps == 0
    assert not m.accept_token(eos)
    assert not m.accept_bytes(b"{]") and m.num_steps == 0
    assert m.accept_bytes(b"{") and m.num_steps == 1
    m.rollback()
    assert not m.accept_token(v.size + 5)


def test_forced_bytes_and_dead_ends() -> None:
    c = compile_grammar('root ::= "(define-fun f () Int " [0-9]+ ")"', vocab("qwen3"))
    m = c.matcher()
    assert m.forced_bytes() == b"(define-fun f () Int "
    assert m.accept_bytes(b"(define-fun f () Int 4")
    assert m.forced_bytes() == b""
    assert m.accept_bytes(b")") and m.is_accepting() and m.forced_bytes() == b""
    assert not m.is_dead()
    json_m = constraint("json", "qwen3").matcher()
    assert json_m.accept_bytes(b'{"a": tr') and json_m.forced_bytes() == b"ue"


def test_masks_are_cached_and_read_only() -> None:
    c = constraint("json", "qwen3")
    m = c.matcher()
    assert m.accept_bytes(b'{"text": "hello')
    a = c.engine.mask(m.earley_set)
    assert m.accept_bytes(b" world")
    b = c.engine.mask(m.earley_set)
    assert a is b  # same lexer configuration and origins inside one string: one mask
    assert not a.flags.writeable


@pytest.mark.parametrize("key", ["json", "sql", "python_like"])
def test_carried_configurations_equal_rebuilt_ones(key: str) -> None:
    """Tokens inside a lexeme carry the lexer configuration to the next set
    (``MaskEngine.carry``); its mask equals the one of the same set stepped
    without the carry, whose configuration ``root_config`` rebuilds."""
    c = constraint(key, "qwen3")
    cg = c.compiled
    carried = 0
    for text in samples(key, 6, seed=11):
        m = c.matcher()
        plain = c._initial
        for t in c.vocab.encode(text):
            m.fill_mask(allocate_mask(c.vocab.size))
            assert m.accept_token(t), (text, t)
            for b in c.vocab.token_bytes[t]:
                plain = step(cg, plain, b)
            S = m.earley_set
            if S.cache is not None and "cfg" in S.cache:
                carried += 1
                assert np.array_equal(c.engine.compute(S), c.engine.compute(plain)), (text, t)
    assert carried, "no token was carried inside a lexeme"


def test_plain_slice_masks_equal_whole_trie_walks() -> None:
    """Configurations inside string bodies (chains with minLength/maxLength) and
    at keys that may be any undeclared name (closures) start from the plain
    slice (chains walk the suffix forest, closures the rest trie); the masks
    equal the whole-trie walks of the interpreted engine (which never slices)
    at every token of instances of a recursive schema."""
    from constrain import compile_json_schema

    schema = {
        "$defs": {"node": {"type": "object", "properties": {
            "name": {"type": "string", "minLength": 2},
            "code": {"type": "string", "maxLength": 3},
            "kids": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
            "additionalProperties": {"type": "string"}}},
        "$ref": "#/$defs/node",
    }
    texts = ['{"name":"ab cd","code":"x1","kids":[{"name":"é中文 text","kids":[],"zz":"q\\"w"}],"extra":"v"}',
             '{"code":"","kids":[{"code":"abc"}],"nam":"prefix of a name"}']
    for vname in ("qwen3", "gpt2"):
        v = vocab(vname)
        c = compile_json_schema(schema, v, additional_properties=True).inner
        assert isinstance(c, GrammarConstraint)
        twin = GrammarConstraint(c.compiled, v, use_numba=False)
        for text in texts:
            ids = v.encode(text)
            m = c.matcher()
            for k in range(len(ids) + 1):
                S = m.earley_set
                got = c.engine.compute(S)
                assert np.array_equal(got, twin.engine.compute(S)), (vname, text, k)
                if k < len(ids):
                    assert m.accept_token(ids[k]), (vname, text, k)
    assert c.engine._forest_args is not None, "no chain configuration took the plain slice's forest"
    assert c.engine._rest_args is not None, "no closure configuration took the plain slice's rest trie"


def test_plain_budget_kernel_equals_twin_on_lexer_configurations() -> None:
    """The budget of several terminals moving side by side (one numba call over
    the lexer's flattened tables) equals its code-point-by-code-point twin on the
    configurations met along instances and on random mixtures of terminal states."""
    from constrain import compile_json_schema
    from constrain.tokens import _kernels as TK
    from constrain.tokens.slices import MAX_REACH

    schema = {"type": "object", "properties": {
        "name": {"type": "string", "maxLength": 5}, "tag": {"type": "string", "pattern": "^[a-z]+$"},
        "kids": {"type": "array", "items": {"$ref": "#"}}}, "additionalProperties": {"type": "string"}}
    v = vocab("qwen3")
    c = compile_json_schema(schema, v, additional_properties=True).inner
    lex = c.engine.lexer
    pt = lex.plain
    combos = set()
    m = c.matcher()
    for ch in '{"name":"abcd","tag":"xy","kids":[{"zz":"q"}],"extra":"v"}':
        triples, _rest = lex.config(c.engine.root_config(m.earley_set)[0])
        combos.add(tuple((t, s) for t, s, _k in triples if not lex.is_ignore[t]))
        assert m.accept_bytes(ch.encode())
    rng = np.random.default_rng(0)
    n_states = pt.n_states
    for _ in range(12):
        ts = rng.choice(len(n_states), size=int(rng.integers(1, 4)), replace=False)
        combos.add(tuple((int(t), int(rng.integers(0, n_states[t]))) for t in ts))
    seen = set()
    for combo in sorted(combos):
        if not combo:
            continue
        tabs = np.array([t for t, _s in combo], dtype=np.int64)
        states = np.array([s for _t, s in combo], dtype=np.int64)
        args = (pt.flat, pt.off, pt.n_states, pt.ncols, pt.byte_class, tabs, states, pt.blocked, pt.blocked_off,
                True, pt.pcls, 6, MAX_REACH)
        want = TK.plain_budget_many_py(*args)
        for _ in range(2):  # the second time from the memos of chains and closure searches
            got = TK.plain_budget_many(*args, pt.soff, pt.memo, pt.reach)
            assert got == want, combo
        seen.add(int(got))
    assert {-1, TK.PLAIN_NONE} <= seen and any(k >= 0 for k in seen), seen


_UNION_GRAMMAR = r"""
start: A | B | "}" NUM | "ab" "c" NUM
A: /a[^"\\]*"/
B: /[^a"\\][^"\\]*"/
NUM: /[0-9]+/
"""


def test_union_closure_and_crossed_boundaries_take_the_slice() -> None:
    """Configurations whose components stay live on every plain text only
    together (one terminal per first character, as a split key complement
    makes), or where a component ends on a plain character ('}' then a number):
    every plain token is allowed either way, so the slice applies. The budget
    kernel equals its code-point twin there, and masks equal the interpreted
    engine's whole-trie walks at each step."""
    from constrain.tokens import _kernels as TK
    from constrain.tokens.slices import MAX_REACH

    for vname in ("qwen3", "gpt2"):
        v = vocab(vname)
        c = compile_grammar(_UNION_GRAMMAR, v)
        twin = GrammarConstraint(c.compiled, v, use_numba=False)
        lex, pt = c.engine.lexer, c.engine.lexer.plain
        for text in ["", "a", "ab", "}", "b", "abc"]:
            m = c.matcher()
            assert m.accept_bytes(text.encode()) or not text
            S = m.earley_set
            cid = c.engine.root_config(S)[0]
            triples, _rest = lex.config(cid)
            tabs = np.array([t for t, _s, _k in triples], dtype=np.int64)
            states = np.array([s for _t, s, _k in triples], dtype=np.int64)
            args = (pt.flat, pt.off, pt.n_states, pt.ncols, pt.byte_class, tabs, states, pt.blocked,
                    pt.blocked_off, True, pt.pcls, 6, MAX_REACH)
            want = TK.plain_budget_many_py(*args)
            assert TK.plain_budget_many(*args, pt.soff, pt.memo, pt.reach) == want, (text, triples)
            if text == "":
                assert want == TK.PLAIN_CLOSURE and len(triples) >= 3
                views = [pt.flat[pt.off[t]:pt.off[t] + pt.n_states[t] * pt.ncols].reshape(pt.n_states[t], pt.ncols)
                         for t in tabs]
                assert not any(TK.plain_reach_py(views[j], pt.byte_class, int(s), pt.pcls, None, False, True,
                                                 MAX_REACH) == 1 for j, s in enumerate(states)), "one alone is live"
            assert np.array_equal(c.engine.compute(S), twin.engine.compute(S)), (vname, text)
        ids = ids_from_mask(c.engine.compute(c.matcher().earley_set), v.size).tolist()
        assert v.encode("}")[0] in ids and v.encode("xyz")[0] in ids


def test_union_live_twin_refuses_what_the_components_do_not_cover() -> None:
    """Two first-character branches that leave one plain character out ('~') are not a closure."""
    from constrain.tokens import _kernels as TK
    from constrain.tokens.slices import MAX_REACH

    c = compile_grammar(r"""
start: A | B
A: /a[^"\\]*"/
B: /[^a~"\\][^"\\]*"/
""", vocab("qwen3"))
    lex, pt = c.engine.lexer, c.engine.lexer.plain
    triples, _rest = lex.config(c.engine.root_config(c.matcher().earley_set)[0])
    tabs = np.array([t for t, _s, _k in triples], dtype=np.int64)
    states = np.array([s for _t, s, _k in triples], dtype=np.int64)
    args = (pt.flat, pt.off, pt.n_states, pt.ncols, pt.byte_class, tabs, states, pt.blocked, pt.blocked_off, True,
            pt.pcls, 6, MAX_REACH)
    assert TK.plain_budget_many_py(*args) == TK.PLAIN_NONE
    assert TK.plain_budget_many(*args, pt.soff, pt.memo, pt.reach) == TK.PLAIN_NONE


@pytest.mark.parametrize("engine", ["constrain", "llguidance", "xgrammar"])  # bench.ENGINES
def test_grammar_bench_warm_up_texts_are_forced_to_their_end(engine):
    """The grammar benchmark warms every engine up on one text per case; a text refused
    part-way would leave code paths cold, to be charged to the first measured pass."""
    import importlib.util
    import sys

    transformers = pytest.importorskip("transformers")
    if engine != "constrain":
        pytest.importorskip(engine, reason=f"{engine} is not installed (pip install 'constrain[bench]')")
    spec = importlib.util.spec_from_file_location("grammar_masks_bench", GRAMMARS.parent / "bench" / "grammar_masks.py")
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench  # its dataclasses look their module up
    try:
        spec.loader.exec_module(bench)
    finally:
        del sys.modules[spec.name]
    folder = tokenizer_path("qwen3").parent
    vocab = Vocabulary.from_file(folder)
    hf = transformers.AutoTokenizer.from_pretrained(str(folder))
    ctx = bench.TokenizerCtx("qwen3", folder, vocab, hf, int(min(vocab.eos_ids)), vocab.size)
    eng = bench.ENGINE_CLASSES[engine](ctx)
    eng.prepare()
    assert bench.warm_up(eng, list(bench.CASES)) == []


def test_memoised_plain_reach_equals_twin_in_any_query_order() -> None:
    """The closure searches share answers along reachability (a success holds for
    every state it explored, reaching a known failure fails); asked in random
    orders, every answer equals the unmemoised twin's."""
    from constrain import compile_json_schema
    from constrain.tokens import _kernels as TK
    from constrain.tokens.slices import MAX_REACH

    schema = {"type": "object", "properties": {
        "name": {"type": "string", "maxLength": 5}, "tag": {"type": "string", "pattern": "^I[a-f0-9]{12}$"},
        "kids": {"type": "array", "items": {"$ref": "#"}}}, "additionalProperties": {"type": "string"}}
    pt = compile_json_schema(schema, vocab("qwen3"), additional_properties=True).inner.engine.lexer.plain
    queries = [(t, s, nl) for t in range(len(pt.n_states)) for s in range(int(pt.n_states[t])) for nl in (True, False)]
    want = {}
    for t, s, nl in queries:
        tab = pt.flat[pt.off[t]:pt.off[t] + pt.n_states[t] * pt.ncols].reshape(pt.n_states[t], pt.ncols)
        blocked = pt.blocked[pt.blocked_off[t]:pt.blocked_off[t] + pt.n_states[t]]
        want[t, s, nl] = TK.plain_reach_py(tab, pt.byte_class, s, pt.pcls, blocked, True, nl, MAX_REACH)
    assert {0, 1} <= set(want.values())
    rng = np.random.default_rng(1)
    for _ in range(3):
        reach = np.full_like(pt.reach, -2)
        for i in rng.permutation(len(queries)):
            t, s, nl = queries[i]
            got = TK._reach_memo(pt.flat, pt.off, pt.n_states, pt.ncols, pt.byte_class, pt.pcls, pt.blocked,
                                 pt.blocked_off, True, MAX_REACH, pt.soff, reach, t, s, nl)
            assert got == want[t, s, nl], (t, s, nl)
