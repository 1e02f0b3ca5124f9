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


@njit(cache=True)
def build_trie(data, offsets):
    """Flat depth-first trie from byte strings sorted lexicographically.

    ``data[offsets[k]:offsets[k+1]]`` is the k-th string. Returns
    (node_byte, node_depth, node_end, node_of_string) trimmed to the node count.
    """
    total = data.shape[0]
    n_str = offsets.shape[0] - 1
    node_byte = np.empty(total, dtype=np.uint8)
    node_depth = np.empty(total, dtype=np.int32)
    node_of = np.empty(n_str, dtype=np.int32)
    max_len = 0
    for k in range(n_str):
        max_len = max(max_len, offsets[k + 1] - offsets[k])
    path = np.empty(max_len + 1, dtype=np.int32)
    n = 0
    prev_start = 0
    prev_len = 0
    for k in range(n_str):
        s = offsets[k]
        length = offsets[k + 1] - s
        lcp = 0
        lim = min(length, prev_len)
        while lcp < lim and data[prev_start + lcp] == data[s + lcp]:
            lcp += 1
        for d in range(lcp, length):
            path[d] = n
            node_byte[n] = data[s + d]
            node_depth[n] = d
            n += 1
        node_of[k] = path[length - 1]
        prev_start = s
        prev_len = length
    node_end = np.full(n, n, dtype=np.int32)
    stack = np.empty(max_len + 1, dtype=np.int32)
    top = 0
    for i in range(n):
        d = node_depth[i]
        while top > 0 and node_depth[stack[top - 1]] >= d:
            top -= 1
            node_end[stack[top]] = i
        stack[top] = i
        top += 1
    return node_byte[:n].copy(), node_depth[:n].copy(), node_end, node_of


def build_trie_py(data, offsets):
    """Reference twin of :func:`build_trie`."""
    strings = [bytes(data[offsets[k]:offsets[k + 1]]) for k in range(len(offsets) - 1)]
    node_byte: list[int] = []
    node_depth: list[int] = []
    node_of: list[int] = []
    path: list[int] = []
    prev = b""
    for s in strings:
        lcp = 0
        while lcp < min(len(prev), len(s)) and prev[lcp] == s[lcp]:
            lcp += 1
        del path[lcp:]
        for d in range(lcp, len(s)):
            path.append(len(node_byte))
            node_byte.append(s[d])
            node_depth.append(d)
        node_of.append(path[len(s) - 1])
        prev = s
    n = len(node_byte)
    node_end = [n] * n
    open_nodes: list[int] = []
    for i in range(n):
        while open_nodes and node_depth[open_nodes[-1]] >= node_depth[i]:
            node_end[open_nodes.pop()] = i
        open_nodes.append(i)
    return (np.array(node_byte, np.uint8), np.array(node_depth, np.int32),
            np.array(node_end, np.int32), np.array(node_of, np.int32))
