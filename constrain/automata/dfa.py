"""Minimal deterministic automata over bytes.

A :class:`ByteDFA` is trimmed: every state it keeps can still reach an
accepting state, so "the state is not -1" means "the prefix is live". Token
masks rely on exactly that property: a token is allowed iff walking its bytes
never falls to -1.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import _kernels

DEAD = -1


@dataclass(frozen=True, eq=False)
class ByteDFA:
    """Transitions are stored per byte class to keep large automata small.

    ``table[s, byte_class[b]]`` is the next state or -1; ``accepting[s]`` says
    whether the bytes read so far form a complete string of the language.
    """

    byte_class: np.ndarray  # uint8[256] (or int32 when more than 256 classes could occur)
    table: np.ndarray  # int32[n_states, n_classes]
    accepting: np.ndarray  # bool[n_states]
    start: int = 0
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def num_states(self) -> int:
        return int(self.table.shape[0])

    def step(self, state: int, data: bytes) -> int:
        """State after reading ``data`` from ``state`` (-1 once it dies)."""
        table, cls = self.table, self.byte_class
        for b in data:
            state = int(table[state, cls[b]])
            if state < 0:
                return DEAD
        return state

    def matches(self, data: bytes) -> bool:
        s = self.step(self.start, data)
        return s >= 0 and bool(self.accepting[s])

    def is_live_prefix(self, data: bytes) -> bool:
        return self.step(self.start, data) >= 0

    def forced_bytes(self, state: int, limit: int = 4096) -> bytes:
        """The bytes every accepted continuation of ``state`` must start with.

        Stops at an accepting state (the string may end there) or where more
        than one byte is possible; used for jump-forward drafting.
        """
        single = self._single_byte()
        out = bytearray()
        while len(out) < limit and not self.accepting[state]:
            b = single[state]
            if b < 0:
                break
            out.append(b)
            state = int(self.table[state, self.byte_class[b]])
        return bytes(out)

    def _single_byte(self) -> np.ndarray:
        """Per state: the only byte with a live transition, else -1."""
        cached = self._cache.get("single")
        if cached is not None:
            return cached
        full = self.table[:, self.byte_class.astype(np.intp)]  # [n, 256]
        live = full >= 0
        counts = live.sum(axis=1)
        first = live.argmax(axis=1)
        single = np.where(counts == 1, first, -1).astype(np.int32)
        self._cache["single"] = single
        return single

    def __getstate__(self) -> dict:
        return {"byte_class": self.byte_class, "table": self.table, "accepting": self.accepting, "start": self.start}

    def __setstate__(self, state: dict) -> None:
        for k, v in state.items():
            object.__setattr__(self, k, v)
        object.__setattr__(self, "_cache", {})


def trim_and_minimize(table: np.ndarray, accepting: np.ndarray, start: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Drop states that cannot reach acceptance, then merge equivalent states.

    Hopcroft partition refinement (numba, O(k n log n), so long counting chains
    from ``maxLength``-style bounds stay cheap). Returns
    (table, accepting, start) with start == 0, or an empty table when the
    language is empty.
    """
    n, k = table.shape
    table = np.ascontiguousarray(table, dtype=np.int32)
    live = _kernels.coreachable(table, np.ascontiguousarray(accepting, dtype=np.bool_))
    if not live[start]:
        return np.zeros((0, k), np.int32), np.zeros(0, bool), -1
    t = np.where((table >= 0) & live[np.maximum(table, 0)], table, -1).astype(np.int32)
    reach = _kernels.reachable(t, start)
    keep = np.nonzero(reach)[0]
    # Renumber with start first.
    keep = np.concatenate([[start], keep[keep != start]])
    remap = -np.ones(n + 1, np.int64)
    remap[keep] = np.arange(len(keep))
    t = np.ascontiguousarray(remap[t[keep]], dtype=np.int32)  # -1 indexes remap[-1] == -1
    acc = accepting[keep]
    block, n_blocks = _kernels.refine_partition(t, acc.astype(np.int64))
    # Build the quotient automaton, start's block first.
    order = -np.ones(n_blocks, np.int64)
    order[block[0]] = 0
    nxt = 1
    for b in block:
        if order[b] < 0:
            order[b] = nxt
            nxt += 1
    block = order[block]
    rep = np.zeros(n_blocks, np.int64)
    rep[block[::-1]] = np.arange(len(block))[::-1]
    qt = t[rep]
    qt = np.where(qt >= 0, block[np.maximum(qt, 0)], -1).astype(np.int32)
    return np.ascontiguousarray(qt), acc[rep].copy(), 0
