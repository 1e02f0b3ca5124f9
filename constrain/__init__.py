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
    DeadEndError,
    GrammarError,
    ModelError,
    RegexError,
    SchemaError,
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
}

__all__ = [
    "Vocabulary",
    "compile_regex",
    "Constraint",
    "Matcher",
    "allocate_mask",
    "mask_words",
    "load_model",
    "Model",
    "generate",
    "GenerationResult",
    "ConstrainError",
    "ConstraintError",
    "RegexError",
    "SchemaError",
    "GrammarError",
    "UnsupportedError",
    "VocabularyError",
    "ModelError",
    "DeadEndError",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'constrain' has no attribute {name!r}")
    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value
