"""Token masks equal a brute-force reference on real tokenizers; matcher semantics."""

from __future__ import annotations

import random
import re

import numpy as np
import pytest

from constrain import Vocabulary, compile_regex
from constrain.tokens import _kernels, allocate_mask, ids_from_mask, trie_for

from .conftest import tokenizer_path

MASK_TOKENIZERS = ["qwen3", "llama3", "mistral", "llama2", "gpt2", "deepseek_v3"]
MASK_REGEXES = [
    r"\d{4}-\d{2}-\d{2}",
    r"[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}",
    r'\{"name":"[^"\\]{0,20}","age":\d{1,3}\}',
    r"(red|green|blue)",
    r" ?[A-Z][a-z]+( [A-Z][a-z]+)*\.",
    r"[\u4e00-\u9fff]{1,4}|😀+",
    # JSON string bodies: the states inside loop on plain text (the plain-slice path)
    r'\{"k":"(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"(?:,"v":"[^"\\\x00-\x1f]*")?\}',
]

_VOCABS: dict[str, Vocabulary] = {}


def vocab_for(name: str) -> Vocabulary:
    if name not in _VOCABS:
        _VOCABS[name] = Vocabulary.from_file(tokenizer_path(name).parent)
    return _VOCABS[name]


def brute_force_allowed(constraint, state: int) -> set[int]:
    """Check every token by feeding its bytes through the DFA."""
    dfa, vocab = constraint.dfa, constraint.vocab
    allowed = {t for t, b in enumerate(vocab.token_bytes) if b and dfa.step(state, b) >= 0}
    if dfa.accepting[state]:
        allowed |= set(vocab.eos_ids)
    return allowed


def sample_prefix_states(constraint, rng: random.Random, n: int) -> list[int]:
    """States reached by random token walks (the points a decoder visits)."""
    states = {constraint.dfa.start}
    for _ in range(n):
        m = constraint.matcher()
        for _ in range(rng.randint(1, 12)):
            ids = [t for t in m.allowed_token_ids() if t not in constraint.vocab.eos_ids]
            if not ids:
                break
            assert m.accept_token(int(rng.choice(ids)))
            states.add(m.state)
    return sorted(states)[: n + 1]


@pytest.mark.parametrize("tok", MASK_TOKENIZERS)
@pytest.mark.parametrize("pattern", MASK_REGEXES)
def test_mask_equals_brute_force(tok: str, pattern: str) -> None:
    vocab = vocab_for(tok)
    c = compile_regex(pattern, vocab)
    rng = random.Random(f"{tok}{pattern}")
    for state in sample_prefix_states(c, rng, 3):
        want = brute_force_allowed(c, state)
        have = set(ids_from_mask(c.mask(state), vocab.size).tolist())
        assert have == want, (tok, pattern, state, sorted(have ^ want)[:10])


@pytest.mark.parametrize("tok", ["qwen3", "llama2"])
def test_numba_kernel_matches_python_twin(tok: str) -> None:
    vocab = vocab_for(tok)
    t = trie_for(vocab)
    for pattern in [r"[a-f ]+", r"\d+(\.\d+)?"]:
        c = compile_regex(pattern, vocab)
        for state in range(c.dfa.num_states):
            want = allocate_mask(vocab.size)
            have = allocate_mask(vocab.size)
            args = (c._table, c._byte_class, state, t.node_byte, t.node_depth, t.node_end, t.tok_start, t.tok_ids, t.max_depth)
            nv_py = _kernels.dfa_trie_mask_py(*args, want)
            nv_nb = _kernels.dfa_trie_mask(*args, have)
            assert nv_py == nv_nb
            np.testing.assert_array_equal(have, want)


@pytest.mark.parametrize("tok", MASK_TOKENIZERS)
def test_valid_strings_accepted_token_by_token(tok: str) -> None:
    """The tokenizer's own tokenisation of a valid string passes, EOS at the end."""
    vocab = vocab_for(tok)
    cases = {
        r"\d{4}-\d{2}-\d{2}": ["2024-01-31", "1999-12-01"],
        r"[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}": ["john.doe@example.com", "a_b+c@x-y.org"],
        r" ?[A-Z][a-z]+( [A-Z][a-z]+)*\.": [" Hello World.", "Zürich."[:0] + "Paris."],
        r"[\u4e00-\u9fff]{1,4}|😀+": ["中文字", "😀😀😀"],
    }
    for pattern, texts in cases.items():
        c = compile_regex(pattern, vocab)
        for text in texts:
            assert re.fullmatch(pattern, text)
            m = c.matcher()
            ids = vocab.encode(text)
            for i, t in enumerate(ids):
                assert t in set(m.allowed_token_ids().tolist()), (tok, text, i)
                assert m.accept_token(t)
            assert m.is_accepting()
            eos = min(vocab.eos_ids)
            assert eos in set(m.allowed_token_ids().tolist())
            assert m.accept_token(eos) and m.is_finished()
            assert len(m.allowed_token_ids()) == 0 and not m.is_dead()


