"""Numba kernels for token masks, each with a pure-Python reference twin.

The kernels take arrays and scalars only; wrappers in the calling modules
check dtypes and shapes once. ``cache=True`` keeps the JIT cost to the first
import on a machine.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def dfa_trie_mask(table, byte_class, state, node_byte, node_depth, node_end, tok_start, tok_ids, max_depth, out):
    """OR into ``out`` the bit of every token whose bytes keep ``state`` live.

    Walks the depth-first trie once; a node whose byte kills the automaton
    skips its whole subtree. Returns the number of trie nodes visited.
    """
    n = node_byte.shape[0]
    stack = np.empty(max_depth + 2, dtype=np.int32)
    stack[0] = state
    i = 0
    visited = 0
    while i < n:
        d = node_depth[i]
        s = table[stack[d], byte_class[node_byte[i]]]
        visited += 1
        if s < 0:
            i = node_end[i]
            continue
        stack[d + 1] = s
        for k in range(tok_start[i], tok_start[i + 1]):
            t = tok_ids[k]
            out[t >> 5] |= np.uint32(1) << np.uint32(t & 31)
        i += 1
    return visited


def dfa_trie_mask_py(table, byte_class, state, node_byte, node_depth, node_end, tok_start, tok_ids, max_depth, out):
    """Reference twin of :func:`dfa_trie_mask`."""
    n = len(node_byte)
    stack = [0] * (max_depth + 2)
    stack[0] = state
    i = 0
    visited = 0
    while i < n:
        d = node_depth[i]
        s = table[stack[d], byte_class[node_byte[i]]]
        visited += 1
        if s < 0:
            i = node_end[i]
            continue
        stack[d + 1] = s
        for k in range(tok_start[i], tok_start[i + 1]):
            t = int(tok_ids[k])
            out[t >> 5] |= np.uint32(1 << (t & 31))
        i += 1
    return visited
