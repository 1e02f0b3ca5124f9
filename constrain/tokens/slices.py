"""The plain-text slice of a vocabulary, shared by every string-body state.

Inside a JSON string with no pattern or length bound, the DFA loops on every
character but ``"``, ``\\`` and controls, so nearly the whole vocabulary is
allowed and a trie walk visits nearly every node (milliseconds on a 150k
vocabulary, paid once per such state of every schema). The tokens made only of
such characters (the slice) are allowed from any state that absorbs them, so
their mask is computed once per vocabulary; only the remaining tokens, a few
percent, are walked. llguidance's "slicer" applies the same observation to its
lexer's string states.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from . import _kernels
from .bitmask import mask_from_ids
from .trie import TokenTrie


@dataclass(frozen=True, eq=False)
class PlainSlice:
    words: np.ndarray  # packed mask of the plain tokens
    rest: TokenTrie  # trie of every other token (same ids)
    count: int  # number of plain tokens


def is_plain(b: bytes) -> bool:
    """Complete UTF-8 for characters U+0020.. other than '"' and '\\'."""
    try:
        text = b.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(c >= " " and c != '"' and c != "\\" for c in text)


_CACHE: "OrderedDict[str, PlainSlice]" = OrderedDict()
_LOCK = threading.Lock()


def plain_slice_for(vocab: object) -> PlainSlice:
    """Built once per distinct vocabulary (keyed by fingerprint)."""
    key = vocab.fingerprint  # type: ignore[attr-defined]
    with _LOCK:
        got = _CACHE.get(key)
        if got is not None:
            _CACHE.move_to_end(key)
            return got
    token_bytes = vocab.token_bytes  # type: ignore[attr-defined]
    plain = [i for i, b in enumerate(token_bytes) if b and is_plain(b)]
    plain_set = set(plain)
    rest = TokenTrie.build([None if i in plain_set else b for i, b in enumerate(token_bytes)])
    sl = PlainSlice(words=mask_from_ids(plain, len(token_bytes)), rest=rest, count=len(plain))
    with _LOCK:
        _CACHE[key] = sl
        while len(_CACHE) > 8:
            _CACHE.popitem(last=False)
    return sl


def absorbs_plain(table: np.ndarray, byte_class: np.ndarray, state: int) -> bool:
    """Does every plain character lead from ``state`` back to it?"""
    return bool(_kernels.absorbs_plain(table, byte_class, state, _kernels.PLAIN_SHAPES))
