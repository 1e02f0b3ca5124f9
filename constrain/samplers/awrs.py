"""Adaptive weighted rejection sampling (Lipkin et al. 2025, arXiv:2504.05410).

One step, for each row of a batch of next-token log-probabilities ``p``:

1. *Adaptive rejection sampling.* Perturb the log-probs with Gumbel noise (``log p - log E``,
   ``E ~ Exp(1)``) and test tokens against the constraint in decreasing key order, lazily: the
   first token the matcher accepts is the sample. This is sampling without replacement from
   ``p`` until the first valid token, so the sample has exactly the constrained next-token
   distribution ``p(t) 1[t valid] / Z`` with ``Z = sum_t p(t) 1[t valid]``, after testing only
   the rejected tokens and the accepted one. Let ``R1`` be the rejected tokens.
2. *Weight* (``weighted=True``). Run a second, independent round over the tokens not in ``R1``
   (fresh Gumbel noise, ``R1`` skipped without re-testing) until its first valid token; let
   ``n2`` be its rejections. The estimate

       Z_hat = (1 - p(R1)) / (|R1| + n2 + 1)

   is unbiased, ``E[Z_hat | token] = Z`` (proof sketch in docs/samplers.md), so the pair
   (token, Z_hat) is properly weighted for ``p(t) 1[t valid]``: SMC can use ``Z_hat`` as the
   incremental importance weight.

Device work (noise, top-k of the keys) happens where the log-probs live; the host receives the
``topk`` best candidates of both rounds for all rows in one transfer, and fetches a row's full
order only in the rare case its candidates run out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from ..errors import DeadEndError
from .result import SampleResult, check_token, check_vocab, log1mexp, logsumexp, make_result, torch_generator

__all__ = ["AWRSStep", "awrs_step", "awrs_sample"]


@dataclass
class AWRSStep:
    """The outcome of one AWRS step for one row.

    ``token`` is -1 when no token with positive probability is allowed (``Z = 0``; ``log_z`` is
    then -inf). ``log_z`` is ``log Z_hat`` (NaN when not ``weighted``); ``logprob`` the
    unconstrained log-probability of ``token``; ``n_checks`` the constraint tests spent;
    ``n_rejections`` the rejected tests (both rounds).
    """

    token: int
    log_z: float
    logprob: float
    n_checks: int
    n_rejections: int


def _gumbel_keys(base: torch.Tensor, generator: Any) -> torch.Tensor:
    e = torch.empty_like(base).exponential_(generator=generator)
    return base - e.log()


def _order(
    head: np.ndarray, keys: torch.Tensor, base: torch.Tensor, raw: torch.Tensor, r: int
) -> Iterator[tuple[int, float, float, float]]:
    """(token, key, base log-prob, raw log-prob) in decreasing key order for row ``r``.

    ``head`` holds the top-k already on the host (columns: id, key, base lp, raw lp); the full
    order is fetched from the device only if the caller walks past it.
    """
    k = head.shape[0]
    for j in range(k):
        yield int(head[j, 0]), float(head[j, 1]), float(head[j, 2]), float(head[j, 3])
    if k >= keys.shape[1]:
        return
    row = keys[r]
    order = torch.argsort(row, descending=True)
    full = torch.stack([order.double(), row[order].double(), base[r][order].double(), raw[r][order].double()], 1)
    full = full.cpu().numpy()
    seen = {int(t) for t in head[:, 0]}
    for j in range(full.shape[0]):
        t = int(full[j, 0])
        if t in seen:
            continue
        yield t, float(full[j, 1]), float(full[j, 2]), float(full[j, 3])


def awrs_step(
    logp: torch.Tensor,
    matchers: Sequence[Any],
    *,
    generator: Any = None,
    weighted: bool = True,
    temperature: float = 1.0,
    topk: int = 32,
) -> list[AWRSStep]:
    """One AWRS step for each row of ``logp`` ``[B, V]`` against ``matchers[row]``.

    The proposal distribution is ``softmax(logp / temperature)``; ``logprob`` in the result is
    read from ``logp`` itself. Matchers are only tested (accept + rollback), never advanced; a
    matcher object may be shared by several rows.
    """
    B, V = logp.shape
    if len(matchers) != B:
        raise ValueError(f"awrs_step: {B} rows of log-probs but {len(matchers)} matchers")
    if temperature <= 0:
        raise ValueError("AWRS needs temperature > 0")
    if B == 0:
        return []
    raw = logp.float()
    base = raw if temperature == 1.0 else torch.log_softmax(raw / temperature, dim=-1)
    k = max(1, min(int(topk), V))
    keys1 = _gumbel_keys(base, generator)
    v1, i1 = torch.topk(keys1, k, dim=-1)
    parts = [i1.double(), v1.double(), base.gather(1, i1).double(), raw.gather(1, i1).double()]
    keys2 = None
    if weighted:
        keys2 = _gumbel_keys(base, generator)
        v2, i2 = torch.topk(keys2, k, dim=-1)
        parts += [i2.double(), v2.double(), torch.zeros_like(v2, dtype=torch.float64), torch.zeros_like(v2, dtype=torch.float64)]
    host = torch.cat(parts, 1).cpu().numpy().reshape(B, len(parts) // 4, 4, k).transpose(0, 1, 3, 2)  # [B, rounds, k, 4]

    out: list[AWRSStep] = []
    for r in range(B):
        m = matchers[r]
        tested: dict[int, bool] = {}
        n_checks = 0

        def ok(t: int) -> bool:
            nonlocal n_checks
            v = tested.get(t)
            if v is None:
                v = check_token(m, t)
                tested[t] = v
                n_checks += 1
            return v

        token, tok_lp, tok_base = -1, math.nan, -math.inf
        rejected: list[float] = []
        r1: set[int] = set()
        for t, key, blp, rlp in _order(host[r, 0], keys1, base, raw, r):
            if key == -math.inf:
                break
            if ok(t):
                token, tok_lp, tok_base = t, rlp, blp
                break
            r1.add(t)
            rejected.append(blp)
        if token < 0:
            out.append(AWRSStep(-1, -math.inf, math.nan, n_checks, len(r1)))
            continue
        if not weighted:
            out.append(AWRSStep(token, math.nan, tok_lp, n_checks, len(r1)))
            continue
        n2 = 0
        for t, key, _, _ in _order(host[r, 1], keys2, base, raw, r):
            if key == -math.inf:  # pragma: no cover - the round-1 token has a finite key
                break
            if t in r1:
                continue
            if ok(t):
                break
            n2 += 1
        log_rest = log1mexp(logsumexp(rejected)) if rejected else 0.0
        log_rest = max(log_rest, tok_base)  # guards float rounding: the remaining mass contains the token
        log_z = log_rest - math.log(len(r1) + n2 + 1)
        out.append(AWRSStep(token, log_z, tok_lp, n_checks, len(r1) + n2))
    return out


def awrs_sample(
    lm: Any,
    constraint: Any,
    n: int = 1,
    *,
    max_tokens: int = 256,
    seed: int | None = None,
    weighted: bool = True,
    temperature: float = 1.0,
    topk: int = 32,
) -> list[SampleResult]:
    """``n`` outputs, each token drawn by AWRS (all sequences advance as one batch).

    Locally exact: each token has exactly LCD's constrained next-token distribution, so the
    outputs follow LCD's distribution, after far fewer constraint checks than masking when the
    LM mostly proposes valid tokens. ``log_weight`` is ``sum_i log Z_hat_i``, a properly weighted
    importance weight for ``P_LM(x) 1[x in L]`` (-inf if cut at ``max_tokens``; NaN when not
    ``weighted``). Use :func:`~constrain.samplers.smc` to turn the weights into a
    distribution-faithful sample.
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    if max_tokens < 0:
        raise ValueError("max_tokens must be >= 0")
    check_vocab(lm, constraint)
    vocab = lm.vocab
    generator = torch_generator(lm.device, seed)
    eos = vocab.eos_ids
    matchers = [constraint.matcher() for _ in range(n)]
    tokens: list[list[int]] = [[] for _ in range(n)]
    logprob = [0.0] * n
    logw = [0.0] * n
    checks = [0] * n
    done = [False] * n
    finished = [False] * n
    while True:
        live = [i for i in range(n) if not done[i] and len(tokens[i]) < max_tokens]
        if not live:
            break
        logp = lm.next_logprobs([tuple(tokens[i]) for i in live])
        steps = awrs_step(
            logp, [matchers[i] for i in live], generator=generator, weighted=weighted, temperature=temperature, topk=topk
        )
        for i, st in zip(live, steps):
            checks[i] += st.n_checks
            if st.token < 0:
                partial = vocab.decode(tokens[i])
                raise DeadEndError(
                    f"no allowed token has positive probability after {len(tokens[i])} tokens "
                    f"(the constraint allows nothing here, or the LM gives it probability 0); "
                    f"partial output: {partial[-200:]!r}",
                    partial=partial,
                )
            if not matchers[i].accept_token(st.token):  # pragma: no cover - it was tested
                raise DeadEndError(f"internal error: token {st.token} accepted by the test but refused")
            logprob[i] += st.logprob
            logw[i] += st.log_z
            if st.token in eos:
                done[i] = finished[i] = True
            else:
                tokens[i].append(st.token)
        for i in live:
            if not done[i] and len(tokens[i]) >= max_tokens:
                done[i] = True
    return [
        make_result(
            vocab, tokens[i], logprob=logprob[i],
            log_weight=(logw[i] if finished[i] else -math.inf) if weighted else math.nan,
            n_checks=checks[i], finished=finished[i], method="awrs",
        )
        for i in range(n)
    ]
