"""Packed token bitmasks: bit ``i % 32`` of word ``i // 32`` is token ``i``.

One layout for numpy and torch (uint32 / int32 words) so masks computed on the
host can be copied to any device and unpacked there without a host sync.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def mask_words(vocab_size: int) -> int:
    return (vocab_size + 31) // 32


def allocate_mask(vocab_size: int, batch: int | None = None) -> np.ndarray:
    shape = (mask_words(vocab_size),) if batch is None else (batch, mask_words(vocab_size))
    return np.zeros(shape, dtype=np.uint32)


def as_uint32_words(out: Any) -> np.ndarray:
    """A writable uint32 numpy view of a caller's bitmask (numpy or CPU torch)."""
    if isinstance(out, np.ndarray):
        arr = out
    else:  # torch tensor on the CPU
        if getattr(out, "device", None) is not None and out.device.type != "cpu":
            raise ValueError("fill_mask writes into host memory; copy the mask to the device afterwards")
        arr = out.numpy()
    if arr.dtype == np.int32:
        arr = arr.view(np.uint32)
    if arr.dtype != np.uint32 or not arr.flags.c_contiguous:
        raise ValueError(f"bitmask must be a C-contiguous int32/uint32 array, got {arr.dtype}")
    return arr


def ids_from_mask(words: np.ndarray, vocab_size: int | None = None) -> np.ndarray:
    bits = np.unpackbits(words.view(np.uint8), bitorder="little")
    ids = np.nonzero(bits)[0]
    if vocab_size is not None:
        ids = ids[ids < vocab_size]
    return ids.astype(np.int64)


def mask_from_ids(ids: Any, vocab_size: int) -> np.ndarray:
    bits = np.zeros(mask_words(vocab_size) * 32, dtype=np.uint8)
    bits[np.asarray(list(ids), dtype=np.int64)] = 1
    return np.packbits(bits, bitorder="little").view(np.uint32)


def is_allowed(words: np.ndarray, token_id: int) -> bool:
    return bool((int(words[token_id >> 5]) >> (token_id & 31)) & 1)
