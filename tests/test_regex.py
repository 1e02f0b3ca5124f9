"""Regex -> byte DFA: differential against Python's re, UTF-8 expansion, errors."""

from __future__ import annotations

import random
import re

import pytest

from constrain.errors import ConstraintError, RegexError, UnsupportedError
from constrain.regex import regex_to_dfa
from constrain.regex import charset as cs
from constrain.regex.utf8 import utf8_sequences

# Patterns whose meaning is the same in ECMA-262 and in Python's re with re.ASCII
# on the alphabet below (which avoids \r, U+2028/9 and non-ASCII spaces, where
# ECMA's `.` and `\s` differ from Python's).
PATTERNS = [
    r"\d{4}-\d{2}-\d{2}",
    r"(red|green|blue)",
    r"[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}",
    r"\(?\d{3}\)?[ -]?\d{3}-\d{4}",
    r"a{2,5}b?",
    r"(ab|a)*c+",
    r"[^a-c]+",
    r"[^\"\\]*",
    r".{0,3}é",
    r"(?:x|y|)z{1,}",
    r"\w+\s\W?",
    r"[\u00e0-\u00ff]+|中文",
    r"(a|b)*abb",
    r"[-a]+[a-]*",
    r"[\]a]+\{",
    r"a{,2}b{3}",
    r"(?P<year>\d{2})(?:/\d)?",
    r"😀+[😀-😂]?",
    r"[\x00-\x7f]{2}",
    r"\.\*\+\?",
    r"((a|b)(c|d)){2}",
    r"",
    r"^abc$|^d$",
]
ALPHABET = list("abcdxyz019 -_.@()/\\\"{}]*+?\t\n") + ["é", "à", "ÿ", "中", "文", "😀", "😁", "😃", "\x00", "\x7f"]


def _ecma_and_python_agree(text: str) -> bool:
    """False for strings with characters where ECMA `.`/`\\s` differ from Python's."""
    return not any(
        c in "\r\u2028\u2029" or (ord(c) > 0x7F and cs.contains(cs.SPACE, ord(c))) for c in text
    )


def random_string(rng: random.Random) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 8)))


def sample_from_dfa(dfa, rng: random.Random, max_len: int = 40) -> bytes | None:
    """A random accepted byte string (random walk over live transitions)."""
    s = dfa.start
    out = bytearray()
    while len(out) < max_len:
        if dfa.accepting[s] and rng.random() < 0.25:
            return bytes(out)
        live = [b for b in range(256) if dfa.table[s, dfa.byte_class[b]] >= 0]
        if not live:
            break
        b = rng.choice(live)
        out.append(b)
        s = int(dfa.table[s, dfa.byte_class[b]])
    return bytes(out) if dfa.accepting[s] else None


@pytest.mark.parametrize("pattern", PATTERNS)
def test_matches_python_re_on_random_strings(pattern: str) -> None:
    dfa = regex_to_dfa(pattern)
    rx = re.compile(pattern, re.ASCII)
    rng = random.Random(pattern)
    interesting = [random_string(rng) for _ in range(1500)]
    # Mutations of accepted strings reach the boundary of the language.
    for _ in range(200):
        got = sample_from_dfa(dfa, rng)
        if got is not None:
            text = got.decode("utf-8")
            interesting.append(text)
            if text:
                i = rng.randrange(len(text))
                interesting.append(text[:i] + rng.choice(ALPHABET) + text[i + 1:])
                interesting.append(text[:i] + text[i + 1:])
    for text in filter(_ecma_and_python_agree, interesting):
        want = rx.fullmatch(text) is not None
        have = dfa.matches(text.encode("utf-8"))
        assert have == want, (pattern, text)


@pytest.mark.parametrize("pattern", PATTERNS)
def test_strings_sampled_from_dfa_fullmatch(pattern: str) -> None:
    dfa = regex_to_dfa(pattern)
    rx = re.compile(pattern, re.ASCII)
    rng = random.Random(1)
    n = 0
    for _ in range(300):
        got = sample_from_dfa(dfa, rng)
        if got is None:
            continue
        n += 1
        if not _ecma_and_python_agree(got.decode("utf-8")):
            continue
        assert rx.fullmatch(got.decode("utf-8")), (pattern, got)
    assert n > 0


def test_ecma_class_semantics() -> None:
    assert regex_to_dfa(r"\s").matches("\u00a0".encode())
    assert regex_to_dfa(r"\s").matches("\ufeff".encode())
    assert not regex_to_dfa(r"\s").matches(b"\x1c")
    assert not regex_to_dfa(r"\d").matches("٣".encode())  # Arabic-Indic digit: not ECMA \d
    assert not regex_to_dfa(r".").matches(b"\r")
    assert not regex_to_dfa(r".").matches("\u2028".encode())
    assert regex_to_dfa(r".").matches("\U0010ffff".encode())


def test_only_valid_utf8_is_accepted() -> None:
    dfa = regex_to_dfa(r"[^a]*")
    assert dfa.matches("héllo 中 😀".encode())
    for bad in [b"\xff", b"\xc0\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe4\xb8", b"\x80"]:
        assert not dfa.matches(bad), bad


