"""Drafts for constrained speculative decoding.

A draft proposes up to ``k`` tokens that continue ``context_ids`` (the target's prompt tokens
followed by the tokens generated so far)::

    tokens, q = draft.propose(context_ids, matcher, k)

``matcher`` is a private copy at the end of ``context_ids``; the draft may advance it freely.
``q`` is None when every proposal is deterministic (q = 1 on the proposed token), else one
entry per token: a float64 tensor over the logits width (the *masked* distribution the token
was drawn from) or None for a deterministic position. The verifier masks and renormalises q
again, so a draft that forgot the mask is still handled exactly, provided it only proposes
allowed tokens.

Exactness rule for new drafts: whether a position is proposed may depend on the draft's own
state and on earlier proposals, but a proposed token must be exactly a draw from the q it
reports (no "draw, look at it, drop it if unlikely"). Stopping *after* a token is fine.

Drafts keep per-generation state (KV caches); :meth:`Draft.start` resets it. One draft object
serves one generation at a time.
"""

from __future__ import annotations

import copy
from typing import Any, Sequence

import numpy as np
import torch

from ..errors import ConstrainError, ModelError, UnsupportedError, VocabularyError
from ..model import _logits_width
from ..tokens.bitmask import allocate_mask
from ._dist import Sampling

__all__ = [
    "Draft",
    "ModelDraft",
    "EarlyExitDraft",
    "PromptLookupDraft",
    "JumpForwardDraft",
    "CombinedDraft",
    "make_draft",
]


class Draft:
    """Base class. Subclasses implement :meth:`propose`; model-based ones also :meth:`start`."""

    name = "draft"
    #: Proposing costs no forward pass and does not use the length budget ``k`` (jump-forward).
    free = False
    #: Proposals are always deterministic (q = 1).
    deterministic = True

    def __init__(self) -> None:
        self.sampling: Sampling | None = None
        self.n_forward = 0

    def start(self, sampling: Sampling) -> None:
        """Bind to one generation (called by the driver before the first ``propose``)."""
        self.sampling = sampling
        self.n_forward = 0

    def finish(self) -> None:
        """Release per-generation state (caches)."""

    def forward_count(self) -> int:
        """Draft forward passes since :meth:`start`."""
        return self.n_forward

    def observe(self, context_ids: Sequence[int]) -> None:
        """Called by the driver with the verified context (prompt + output so far) before each
        round and once at the end; drafts that learn from the target's choices use it."""

    def propose(self, context_ids: Sequence[int], matcher: Any, k: int) -> tuple[list[int], Any]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def advance(matcher: Any, tokens: Sequence[int], eos_ids: frozenset[int]) -> int:
    """Advance ``matcher`` through ``tokens``; stop at the first refused token or after an EOS.

    Returns how many tokens were accepted.
    """
    n = 0
    for t in tokens:
        t = int(t)
        if not matcher.accept_token(t):
            break
        n += 1
        if t in eos_ids:
            break
    return n


# ---------------------------------------------------------------------------------------------
# Model drafts


def _hf_of(model: Any) -> Any:
    return getattr(model, "hf", model)


def crop_cache(cache: Any, new_len: int) -> None:
    """Drop cached positions beyond ``new_len`` (transformers DynamicCache, any version)."""
    cur = int(cache.get_seq_length())
    if cur > new_len:
        # Negative = "remove that many" in every transformers version (positive meant
        # "keep that many" before 5.x and is refused since).
        cache.crop(-(cur - new_len))


class _CachedRunner:
    """A transformers causal LM with one KV cache that follows a growing/backtracking context."""

    def __init__(self, hf: Any, device: Any) -> None:
        self.hf = hf
        self.device = torch.device(device)
        self.cache: Any = None
        self.ids: list[int] = []  # tokens whose keys/values are in the cache
        self.n_forward = 0
        self._kw: dict[str, Any] = {}
        try:
            import inspect

            if "logits_to_keep" in inspect.signature(hf.forward).parameters:
                self._kw["logits_to_keep"] = 1
        except (TypeError, ValueError):  # pragma: no cover
            pass

    def reset(self) -> None:
        self.cache = None
        self.ids = []

    def next_logits(self, context: Sequence[int]) -> torch.Tensor:
        """Logits (float32, CPU, 1-D) of the token after ``context``; feeds only the uncached tail."""
        ctx = [int(t) for t in context]
        if not ctx:
            raise ConstrainError("a model draft needs at least one context token")
        n = 0
        lim = min(len(self.ids), len(ctx) - 1)  # always feed >= 1 token to get its logits
        while n < lim and self.ids[n] == ctx[n]:
            n += 1
        if self.cache is not None and n < len(self.ids):
            crop_cache(self.cache, n)
            self.ids = self.ids[:n]
        if self.cache is None:
            n = 0
            self.ids = []
        new = torch.tensor([ctx[n:]], dtype=torch.long, device=self.device)
        with torch.inference_mode():
            out = self.hf(input_ids=new, past_key_values=self.cache, use_cache=True, **self._kw)
        self.n_forward += 1
        self.cache = out.past_key_values
        self.ids = ctx
        return out.logits[0, -1].float().cpu()