def test_invalid_tokens_refused_and_state_unchanged() -> None:
    vocab = vocab_for("qwen3")
    c = compile_regex(r"\d{4}-\d{2}-\d{2}", vocab)
    m = c.matcher()
    before = m.state
    bad = vocab.encode("x")[0]
    assert not m.accept_token(bad)
    assert m.state == before
    assert not m.accept_token(min(vocab.eos_ids))  # EOS not allowed before completion
    assert not m.accept_token(vocab.size + 5)  # out of range
    specials = [t for t in vocab.special_ids if t not in vocab.eos_ids]
    assert specials and not any(m.accept_token(t) for t in specials)
    assert not m.accept_bytes(b"20x")
    assert m.state == before


def test_rollback_and_copy() -> None:
    vocab = vocab_for("llama3")
    c = compile_regex(r"(ab|cd)+", vocab)
    m = c.matcher()
    assert m.accept_bytes(b"ab")
    fork = m.copy()
    assert m.accept_bytes(b"cd") and m.accept_bytes(b"a")
    assert not m.is_accepting()
    m.rollback(1)
    assert m.is_accepting()
    assert fork.num_steps == 1 and m.num_steps == 2
    m.rollback(2)
    assert m.state == c.dfa.start
    with pytest.raises(ValueError):
        m.rollback(1)
    # The fork is independent.
    assert fork.accept_bytes(b"cd") and fork.num_steps == 2 and m.num_steps == 0
    eos = min(vocab.eos_ids)
    assert fork.accept_token(eos) and fork.is_finished()
    fork.rollback(1)
    assert not fork.is_finished() and fork.accept_bytes(b"ab")


def test_dead_end_detected() -> None:
    # A vocabulary whose tokens cannot spell the language's next byte.
    vocab = Vocabulary([b"a", b"b", None], eos_ids={2})
    c = compile_regex(r"ab?c", vocab)
    m = c.matcher()
    assert m.accept_token(0)
    assert not m.is_dead()  # "b" still possible
    assert m.accept_token(1)
    assert m.is_dead() and len(m.allowed_token_ids()) == 0


def test_forced_bytes_and_masks_are_shared_across_matchers() -> None:
    vocab = vocab_for("qwen3")
    c = compile_regex(r'\{"id":\d+\}', vocab)
    m1, m2 = c.matcher(), c.matcher()
    assert m1.forced_bytes() == b'{"id":'
    m1.allowed_token_ids()
    cached = c.num_cached_masks()
    m2.allowed_token_ids()
    assert c.num_cached_masks() == cached


