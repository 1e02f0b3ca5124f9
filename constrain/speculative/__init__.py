"""Speculative decoding under constraints, with grammar jump-forward.

>>> from constrain.speculative import speculative_generate, JumpForwardDraft, EarlyExitDraft
>>> r = speculative_generate(model, "Describe a person as JSON.", schema=schema,
...                          draft=[JumpForwardDraft(), EarlyExitDraft(layers=8)])   # doctest: +SKIP
>>> r.stats["acceptance_rate"], r.stats["forwards_per_token"]                       # doctest: +SKIP

The target verifies every proposal with the constraint's mask applied to both the target and
the draft distributions, so outputs are distributed exactly as plain constrained sampling from
the target (greedy: token-for-token the same output). See docs/speculative.md.
"""

from .core import SpeculativeResult, speculative_generate
from .drafts import (
    CombinedDraft,
    Draft,
    EarlyExitDraft,
    JumpForwardDraft,
    ModelDraft,
    PromptLookupDraft,
    make_draft,
    truncated_causal_lm,
)

__all__ = [
    "speculative_generate",
    "SpeculativeResult",
    "Draft",
    "ModelDraft",
    "EarlyExitDraft",
    "PromptLookupDraft",
    "JumpForwardDraft",
    "CombinedDraft",
    "make_draft",
    "truncated_causal_lm",
]
