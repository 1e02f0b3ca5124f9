"""Masked next-token distributions shared by the verifier and the model drafts.

Everything here works on CPU tensors: a verification round moves at most ``k + 1`` rows of
logits off the device, and the accept/reject arithmetic is done in float64.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..generation import sampling_logits


def unpack_masks(words: np.ndarray, vocab_size: int, width: int) -> torch.Tensor:
    """``(n, mask_words)`` packed uint32 masks -> ``(n, width)`` bool (ids >= vocab_size never allowed)."""
    words = np.ascontiguousarray(words, dtype=np.uint32)
    n = words.shape[0]
    bits = np.unpackbits(words.view(np.uint8).reshape(n, -1), axis=1, bitorder="little")
    out = torch.zeros((n, width), dtype=torch.bool)
    m = min(vocab_size, width)
    out[:, :m] = torch.from_numpy(bits[:, :m].astype(np.bool_))
    return out


def is_set(words: np.ndarray, token_id: int) -> bool:
    return bool((int(words[token_id >> 5]) >> (token_id & 31)) & 1)


def masked_logits(logits: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """float32 logits with the disallowed ids at -inf (what plain constrained decoding argmaxes over)."""
    return logits.float().masked_fill(~allowed, float("-inf"))


def probs_from_masked(masked: torch.Tensor, temperature: float, top_k: int, top_p: float) -> torch.Tensor:
    """float64 sampling distribution from masked logits (rows), the same transform as plain
    constrained sampling: temperature, then top-k, then top-p (nucleus), then softmax."""
    logits = sampling_logits(masked, temperature, top_k, top_p)
    return torch.softmax(logits.double(), dim=-1)


@dataclass
class Sampling:
    """What a draft needs to know about the generation it drafts for (set by ``Draft.start``).

    ``generator`` is the draft's own random stream (independent of the verifier's).
    ``prompt_ids`` are the target's prompt tokens; contexts given to ``propose`` are
    ``prompt_ids + generated``.
    """

    vocab: Any
    width: int
    temperature: float = 0.0
    top_k: int = 0
    top_p: float = 1.0
    generator: torch.Generator | None = None
    target: Any = None
    prompt_ids: list[int] = field(default_factory=list)

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0

    @property
    def eos_ids(self) -> frozenset[int]:
        return self.vocab.eos_ids

    def choose(self, logits: torch.Tensor, mask_words: np.ndarray) -> tuple[int, torch.Tensor | None]:
        """Pick a draft token from one row of logits under one packed mask.

        Greedy: the masked argmax (q is None: a deterministic proposal). Sampling: a sample from
        the masked, transformed distribution q, returned with q (float64, ``width`` entries).
        """
        allowed = unpack_masks(mask_words[None, :], self.vocab.size, self.width)
        row = logits.reshape(1, -1)[:, : self.width].float().cpu()
        if row.shape[1] < self.width:
            row = torch.nn.functional.pad(row, (0, self.width - row.shape[1]), value=float("-inf"))
        masked = masked_logits(row, allowed)
        if self.greedy:
            return int(masked.argmax(dim=-1)), None
        q = probs_from_masked(masked, self.temperature, self.top_k, self.top_p)[0]
        tok = int(torch.multinomial(q, 1, generator=self.generator))
        return tok, q