class ModelDraft(Draft):
    """A second (smaller) causal LM with the same tokenizer proposes ``k`` tokens autoregressively.

    ``model`` is a :class:`constrain.Model`, a transformers causal LM, or a
    :class:`constrain.lm.LanguageModel` (e.g. a ``TableLM``; it must be bound to the same prompt
    as the target, and sees only the generated tokens). Each proposal is drawn from the draft's
    masked distribution (same temperature/top-k/top-p as the target); greedy mode proposes the
    masked argmax. The draft keeps its own KV cache and crops it back when the target rejects.
    Raises :class:`VocabularyError` (at start) if its logits width or tokenizer differ from the
    target's.
    """

    name = "model"
    deterministic = False

    def __init__(self, model: Any, *, device: Any = None) -> None:
        super().__init__()
        from ..lm import LanguageModel

        self.model = model
        self._lm = model if isinstance(model, LanguageModel) else None
        self._device = device
        self._runner: _CachedRunner | None = None

    def __repr__(self) -> str:
        name = getattr(self.model, "name", type(_hf_of(self.model)).__name__)
        return f"{type(self).__name__}({name!r})"

    def _check_vocab(self, sampling: Sampling) -> None:
        target_vocab = sampling.vocab
        if self._lm is not None:
            v = self._lm.vocab
            if v is not target_vocab and (v.size != target_vocab.size or v.fingerprint != target_vocab.fingerprint):
                raise VocabularyError("the draft language model's vocabulary differs from the target's")
            return
        try:
            width: int | None = _logits_width(_hf_of(self.model))
        except ModelError:
            width = None
        if width is None or width != target_vocab.size:
            raise VocabularyError(
                f"draft model produces {width} logits but the target's vocabulary has {target_vocab.size} ids; "
                "a model draft needs the same tokenizer"
            )
        dtok = getattr(self.model, "tokenizer", None)
        ttok = getattr(sampling.target, "tokenizer", None)
        if dtok is not None and ttok is not None and dtok is not ttok:
            try:
                same = dtok.get_vocab() == ttok.get_vocab()
            except Exception:  # pragma: no cover - exotic tokenizers
                same = True
            if not same:
                raise VocabularyError("the draft model's tokenizer differs from the target's")

    def _hf_for(self, sampling: Sampling) -> Any:
        return _hf_of(self.model)

    def start(self, sampling: Sampling) -> None:
        super().start(sampling)
        self._check_vocab(sampling)
        if self._lm is None:
            hf = self._hf_for(sampling)
            dev = self._device or getattr(self.model, "device", None) or getattr(sampling.target, "device", None) or "cpu"
            if self._runner is None or self._runner.hf is not hf:
                self._runner = _CachedRunner(hf, dev)
            self._runner.reset()
            self._runner.n_forward = 0

    def finish(self) -> None:
        if self._runner is not None:
            self._runner.reset()

    def forward_count(self) -> int:
        if self._lm is not None:
            return self.n_forward
        return self._runner.n_forward if self._runner is not None else 0

    def _logits(self, context: list[int]) -> torch.Tensor:
        s = self.sampling
        if self._lm is not None:
            self.n_forward += 1
            ctx = tuple(context[len(s.prompt_ids):])
            return self._lm.next_logprobs([ctx])[0].float().cpu()
        return self._runner.next_logits(context)

    def propose(self, context_ids: Sequence[int], matcher: Any, k: int) -> tuple[list[int], Any]:
        s = self.sampling
        if s is None:
            raise ConstrainError("Draft.start() was not called")
        ctx = [int(t) for t in context_ids]
        tokens: list[int] = []
        qs: list[torch.Tensor | None] = []
        words = allocate_mask(s.vocab.size)
        for _ in range(max(0, k)):
            if matcher.is_finished():
                break
            matcher.fill_mask(words)
            if not words.any():
                break
            tok, q = s.choose(self._logits(ctx), words)
            if not matcher.accept_token(tok):  # pragma: no cover - the mask allowed it
                break
            tokens.append(tok)
            qs.append(q)
            ctx.append(tok)
            if tok in s.eos_ids:
                break
        return tokens, (None if s.greedy else qs)


