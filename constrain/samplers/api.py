"""``sample``: one entry point for every sampler."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from ..errors import ConstraintError
from ..lm import HFLM, LanguageModel
from .asap import ASAp
from .awrs import awrs_sample
from .lcd import lcd_sample
from .result import SampleResult, SMCResult
from .smc import smc

__all__ = ["sample", "as_language_model", "METHODS"]

METHODS = ("lcd", "asap", "awrs", "smc")

_compiled: "OrderedDict[tuple[str, str], Any]" = OrderedDict()
_lock = threading.Lock()


def as_language_model(lm_or_model: Any, prompt: Any = None, *, chat: bool = True, system: str | None = None) -> LanguageModel:
    """A :class:`LanguageModel` from a LanguageModel (``prompt`` must then be None) or a
    :class:`constrain.Model` plus a prompt (text, chat messages or token ids)."""
    if isinstance(lm_or_model, LanguageModel):
        if prompt is not None and prompt != "" and prompt != ():
            raise ValueError(
                f"{type(lm_or_model).__name__} is already bound to its context; pass prompt=None "
                "(or pass a constrain.Model to condition on a prompt)"
            )
        return lm_or_model
    if hasattr(lm_or_model, "hf") and hasattr(lm_or_model, "vocab"):
        return HFLM.from_prompt(lm_or_model, prompt, chat=chat, system=system)
    raise TypeError(f"expected a constrain.Model or a LanguageModel, not {type(lm_or_model).__name__}")


def _resolve_constraint(constraint: Any, vocab: Any) -> Any:
    if isinstance(constraint, str):
        from ..compile import compile_regex

        key = (constraint, vocab.fingerprint)
        with _lock:
            hit = _compiled.get(key)
            if hit is not None:
                _compiled.move_to_end(key)
                return hit
        compiled = compile_regex(constraint, vocab)
        with _lock:
            _compiled[key] = compiled
            while len(_compiled) > 32:
                _compiled.popitem(last=False)
        return compiled
    if constraint is None or not callable(getattr(constraint, "matcher", None)):
        raise ConstraintError(
            f"constraint must be a compiled Constraint or a regex string, not {type(constraint).__name__}"
        )
    return constraint


def sample(
    lm_or_model: Any,
    prompt: Any = None,
    constraint: Any = None,
    method: str = "lcd",
    n: int = 1,
    *,
    chat: bool = True,
    system: str | None = None,
    **options: Any,
) -> list[SampleResult] | SMCResult:
    """Sample ``n`` outputs of ``lm_or_model`` (given ``prompt``) that satisfy ``constraint``.

    ``lm_or_model``: a :class:`constrain.Model` (``prompt`` is then a text, chat messages or
    token ids, through the chat template when ``chat``) or a :class:`~constrain.lm.LanguageModel`
    (``prompt=None``). ``constraint``: a compiled constraint or a regex string.

    ``method``:

    * ``"lcd"`` - token masking (valid, but locally renormalised: biased).
      Options: ``temperature``, ``top_k``, ``top_p``, ``max_tokens``, ``seed``.
    * ``"awrs"`` - adaptive rejection sampling: LCD's distribution with far fewer constraint
      checks, plus unbiased importance weights. Options: ``weighted``, ``temperature``, ``topk``,
      ``max_tokens``, ``seed``.
    * ``"asap"`` - grammar-aligned sampling, converging to ``P_LM(x | x in L)``. Options:
      ``asap`` (an :class:`ASAp` state to continue; its own LM and constraint are used),
      ``max_nodes``, ``on_full``, ``max_tokens``, ``seed``.
    * ``"smc"`` - sequential Monte Carlo with ``n`` particles; returns an :class:`SMCResult`
      (weighted particles, posterior over strings, log marginal likelihood). Options:
      ``ess_threshold``, ``resampling``, ``proposal``, ``critic``, ``critic_mode``,
      ``temperature``, ``topk``, ``max_tokens``, ``seed``.

    Returns a list of :class:`SampleResult` (an :class:`SMCResult` for ``"smc"``).
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if method == "asap" and options.get("asap") is not None:
        state: ASAp = options.pop("asap")
        if not isinstance(state, ASAp):
            raise TypeError(f"asap= must be an ASAp state, not {type(state).__name__}")
        max_tokens = options.pop("max_tokens", 256)
        if options:
            raise TypeError(f"unexpected options with asap=: {', '.join(sorted(options))}")
        return state.sample(n, max_tokens=max_tokens)
    options.pop("asap", None)
    lm = as_language_model(lm_or_model, prompt, chat=chat, system=system)
    compiled = _resolve_constraint(constraint, lm.vocab)
    if method == "lcd":
        return lcd_sample(lm, compiled, n, **options)
    if method == "awrs":
        return awrs_sample(lm, compiled, n, **options)
    if method == "smc":
        return smc(lm, compiled, n, **options)
    max_tokens = options.pop("max_tokens", 256)
    state = ASAp(lm, compiled, **options)
    return state.sample(n, max_tokens=max_tokens)
