"""Numba kernels for automaton trimming and minimisation, with Python twins."""

from __future__ import annotations

import numpy as np
from numba import njit


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
def moore_refine(table, block):
    """Refine ``block`` until stable under (block, successor blocks) signatures.

    Signatures are hashed, sorted, and equal-hash neighbours compared exactly, so
    a hash collision can only split a block needlessly (still a correct, stable
    partition), never merge inequivalent states. Returns (block, n_blocks).
    """
    n, k = table.shape
    nb = 0
    for s in range(n):
        nb = max(nb, block[s] + 1)
    sig = np.empty((n, k + 1), dtype=np.int64)
    h = np.empty(n, dtype=np.uint64)
    new_block = np.empty(n, dtype=np.int64)
    while True:
        for s in range(n):
            sig[s, 0] = block[s]
            x = np.uint64(block[s]) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(1)
            for c in range(k):
                d = table[s, c]
                v = block[d] if d >= 0 else -1
                sig[s, c + 1] = v
                x = (x ^ np.uint64(v + 2)) * np.uint64(0x100000001B3)
            h[s] = x
        order = np.argsort(h)
        m = 0
        for i in range(n):
            s = order[i]
            if i > 0:
                p = order[i - 1]
                same = h[s] == h[p]
                if same:
                    for c in range(k + 1):
                        if sig[s, c] != sig[p, c]:
                            same = False
                            break
                if not same:
                    m += 1
            new_block[s] = m
        m += 1
        if m == nb:
            return block, nb
        block = new_block.copy()
        nb = m


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


def moore_refine_py(table, block):
    """Reference twin: exact grouping with Python tuples."""
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