def truncated_causal_lm(hf: Any, layers: int) -> Any:
    """A view of a Llama-family causal LM that runs only its first ``layers`` decoder layers,
    then the final norm and the LM head (LayerSkip-style early exit). Shares every weight."""
    inner = getattr(hf, "model", None)
    blocks = getattr(inner, "layers", None)
    if inner is None or not isinstance(blocks, torch.nn.ModuleList) or not hasattr(inner, "norm"):
        raise UnsupportedError(
            f"early exit needs a Llama-family model (.model.layers, .model.norm, .lm_head); got {type(hf).__name__}"
        )
    n = len(blocks)
    if not 1 <= layers <= n:
        raise ValueError(f"layers must be in [1, {n}], got {layers}")
    cfg = copy.deepcopy(hf.config)
    cfg.num_hidden_layers = layers
    if getattr(cfg, "layer_types", None):
        cfg.layer_types = list(cfg.layer_types)[:layers]
    new_inner = copy.copy(inner)
    new_inner._modules = dict(inner._modules)
    new_inner._modules["layers"] = torch.nn.ModuleList(list(blocks)[:layers])
    new_inner.__dict__["config"] = cfg
    new_outer = copy.copy(hf)
    new_outer._modules = dict(hf._modules)
    new_outer._modules["model"] = new_inner
    new_outer.__dict__["config"] = cfg
    return new_outer


class EarlyExitDraft(ModelDraft):
    """Self-speculation: the first ``layers`` layers of the target + its final norm and LM head.

    ``model`` defaults to the target (bound at start). The draft keeps its own KV cache for
    those layers. Only Llama-family layouts (``.model.layers``, ``.model.norm``, ``.lm_head``:
    Llama, SmolLM2, Mistral, Qwen2...) are supported.
    """

    name = "early-exit"

    def __init__(self, model: Any = None, *, layers: int = 8) -> None:
        super().__init__(model)
        self.layers = int(layers)
        self._view: Any = None
        self._view_of: Any = None

    def __repr__(self) -> str:
        return f"EarlyExitDraft(layers={self.layers})"

    def _check_vocab(self, sampling: Sampling) -> None:
        if self.model is not None and self.model is not sampling.target:
            super()._check_vocab(sampling)

    def _hf_for(self, sampling: Sampling) -> Any:
        base = _hf_of(self.model if self.model is not None else sampling.target)
        if self._view is None or self._view_of is not base:
            self._view = truncated_causal_lm(base, self.layers)
            self._view_of = base
        return self._view

    def start(self, sampling: Sampling) -> None:
        if self.model is None and not hasattr(sampling.target, "hf"):
            raise UnsupportedError("EarlyExitDraft needs a transformers target (or an explicit model)")
        self._lm = None
        super().start(sampling)


# ---------------------------------------------------------------------------------------------
# Model-free drafts


class PromptLookupDraft(Draft):
    """Prompt lookup decoding: find the latest earlier occurrence of the last ``ngram`` tokens
    (down to ``min_ngram``) in prompt + output and propose the tokens that followed it.

    Deterministic (q = 1). ``k`` fixes the proposal length; by default the driver's adaptive
    length is used. Proposals are cut at the first token the constraint refuses.
    """

    name = "prompt-lookup"

    def __init__(self, ngram: int = 3, k: int | None = None, *, min_ngram: int = 2) -> None:
        super().__init__()
        if ngram < 1 or min_ngram < 1 or min_ngram > ngram:
            raise ValueError("need 1 <= min_ngram <= ngram")
        self.ngram = int(ngram)
        self.min_ngram = int(min_ngram)
        self.k = k

    def __repr__(self) -> str:
        return f"PromptLookupDraft(ngram={self.ngram}, k={self.k})"

    def propose(self, context_ids: Sequence[int], matcher: Any, k: int) -> tuple[list[int], Any]:
        k = self.k if self.k is not None else k
        ctx = np.asarray(context_ids, dtype=np.int64)
        L = len(ctx)
        if k <= 0 or L < 2:
            return [], None
        for n in range(min(self.ngram, L - 1), self.min_ngram - 1, -1):
            pattern = ctx[L - n:]
            hay = ctx[: L - 1]
            if len(hay) < n:
                continue
            win = np.lib.stride_tricks.sliding_window_view(hay, n)
            hits = np.flatnonzero((win == pattern).all(axis=1))
            if hits.size == 0:
                continue
            start = int(hits[-1]) + n
            cand = [int(t) for t in ctx[start : start + k]]
            eos = self.sampling.eos_ids if self.sampling is not None else matcher.vocab.eos_ids
            ok = advance(matcher, cand, eos)
            if ok:
                return cand[:ok], None
        return [], None


