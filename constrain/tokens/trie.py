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

from . import _kernels


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
        lengths = np.fromiter((len(b) for b, _ in items), dtype=np.int64, count=len(items))
        offsets = np.zeros(len(items) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        data = np.frombuffer(b"".join(b for b, _ in items), dtype=np.uint8)
        ids = np.fromiter((i for _, i in items), dtype=np.int32, count=len(items))
        if len(items):
            node_byte, depth, end, node_of = _kernels.build_trie(data, offsets)
        else:
            node_byte, depth, end, node_of = (np.zeros(0, np.uint8), np.zeros(0, np.int32),
                                              np.zeros(0, np.int32), np.zeros(0, np.int32))
        n = len(node_byte)
        # Strings are sorted, so each node's tokens are contiguous in `ids`.
        counts = np.bincount(node_of, minlength=n).astype(np.int32)
        tok_start = np.zeros(n + 1, dtype=np.int32)
        np.cumsum(counts, out=tok_start[1:])
        return cls(
            node_byte=node_byte,
            node_depth=depth,
            node_end=end,
            tok_start=tok_start,
            tok_ids=ids,
            max_depth=int(depth.max()) + 1 if n else 0,
            vocab_size=len(token_bytes),
        )


class PerVocabulary:
    """A small LRU of one artefact per distinct vocabulary (keyed by fingerprint),
    built outside the lock so a slow build does not block lookups."""

    def __init__(self, build, size: int = 8) -> None:
        self._build = build
        self._size = size
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, vocab: object):
        key = vocab.fingerprint  # type: ignore[attr-defined]
        with self._lock:
            got = self._items.get(key)
            if got is not None:
                self._items.move_to_end(key)
                return got
        got = self._build(vocab.token_bytes)  # type: ignore[attr-defined]
        with self._lock:
            got = self._items.setdefault(key, got)
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return got


#: The trie of a Vocabulary, built once per distinct vocabulary.
trie_for = PerVocabulary(TokenTrie.build)
