"""Token-level automaton for constraints that compile to one byte DFA.

Masks are computed lazily per DFA state by walking the vocabulary trie
through the DFA (numba kernel) and memoised, so compiling is cheap and a
revisited state costs one memory copy. States that loop on plain string text
start from the vocabulary's precomputed plain slice and walk only the other
tokens (see :mod:`.slices`).
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from ..automata.dfa import ByteDFA
from . import _kernels
from .base import Constraint, Matcher
from .bitmask import allocate_mask, as_uint32_words, mask_from_ids
from .slices import PlainTables, plain_budget, plain_slice_for
from .trie import trie_for

_FINISHED = -2


class DFAConstraint(Constraint):
    """A byte DFA bound to a vocabulary."""

    def __init__(self, dfa: ByteDFA, vocab: Any, *, source: str | None = None) -> None:
        self.dfa = dfa
        self.vocab = vocab
        self.source = source
        self.trie = trie_for(vocab)
        self._masks: dict[int, np.ndarray] = {}
        self._lock = threading.Lock()
        eos = [t for t in vocab.eos_ids if t < vocab.size]
        self._eos_words = mask_from_ids(eos, vocab.size)
        self._byte_class = np.ascontiguousarray(dfa.byte_class, dtype=np.int32)
        self._table = np.ascontiguousarray(dfa.table, dtype=np.int32)
        self._plain = PlainTables.of(self._table, self._byte_class)

    def __repr__(self) -> str:
        src = f" {self.source!r}" if self.source is not None and len(self.source) < 80 else ""
        return f"<DFAConstraint{src} states={self.dfa.num_states} vocab={self.vocab.size}>"

    def matcher(self) -> "DFAMatcher":
        return DFAMatcher(self)

    def mask(self, state: int) -> np.ndarray:
        """The read-only packed mask of ``state`` (memoised)."""
        got = self._masks.get(state)
        if got is not None:
            return got
        t = self.trie
        sl = plain_slice_for(self.vocab)
        budget = plain_budget(self._plain, state, sl.max_chars)
        if budget is not None:  # every plain token of at most `budget` characters is allowed, no other
            out = sl.words(budget).copy()
            t = sl.rest
        else:
            out = allocate_mask(self.vocab.size)
        _kernels.dfa_trie_mask(
            self._table, self._byte_class, state, t.node_byte, t.node_depth, t.node_end,
            t.tok_start, t.tok_ids, t.max_depth, out,
        )
        if self.dfa.accepting[state]:
            out |= self._eos_words
        out.setflags(write=False)
        with self._lock:
            return self._masks.setdefault(state, out)

    def num_cached_masks(self) -> int:
        return len(self._masks)


class DFAMatcher(Matcher):
    __slots__ = ("constraint", "_stack")

    def __init__(self, constraint: DFAConstraint, stack: list[int] | None = None) -> None:
        self.constraint = constraint
        self._stack = [constraint.dfa.start] if stack is None else stack

    @property
    def state(self) -> int:
        """The DFA state (-2 once EOS has been accepted)."""
        return self._stack[-1]

    def fill_mask(self, out: Any) -> None:
        words = as_uint32_words(out)
        s = self._stack[-1]
        if s == _FINISHED:
            words[...] = 0
        else:
            np.copyto(words, self.constraint.mask(s))

    def accept_token(self, token_id: int) -> bool:
        s = self._stack[-1]
        if s == _FINISHED:
            return False
        c = self.constraint
        vocab = c.vocab
        if token_id in vocab.eos_ids:
            if c.dfa.accepting[s]:
                self._stack.append(_FINISHED)
                return True
            return False
        if not 0 <= token_id < vocab.size:
            return False
        data = vocab.token_bytes[token_id]
        if not data:
            return False
        return self._advance(s, data)

    def accept_bytes(self, data: bytes) -> bool:
        s = self._stack[-1]
        if s == _FINISHED:
            return False
        return self._advance(s, data)

    def _advance(self, s: int, data: bytes) -> bool:
        ns = self.constraint.dfa.step(s, data)
        if ns < 0:
            return False
        self._stack.append(ns)
        return True

    def is_accepting(self) -> bool:
        s = self._stack[-1]
        return s == _FINISHED or bool(self.constraint.dfa.accepting[s])

    def is_finished(self) -> bool:
        return self._stack[-1] == _FINISHED

    def is_dead(self) -> bool:
        s = self._stack[-1]
        return s != _FINISHED and not self.constraint.mask(s).any()

    def rollback(self, n: int = 1) -> None:
        if n < 0 or n >= len(self._stack):
            raise ValueError(f"cannot roll back {n} steps: only {len(self._stack) - 1} were taken")
        if n:
            del self._stack[-n:]

    def copy(self) -> "DFAMatcher":
        return DFAMatcher(self.constraint, list(self._stack))

    def forced_bytes(self) -> bytes:
        s = self._stack[-1]
        if s == _FINISHED:
            return b""
        return self.constraint.dfa.forced_bytes(s)

    @property
    def num_steps(self) -> int:
        return len(self._stack) - 1
