"""Grammar constraints: the Constraint/Matcher contract over the Earley chart."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..tokens.base import Constraint, Matcher
from ..tokens.bitmask import as_uint32_words, is_allowed
from .earley import CompiledGrammar, ESet, next_bytes, step
from .ir import Grammar
from .masks import MaskEngine

_FINISHED = None  # stack entry once EOS has been accepted


class GrammarConstraint(Constraint):
    """A compiled grammar bound to a vocabulary (immutable, shareable across threads)."""

    def __init__(self, grammar: Grammar | CompiledGrammar, vocab: Any, *, source: str | None = None,
                 use_numba: bool = True) -> None:
        self.compiled = grammar if isinstance(grammar, CompiledGrammar) else CompiledGrammar(grammar)
        self.grammar = self.compiled.grammar
        self.vocab = vocab
        self.source = source
        self.engine = MaskEngine(self.compiled, vocab, use_numba=use_numba)
        self._initial = self.compiled.initial_set()
        self._eos = frozenset(vocab.eos_ids)

    def __repr__(self) -> str:
        g = self.grammar
        return (f"<GrammarConstraint start={g.start!r} rules={len(g.rules)} terminals={len(g.terminals)} "
                f"vocab={self.vocab.size}>")

    def matcher(self) -> "GrammarMatcher":
        return GrammarMatcher(self)

    def mask(self, S: ESet) -> np.ndarray:
        return self.engine.mask(S)


class GrammarMatcher(Matcher):
    """A cursor over the Earley chart. ``_stack`` holds the set after each accepted step."""

    __slots__ = ("constraint", "_stack")

    def __init__(self, constraint: GrammarConstraint, stack: list | None = None) -> None:
        self.constraint = constraint
        self._stack: list = [constraint._initial] if stack is None else stack

    @property
    def earley_set(self) -> ESet | None:
        return self._stack[-1]

    def fill_mask(self, out: Any) -> None:
        words = as_uint32_words(out)
        S = self._stack[-1]
        if S is _FINISHED:
            words[...] = 0
        else:
            np.copyto(words, self.constraint.engine.mask(S))

    def _advance(self, S: ESet, data: bytes) -> ESet | None:
        cg = self.constraint.compiled
        nxt = S
        for b in data:
            nxt = step(cg, nxt, b)
            if nxt is None:
                return None
        self.constraint.engine.carry(S, data, nxt)
        return nxt

    def accept_token(self, token_id: int) -> bool:
        S = self._stack[-1]
        if S is _FINISHED:
            return False
        c = self.constraint
        if token_id in c._eos:
            if S.accepting:
                self._stack.append(_FINISHED)
                return True
            return False
        vocab = c.vocab
        if not 0 <= token_id < vocab.size:
            return False
        data = vocab.token_bytes[token_id]
        if not data:
            return False
        nxt = self._advance(S, data)
        if nxt is None:
            return False
        self._stack.append(nxt)
        return True

    def accept_bytes(self, data: bytes) -> bool:
        S = self._stack[-1]
        if S is _FINISHED:
            return False
        nxt = self._advance(S, bytes(data))
        if nxt is None:
            return False
        self._stack.append(nxt)
        return True

    def is_accepting(self) -> bool:
        S = self._stack[-1]
        return S is _FINISHED or S.accepting

    def is_finished(self) -> bool:
        return self._stack[-1] is _FINISHED

    def is_dead(self) -> bool:
        S = self._stack[-1]
        if S is _FINISHED:
            return False
        return not self.constraint.engine.mask(S).any()

    def is_allowed(self, token_id: int) -> bool:
        S = self._stack[-1]
        if S is _FINISHED:
            return False
        return is_allowed(self.constraint.engine.mask(S), token_id)

    def rollback(self, n: int = 1) -> None:
        if n < 0 or n >= len(self._stack):
            raise ValueError(f"cannot roll back {n} steps: only {len(self._stack) - 1} were taken")
        if n:
            del self._stack[-n:]

    def copy(self) -> "GrammarMatcher":
        return GrammarMatcher(self.constraint, list(self._stack))

    def forced_bytes(self, limit: int = 4096) -> bytes:
        S = self._stack[-1]
        if S is _FINISHED:
            return b""
        cg = self.constraint.compiled
        out = bytearray()
        while len(out) < limit and not S.accepting:
            bits = next_bytes(cg, S)
            if bits == 0 or bits & (bits - 1):
                break
            b = bits.bit_length() - 1
            nxt = step(cg, S, b)
            if nxt is None:  # pragma: no cover - a live byte always steps
                break
            out.append(b)
            S = nxt
        return bytes(out)

    @property
    def num_steps(self) -> int:
        return len(self._stack) - 1

    def consumed(self) -> int:
        """Bytes accepted so far."""
        S = self._stack[-1] if self._stack[-1] is not _FINISHED else self._stack[-2]
        return S.pos
