"""Numba kernel for the subset construction (NFA -> DFA), with its Python twin.

Both take the NFA in flat arrays: epsilon edges in CSR form (``eps_ptr``,
``eps_dst``) and labelled edges in CSR form (``e_ptr`` per NFA state, each edge
an inclusive byte-class range ``e_lo..e_hi`` to ``e_dst``). DFA states are
numbered in discovery order, classes visited in increasing order, so kernel and
twin produce identical tables.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .. import _numba_cache  # noqa: F401  (cache stamps that cover the kernels a kernel calls)
from ..automata._kernels import grow

#: Status codes returned beside the table.
OK = 0
TOO_MANY_STATES = 1


@njit(cache=True)
def _closure(seeds, n_seeds, eps_ptr, eps_dst, mark, stamp, stack, found):
    """Epsilon closure of ``seeds[:n_seeds]`` into ``found``, sorted; returns its size.

    ``mark`` entries equal to ``stamp`` are taken as already seen, so each call
    needs a fresh stamp (no clearing between calls)."""
    top = 0
    for q in range(n_seeds):
        t = seeds[q]
        if mark[t] != stamp:
            mark[t] = stamp
            stack[top] = t
            top += 1
    m = 0
    while top > 0:
        top -= 1
        s = stack[top]
        found[m] = s
        m += 1
        for j in range(eps_ptr[s], eps_ptr[s + 1]):
            t = eps_dst[j]
            if mark[t] != stamp:
                mark[t] = stamp
                stack[top] = t
                top += 1
    found[:m].sort()
    return m


@njit(cache=True)
def _set_hash(vals, n):
    h = np.uint64(0xCBF29CE484222325)
    for i in range(n):
        h = (h ^ np.uint64(vals[i])) * np.uint64(0x100000001B3)
    return h ^ (h >> np.uint64(29))


@njit(cache=True)
def subset_construction(eps_ptr, eps_dst, e_ptr, e_lo, e_hi, e_dst, start, accept, k, max_states):
    """Returns (table int32 [n, k], accepting bool [n], status)."""
    n_nfa = eps_ptr.shape[0] - 1
    mark = np.zeros(n_nfa, dtype=np.int64)
    stamp = 0
    stack = np.empty(n_nfa, dtype=np.int64)
    found = np.empty(n_nfa, dtype=np.int64)
    # DFA state sets, concatenated
    pool = np.empty(1024, dtype=np.int64)
    offs = np.zeros(1025, dtype=np.int64)
    hashes = np.empty(1024, dtype=np.uint64)
    acc = np.zeros(1024, dtype=np.bool_)
    rows = np.full(1024 * k, -1, dtype=np.int32)
    cap = 1024
    slots = np.zeros(cap * 2, dtype=np.int64)  # open addressing: DFA id + 1, 0 = empty
    n_states = 0
    # per-state scratch: (class, target) pairs bucketed by class
    head = np.zeros(k + 1, dtype=np.int64)
    pc = np.empty(64, dtype=np.int64)
    pd = np.empty(64, dtype=np.int64)
    bucket = np.empty(64, dtype=np.int64)

    # closure of the start state
    stamp += 1
    m = _closure(np.full(1, start, dtype=np.int64), 1, eps_ptr, eps_dst, mark, stamp, stack, found)
    cur = found[:m].copy()
    pool = grow(pool, m, 0)
    pool[:m] = cur
    offs[1] = m
    h = _set_hash(cur, m)
    hashes[0] = h
    slots[np.int64(h & np.uint64(slots.shape[0] - 1))] = 1
    n_states = 1

    i = 0
    while i < n_states:
        lo_i = offs[i]
        hi_i = offs[i + 1]
        # gather (class, target) pairs of the set's labelled edges
        npairs = 0
        for p in range(lo_i, hi_i):
            s = pool[p]
            if s == accept:
                acc[i] = True
            for j in range(e_ptr[s], e_ptr[s + 1]):
                npairs += e_hi[j] - e_lo[j] + 1
        if npairs > pc.shape[0]:
            pc = np.empty(npairs * 2, dtype=np.int64)
            pd = np.empty(npairs * 2, dtype=np.int64)
            bucket = np.empty(npairs * 2, dtype=np.int64)
        q = 0
        for p in range(lo_i, hi_i):
            s = pool[p]
            for j in range(e_ptr[s], e_ptr[s + 1]):
                for c in range(e_lo[j], e_hi[j] + 1):
                    pc[q] = c
                    pd[q] = e_dst[j]
                    q += 1
        # counting sort by class
        head[:] = 0
        for q in range(npairs):
            head[pc[q] + 1] += 1
        for c in range(k):
            head[c + 1] += head[c]
        fill = head[:k].copy()
        for q in range(npairs):
            c = pc[q]
            bucket[fill[c]] = pd[q]
            fill[c] += 1
        for c in range(k):
            b0 = head[c]
            b1 = head[c + 1]
            if b0 == b1:
                continue
            stamp += 1
            m = _closure(bucket[b0:b1], b1 - b0, eps_ptr, eps_dst, mark, stamp, stack, found)
            tgt = found[:m].copy()
            h = _set_hash(tgt, m)
            mask = np.uint64(slots.shape[0] - 1)
            pos = np.int64(h & mask)
            dest = -1
            while slots[pos] != 0:
                d = slots[pos] - 1
                if hashes[d] == h and offs[d + 1] - offs[d] == m:
                    same = True
                    base = offs[d]
                    for x in range(m):
                        if pool[base + x] != tgt[x]:
                            same = False
                            break
                    if same:
                        dest = d
                        break
                pos = np.int64((np.uint64(pos) + np.uint64(1)) & mask)
            if dest < 0:
                if n_states >= max_states:
                    return rows[:0].reshape(0, k), acc[:0], TOO_MANY_STATES
                dest = n_states
                if n_states + 1 >= cap:
                    cap *= 2
                    offs = grow(offs, cap + 1, 0)
                    hashes = grow(hashes, cap, 0)
                    acc = grow(acc, cap, False)
                    rows = grow(rows, cap * k, -1)
                end = offs[n_states]
                pool = grow(pool, end + m, 0)
                pool[end:end + m] = tgt
                offs[n_states + 1] = end + m
                hashes[n_states] = h
                slots[pos] = n_states + 1
                n_states += 1
                if n_states * 2 > slots.shape[0]:
                    # keep the load factor at most 1/2: rehash into a table twice as big
                    slots = np.zeros(slots.shape[0] * 2, dtype=np.int64)
                    mask2 = np.uint64(slots.shape[0] - 1)
                    for d in range(n_states):
                        pp = np.int64(hashes[d] & mask2)
                        while slots[pp] != 0:
                            pp = np.int64((np.uint64(pp) + np.uint64(1)) & mask2)
                        slots[pp] = d + 1
            rows[i * k + c] = dest
        i += 1
    return rows[: n_states * k].copy().reshape(n_states, k), acc[:n_states].copy(), OK


def subset_construction_py(eps_ptr, eps_dst, e_ptr, e_lo, e_hi, e_dst, start, accept, k, max_states):
    """Reference twin: frozensets and dicts, the textbook construction."""

    def closure(states) -> frozenset:
        seen = set(states)
        stack = list(states)
        while stack:
            s = stack.pop()
            for j in range(eps_ptr[s], eps_ptr[s + 1]):
                t = int(eps_dst[j])
                if t not in seen:
                    seen.add(t)
                    stack.append(t)
        return frozenset(seen)

    first = closure([int(start)])
    ids = {first: 0}
    sets = [first]
    rows: list[list[int]] = []
    accepting: list[bool] = []
    i = 0
    while i < len(sets):
        cur = sets[i]
        i += 1
        accepting.append(int(accept) in cur)
        moves: dict[int, set[int]] = {}
        for s in cur:
            for j in range(e_ptr[s], e_ptr[s + 1]):
                for c in range(int(e_lo[j]), int(e_hi[j]) + 1):
                    moves.setdefault(c, set()).add(int(e_dst[j]))
        row = [-1] * k
        for c in sorted(moves):
            tgt = closure(moves[c])
            j = ids.get(tgt)
            if j is None:
                if len(sets) >= max_states:
                    return np.zeros((0, k), np.int32), np.zeros(0, bool), TOO_MANY_STATES
                j = ids[tgt] = len(sets)
                sets.append(tgt)
            row[c] = j
        rows.append(row)
    return np.array(rows, dtype=np.int32).reshape(len(rows), k), np.array(accepting, dtype=bool), OK
