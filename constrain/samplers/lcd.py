"""Locally constrained decoding (token masking), batched.

Every step, each live sequence's matcher writes the packed bitmask of allowed tokens into a host
buffer (pinned on CUDA); the buffer is copied to the model's device, unpacked there and applied
to the LM's log-probabilities; the token is chosen on the device and read back (the one host
synchronisation per step, shared by all sequences of the batch).

Every output is in the language, but the distribution is ``prod_i P(x_i | x_<i) / Z(x_<i)``
(locally renormalised), not ``P_LM(x | x in L)``: see docs/samplers.md.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ..errors import DeadEndError
from .result import SampleResult, check_vocab, make_result, torch_generator

__all__ = ["lcd_sample", "DeviceMask"]


class DeviceMask:
    """A host bitmask buffer for ``batch`` rows and its unpacking on ``device``."""

    def __init__(self, batch: int, vocab_size: int, device: Any) -> None:
        self.words = (vocab_size + 31) // 32
        self.vocab_size = vocab_size
        self.device = torch.device(device)
        pin = self.device.type == "cuda"
        self.host = torch.zeros((batch, self.words), dtype=torch.int32, pin_memory=pin)
        self.host_np = self.host.numpy().view(np.uint32)
        self.shifts = torch.arange(32, dtype=torch.int32, device=self.device)

    def allowed(self, rows: int) -> torch.Tensor:
        """Bool ``[rows, vocab_size]`` on the device from the first ``rows`` host rows."""
        words = self.host[:rows]
        if self.device.type != "cpu":
            words = words.to(self.device, non_blocking=True)
        bits = ((words.unsqueeze(-1) >> self.shifts) & 1).reshape(rows, -1)
        return bits[:, : self.vocab_size].bool()


def choose(
    logits: torch.Tensor, temperature: float, top_k: int, top_p: float, generator: Any
) -> torch.Tensor:
    """Ids ``[B]`` from (masked) log-probs: argmax at temperature 0, else sampling (top-k, top-p)."""
    if temperature <= 0:
        return logits.argmax(dim=-1)
    logits = logits.float() / temperature
    if top_k and 0 < top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if 0.0 < top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probs = torch.softmax(sorted_logits, dim=-1)
        before = torch.cumsum(probs, dim=-1) - probs
        drop = before >= top_p
        drop[:, 0] = False
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    # Gumbel-max (exponential race) with the caller's generator.
    e = torch.empty_like(logits).exponential_(generator=generator)
    return (logits - e.log()).argmax(dim=-1)


def lcd_sample(
    lm: Any,
    constraint: Any,
    n: int = 1,
    *,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    max_tokens: int = 256,
    seed: int | None = None,
) -> list[SampleResult]:
    """``n`` outputs by token masking (all ``n`` sequences advance as one batch).

    ``temperature=0`` is greedy decoding. ``log_weight`` is ``sum_i log Z(x_<i)`` (the allowed
    LM mass at each step), the importance weight of LCD's proposal for ``P_LM(x) 1[x in L]``;
    it is NaN when ``temperature != 1`` or top-k/top-p truncate the distribution, and -inf for an
    output cut at ``max_tokens`` (not in the language).
    Raises :class:`DeadEndError` when the constraint allows no token, or the LM gives
    probability 0 to every allowed token.
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    if temperature < 0:
        raise ValueError("temperature must be >= 0")
    if not 0.0 < top_p <= 1.0:
        raise ValueError("top_p must be in (0, 1]")
    if max_tokens < 0:
        raise ValueError("max_tokens must be >= 0")
    check_vocab(lm, constraint)
    vocab = lm.vocab
    device = lm.device
    exact_weights = temperature == 1.0 and not (top_k and 0 < top_k < vocab.size) and top_p >= 1.0
    generator = torch_generator(device, seed) if temperature > 0 else None
    eos = vocab.eos_ids

    matchers = [constraint.matcher() for _ in range(n)]
    tokens: list[list[int]] = [[] for _ in range(n)]
    logprob = [0.0] * n
    logw = [0.0] * n
    checks = [0] * n
    done = [False] * n
    finished = [False] * n
    masker = DeviceMask(max(n, 1), vocab.size, device)

    while True:
        live = [i for i in range(n) if not done[i]]
        for i in live:
            if len(tokens[i]) >= max_tokens:
                done[i] = True
        live = [i for i in live if not done[i]]
        if not live:
            break
        for r, i in enumerate(live):
            row = masker.host_np[r]
            matchers[i].fill_mask(row)
            checks[i] += vocab.size
            if not row.any():
                partial = vocab.decode(tokens[i])
                raise DeadEndError(
                    f"the constraint allows no token after {len(tokens[i])} tokens; partial output: {partial[-200:]!r}",
                    partial=partial,
                )
        logp = lm.next_logprobs([tuple(tokens[i]) for i in live])
        allowed = masker.allowed(len(live))
        masked = logp.masked_fill(~allowed, float("-inf"))
        log_z = torch.logsumexp(masked, dim=-1)
        chosen = choose(masked, temperature, top_k, top_p, generator)
        lp = logp.gather(1, chosen.unsqueeze(1)).squeeze(1)
        host = torch.stack([chosen.double(), lp.double(), log_z.double()], 1).cpu().numpy()  # the one sync
        for r, i in enumerate(live):
            t, lp_t, lz = int(host[r, 0]), float(host[r, 1]), float(host[r, 2])
            if lz == -math.inf:
                partial = vocab.decode(tokens[i])
                raise DeadEndError(
                    f"the language model gives probability 0 to every allowed token after {len(tokens[i])} tokens; "
                    f"partial output: {partial[-200:]!r}",
                    partial=partial,
                )
            if not matchers[i].accept_token(t):  # pragma: no cover - the mask forbids it
                raise DeadEndError(f"internal error: sampled token {t} was refused by the matcher")
            logprob[i] += lp_t
            logw[i] += lz
            if t in eos:
                done[i] = finished[i] = True
            else:
                tokens[i].append(t)
    return [
        make_result(
            vocab, tokens[i], logprob=logprob[i], log_weight=(logw[i] if finished[i] else -math.inf) if exact_weights else math.nan,
            n_checks=checks[i], finished=finished[i], method="lcd",
        )
        for i in range(n)
    ]