class JumpForwardDraft(Draft):
    """The grammar as a draft: when the constraint forces the next bytes
    (``matcher.forced_bytes()``, e.g. ``{"name":"``), propose a tokenisation of them with q = 1.
    The target verifies it like any draft, so the output distribution is unchanged; forced
    tokens cost no draft forward pass and do not count against the length budget (at most
    ``max_tokens`` per proposal).

    The tokenisation is the canonical one (``vocab.encode``) the first time a forced string is
    met. With ``learn`` (default) the draft then remembers how the target actually tokenised
    that string (keyed by the preceding token and the forced bytes; kept across generations)
    and proposes that next time: models often split forced JSON differently from the canonical
    tokenisation (``{`` ``"`` ``name`` ``":`` instead of ``{"`` ``name`` ``":"``), and a proposal
    that follows the model's habit is accepted far more often. This is still exact: the choice
    depends only on past output, never on the current round's randomness.
    """

    name = "jump-forward"
    free = True

    def __init__(self, max_tokens: int = 32, *, learn: bool = True, memory: int = 4096) -> None:
        super().__init__()
        self.max_tokens = int(max_tokens)
        self.learn = bool(learn)
        self.memory = int(memory)
        self._learned: dict[tuple[int | None, bytes], tuple[tuple[int, ...], int]] = {}
        self._pending: list[tuple[int, bytes, int | None, tuple[int, ...], int]] = []

    def __repr__(self) -> str:
        return f"JumpForwardDraft(max_tokens={self.max_tokens}, learn={self.learn})"

    def start(self, sampling: Sampling) -> None:
        super().start(sampling)
        self._pending = []

    def observe(self, context_ids: Sequence[int]) -> None:
        if self.learn and self._pending and self.sampling is not None:
            self._observe(context_ids, self.sampling.vocab)

    def _observe(self, context: Sequence[int], vocab: Any) -> None:
        """Record how the target tokenised forced strings proposed earlier (once they are complete).

        A pending entry is (start, forced bytes, preceding token, the 8 tokens before start, age).
        Entries proposed after other, unverified draft tokens (inside a combined draft) are
        dropped when those tokens turn out rejected (the anchor no longer matches).
        """
        keep = []
        rows = vocab.token_bytes
        n = len(context)
        for start, forced, prev, anchor, age in self._pending:
            if n < start:
                if age < 4:
                    keep.append((start, forced, prev, anchor, age + 1))
                continue
            if tuple(int(t) for t in context[max(0, start - 8) : start]) != anchor:
                continue  # proposed after draft tokens that were rejected
            toks = [int(t) for t in context[start:]]
            total = sum(len(rows[t] or b"") for t in toks)
            if total < len(forced):
                keep.append((start, forced, prev, anchor, age))  # the forced region is not complete yet
                continue
            acc = cut = 0
            for i, t in enumerate(toks):
                b = rows[t]
                if b is None or acc + len(b) > len(forced):
                    break
                acc += len(b)
                cut = i + 1
            if cut and vocab.decode(toks[:cut]) == forced[:acc]:
                value = (tuple(toks[:cut]), acc)
                if len(self._learned) >= self.memory:
                    self._learned.clear()
                self._learned[(prev, forced)] = value
                self._learned[(None, forced)] = value
        self._pending = keep[-32:]

    def propose(self, context_ids: Sequence[int], matcher: Any, k: int) -> tuple[list[int], Any]:
        vocab = matcher.vocab
        forced = matcher.forced_bytes()
        if not forced:
            return [], None
        prev = int(context_ids[-1]) if len(context_ids) else None
        ids: list[int] = []
        learned = self._learned.get((prev, forced)) or self._learned.get((None, forced)) if self.learn else None
        try:
            if learned is not None:
                ids = list(learned[0])
                if learned[1] < len(forced):
                    ids += vocab.encode(forced[learned[1]:])
            else:
                ids = vocab.encode(forced)
        except ConstrainError:
            return [], None
        if self.learn:
            start = len(context_ids)
            anchor = tuple(int(t) for t in context_ids[max(0, start - 8) : start])
            self._pending.append((start, forced, prev, anchor, 0))
        ids = [int(t) for t in ids[: self.max_tokens]]
        ok = advance(matcher, ids, vocab.eos_ids)
        return ids[:ok], None


