"""constrain: constrained generation from language models.

Regexes, JSON Schemas and grammars compile to byte automata, then to token
automata with precomputed vocabulary masks; matchers drive masking,
distribution-faithful samplers and speculative decoding on transformers models.

Model-facing names (``load_model``, ``generate``...) are imported lazily so that
``import constrain`` stays cheap for users who only need masks.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from .compile import compile_regex
from .errors import (
    ConstrainError,
    ConstraintError,
    CriticError,
    DeadEndError,
    GrammarError,
    ModelError,
    ParticlesDeadError,
    RegexError,
    SamplerError,
    SchemaError,
    TrieFullError,
    UnsupportedError,
    VocabularyError,
)
from .tokens import Constraint, Matcher, allocate_mask, mask_words
from .vocabulary import Vocabulary

__version__ = "0.1.0"

_LAZY = {
    "load_model": ".model",
    "Model": ".model",
    "generate": ".generation",
    "GenerationResult": ".generation",
    "get_constraint": ".generation",
    "sample": ".samplers",
    "SampleResult": ".samplers",
    "SMCResult": ".samplers",
    "ASAp": ".samplers",
    "LanguageModel": ".lm",
    "TableLM": ".lm",
    "HFLM": ".lm",
    "ConstrainLogitsProcessor": ".integrations.transformers",
    "compile_grammar": ".grammar",
    "compile_json_schema": ".schema",
    "JSONSchemaConstraint": ".schema",
    "check_grammar": ".grammar",
    "speculative_generate": ".speculative",
    "JumpForwardDraft": ".speculative",
    "PromptLookupDraft": ".speculative",
    "EarlyExitDraft": ".speculative",
    "ModelDraft": ".speculative",
    "CombinedDraft": ".speculative",
}

__all__ = [
    "Vocabulary",
    "compile_regex",
    "compile_json_schema",
    "JSONSchemaConstraint",
    "Constraint",
    "Matcher",
    "allocate_mask",
    "mask_words",
    "load_model",
    "Model",
    "generate",
    "GenerationResult",
    "get_constraint",
    "sample",
    "SampleResult",
    "SMCResult",
    "ASAp",
    "LanguageModel",
    "TableLM",
    "HFLM",
    "ConstrainLogitsProcessor",
    "compile_grammar",
    "check_grammar",
    "speculative_generate",
    "JumpForwardDraft",
    "PromptLookupDraft",
    "EarlyExitDraft",
    "ModelDraft",
    "CombinedDraft",
    "ConstrainError",
    "ConstraintError",
    "RegexError",
    "SchemaError",
    "GrammarError",
    "UnsupportedError",
    "VocabularyError",
    "ModelError",
    "DeadEndError",
    "ParticlesDeadError",
    "SamplerError",
    "CriticError",
    "TrieFullError",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'constrain' has no attribute {name!r}")
    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value
