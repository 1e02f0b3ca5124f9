"""Front doors: text constraints -> compiled, vocabulary-bound constraints."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from .automata.dfa import ByteDFA
from .regex import regex_to_dfa
from .tokens.dfa_constraint import DFAConstraint


@lru_cache(maxsize=256)
def _cached_regex_dfa(pattern: str) -> ByteDFA:
    return regex_to_dfa(pattern)


def compile_regex(pattern: str, vocab: Any) -> DFAConstraint:
    """Compile ``pattern`` (matched against the whole output) for ``vocab``.

    The byte DFA is cached per pattern, so binding the same regex to several
    vocabularies compiles it once. Raises RegexError (with the position) for
    malformed patterns and UnsupportedError for non-regular features.
    """
    return DFAConstraint(_cached_regex_dfa(pattern), vocab, source=pattern)
