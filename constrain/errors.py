"""Every exception constrain raises, rooted at :class:`ConstrainError`.

Callers can catch ``ConstrainError`` for "anything from this library". Errors
caused by bad arguments also inherit :class:`ValueError` so generic handlers
keep working::

    ConstrainError
    ├── ConstraintError (ValueError)      bad constraint text or object
    │   ├── RegexError                    invalid regex (with position)
    │   ├── SchemaError                   invalid JSON Schema (with JSON pointer)
    │   ├── GrammarError                  invalid grammar (with line/column)
    │   └── UnsupportedError              valid input using a feature we cannot enforce
    ├── VocabularyError (ValueError)      tokenizer/model mismatch, unusable tokenizer
    ├── ModelError                        model could not be found or loaded
    ├── DeadEndError                      a matcher reached a state with no allowed token
    │   └── ParticlesDeadError            every SMC particle has weight zero
    └── SamplerError                      a sampler could not produce a result
        ├── CriticError                   an SMC critic raised or returned a bad log-weight
        └── TrieFullError (MemoryError)   the ASAp trie reached its bound
"""

from __future__ import annotations

__all__ = [
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


class ConstrainError(Exception):
    """Root of every error raised by constrain."""


class ConstraintError(ConstrainError, ValueError):
    """The constraint (regex, schema, grammar) is invalid or cannot be enforced.

    ``position`` is an offset into the source text, ``pointer`` a JSON pointer,
    ``line``/``column`` a grammar location: whichever applies, else None.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        position: int | None = None,
        pointer: str | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        self.message = message
        self.source = source
        self.position = position
        self.pointer = pointer
        self.line = line
        self.column = column
        super().__init__(self._render())

    def _render(self) -> str:
        parts = [self.message]
        if self.pointer is not None:
            parts.append(f"at JSON pointer {self.pointer!r}")
        if self.line is not None:
            parts.append(f"at line {self.line}, column {self.column}")
        if self.position is not None:
            parts.append(f"at position {self.position}")
            if self.source is not None and len(self.source) <= 200:
                parts.append(f"\n  {self.source}\n  {' ' * self.position}^")
        return " ".join(parts[:-1] + [parts[-1]]) if len(parts) > 1 else parts[0]


class RegexError(ConstraintError):
    """The regular expression is malformed."""


class SchemaError(ConstraintError):
    """The JSON Schema is malformed, unresolvable or describes the empty language."""


class GrammarError(ConstraintError):
    """The grammar is malformed, has undefined rules, or describes the empty language."""


class UnsupportedError(ConstraintError):
    """The input is valid but uses a feature constrain cannot enforce exactly.

    Raised instead of silently enforcing a looser constraint.
    """


class VocabularyError(ConstrainError, ValueError):
    """The tokenizer cannot be turned into a byte vocabulary, or it does not fit the model."""


class ModelError(ConstrainError):
    """The model could not be located or loaded."""


class DeadEndError(ConstrainError):
    """Generation reached a state where no token is allowed.

    Carries the partial output so callers can inspect how far it got.
    """

    def __init__(self, message: str, *, partial: bytes | None = None) -> None:
        self.partial = partial
        super().__init__(message)


class SamplerError(ConstrainError):
    """A sampler could not produce a result."""


class CriticError(SamplerError):
    """The SMC critic raised or returned something that is not a log-weight (float, not NaN/+inf).

    ``text`` is the (partial) output it was called on; the original exception is ``__cause__``.
    """

    def __init__(self, message: str, *, text: str | None = None) -> None:
        self.text = text
        super().__init__(message)


class ParticlesDeadError(DeadEndError):
    """Every SMC particle has weight zero (the model gives no mass to any continuation in the language)."""


class TrieFullError(SamplerError, MemoryError):
    """The ASAp trie reached ``max_nodes`` (with ``on_full="error"``, or nothing left to evict)."""