def test_fill_mask_into_torch_int32() -> None:
    torch = pytest.importorskip("torch")
    vocab = vocab_for("gpt2")
    c = compile_regex(r"[0-9]+", vocab)
    out = torch.zeros((vocab.size + 31) // 32, dtype=torch.int32)
    c.matcher().fill_mask(out)
    ids = ids_from_mask(out.numpy().view(np.uint32), vocab.size)
    assert set(ids.tolist()) == brute_force_allowed(c, c.dfa.start)


def test_trie_builder_matches_python_twin() -> None:
    vocab = vocab_for("mistral")
    items = sorted(b for b in vocab.token_bytes if b)[::7]
    offsets = np.zeros(len(items) + 1, dtype=np.int64)
    np.cumsum([len(b) for b in items], out=offsets[1:])
    data = np.frombuffer(b"".join(items), dtype=np.uint8)
    for have, want in zip(_kernels.build_trie(data, offsets), _kernels.build_trie_py(data, offsets)):
        np.testing.assert_array_equal(have, want)


def test_plain_classes_matches_per_range_unique() -> None:
    """The vectorised class table equals ``np.unique`` of each range's byte
    classes (its definition), on random byte partitions of every width."""
    rng = np.random.default_rng(7)
    for width in (1, 2, 5, 40, 256):
        for _ in range(10):
            cls = rng.integers(0, width, 256).astype(np.int32)
            got = _kernels.plain_classes(cls)
            for r, row in enumerate(_kernels.PLAIN_SHAPES.tolist()):
                for step in range(4):
                    lo, hi = row[2 * step], row[2 * step + 1]
                    want = np.unique(cls[lo:hi + 1]) if hi >= lo else np.zeros(0, np.int32)
                    n = got[r, step, 0]
                    assert n == len(want) and got[r, step, 1:1 + n].tolist() == want.tolist()
                    if hi < lo:
                        break


def test_plain_slice_states_and_kernel_twin() -> None:
    """String-body states take the plain slice: unbounded bodies (also after a
    minimum length) and bounded ones (a chain of maxLength states); states where
    plain characters disagree do not; the numba successor check agrees with its
    code-point-by-code-point twin; sliced masks equal brute force everywhere."""
    from constrain.tokens.slices import PlainTables, is_plain, plain_budget, plain_slice_for

    vocab = vocab_for("qwen3")
    sl = plain_slice_for(vocab)
    body = '(?:[^"\\\\\\x00-\\x1f]|\\\\["\\\\/bfnrt]|\\\\u[0-9a-fA-F]{4})'
    cases = [  # (regex, prefix, expected budget)
        ('"' + body + '*"', b'"ab', -1),
        ('"' + body + '{2,}"', b'"', -1),
        ('"' + body + '{0,3}"', b'"a', 2),
        ('"' + body + '{1,3}"', b'"abc', 0),
        ('"[a-z]*"', b'"', None),
        ('"' + body + '*"', b'"a\\', None),
    ]
    for rx, prefix, want in cases:
        c = compile_regex(rx, vocab)
        table = np.ascontiguousarray(c.dfa.table, dtype=np.int32)
        cls = np.ascontiguousarray(c.dfa.byte_class, dtype=np.int32)
        q = c.dfa.step(c.dfa.start, prefix)
        assert plain_budget(PlainTables.of(table, cls), q, sl.max_chars) == want, (rx, prefix)
        assert _kernels.plain_successor(table, cls, q, _kernels.plain_classes(cls)) == \
            _kernels.plain_successor_py(table, cls, q, _kernels.plain_classes(cls)), (rx, prefix)
        assert set(ids_from_mask(c.mask(q), vocab.size).tolist()) == brute_force_allowed(c, q), (rx, prefix)
        blocked = np.zeros(table.shape[0], dtype=bool)
        for need_live in (True, False):
            args = (table, cls, q, _kernels.plain_classes(cls), blocked, False, need_live, 4096)
            memo = np.full(table.shape[0], -2, dtype=np.int8)
            want = _kernels.plain_reach_py(*args)
            for _ in range(2):  # the second answer from the memo
                assert _kernels.plain_reach(*args, memo) == want, (rx, prefix, need_live)
    # a closure: an extra key may be any string but a declared name, so plain text
    # leads to different states that all stay live
    from constrain import compile_json_schema

    obj = compile_json_schema({"type": "object", "properties": {"ab": {"type": "integer"}},
                               "additionalProperties": {"type": "integer"}}, vocab).inner
    table = np.ascontiguousarray(obj.dfa.table, dtype=np.int32)
    cls = np.ascontiguousarray(obj.dfa.byte_class, dtype=np.int32)
    q = obj.dfa.step(obj.dfa.start, b'{"ab":1,"')
    assert _kernels.plain_successor(table, cls, q, _kernels.plain_classes(cls)) == -2
    assert plain_budget(PlainTables.of(table, cls), q, sl.max_chars) == -1
    assert set(ids_from_mask(obj.mask(q), vocab.size).tolist()) == brute_force_allowed(obj, q)
    for tok in MASK_TOKENIZERS:  # the sliced mask equals brute force on every tokenizer
        v = vocab_for(tok)
        for rx, prefix, _want in cases[:4]:
            cv = compile_regex(rx, v)
            q = cv.dfa.step(cv.dfa.start, prefix)
            assert set(ids_from_mask(cv.mask(q), v.size).tolist()) == brute_force_allowed(cv, q), (tok, rx)
    assert sl.count > 0.8 * vocab.size  # the slice is most of the vocabulary
    ids = ids_from_mask(sl.words(-1), vocab.size)
    assert all(is_plain(vocab.token_bytes[t]) for t in ids[:2000])
    assert not is_plain(b'a"') and not is_plain(b"\xe4\xb8") and is_plain("é中".encode())
