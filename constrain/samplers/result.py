"""What every sampler returns, the errors they raise, and small shared helpers."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..errors import CriticError, ParticlesDeadError, SamplerError, TrieFullError  # noqa: F401  (re-exported)

__all__ = [
    "SampleResult",
    "SMCResult",
    "SamplerError",
    "CriticError",
    "ParticlesDeadError",
    "TrieFullError",
]


@dataclass
class SampleResult:
    """One sampled output.

    ``token_ids`` are the generated tokens without the final EOS; ``bytes`` their exact output
    bytes and ``text`` those decoded as UTF-8. ``logprob`` is the *unconstrained* LM log-probability
    of the tokens, the EOS included when ``finished``. ``log_weight`` is the sampler's log
    importance weight for the target ``P_LM(x) 1[x in L]`` (see docs/samplers.md; NaN where the
    sampler has none, e.g. LCD with temperature or top-k/top-p). ``n_checks`` counts constraint
    evaluations spent on this sample (a mask computation counts ``vocab.size``, an
    ``accept_token`` test 1). ``finished``: EOS was accepted (False: stopped at ``max_tokens``
    or the sequence died).
    """

    text: str
    token_ids: list[int]
    logprob: float
    log_weight: float
    n_checks: int
    finished: bool
    bytes: bytes = b""
    method: str = ""

    def __str__(self) -> str:
        return self.text


@dataclass
class SMCResult:
    """The weighted particle set of one SMC run.

    ``particles[i].log_weight`` are the final (unnormalised) log-weights, ``weights`` the same
    normalised. ``posterior`` maps each distinct output text to its total normalised weight
    (most probable first). ``log_ml`` estimates ``log sum_{x in L} P_LM(x)`` (times the critic's
    potential when one is given): its exponential is unbiased.
    """

    particles: list[SampleResult]
    weights: np.ndarray
    posterior: dict[str, float]
    log_ml: float
    ess_history: list[float] = field(default_factory=list)
    n_resamples: int = 0
    n_checks: int = 0

    @property
    def best(self) -> str:
        """The output text with the largest posterior weight."""
        return next(iter(self.posterior))

    @property
    def texts(self) -> list[str]:
        return [p.text for p in self.particles]

    def sample(self, n: int = 1, seed: int | None = None) -> list[SampleResult]:
        """Draw ``n`` particles according to their weights (an approximate posterior sample)."""
        rng = np.random.default_rng(seed)
        idx = rng.choice(len(self.particles), size=n, p=self.weights)
        return [self.particles[int(i)] for i in idx]


# ---------------------------------------------------------------------------------------------
# helpers


def make_result(
    vocab: Any, tokens: Sequence[int], *, logprob: float, log_weight: float, n_checks: int, finished: bool, method: str
) -> SampleResult:
    data = vocab.decode(tokens)
    return SampleResult(
        text=data.decode("utf-8", errors="replace"),
        token_ids=[int(t) for t in tokens],
        logprob=float(logprob),
        log_weight=float(log_weight),
        n_checks=int(n_checks),
        finished=bool(finished),
        bytes=data,
        method=method,
    )


def logsumexp(values: Any) -> float:
    a = np.asarray(values, dtype=np.float64).reshape(-1)
    if a.size == 0:
        return -math.inf
    m = float(a.max())
    if m == -math.inf or m == math.inf:
        return m
    return m + math.log(float(np.exp(a - m).sum()))


def log1mexp(x: float) -> float:
    """``log(1 - exp(x))`` for ``x <= 0``, accurately."""
    if x >= 0:
        return -math.inf
    if x > -0.6931471805599453:
        return math.log(-math.expm1(x))
    return math.log1p(-math.exp(x))


def seed_or_random(seed: int | None) -> int:
    return int(seed) if seed is not None else int.from_bytes(os.urandom(8), "little") >> 1


def torch_generator(device: Any, seed: int | None) -> Any:
    import torch

    g = torch.Generator(device=device)
    g.manual_seed(seed_or_random(seed))
    return g


def check_token(matcher: Any, token: int) -> bool:
    """Would ``matcher`` accept ``token``? (accept + rollback: no copy, matcher unchanged)."""
    if matcher.accept_token(token):
        matcher.rollback(1)
        return True
    return False


def check_vocab(lm: Any, constraint: Any) -> None:
    from ..errors import VocabularyError

    cv = getattr(constraint, "vocab", None)
    if cv is None or lm.vocab is cv:
        return
    if cv.size != lm.vocab.size or getattr(cv, "fingerprint", None) != getattr(lm.vocab, "fingerprint", None):
        raise VocabularyError("the constraint was compiled for a different vocabulary than the language model's")
