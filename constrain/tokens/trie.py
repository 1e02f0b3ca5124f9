"""A vocabulary's token byte strings as a flat, depth-first trie.

Flat arrays (not node objects) so numba kernels can walk the trie through an
automaton and skip a whole subtree in O(1) when its first byte is rejected;
that skipping is what makes masks cheap for restrictive states.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True, eq=False)
class TokenTrie:
    """Nodes in depth-first (lexicographic) order; node ``i`` is the byte
    ``node_byte[i]`` at depth ``node_depth[i]`` (root children have depth 0),
    its subtree spans ``[i, node_end[i])``, and the tokens whose bytes end
    there are ``tok_ids[tok_start[i]:tok_start[i + 1]]``.
    """

    node_byte: np.ndarray  # uint8[N]
    node_depth: np.ndarray  # int32[N]
    node_end: np.ndarray  # int32[N]
    tok_start: np.ndarray  # int32[N + 1]
    tok_ids: np.ndarray  # int32[T]
    max_depth: int
    vocab_size: int

    @property
    def num_nodes(self) -> int:
        return int(self.node_byte.shape[0])

    @classmethod
    def build(cls, token_bytes: Sequence[bytes | None]) -> "TokenTrie":
        items = sorted((b, i) for i, b in enumerate(token_bytes) if b)
        node_byte: list[int] = []
        node_depth: list[int] = []
        node_tok_count: list[int] = []
        tok_ids: list[int] = []
        path: list[int] = []
        prev = b""
        for data, tid in items:
            lcp = 0
            limit = min(len(prev), len(data))
            while lcp < limit and prev[lcp] == data[lcp]:
                lcp += 1
            del path[lcp:]
            for d in range(lcp, len(data)):
                path.append(len(node_byte))
                node_byte.append(data[d])
                node_depth.append(d)
                node_tok_count.append(0)
            node_tok_count[path[len(data) - 1]] += 1
            tok_ids.append(tid)
            prev = data
        n = len(node_byte)
        depth = np.asarray(node_depth, dtype=np.int32)
        end = np.full(n, n, dtype=np.int32)
        open_nodes: list[int] = []
        for i in range(n):
            d = node_depth[i]
            while open_nodes and node_depth[open_nodes[-1]] >= d:
                end[open_nodes.pop()] = i
            open_nodes.append(i)
        tok_start = np.zeros(n + 1, dtype=np.int32)
        np.cumsum(np.asarray(node_tok_count, dtype=np.int32), out=tok_start[1:])
        return cls(
            node_byte=np.asarray(node_byte, dtype=np.uint8),
            node_depth=depth,
            node_end=end,
            tok_start=tok_start,
            tok_ids=np.asarray(tok_ids, dtype=np.int32),
            max_depth=int(depth.max()) + 1 if n else 0,
            vocab_size=len(token_bytes),
        )


_CACHE: "OrderedDict[str, TokenTrie]" = OrderedDict()
_CACHE_SIZE = 8
_LOCK = threading.Lock()


def trie_for(vocab: object) -> TokenTrie:
    """The trie of a Vocabulary, built once per distinct vocabulary (keyed by fingerprint)."""
    key = vocab.fingerprint  # type: ignore[attr-defined]
    with _LOCK:
        trie = _CACHE.get(key)
        if trie is not None:
            _CACHE.move_to_end(key)
            return trie
    trie = TokenTrie.build(vocab.token_bytes)  # type: ignore[attr-defined]
    with _LOCK:
        _CACHE[key] = trie
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return trie
