"""Speculative decoding whose verification respects the constraint.

One round: the draft proposes tokens ``d_1..d_n`` (each allowed by the constraint after the
ones before it); the target scores all ``n + 1`` positions in one forward pass (its KV cache
holds the context, so only the pending token and the drafts are fed); position ``i`` gets the
constraint's mask after ``d_1..d_i``, applied to both the target distribution p and the draft
distribution q. Then, left to right, ``d_i`` is accepted with probability
``min(1, p(d_i) / q(d_i))`` (q = 1 for deterministic drafts); the first rejection is replaced by
a draw from ``norm(max(0, p - q))`` and ends the round; if everything is accepted a bonus token
is drawn from the last position. The target cache is cropped to the accepted length and the
matcher rolled back over the rejected drafts. Greedy mode (``temperature == 0``) accepts while
the masked target argmax equals the draft and then takes the target argmax.

Each emitted token is thus distributed exactly as in plain constrained sampling from the
target (same mask, temperature, top-k and top-p at every position), so the output
distribution over token sequences is the same, whatever the draft.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..errors import ConstraintError, DeadEndError
from ..generation import GenerationResult, get_constraint
from ..tokens.bitmask import mask_words
from ._dist import Sampling, is_set, masked_logits, probs_from_masked, unpack_masks
from .drafts import crop_cache, make_draft

__all__ = ["speculative_generate", "SpeculativeResult"]


@dataclass
class SpeculativeResult(GenerationResult):
    """A :class:`~constrain.generation.GenerationResult` with speculative-decoding statistics.

    ``stats`` keys: ``rounds``, ``drafted`` (draft tokens verified), ``accepted``,
    ``acceptance_rate`` (accepted / drafted), ``mean_accepted`` (accepted draft tokens per round
    that had a draft), ``target_forwards``, ``forwards_per_token`` (target forward passes per
    output token; plain decoding is 1.0), ``tokens_per_forward``, ``draft_forwards``, ``k_final``
    and ``by_source`` (``{draft name: {"drafted", "accepted"}}``).
    """

    stats: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# Targets: something that scores the pending tokens + drafts in one call


class _HFTarget:
    """A transformers causal LM with one KV cache; ``pending`` tokens are committed but not yet fed."""

    def __init__(self, model: Any, prompt_ids: list[int]) -> None:
        self.hf = model.hf
        self.device = torch.device(getattr(model, "device", "cpu"))
        self.cache: Any = None
        self.cached = 0
        self.pending: list[int] = list(prompt_ids)
        self.n_forward = 0
        self._keep = False
        try:
            import inspect

            self._keep = "logits_to_keep" in inspect.signature(self.hf.forward).parameters
        except (TypeError, ValueError):  # pragma: no cover
            pass

    def score(self, drafts: list[int]) -> torch.Tensor:
        """Logits ``(len(drafts) + 1, width)`` (float32, CPU) for the positions after the context
        and after each draft prefix."""
        feed = self.pending + drafts
        keep = len(drafts) + 1
        ids = torch.tensor([feed], dtype=torch.long, device=self.device)
        kw: dict[str, Any] = {"logits_to_keep": keep} if self._keep else {}
        with torch.inference_mode():
            out = self.hf(input_ids=ids, past_key_values=self.cache, use_cache=True, **kw)
        self.n_forward += 1
        self.cache = out.past_key_values
        self.cached += len(feed)
        self._n_drafts = len(drafts)
        return out.logits[0, -keep:].float().cpu()

    def commit(self, n_accepted: int, next_token: int | None) -> None:
        """Keep the first ``n_accepted`` drafts of the last :meth:`score` in the cache."""
        drop = self._n_drafts - n_accepted
        if drop > 0:
            self.cached -= drop
            crop_cache(self.cache, self.cached)
        self.pending = [] if next_token is None else [int(next_token)]


class _LMTarget:
    """A :class:`constrain.lm.LanguageModel` (TableLM, HFLM): contexts are the generated tokens."""

    def __init__(self, lm: Any) -> None:
        self.lm = lm
        self.generated: list[int] = []
        self.n_forward = 0

    def score(self, drafts: list[int]) -> torch.Tensor:
        base = list(self.generated)
        ctxs = [tuple(base + drafts[:i]) for i in range(len(drafts) + 1)]
        self.n_forward += 1
        self._drafts = drafts
        return self.lm.next_logprobs(ctxs).float().cpu()

    def commit(self, n_accepted: int, next_token: int | None) -> None:
        self.generated += self._drafts[:n_accepted]
        if next_token is not None:
            self.generated.append(int(next_token))


# ---------------------------------------------------------------------------------------------


def speculative_generate(
    model: Any,
    prompt: Any = None,
    *,
    draft: Any,
    regex: str | None = None,
    schema: Any = None,
    grammar: Any = None,
    constraint: Any = None,
    max_tokens: int = 256,
    temperature: float = 0.0,
    top_p: float = 1.0,
    top_k: int = 0,
    seed: int | None = None,
    chat: bool = True,
    system: str | None = None,
    k: int = 4,
    k_min: int = 1,
    k_max: int = 12,
    adaptive: bool = True,
) -> SpeculativeResult:
    """Constrained generation with speculative decoding; same output distribution as
    :func:`constrain.generate` with the same arguments (token-for-token in greedy mode, up to
    floating-point ties).

    ``model`` is a :class:`constrain.Model` (``prompt`` is then a string, chat messages or token
    ids, as for :func:`constrain.generate`) or a :class:`constrain.lm.LanguageModel` already
    bound to its prompt (``prompt`` must be None). ``draft`` is a
    :class:`~constrain.speculative.drafts.Draft`, a name (``"jump-forward"``,
    ``"prompt-lookup"``, ``"early-exit"``, ``"jump-forward+early-exit"``), a list of drafts
    (combined) or a model (a :class:`~constrain.speculative.drafts.ModelDraft`). ``k`` is the
    initial draft length; with ``adaptive`` it grows by 2 after a fully accepted round and
    shrinks by 1 when less than half was accepted, within ``[k_min, k_max]``.
    """
    from ..lm import LanguageModel, encode_prompt

    if max_tokens < 0:
        raise ValueError("max_tokens must be >= 0")
    if temperature < 0:
        raise ValueError("temperature must be >= 0")
    if not 0.0 < top_p <= 1.0:
        raise ValueError("top_p must be in (0, 1]")
    if not 1 <= k_min <= k_max:
        raise ValueError("need 1 <= k_min <= k_max")
    drafter = make_draft(draft)
    vocab = model.vocab
    compiled = get_constraint(vocab, regex=regex, schema=schema, grammar=grammar, constraint=constraint)

    if isinstance(model, LanguageModel):
        if prompt is not None:
            raise ConstraintError("a LanguageModel target is already bound to its prompt; pass prompt=None")
        prompt_ids: list[int] = []
        target: Any = _LMTarget(model)
        width = vocab.size
    else:
        prompt_ids = encode_prompt(model, prompt, chat=chat, system=system)
        target = _HFTarget(model, prompt_ids)
        width = int(getattr(model, "logits_width", vocab.size))

    if seed is None:
        seed = int.from_bytes(os.urandom(8), "little") >> 1
    gen = torch.Generator().manual_seed(int(seed))
    draft_gen = torch.Generator().manual_seed((int(seed) * 6364136223846793005 + 1442695040888963407) % (2**63))
    sampling = Sampling(
        vocab=vocab, width=width, temperature=float(temperature), top_k=int(top_k), top_p=float(top_p),
        generator=draft_gen, target=model, prompt_ids=list(prompt_ids),
    )
    greedy = temperature <= 0
    eos_ids = vocab.eos_ids
    nw = mask_words(vocab.size)
    not_eos = np.full(nw, 0xFFFFFFFF, dtype=np.uint32)
    for t in eos_ids:
        if t < vocab.size:
            not_eos[t >> 5] &= np.uint32(~(1 << (t & 31)) & 0xFFFFFFFF)

    matcher = compiled.matcher()
    context = list(prompt_ids)
    generated: list[int] = []
    stop: str | None = None
    k_cur = max(k_min, min(k_max, int(k)))
    stats: dict[str, Any] = {"rounds": 0, "drafted": 0, "accepted": 0, "draft_rounds": 0}
    by_source: dict[str, dict[str, int]] = {}
    t0 = time.perf_counter()
    prefill_s = 0.0
    first_round_tokens = 0
    drafter.start(sampling)
    try:
        while stop is None:
            # -- what plain decoding checks before sampling at the current position
            head = np.empty((1, nw), dtype=np.uint32)
            matcher.fill_mask(head[0])
            stop = _check_position(matcher, head[0], not_eos, len(generated), max_tokens, vocab, generated)
            if stop is not None:
                break

            # -- draft, then advance the matcher through the proposals (cut at the first refusal)
            room = max_tokens - len(generated)  # every draft position must be < max_tokens
            budget = min(k_cur, room)
            proposals: list[int] = []
            qrows: Any = None
            drafter.observe(context)
            if budget > 0:
                proposals, qrows = drafter.propose(list(context), matcher.copy(), budget)
                proposals = [int(t) for t in proposals]
            sources = list(getattr(drafter, "last_sources", None) or [drafter.name] * len(proposals))
            masks = np.empty((len(proposals) + 1, nw), dtype=np.uint32)
            masks[0] = head[0]
            n = 0
            for i, t in enumerate(proposals):
                if i >= room or not is_set(masks[i], t):
                    break
                matcher.accept_token(t)
                n += 1
                if t in eos_ids:
                    break
                matcher.fill_mask(masks[n])
            proposals = proposals[:n]
            masks = masks[: n + 1]
            if n and proposals[-1] in eos_ids:
                masks = masks[:n]  # nothing after an EOS
            if qrows is not None:
                qrows = list(qrows[:n])

            # -- verify all positions in one target pass
            logits = target.score(proposals)
            stats["rounds"] += 1
            accepted, nxt, stop = _verify(
                logits, masks, proposals, qrows, greedy, sampling, gen, not_eos,
                len(generated), max_tokens, vocab, generated,
            )
            # -- commit
            if n - accepted > 0:
                matcher.rollback(n - accepted)
            new = proposals[:accepted]
            if nxt is not None:
                if not matcher.accept_token(nxt):  # pragma: no cover - the mask allowed it
                    raise DeadEndError(f"internal error: token {nxt} refused by the matcher", partial=vocab.decode(generated))
                new = new + [nxt]
            for t in new:
                if t in eos_ids:
                    stop = "eos"
                    break
                generated.append(t)
                context.append(t)
            target.commit(accepted, nxt)
            # -- statistics and adaptive length
            if n:
                stats["draft_rounds"] += 1
                stats["drafted"] += n
                stats["accepted"] += accepted
                for i, src in enumerate(sources[:n]):
                    d = by_source.setdefault(src, {"drafted": 0, "accepted": 0})
                    d["drafted"] += 1
                    d["accepted"] += int(i < accepted)
                if adaptive:
                    if accepted == n:
                        k_cur = min(k_max, k_cur + 2)
                    elif accepted < n // 2:
                        k_cur = max(k_min, k_cur - 1)
            if stats["rounds"] == 1:
                prefill_s = time.perf_counter() - t0
                first_round_tokens = len(generated)
        drafter.observe(context)
    finally:
        drafter.finish()
    total = time.perf_counter() - t0
    if stats["rounds"] == 0:
        prefill_s = total
    decode_s = max(total - prefill_s, 0.0)
    n_gen = len(generated)
    timings = {
        "prefill_s": prefill_s,
        "decode_s": decode_s,
        "tokens_per_s": ((n_gen - first_round_tokens) / decode_s) if decode_s > 0 else 0.0,
        "total_s": total,
    }
    fw = target.n_forward
    stats.update(
        acceptance_rate=(stats["accepted"] / stats["drafted"]) if stats["drafted"] else 0.0,
        mean_accepted=(stats["accepted"] / stats["draft_rounds"]) if stats["draft_rounds"] else 0.0,
        target_forwards=fw,
        forwards_per_token=(fw / n_gen) if n_gen else 0.0,
        tokens_per_forward=(n_gen / fw) if fw else 0.0,
        draft_forwards=drafter.forward_count(),
        k_final=k_cur,
        by_source=by_source,
        draft=repr(drafter),
    )
    data = vocab.decode(generated)
    reason = stop or "max_tokens"
    return SpeculativeResult(
        text=data.decode("utf-8", errors="replace"),
        bytes=data,
        token_ids=generated,
        finished=reason == "eos",
        stop_reason=reason,
        n_prompt_tokens=len(prompt_ids),
        timings=timings,
        stats=stats,
    )


def _check_position(
    matcher: Any, words: np.ndarray, not_eos: np.ndarray, n_generated: int, max_tokens: int, vocab: Any,
    generated: list[int],
) -> str | None:
    """The stop decisions plain constrained decoding makes before sampling a position."""
    if matcher.is_finished():
        return "eos"
    if not words.any():
        partial = vocab.decode(generated)
        raise DeadEndError(
            f"the constraint allows no token after {n_generated} generated tokens; partial output: {partial[-200:]!r}",
            partial=partial,
        )
    if matcher.is_accepting() and not (words & not_eos).any():
        return "eos"  # complete, and nothing but EOS could follow
    if n_generated >= max_tokens:
        return "max_tokens"
    return None


def _verify(
    logits: torch.Tensor, masks: np.ndarray, drafts: list[int], qrows: list[Any] | None, greedy: bool,
    s: Sampling, gen: torch.Generator, not_eos: np.ndarray, n_generated: int, max_tokens: int, vocab: Any,
    generated: list[int],
) -> tuple[int, int | None, str | None]:
    """Accept/reject the drafts. Returns (accepted count, next token or None, stop reason or None)."""
    n = len(drafts)
    rows = masks.shape[0]  # n + 1, or n when the last draft is EOS
    allowed = unpack_masks(masks, s.vocab.size, s.width)
    lg = logits[:rows, : s.width]
    if lg.shape[1] < s.width:
        lg = torch.nn.functional.pad(lg, (0, s.width - lg.shape[1]), value=float("-inf"))
    masked = masked_logits(lg, allowed)
    if greedy:
        best = masked.argmax(dim=-1).tolist()
    else:
        p_all = probs_from_masked(masked, s.temperature, s.top_k, s.top_p)
    for i in range(rows):
        if i > 0:
            # Positions after accepted drafts: the same stop checks as plain decoding.
            w = masks[i]
            if not w.any():
                partial = vocab.decode(generated + drafts[:i])
                raise DeadEndError(
                    f"the constraint allows no token after {n_generated + i} generated tokens; "
                    f"partial output: {partial[-200:]!r}",
                    partial=partial,
                )
            if not (w & not_eos).any():  # complete, and nothing but EOS could follow
                return (i + 1 if i < n and drafts[i] in vocab.eos_ids else i), None, "eos"
            if n_generated + i >= max_tokens:
                return i, None, "max_tokens"
        if greedy:
            t = int(best[i])
            if i < n and t == drafts[i]:
                continue
            return i, t, None
        p = p_all[i]
        if i == n:  # bonus position: everything was accepted
            return i, int(torch.multinomial(p, 1, generator=gen)), None
        x = drafts[i]
        q = None if qrows is None else qrows[i]
        if q is None:
            qx = 1.0
        else:
            q = q.to(torch.float64).cpu()[: s.width] * allowed[i, : q.shape[0]]
            tot = float(q.sum())
            qx = float(q[x]) / tot if tot > 0 else 0.0
            q = q / tot if tot > 0 else None
        px = float(p[x])
        u = float(torch.rand((), generator=gen, dtype=torch.float64))
        if qx > 0 and u * qx < px:
            continue  # accepted
        # Rejected: sample from norm(max(0, p - q)), masked already since p and q are.
        if q is None:
            r = p.clone()
            r[x] = 0.0
        else:
            r = torch.clamp(p - q.to(p.dtype), min=0.0)
        tot = float(r.sum())
        if tot <= 1e-300:  # p == q up to rounding: any sample from p is exact
            r, tot = p, float(p.sum())
        return i, int(torch.multinomial(r / tot, 1, generator=gen)), None
    # Only reached when the last draft is an EOS that was accepted.
    return n, None, "eos"
