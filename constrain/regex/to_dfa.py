"""Regex AST -> byte NFA (Thompson) -> byte DFA (subset construction) -> minimal DFA.

Character sets are expanded to UTF-8 byte sequences here, so the automaton
reads exactly the bytes a tokenizer emits and accepts only valid UTF-8.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..automata.dfa import ByteDFA, trim_and_minimize
from ..errors import RegexError, UnsupportedError
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


def nfa_to_dfa(nfa: _NFA, start: int, accept: int, max_states: int = MAX_DFA_STATES) -> ByteDFA:
    byte_class = _byte_classes(nfa)
    k = int(byte_class.max()) + 1
    # Epsilon closures, memoised per NFA state.
    closure_memo: dict[int, frozenset[int]] = {}

    def closure(state: int) -> frozenset[int]:
        got = closure_memo.get(state)
        if got is not None:
            return got
        seen = {state}
        stack = [state]
        while stack:
            for t in nfa.eps[stack.pop()]:
                if t not in seen:
                    seen.add(t)
                    stack.append(t)
        got = frozenset(seen)
        closure_memo[state] = got
        return got

    # Per NFA state: class -> epsilon-closed target set, precomputed once.
    cls_of = byte_class.tolist()
    moves_of: dict[int, list[tuple[int, frozenset[int]]]] = {}
    for sidx, edges in enumerate(nfa.edges):
        if edges:
            per_class: dict[int, set[int]] = {}
            for lo, hi, t in edges:
                clos = closure(t)
                for c in range(cls_of[lo], cls_of[hi] + 1):
                    per_class.setdefault(c, set()).update(clos)
            moves_of[sidx] = [(c, frozenset(v)) for c, v in per_class.items()]

    start_set = closure(start)
    ids = {start_set: 0}
    sets = [start_set]
    rows: list[list[int]] = []
    accepting: list[bool] = []
    i = 0
    while i < len(sets):
        cur = sets[i]
        i += 1
        accepting.append(accept in cur)
        moves: dict[int, set[int]] = {}
        for s in cur:
            for c, clos in moves_of.get(s, ()):
                got = moves.get(c)
                if got is None:
                    moves[c] = set(clos)
                else:
                    got |= clos
        row = [-1] * k
        for c, targets in moves.items():
            tgt = frozenset(targets)
            j = ids.get(tgt)
            if j is None:
                if len(sets) >= max_states:
                    raise TooManyStates(f"regex needs more than {max_states} DFA states")
                j = ids[tgt] = len(sets)
                sets.append(tgt)
            row[c] = j
        rows.append(row)
    table = np.array(rows, dtype=np.int32).reshape(len(rows), k)
    acc = np.array(accepting, dtype=bool)
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
