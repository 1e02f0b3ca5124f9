"""Sequential Monte Carlo with AWRS proposals (Lipkin et al. 2025; Loula et al. 2025).

``N`` particles advance in lockstep, one token per step, all live particles' contexts going
through one :meth:`LanguageModel.next_logprobs` call. A particle's token comes from AWRS (or
masking, ``proposal="lcd"``) and its log-weight grows by the log of the local normaliser
estimate ``Z_hat`` (exact ``Z`` for masking). Because ``(token, Z_hat)`` is properly weighted
for ``P(t | w) 1[w t live]``, the weighted particles target ``P_LM(x | x in L)`` (times the
critic's potential when one is given), and the average final weight is an unbiased estimate of
``P_LM(x in L)``. When the effective sample size ``ESS = (sum w)^2 / sum w^2`` falls below
``ess_threshold * N`` the particles are resampled (systematic or multinomial) and their weights
reset to the average.

Optional critic: ``critic(text) -> float`` returns a log-potential ``log phi(text)``. With
``critic_mode="complete"`` it is called once per finished particle and added to its log-weight;
with ``"prefix"`` it is called on every new prefix and the particle gains
``log phi(new) - log phi(old)`` (a twisted SMC: the product telescopes to ``phi(x)``, so the
target is the same, but bad prefixes are weeded out early). Either way the target is
``P_LM(x) 1[x in L] phi(x)``. ``-inf`` kills a particle; an exception, NaN or ``+inf`` raises
:class:`CriticError`.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import torch

from .awrs import AWRSStep, awrs_step
from .lcd import DeviceMask
from .result import (
    CriticError,
    ParticlesDeadError,
    SMCResult,
    check_vocab,
    logsumexp,
    make_result,
    seed_or_random,
    torch_generator,
)

__all__ = ["smc", "resample_indices", "ess"]


def ess(logw: np.ndarray) -> float:
    """Effective sample size ``(sum w)^2 / sum w^2`` of log-weights (0 when all are -inf)."""
    logw = np.asarray(logw, dtype=np.float64)
    m = logw.max() if logw.size else -math.inf
    if m == -math.inf:
        return 0.0
    w = np.exp(logw - m)
    return float(w.sum() ** 2 / (w * w).sum())


def resample_indices(logw: np.ndarray, rng: np.random.Generator, method: str = "systematic") -> np.ndarray:
    """Ancestor indices for ``len(logw)`` offspring, proportional to the weights."""
    n = len(logw)
    m = float(np.max(logw))
    w = np.exp(np.asarray(logw, dtype=np.float64) - m)
    w /= w.sum()
    if method == "systematic":
        u = (rng.random() + np.arange(n)) / n
        idx = np.searchsorted(np.cumsum(w), u, side="right")
    elif method == "multinomial":
        idx = rng.choice(n, size=n, p=w)
    else:
        raise ValueError(f"resampling must be 'systematic' or 'multinomial', not {method!r}")
    idx = np.minimum(idx, n - 1)
    # cumsum rounding could pick a zero-weight ancestor at the very end: step back to a live one
    for k in range(n):
        while w[idx[k]] == 0.0 and idx[k] > 0:
            idx[k] -= 1
    return idx.astype(np.int64)


def _call_critic(critic: Callable[[str], float], text: str) -> float:
    try:
        value = critic(text)
    except Exception as exc:
        raise CriticError(f"the critic raised {type(exc).__name__}: {exc} (on {text[:100]!r})", text=text) from exc
    try:
        v = float(value)
    except (TypeError, ValueError) as exc:
        raise CriticError(
            f"the critic must return a float log-weight, got {type(value).__name__} (on {text[:100]!r})", text=text
        ) from exc
    if math.isnan(v) or v == math.inf:
        raise CriticError(f"the critic returned {v} (a log-weight must be finite or -inf) on {text[:100]!r}", text=text)
    return v


def _lcd_steps(
    logp: torch.Tensor, matchers: list[Any], masker: DeviceMask, generator: Any, temperature: float
) -> list[AWRSStep]:
    """Masking proposal: exact constrained next-token sample and exact local normaliser."""
    b, v = logp.shape
    for r, m in enumerate(matchers):
        m.fill_mask(masker.host_np[r])
    allowed = masker.allowed(b)
    raw = logp.float()
    base = raw if temperature == 1.0 else torch.log_softmax(raw / temperature, dim=-1)
    masked = base.masked_fill(~allowed, float("-inf"))
    log_z = torch.logsumexp(masked, dim=-1)
    e = torch.empty_like(masked).exponential_(generator=generator)
    chosen = (masked - e.log()).argmax(dim=-1)
    lp = raw.gather(1, chosen.unsqueeze(1)).squeeze(1)
    host = torch.stack([chosen.double(), lp.double(), log_z.double()], 1).cpu().numpy()
    out = []
    for r in range(b):
        lz = float(host[r, 2])
        if lz == -math.inf:
            out.append(AWRSStep(-1, -math.inf, math.nan, v, 0))
        else:
            out.append(AWRSStep(int(host[r, 0]), lz, float(host[r, 1]), v, 0))
    return out


def smc(
    lm: Any,
    constraint: Any,
    n_particles: int = 16,
    *,
    ess_threshold: float = 0.5,
    resampling: str = "systematic",
    proposal: str = "awrs",
    critic: Callable[[str], float] | None = None,
    critic_mode: str = "complete",
    max_tokens: int = 256,
    seed: int | None = None,
    temperature: float = 1.0,
    topk: int = 32,
) -> SMCResult:
    """Run SMC with ``n_particles`` particles; see the module docstring.

    Particles still unfinished after ``max_tokens`` tokens get weight 0 (their output is not
    in the language), so the target is conditioned on finishing within ``max_tokens``.
    Raises :class:`ParticlesDeadError` when every particle has weight 0, and
    :class:`CriticError` when the critic misbehaves.
    """
    if n_particles < 1:
        raise ValueError("n_particles must be >= 1")
    if not 0.0 <= ess_threshold <= 1.0:
        raise ValueError("ess_threshold must be in [0, 1]")
    if resampling not in ("systematic", "multinomial"):
        raise ValueError(f"resampling must be 'systematic' or 'multinomial', not {resampling!r}")
    if proposal not in ("awrs", "lcd"):
        raise ValueError(f"proposal must be 'awrs' or 'lcd', not {proposal!r}")
    if critic_mode not in ("complete", "prefix"):
        raise ValueError(f"critic_mode must be 'complete' or 'prefix', not {critic_mode!r}")
    if critic is not None and not callable(critic):
        raise TypeError("critic must be callable: text -> log-weight")
    if temperature <= 0:
        raise ValueError("SMC needs temperature > 0")
    if max_tokens < 0:
        raise ValueError("max_tokens must be >= 0")
    check_vocab(lm, constraint)
    vocab = lm.vocab
    eos = vocab.eos_ids
    N = int(n_particles)
    base_seed = seed_or_random(seed)
    generator = torch_generator(lm.device, base_seed)
    rng = np.random.default_rng(base_seed)
    masker = DeviceMask(N, vocab.size, lm.device) if proposal == "lcd" else None

    toks: list[list[int]] = [[] for _ in range(N)]
    matchers = [constraint.matcher() for _ in range(N)]
    logw = np.zeros(N, dtype=np.float64)
    logprob = np.zeros(N, dtype=np.float64)
    checks = np.zeros(N, dtype=np.int64)
    finished = np.zeros(N, dtype=bool)
    phi = np.zeros(N, dtype=np.float64)  # last critic value (prefix mode)
    total_checks = 0
    log_ml_acc = 0.0
    n_resamples = 0
    ess_history: list[float] = []

    if critic is not None and critic_mode == "prefix":
        phi[:] = _call_critic(critic, "")
        logw += phi

    def all_dead(what: str) -> ParticlesDeadError:
        return ParticlesDeadError(
            f"all {N} particles have weight zero {what}: the model gives no probability to any continuation "
            "in the language (or the critic rejected every particle)"
        )

    def none_finished() -> ParticlesDeadError:
        return ParticlesDeadError(
            f"all {N} particles have weight zero: none finished within max_tokens={max_tokens} "
            "(outputs cut there are not in the language); raise max_tokens"
        )

    step = 0
    while True:
        live = [i for i in range(N) if not finished[i] and logw[i] > -math.inf]
        if not live:
            break
        if step >= max_tokens:
            logw[live] = -math.inf
            break
        step += 1
        logp = lm.next_logprobs([tuple(toks[i]) for i in live])
        ms = [matchers[i] for i in live]
        if proposal == "awrs":
            steps = awrs_step(logp, ms, generator=generator, weighted=True, temperature=temperature, topk=topk)
        else:
            steps = _lcd_steps(logp, ms, masker, generator, temperature)
        for i, st in zip(live, steps):
            checks[i] += st.n_checks
            total_checks += st.n_checks
            if st.token < 0:
                logw[i] = -math.inf
                continue
            if not matchers[i].accept_token(st.token):  # pragma: no cover - it was tested
                raise RuntimeError(f"internal error: token {st.token} passed the test but was refused")
            logprob[i] += st.logprob
            logw[i] += st.log_z
            if st.token in eos:
                finished[i] = True
            else:
                toks[i].append(st.token)
            if critic is None:
                continue
            if critic_mode == "prefix" and not finished[i]:
                new = _call_critic(critic, vocab.decode(toks[i]).decode("utf-8", errors="replace"))
                logw[i] = -math.inf if new == -math.inf else logw[i] + (new - phi[i])
                phi[i] = new
            elif critic_mode == "complete" and finished[i]:
                logw[i] += _call_critic(critic, vocab.decode(toks[i]).decode("utf-8", errors="replace"))
        if not np.any(logw > -math.inf):
            raise all_dead(f"after {step} steps")
        e = ess(logw)
        ess_history.append(e)
        pending = any(not finished[i] and logw[i] > -math.inf for i in range(N))
        if pending and e < ess_threshold * N:
            log_ml_acc += logsumexp(logw) - math.log(N)
            idx = resample_indices(logw, rng, resampling)
            toks = [list(toks[j]) for j in idx]
            matchers = [matchers[j].copy() for j in idx]
            logprob, checks, finished, phi = logprob[idx], checks[idx], finished[idx], phi[idx]
            logw = np.zeros(N, dtype=np.float64)
            n_resamples += 1

    if not np.any(logw > -math.inf):
        raise none_finished() if step >= max_tokens else all_dead(f"after {step} steps")
    log_ml = log_ml_acc + logsumexp(logw) - math.log(N)
    w = np.exp(logw - logw.max())
    w /= w.sum()
    particles = [
        make_result(
            vocab, toks[i], logprob=float(logprob[i]), log_weight=float(logw[i]), n_checks=int(checks[i]),
            finished=bool(finished[i]), method="smc",
        )
        for i in range(N)
    ]
    post: dict[str, float] = {}
    for p, wi in zip(particles, w):
        if wi > 0:
            post[p.text] = post.get(p.text, 0.0) + float(wi)
    posterior = dict(sorted(post.items(), key=lambda kv: -kv[1]))
    return SMCResult(
        particles=particles, weights=w, posterior=posterior, log_ml=float(log_ml), ess_history=ess_history,
        n_resamples=n_resamples, n_checks=int(total_checks),
    )
