"""Numba kernel for grammar token masks, with a pure-Python reference twin.

The kernel walks the depth-first token trie (see :mod:`constrain.tokens.trie`)
through the *lexer DFA* (states = sets of (terminal, DFA state, origin rank)
configurations, see :mod:`.masks`). Each walk starts either at the trie root
or just below a given node, from a given lexer state:

* every token whose bytes keep the lexer state live gets its bit set in
  ``out`` (no terminal has to end inside it, so the parser has nothing to say);
* every node where the lexer state is a *boundary* (some terminal may end
  there) and that has children is reported in ``(b_node, b_cfg, b_src)`` so
  the caller can run the parser there and walk the node's children again.

Returns the number of boundary nodes written, or -1 when ``b_node`` is too
small (the caller grows it and runs the batch again; ORing bits twice is
harmless).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def lexer_trie_walk(table, gcls, boundary, roots_node, roots_cfg, node_byte, node_depth, node_end,
                    tok_start, tok_ids, max_depth, out, b_node, b_cfg, b_src):
    n = node_byte.shape[0]
    cap = b_node.shape[0]
    stack = np.empty(max_depth + 2, dtype=np.int32)
    nb = 0
    for j in range(roots_node.shape[0]):
        r = roots_node[j]
        if r < 0:
            lo = 0
            hi = n
            base = 0
        else:
            lo = r + 1
            hi = node_end[r]
            base = node_depth[r] + 1
        stack[0] = roots_cfg[j]
        i = lo
        while i < hi:
            d = node_depth[i] - base
            s = table[stack[d], gcls[node_byte[i]]]
            if s < 0:
                i = node_end[i]
                continue
            stack[d + 1] = s
            for k in range(tok_start[i], tok_start[i + 1]):
                t = tok_ids[k]
                out[t >> 5] |= np.uint32(1) << np.uint32(t & 31)
            if boundary[s] != 0 and node_end[i] > i + 1:
                if nb >= cap:
                    return -1
                b_node[nb] = i
                b_cfg[nb] = s
                b_src[nb] = j
                nb += 1
            i += 1
    return nb


def lexer_trie_walk_py(table, gcls, boundary, roots_node, roots_cfg, node_byte, node_depth, node_end,
                       tok_start, tok_ids, max_depth, out, b_node, b_cfg, b_src):
    """Reference twin of :func:`lexer_trie_walk`."""
    n = len(node_byte)
    cap = len(b_node)
    nb = 0
    for j in range(len(roots_node)):
        r = int(roots_node[j])
        if r < 0:
            lo, hi, base = 0, n, 0
        else:
            lo, hi, base = r + 1, int(node_end[r]), int(node_depth[r]) + 1
        stack = [0] * (max_depth + 2)
        stack[0] = int(roots_cfg[j])
        i = lo
        while i < hi:
            d = int(node_depth[i]) - base
            s = int(table[stack[d], gcls[node_byte[i]]])
            if s < 0:
                i = int(node_end[i])
                continue
            stack[d + 1] = s
            for k in range(int(tok_start[i]), int(tok_start[i + 1])):
                t = int(tok_ids[k])
                out[t >> 5] |= np.uint32(1 << (t & 31))
            if boundary[s] and node_end[i] > i + 1:
                if nb >= cap:
                    return -1
                b_node[nb] = i
                b_cfg[nb] = s
                b_src[nb] = j
                nb += 1
            i += 1
    return nb
