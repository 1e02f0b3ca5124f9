"""Boolean algebra over string languages (constrain.schema.string_sets).

Differential against Python's ``re``: for random strings over a small
alphabet, a string lies in region S exactly when the patterns of S (and no
other) match it, and it lies in none of the excluded names; the regions'
ASTs are checked through :func:`strings.to_python_regex`.
"""

from __future__ import annotations

import random
import re

import pytest

from constrain.schema import string_sets as ss
from constrain.schema import strings as st

PATTERN_SETS = [
    ["^w+", "^x-", "[0-9]$", "^[a-z]+$"],
    ["^[a-z]{2,4}$", "b", "^ab"],
    ["^(a|b)*c$", "^[^c]*$"],
    ["^.{3}$", "a.b", "^[0-9]+$"],
    ["foo", "^foo$", "o{2}"],
]


@pytest.mark.parametrize("pats", PATTERN_SETS, ids=[",".join(p) for p in PATTERN_SETS])
def test_regions_partition_exactly(pats):
    names = ["ab", "foo", "x-1", "a1b"]
    regions = ss.regions([st.parse_pattern(p) for p in pats], within=[st.exclude_strings(names)])
    compiled = {k: re.compile(st.to_python_regex(v), re.S) for k, v in regions.items()}
    alphabet = "abcfowx-019."
    rng = random.Random(7)
    seen = set()
    for _ in range(6000):
        s = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6)))
        want = frozenset(i for i, p in enumerate(pats) if re.search(p, s))
        got = [k for k, rx in compiled.items() if rx.fullmatch(s)]
        if s in names:
            assert got == [], (s, got)
            continue
        assert got == [want], (s, sorted(want), [sorted(g) for g in got])
        seen.add(want)
    assert len(seen) >= 2  # the sample reached more than one region


def test_long_counted_pattern_minus_declared_names_fits_the_product():
    """MaskBench Github_easy o9814: keys of ``^[0-9a-zA-Z_-]{1,255}$`` other than the declared ones. Each
    excluded name's prefixes had their own copy of the ``any*`` sink, multiplied by the 256 counter states."""
    names = ["id", "createdAt", "updatedAt"]
    pat = st.parse_pattern("^[0-9a-zA-Z_-]{1,255}$")
    regions = ss.regions([pat], within=[st.exclude_strings(names)])
    rx = re.compile(st.to_python_regex(regions[frozenset({0})]))
    for s in ["key1", "a" * 255, "ids", "createdA", "i"]:
        assert rx.fullmatch(s), s
    for s in names + ["a" * 256, "", "a b"]:
        assert not rx.fullmatch(s), s


def test_intersection_and_difference():
    both = ss.intersect_all([st.parse_pattern("^[a-z]{2,5}$"), st.parse_pattern("b")])
    rx = re.compile(st.to_python_regex(both))
    for s in ["ab", "bbbbb", "xxbxx", "b", "abcdef", "AB", ""]:
        assert bool(rx.fullmatch(s)) == bool(re.fullmatch("[a-z]{2,5}", s) and "b" in s), s
    assert st.is_never(ss.intersect_all([st.parse_pattern("^a+$"), st.parse_pattern("^b+$")]))
    rest = ss.difference(st.parse_pattern("^[ab]{1,2}$"), [st.parse_pattern("^aa$"), st.parse_pattern("^b$")])
    members = {s for s in ["a", "b", "aa", "ab", "ba", "bb"] if re.fullmatch(st.to_python_regex(rest), s)}
    assert members == {"a", "ab", "ba", "bb"}


def test_full_transitions_render_as_any_encoding():
    """Only a transition that admits every character may take any JSON escape:
    elsewhere the canonical encoding keeps an excluded name from being spelled
    another way (``"a\\u0062"`` for ``"ab"``)."""
    lang = ss.difference(st.any_string(), [st.parse_pattern("^ab$")])
    body = st.render(lang)
    rx = re.compile(body)
    assert rx.fullmatch("ac") and rx.fullmatch("abc") and rx.fullmatch("x\\u0062")
    assert not rx.fullmatch("ab")
    assert not rx.fullmatch("a\\u0062")


def test_work_limits_raise_too_complex(monkeypatch):
    monkeypatch.setattr(ss, "MAX_STATES", 50)
    with pytest.raises(ss.TooComplex):
        ss.intersect_all([st.parse_pattern("^[a-z]{0,200}$"), st.parse_pattern("^[a-m]*$")])


LOOKAHEAD_PATTERNS = [
    "^(?!ab)[a-c]+$",
    "^(?=.{2,4}$)[a-c]*b[a-c]*$",
    "x(?=y)",
    "(?!a)b|^a(?=b)",
    "^(?!org\\.x\\.)([a-z_$][a-z\\d_$]*\\.)*[a-z_$][a-z\\d_$]*$",
    "^((?!cc).)*$",
    "^((?!(c|C)(x|X)).){1,5}$",
]


@pytest.mark.parametrize("pattern", LOOKAHEAD_PATTERNS)
def test_lookaheads_match_python_re(pattern):
    """Lookaheads (and the tempered ``((?!X).)*`` before ``$``) resolve exactly."""
    ast = st.parse_pattern(pattern)
    rx = re.compile(st.to_python_regex(ast), re.S)
    rng = random.Random(pattern)
    alphabet = "abcxyCX._$019"
    for _ in range(5000):
        s = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8)))
        assert bool(rx.fullmatch(s)) == bool(re.search(pattern, s)), (pattern, s)


def test_unsupported_lookarounds_say_why():
    for pattern, why in [("(?<=a)b", "lookbehind"), ("^(a(?=b))*$", "quantified anchor or lookahead"),
                         ("^((?!).)*$", "empty string")]:
        with pytest.raises(st.PatternUnsupported, match=why):
            st.parse_pattern(pattern)


def test_regions_when_every_string_matches():
    """Patterns matching everything (``.*``, twice from two allOf parts) leave one region."""
    r = ss.regions([st.parse_pattern(".*"), st.parse_pattern(".*")])
    assert list(r) == [frozenset({0, 1})]
    assert re.fullmatch(st.to_python_regex(r[frozenset({0, 1})]), "anything", re.S)
