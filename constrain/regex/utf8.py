"""Expand code-point ranges into UTF-8 byte-range sequences.

Each code-point range becomes a small set of sequences like
``[(0xE0, 0xE0), (0xA0, 0xBF), (0x80, 0xBF)]`` whose concatenations are exactly
the UTF-8 encodings of the range (the construction used by RE2 and Rust's
regex-syntax), so a byte automaton accepts only well-formed UTF-8.
"""

from __future__ import annotations

ByteSeq = tuple[tuple[int, int], ...]

_LIMITS = (0x7F, 0x7FF, 0xFFFF, 0x10FFFF)


def _encode(cp: int) -> bytes:
    return chr(cp).encode("utf-8", "surrogatepass")


def utf8_sequences(lo: int, hi: int) -> list[ByteSeq]:
    out: list[ByteSeq] = []
    _split(lo, hi, out)
    return out


def _split(lo: int, hi: int, out: list[ByteSeq]) -> None:
    if lo > hi:
        return
    # Split at encoding-length boundaries.
    for limit in _LIMITS[:-1]:
        if lo <= limit < hi:
            _split(lo, limit, out)
            _split(limit + 1, hi, out)
            return
    if hi <= 0x7F:
        out.append(((lo, hi),))
        return
    # Split so that all but a prefix of bytes span full continuation ranges.
    for i in range(1, 4):
        m = (1 << (6 * i)) - 1
        if lo & ~m != hi & ~m:
            if lo & m != 0:
                _split(lo, lo | m, out)
                _split((lo | m) + 1, hi, out)
                return
            if hi & m != m:
                _split(lo, (hi & ~m) - 1, out)
                _split(hi & ~m, hi, out)
                return
    a, b = _encode(lo), _encode(hi)
    assert len(a) == len(b)
    out.append(tuple((x, y) for x, y in zip(a, b)))
