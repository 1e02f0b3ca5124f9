"""Sets of Unicode scalar values as sorted, disjoint, inclusive ranges.

Regex character classes are sets of code points; they become byte automata
only after UTF-8 expansion, so the set algebra stays in code-point space.
"""

from __future__ import annotations

from collections.abc import Iterable

MAX_CODEPOINT = 0x10FFFF
SURROGATES = (0xD800, 0xDFFF)

Ranges = tuple[tuple[int, int], ...]


def normalize(ranges: Iterable[tuple[int, int]]) -> Ranges:
    """Sort, merge and drop surrogates (they are not valid in UTF-8 text)."""
    out: list[list[int]] = []
    for lo, hi in sorted(ranges):
        if lo > hi:
            continue
        if out and lo <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return _minus_surrogates(tuple((a, b) for a, b in out))


def _minus_surrogates(ranges: Ranges) -> Ranges:
    lo_s, hi_s = SURROGATES
    out = []
    for lo, hi in ranges:
        if hi < lo_s or lo > hi_s:
            out.append((lo, hi))
            continue
        if lo < lo_s:
            out.append((lo, lo_s - 1))
        if hi > hi_s:
            out.append((hi_s + 1, hi))
    return tuple(out)


def negate(ranges: Ranges) -> Ranges:
    out = []
    prev = 0
    for lo, hi in normalize(ranges):
        if lo > prev:
            out.append((prev, lo - 1))
        prev = hi + 1
    if prev <= MAX_CODEPOINT:
        out.append((prev, MAX_CODEPOINT))
    return normalize(out)


def union(*sets: Ranges) -> Ranges:
    return normalize(r for s in sets for r in s)


def contains(ranges: Ranges, cp: int) -> bool:
    return any(lo <= cp <= hi for lo, hi in ranges)


def of_chars(chars: str) -> Ranges:
    return normalize((ord(c), ord(c)) for c in chars)


ANY: Ranges = normalize([(0, MAX_CODEPOINT)])
DIGIT: Ranges = ((0x30, 0x39),)
WORD: Ranges = normalize([(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)])
# ECMA-262 WhiteSpace and LineTerminator (what JSON Schema's \s means).
SPACE: Ranges = normalize(
    [(0x09, 0x0D), (0x20, 0x20), (0xA0, 0xA0), (0x1680, 0x1680), (0x2000, 0x200A),
     (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000), (0xFEFF, 0xFEFF)]
)
# ECMA-262 `.`: anything but a line terminator.
DOT: Ranges = negate(normalize([(0x0A, 0x0A), (0x0D, 0x0D), (0x2028, 0x2029)]))
