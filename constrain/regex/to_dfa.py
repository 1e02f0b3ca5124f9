"""Regex AST -> byte NFA (Thompson) -> byte DFA (subset construction) -> minimal DFA.

Character sets are expanded to UTF-8 byte sequences here, so the automaton
reads exactly the bytes a tokenizer emits and accepts only valid UTF-8.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..automata.dfa import ByteDFA, trim_and_minimize
from ..errors import RegexError, UnsupportedError
from . import _kernels
from .parser import Node, parse_regex
from .utf8 import utf8_sequences

MAX_NFA_STATES = 2_000_000
MAX_DFA_STATES = 200_000


class TooManyStates(UnsupportedError):
    """The subset construction exceeded its state budget."""


class _NFA:
    def __init__(self) -> None:
        self.eps: list[list[int]] = []
        self.edges: list[list[tuple[int, int, int]]] = []  # (lo, hi, target)

    def new(self) -> int:
        if len(self.eps) >= MAX_NFA_STATES:
            raise TooManyStates(f"regex expands to more than {MAX_NFA_STATES} automaton states")
        self.eps.append([])
        self.edges.append([])
        return len(self.eps) - 1

    def build(self, node: Node) -> tuple[int, int]:
        kind = node[0]
        if kind == "set":
            return self._charset(node[1])
        if kind == "cat":
            s = e = self.new()
            for child in node[1]:
                cs, ce = self.build(child)
                self.eps[e].append(cs)
                e = ce
            return s, e
        if kind == "alt":
            s, e = self.new(), self.new()
            for child in node[1]:
                cs, ce = self.build(child)
                self.eps[s].append(cs)
                self.eps[ce].append(e)
            return s, e
        if kind == "rep":
            _, child, lo, hi = node
            s = e = self.new()
            for _ in range(lo):
                cs, ce = self.build(child)
                self.eps[e].append(cs)
                e = ce
            if hi is None:
                cs, ce = self.build(child)
                loop_end = self.new()
                self.eps[e].extend([cs, loop_end])
                self.eps[ce].extend([cs, loop_end])
                e = loop_end
            else:
                end = self.new()
                for _ in range(hi - lo):
                    cs, ce = self.build(child)
                    self.eps[e].extend([cs, end])
                    e = ce
                self.eps[e].append(end)
                e = end
            return s, e
        raise AssertionError(kind)

    def _charset(self, ranges: tuple[tuple[int, int], ...]) -> tuple[int, int]:
        s, e = self.new(), self.new()
        for seq in _sequences(ranges):
            cur = s
            for i, (lo, hi) in enumerate(seq):
                nxt = e if i == len(seq) - 1 else self.new()
                self.edges[cur].append((lo, hi, nxt))
                cur = nxt
        return s, e


@lru_cache(maxsize=1024)
def _sequences(ranges: tuple[tuple[int, int], ...]) -> list[tuple[tuple[int, int], ...]]:
    out = []
    for lo, hi in ranges:
        out.extend(utf8_sequences(lo, hi))
    return out


def _byte_classes(nfa: _NFA) -> np.ndarray:
    cuts = np.zeros(257, bool)
    cuts[0] = True
    for edges in nfa.edges:
        for lo, hi, _ in edges:
            cuts[lo] = True
            cuts[hi + 1] = True
    return (np.cumsum(cuts[:256]) - 1).astype(np.int32)


def nfa_arrays(nfa: _NFA, byte_class: np.ndarray) -> tuple[np.ndarray, ...]:
    """The NFA as flat CSR arrays (edges labelled by byte-class ranges) for the kernels."""
    eps_len = np.fromiter((len(e) for e in nfa.eps), dtype=np.int64, count=len(nfa.eps))
    eps_ptr = np.zeros(len(nfa.eps) + 1, dtype=np.int64)
    np.cumsum(eps_len, out=eps_ptr[1:])
    eps_dst = np.fromiter((t for e in nfa.eps for t in e), dtype=np.int64, count=int(eps_ptr[-1]))
    e_len = np.fromiter((len(e) for e in nfa.edges), dtype=np.int64, count=len(nfa.edges))
    e_ptr = np.zeros(len(nfa.edges) + 1, dtype=np.int64)
    np.cumsum(e_len, out=e_ptr[1:])
    flat = np.array([x for e in nfa.edges for edge in e for x in edge], dtype=np.int64).reshape(-1, 3)
    e_lo = byte_class[flat[:, 0]].astype(np.int64)
    e_hi = byte_class[flat[:, 1]].astype(np.int64)
    e_dst = np.ascontiguousarray(flat[:, 2])
    return eps_ptr, eps_dst, e_ptr, e_lo, e_hi, e_dst


def nfa_to_dfa(nfa: _NFA, start: int, accept: int, max_states: int = MAX_DFA_STATES) -> ByteDFA:
    byte_class = _byte_classes(nfa)
    k = int(byte_class.max()) + 1
    arrays = nfa_arrays(nfa, byte_class)
    table, acc, status = _kernels.subset_construction(*arrays, start, accept, k, max_states)
    if status == _kernels.TOO_MANY_STATES:
        raise TooManyStates(f"regex needs more than {max_states} DFA states")
    table, acc, st = trim_and_minimize(table, acc, 0)
    if st < 0:
        raise RegexError("the regex matches no string (empty language)")
    # Re-derive byte classes after minimisation: merge classes with identical columns.
    _, col_ids, inverse = np.unique(table.T, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(col_ids)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    inverse = rank[inverse.reshape(-1)]
    new_table = np.ascontiguousarray(table[:, col_ids[order]]).astype(np.int32)
    new_class = inverse[byte_class].astype(np.int32)
    return ByteDFA(byte_class=new_class, table=new_table, accepting=acc, start=st)


def ast_to_dfa(node: Node, max_states: int = MAX_DFA_STATES) -> ByteDFA:
    nfa = _NFA()
    s, e = nfa.build(node)
    return nfa_to_dfa(nfa, s, e, max_states)


def regex_to_dfa(pattern: str, max_states: int = MAX_DFA_STATES) -> ByteDFA:
    """Compile a regex into a minimal trimmed byte DFA matching whole strings.

    ``max_states`` bounds the subset construction (UnsupportedError beyond it),
    so callers with a cheaper alternative (the grammar path) can bail out early.
    """
    return ast_to_dfa(parse_regex(pattern), max_states)
