"""Numba kernels for automaton trimming and minimisation, with Python twins."""

from __future__ import annotations

import numpy as np
from numba import njit

from .. import _numba_cache  # noqa: F401  (cache stamps that cover the kernels a kernel calls)


@njit(cache=True)
def coreachable(table, accepting):
    """States from which an accepting state is reachable (reverse BFS)."""
    n, k = table.shape
    indeg = np.zeros(n + 1, dtype=np.int64)
    for s in range(n):
        for c in range(k):
            d = table[s, c]
            if d >= 0:
                indeg[d + 1] += 1
    for i in range(n):
        indeg[i + 1] += indeg[i]
    fill = indeg[:n].copy()
    src = np.empty(indeg[n], dtype=np.int64)
    for s in range(n):
        for c in range(k):
            d = table[s, c]
            if d >= 0:
                src[fill[d]] = s
                fill[d] += 1
    live = accepting.copy()
    stack = np.empty(n, dtype=np.int64)
    top = 0
    for s in range(n):
        if live[s]:
            stack[top] = s
            top += 1
    while top > 0:
        top -= 1
        s = stack[top]
        for j in range(indeg[s], indeg[s + 1]):
            p = src[j]
            if not live[p]:
                live[p] = True
                stack[top] = p
                top += 1
    return live


@njit(cache=True)
def reachable(table, start):
    n, k = table.shape
    reach = np.zeros(n, dtype=np.bool_)
    stack = np.empty(n, dtype=np.int64)
    reach[start] = True
    stack[0] = start
    top = 1
    while top > 0:
        top -= 1
        s = stack[top]
        for c in range(k):
            d = table[s, c]
            if d >= 0 and not reach[d]:
                reach[d] = True
                stack[top] = d
                top += 1
    return reach


@njit(cache=True)
def grow(a, need, fill):
    """``a`` itself when it holds ``need`` items, else a copy at least twice as long, padded with ``fill``."""
    if need <= a.shape[0]:
        return a
    cap = max(1, a.shape[0]) * 2
    while cap < need:
        cap *= 2
    b = np.full(cap, fill, dtype=a.dtype)
    b[: a.shape[0]] = a
    return b


@njit(cache=True)
def _first_appearance(vals, n, n_ids):
    """Renumber ``vals[:n]`` (ids below ``n_ids``) 0, 1, ... in order of first appearance: (ids, count)."""
    ids = np.full(n_ids, -1, dtype=np.int64)
    out = np.empty(n, dtype=np.int64)
    m = 0
    for s in range(n):
        b = vals[s]
        if ids[b] < 0:
            ids[b] = m
            m += 1
        out[s] = ids[b]
    return out, m