def test_utf8_sequences_cover_exactly() -> None:
    rng = random.Random(0)
    cuts = [0, 0x7F, 0x80, 0x7FF, 0x800, 0xFFF, 0x1000, 0xD7FF, 0xE000, 0xFFFF, 0x10000, 0x3FFFF, 0x40000, 0x10FFFF]
    ranges = [(a, b) for a in cuts for b in cuts if a <= b] + [
        tuple(sorted((rng.randint(0, 0x10FFFF), rng.randint(0, 0x10FFFF)))) for _ in range(50)
    ]
    for lo, hi in ranges:
        seqs = utf8_sequences(lo, hi)
        # Disjoint and each within one encoding length.
        probes = {lo, hi, (lo + hi) // 2} | {rng.randint(lo, hi) for _ in range(200)}
        probes = {p for p in probes if not 0xD800 <= p <= 0xDFFF}
        for cp in probes:
            enc = chr(cp).encode("utf-8")
            hits = sum(len(s) == len(enc) and all(a <= x <= b for x, (a, b) in zip(enc, s)) for s in seqs)
            assert hits == 1, (hex(lo), hex(hi), hex(cp))
        for s in seqs:  # every sequence's corners decode into the range
            for pick in (0, 1):
                data = bytes(r[pick] for r in s)
                cp = ord(data.decode("utf-8", "surrogatepass"))
                assert lo <= cp <= hi


def test_charset_negation_excludes_surrogates() -> None:
    neg = cs.negate(cs.of_chars("a"))
    assert not cs.contains(neg, ord("a"))
    assert not cs.contains(neg, 0xD800)
    assert cs.contains(neg, 0x10FFFF)


@pytest.mark.parametrize(
    ("pattern", "position", "fragment"),
    [
        ("(ab", 0, "missing )"),
        ("ab)", 2, "unbalanced"),
        ("[a-", 0, "unterminated character set"),
        ("a**", 2, "multiple repeat"),
        ("*a", 0, "nothing to repeat"),
        ("[z-a]", 1, "bad character range"),
        ("a{3,1}", 1, "min repeat greater"),
        (r"\xZZ", 0, "hex digits"),
        (r"\q", 0, "bad escape"),
    ],
)
def test_invalid_regex_names_position(pattern: str, position: int, fragment: str) -> None:
    with pytest.raises(RegexError) as info:
        regex_to_dfa(pattern)
    assert info.value.position == position
    assert fragment in str(info.value)
    assert isinstance(info.value, ConstraintError) and isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("pattern", "feature"),
    [
        (r"(a)\1", "backreference"),
        (r"(?=a)a", "lookaround"),
        (r"(?<!a)b", "lookaround"),
        (r"\bword", "word boundary"),
        (r"a^b", "anchor"),
        (r"(?i)abc", "inline flags"),
        (r"\p{L}", "Unicode property"),
        (r"a++", "possessive"),
    ],
)
def test_unsupported_features_are_named(pattern: str, feature: str) -> None:
    with pytest.raises(UnsupportedError) as info:
        regex_to_dfa(pattern)
    assert feature in str(info.value)


def test_empty_language_is_an_error() -> None:
    with pytest.raises(RegexError, match="empty language"):
        regex_to_dfa(r"[^\x00-\U0010ffff]")


def test_dfa_is_minimal_for_simple_cases() -> None:
    assert regex_to_dfa(r"(a|b)*abb").num_states == 4
    assert regex_to_dfa(r"a*").num_states == 1


def test_forced_bytes() -> None:
    dfa = regex_to_dfa(r'\{"name":"[a-z]+"\}')
    assert dfa.forced_bytes(dfa.start) == b'{"name":"'
    s = dfa.step(dfa.start, b'{"name":"ab')
    assert dfa.forced_bytes(s) == b""


@pytest.mark.parametrize("pattern", PATTERNS + [r"[a-f0-9]{1,40}", r'"(?:[^"\\]|\\.){0,30}"', r"(a|ab|abc)*(b|c){2,4}",
                                     r"(a|b)*a(a|b){11}"])  # 4096 states: table growth, rehashing
def test_subset_construction_kernel_matches_twin(pattern: str) -> None:
    """The numba subset construction builds the same table as the Python twin."""
    from constrain.regex import _kernels
    from constrain.regex.parser import parse_regex
    from constrain.regex.to_dfa import _NFA, _byte_classes, nfa_arrays

    nfa = _NFA()
    s, e = nfa.build(parse_regex(pattern))
    byte_class = _byte_classes(nfa)
    k = int(byte_class.max()) + 1
    arrays = nfa_arrays(nfa, byte_class)
    t1, a1, st1 = _kernels.subset_construction(*arrays, s, e, k, 100_000)
    t2, a2, st2 = _kernels.subset_construction_py(*arrays, s, e, k, 100_000)
    assert st1 == st2 == _kernels.OK
    assert t1.shape == t2.shape
    assert (t1 == t2).all() and (a1 == a2).all()
    # the budget is enforced the same way
    n = t1.shape[0]
    if n > 1:
        assert _kernels.subset_construction(*arrays, s, e, k, n - 1)[2] == _kernels.TOO_MANY_STATES
        assert _kernels.subset_construction_py(*arrays, s, e, k, n - 1)[2] == _kernels.TOO_MANY_STATES