class CombinedDraft(Draft):
    """Several drafts in turn, e.g. ``CombinedDraft([JumpForwardDraft(), EarlyExitDraft(layers=8)])``.

    Drafts are asked in order, each continuing from what the previous ones proposed, in cycles
    until none proposes anything or the budget ``k`` of non-free tokens is used. With
    ``interleave`` (default) a model draft proposes one token per cycle, so forced bytes that
    appear after it (a closing ``","age":``) are jumped over at once. ``last_sources`` names the
    draft of each proposed token of the last call.
    """

    name = "combined"

    def __init__(self, drafts: Sequence[Draft], *, interleave: bool = True, max_free: int = 64) -> None:
        super().__init__()
        self.drafts = [make_draft(d) for d in drafts]
        if not self.drafts:
            raise ValueError("CombinedDraft needs at least one draft")
        self.interleave = interleave
        self.max_free = int(max_free)
        self.deterministic = all(d.deterministic for d in self.drafts)
        self.last_sources: list[str] = []

    def __repr__(self) -> str:
        return f"CombinedDraft({self.drafts!r})"

    @property
    def label(self) -> str:
        return "+".join(d.name for d in self.drafts)

    def start(self, sampling: Sampling) -> None:
        super().start(sampling)
        for d in self.drafts:
            d.start(sampling)

    def finish(self) -> None:
        for d in self.drafts:
            d.finish()

    def forward_count(self) -> int:
        return sum(d.forward_count() for d in self.drafts)

    def observe(self, context_ids: Sequence[int]) -> None:
        for d in self.drafts:
            d.observe(context_ids)

    def propose(self, context_ids: Sequence[int], matcher: Any, k: int) -> tuple[list[int], Any]:
        s = self.sampling
        eos = s.eos_ids if s is not None else matcher.vocab.eos_ids
        ctx = [int(t) for t in context_ids]
        tokens: list[int] = []
        qs: list[Any] = []
        sources: list[str] = []
        used = free_used = 0
        done = False
        while not done:
            progressed = False
            for d in self.drafts:
                if d.free:
                    budget = self.max_free - free_used
                else:
                    budget = k - used
                    if self.interleave and not d.deterministic:
                        budget = min(budget, 1)
                if budget <= 0 or matcher.is_finished():
                    continue
                toks, q = d.propose(ctx, matcher.copy(), budget)
                toks = [int(t) for t in toks[:budget]]
                ok = advance(matcher, toks, eos)
                if not ok:
                    continue
                toks = toks[:ok]
                rows = [None] * ok if q is None else list(q[:ok])
                tokens += toks
                qs += rows
                sources += [d.name] * ok
                ctx += toks
                if d.free:
                    free_used += ok
                else:
                    used += ok
                progressed = True
                if toks[-1] in eos:
                    done = True
                    break
            if not progressed:
                break
        self.last_sources = sources
        if all(q is None for q in qs):
            return tokens, None
        return tokens, qs


# ---------------------------------------------------------------------------------------------


_NAMES = {
    "jump-forward": JumpForwardDraft,
    "jump_forward": JumpForwardDraft,
    "jf": JumpForwardDraft,
    "prompt-lookup": PromptLookupDraft,
    "prompt_lookup": PromptLookupDraft,
    "early-exit": EarlyExitDraft,
    "early_exit": EarlyExitDraft,
}


def make_draft(spec: Any) -> Draft:
    """A :class:`Draft` from a draft, a name (``"jump-forward"``, ``"prompt-lookup"``,
    ``"early-exit"``, or several joined with ``+``), a list of those (combined), or a model
    (a :class:`ModelDraft`)."""
    if isinstance(spec, Draft):
        return spec
    if isinstance(spec, str):
        parts = [p.strip().lower() for p in spec.split("+") if p.strip()]
        if not parts:
            raise ValueError("empty draft name")
        made = []
        for p in parts:
            cls = _NAMES.get(p)
            if cls is None:
                raise ValueError(f"unknown draft {p!r}; known: jump-forward, prompt-lookup, early-exit")
            made.append(cls())
        return made[0] if len(made) == 1 else CombinedDraft(made)
    if isinstance(spec, (list, tuple)):
        return CombinedDraft(list(spec))
    if hasattr(spec, "hf") or isinstance(spec, torch.nn.Module):
        return ModelDraft(spec)
    from ..lm import LanguageModel

    if isinstance(spec, LanguageModel):
        return ModelDraft(spec)
    raise TypeError(f"cannot make a draft from {type(spec).__name__}")