@njit(cache=True)
def refine_partition(table, block):
    """Coarsest partition refining ``block`` that is stable under transitions.

    Hopcroft's algorithm (split by (block, symbol) splitters, re-queue the smaller
    half), O(k n log n): Moore-style rounds cost O(k n) each and a counting chain
    (``.{1,5000}``) needs one round per link. A missing edge (-1) is a transition
    to an implicit sink kept in a block of its own, so two states differ when one
    lacks an edge the other has, as in the Python twin. Returns (block, n_blocks)
    with block ids 0..n_blocks-1 numbered by first appearance.
    """
    n, k = table.shape
    N = n + 1
    sink = n
    # initial blocks: compact ids of ``block``, the sink alone in the last one
    blk = np.empty(N, dtype=np.int64)
    first, nb = _first_appearance(block, n, int(block.max()) + 1 if n else 1)
    blk[:n] = first
    blk[sink] = nb
    nb += 1
    # elements grouped by block (counting sort)
    size = np.zeros(N + 1, dtype=np.int64)
    for s in range(N):
        size[blk[s]] += 1
    bstart = np.zeros(N, dtype=np.int64)
    bend = np.zeros(N, dtype=np.int64)
    acc = 0
    for b in range(nb):
        bstart[b] = acc
        acc += size[b]
        bend[b] = acc
    fill = bstart.copy()
    elems = np.empty(N, dtype=np.int64)
    loc = np.empty(N, dtype=np.int64)
    for s in range(N):
        b = blk[s]
        elems[fill[b]] = s
        loc[s] = fill[b]
        fill[b] += 1
    # inverse transitions, CSR per (symbol, target)
    cnt = np.zeros(k * N + 1, dtype=np.int64)
    for s in range(N):
        for c in range(k):
            d = table[s, c] if s < n else -1
            if d < 0:
                d = sink
            cnt[c * N + d + 1] += 1
    for i in range(k * N):
        cnt[i + 1] += cnt[i]
    pos = cnt[:k * N].copy()
    pred = np.empty(cnt[k * N], dtype=np.int64)
    for s in range(N):
        for c in range(k):
            d = table[s, c] if s < n else -1
            if d < 0:
                d = sink
            pred[pos[c * N + d]] = s
            pos[c * N + d] += 1
    # worklist of splitters b * k + c
    in_w = np.zeros(N * k, dtype=np.bool_)
    work = np.empty(max(16, nb * k), dtype=np.int64)
    top = 0
    for b in range(nb):
        for c in range(k):
            work[top] = b * k + c
            in_w[b * k + c] = True
            top += 1
    marked = np.zeros(N, dtype=np.int64)
    touched = np.empty(N, dtype=np.int64)
    buf = np.empty(N, dtype=np.int64)
    while top > 0:
        top -= 1
        item = work[top]
        a = item // k
        c = item - a * k
        in_w[item] = False
        m = 0
        for i in range(bstart[a], bend[a]):
            buf[m] = elems[i]
            m += 1
        nt = 0
        for i in range(m):
            d = buf[i]
            for j in range(cnt[c * N + d], cnt[c * N + d + 1]):
                p = pred[j]
                b = blk[p]
                # move p into the marked prefix of its block
                q = bstart[b] + marked[b]
                if loc[p] < q:
                    continue  # already marked
                other = elems[q]
                elems[loc[p]] = other
                loc[other] = loc[p]
                elems[q] = p
                loc[p] = q
                if marked[b] == 0:
                    touched[nt] = b
                    nt += 1
                marked[b] += 1
        for t in range(nt):
            b = touched[t]
            mk = marked[b]
            marked[b] = 0
            if mk == bend[b] - bstart[b]:
                continue
            nb2 = nb
            nb += 1
            bstart[nb2] = bstart[b]
            bend[nb2] = bstart[b] + mk
            bstart[b] = bstart[b] + mk
            for i in range(bstart[nb2], bend[nb2]):
                blk[elems[i]] = nb2
            small = nb2 if mk <= bend[b] - bstart[b] else b
            for e in range(k):
                if in_w[b * k + e]:
                    pick = nb2
                else:
                    pick = small
                work = grow(work, top + 1, 0)
                work[top] = pick * k + e
                in_w[pick * k + e] = True
                top += 1
    # number real states' blocks by first appearance (the sink's block holds only the sink)
    return _first_appearance(blk, n, nb)


def coreachable_py(table, accepting):
    live = accepting.astype(bool).copy()
    has_edge = table >= 0
    safe = np.maximum(table, 0)
    while True:
        grown = live | (has_edge & live[safe]).any(axis=1)
        if grown.sum() == live.sum():
            return live
        live = grown


def reachable_py(table, start):
    reach = np.zeros(table.shape[0], bool)
    reach[start] = True
    frontier = np.array([start])
    while frontier.size:
        nxt = table[frontier].reshape(-1)
        nxt = np.unique(nxt[nxt >= 0])
        nxt = nxt[~reach[nxt]]
        reach[nxt] = True
        frontier = nxt
    return reach


def refine_partition_py(table, block):
    """Reference twin: Moore rounds, exact grouping with Python tuples."""
    block = np.asarray(block, dtype=np.int64)
    nb = int(block.max()) + 1 if len(block) else 0
    while True:
        ids: dict[tuple, int] = {}
        new = np.empty_like(block)
        for s in range(table.shape[0]):
            key = (int(block[s]),) + tuple(int(block[d]) if d >= 0 else -1 for d in table[s])
            new[s] = ids.setdefault(key, len(ids))
        if len(ids) == nb:
            return block, nb
        block, nb = new, len(ids)
