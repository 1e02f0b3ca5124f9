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


def nfa_size(node: Node, memo: dict[int, tuple[Node, int]] | None = None) -> int:
    """The number of Thompson states :class:`_NFA` builds for ``node``, without building them.

    Counted repetition multiplies its body, so ``X{0,32767}`` is large though
    its text is short; callers check this before building (and the grammar
    path splits such nodes into several terminals). ``memo`` is keyed by
    ``id`` and keeps each node alive, so a reused id can never hit.
    """
    if memo is None:
        memo = {}
    got = memo.get(id(node))
    if got is not None and got[0] is node:
        return got[1]
    kind = node[0]
    if kind == "set":
        size = 2 + sum(len(seq) - 1 for seq in _sequences(node[1]))
    elif kind == "cat":
        size = 1 + sum(nfa_size(c, memo) for c in node[1])
    elif kind == "alt":
        size = 2 + sum(nfa_size(c, memo) for c in node[1])
    elif kind == "rep":
        _, child, lo, hi = node
        size = 2 + nfa_size(child, memo) * (lo + (1 if hi is None else hi - lo))
    else:  # a grammar hole: not built here
        size = 1
    memo[id(node)] = (node, size)
    return size


class _NFA:
    def __init__(self, limit: int = MAX_NFA_STATES) -> None:
        self.eps: list[list[int]] = []
        self.edges: list[list[tuple[int, int, int]]] = []  # (lo, hi, target)
        self.limit = limit

    def new(self) -> int:
        if len(self.eps) >= self.limit:
            raise TooManyStates(f"regex expands to more than {self.limit} automaton states")
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


def unit_states(unit: ByteDFA) -> np.ndarray | None:
    """The states one copy of ``unit`` occupies in :func:`repeat_dfa` (its non-accepting
    states, start first), or None when ``unit`` is not prefix-free or takes the empty string.

    ``unit`` is trimmed, so an accepting state with a move means some string extends another.
    """
    table, acc = unit.table, unit.accepting
    if acc[unit.start] or (table[acc] >= 0).any():
        return None
    inner = np.nonzero(~acc)[0]
    return np.concatenate([[unit.start], inner[inner != unit.start]])


def repeat_dfa(unit: ByteDFA, lo: int, hi: int) -> ByteDFA | None:
    """The DFA of ``unit{lo,hi}`` built straight from ``unit``'s DFA (None unless it is prefix-free and non-empty).

    When no string of the unit's language extends another (a JSON string
    character, an escape sequence), a concatenation of copies parses one way
    only, so the DFA is ``hi`` blocks of the unit's non-accepting states, where
    reaching an accepting state enters the next block: a counter in the state
    number. This skips a Thompson NFA of ``hi`` copies and its subset
    construction, whose Python part dominates for counts in the hundreds.
    """
    inner = unit_states(unit)
    if inner is None or hi < 1:
        return None
    table, acc = unit.table, unit.accepting
    m = len(inner)
    local = np.full(len(acc), -1, dtype=np.int64)
    local[inner] = np.arange(m)
    local[acc] = m  # the next block's start
    t = table[inner]
    rows = np.where(t < 0, -1, local[np.maximum(t, 0)])
    n = hi * m + 1
    out = np.full((n, table.shape[1]), -1, dtype=np.int32)
    blocks = np.arange(hi, dtype=np.int64)[:, None, None] * m
    out[: hi * m] = np.where(rows[None] < 0, -1, rows[None] + blocks).reshape(hi * m, -1)
    accepting = np.zeros(n, dtype=bool)
    accepting[np.arange(lo, hi + 1) * m] = True
    return ByteDFA(byte_class=unit.byte_class.copy(), table=out, accepting=accepting, start=0)


def concat_dfa(a: ByteDFA, b: ByteDFA) -> ByteDFA | None:
    """The DFA of ``L(a) L(b)`` without a subset construction, or None where one is needed.

    When no byte that continues ``a`` from an accepting state can start ``b``
    (a string's closing quote after its characters), each input has at most
    one split point alive, so ``a``'s accepting states simply gain ``b``'s
    first moves.
    """
    if b.accepting[b.start]:
        return None
    ta, tb = a.table, b.table
    pairs = np.stack([a.byte_class, b.byte_class], axis=1)
    uniq, byte_class = np.unique(pairs, axis=0, return_inverse=True)
    ca, cb = uniq[:, 0], uniq[:, 1]
    rows_a = ta[:, ca]
    first = tb[b.start, cb]
    acc_rows = rows_a[a.accepting]
    if ((acc_rows >= 0) & (first >= 0)[None, :]).any():
        return None
    na = len(ta)
    shifted = np.where(tb[:, cb] >= 0, tb[:, cb] + na, -1)
    entry = np.where(first >= 0, first + na, -1)
    rows_a = rows_a.copy()
    rows_a[a.accepting] = np.where(acc_rows >= 0, acc_rows, entry[None, :])
    table = np.ascontiguousarray(np.concatenate([rows_a, shifted]), dtype=np.int32)
    accepting = np.concatenate([np.zeros(na, dtype=bool), b.accepting])
    return ByteDFA(byte_class=byte_class.reshape(-1).astype(np.int32), table=table, accepting=accepting,
                   start=int(a.start))


def _counted_rep(node: Node) -> bool:
    return node[0] == "rep" and node[3] is not None and node[3] >= 2 and nfa_size(node[1]) * node[3] > 256


def ast_to_dfa(node: Node, max_states: int = MAX_DFA_STATES, max_nfa: int = MAX_NFA_STATES) -> ByteDFA:
    got = None
    if _counted_rep(node):
        got = repeat_dfa(ast_to_dfa(node[1], max_states, max_nfa), node[2], node[3])
    elif node[0] == "cat" and len(node[1]) >= 2 and _counted_rep(node[1][0]):
        head = ast_to_dfa(node[1][0], max_states, max_nfa)
        rest = node[1][1] if len(node[1]) == 2 else ("cat", node[1][1:])
        got = concat_dfa(head, ast_to_dfa(rest, max_states, max_nfa))
    if got is not None:
        if got.num_states > max_states:
            raise TooManyStates(f"regex needs more than {max_states} DFA states")
        return got
    if nfa_size(node) > max_nfa:  # fail before spending seconds on a Thompson NFA that is too big anyway
        raise TooManyStates(f"regex expands to more than {max_nfa} automaton states")
    nfa = _NFA(max_nfa)
    s, e = nfa.build(node)
    return nfa_to_dfa(nfa, s, e, max_states)


def regex_to_dfa(pattern: str, max_states: int = MAX_DFA_STATES, max_nfa: int = MAX_NFA_STATES) -> ByteDFA:
    """Compile a regex into a minimal trimmed byte DFA matching whole strings.

    ``max_states`` bounds the subset construction (UnsupportedError beyond it),
    so callers with a cheaper alternative (the grammar path) can bail out early.
    """
    return ast_to_dfa(parse_regex(pattern), max_states, max_nfa)
