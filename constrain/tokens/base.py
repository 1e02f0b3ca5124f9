"""The contract every constraint kind implements (regex, JSON Schema, grammar).

A :class:`Constraint` is the immutable compiled artefact (shareable across
threads and sequences); a :class:`Matcher` is a cheap mutable cursor over it.
Samplers and generation loops only ever talk to these two classes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Iterable

import numpy as np

from .bitmask import allocate_mask, ids_from_mask


class Constraint(ABC):
    """A compiled constraint bound to one vocabulary."""

    vocab: Any

    @abstractmethod
    def matcher(self) -> "Matcher":
        """A fresh cursor at the start of the language."""


class Matcher(ABC):
    """A position in a constraint's language, advanced token by token."""

    constraint: Constraint

    @property
    def vocab(self) -> Any:
        return self.constraint.vocab

    @abstractmethod
    def fill_mask(self, out: Any) -> None:
        """Write the packed bitmask of allowed token ids into ``out``.

        ``out`` is a uint32/int32 numpy array or CPU torch tensor of
        ``(vocab.size + 31) // 32`` words. EOS ids are set exactly when the
        output so far is complete.
        """

    @abstractmethod
    def accept_token(self, token_id: int) -> bool:
        """Advance by one token; False (and no change) if it is not allowed."""

    @abstractmethod
    def accept_bytes(self, data: bytes) -> bool:
        """Advance by raw bytes (one rollback step); False and no change if not live."""

    @abstractmethod
    def is_accepting(self) -> bool:
        """The output so far is a complete string of the language."""

    @abstractmethod
    def is_finished(self) -> bool:
        """An EOS token was accepted: nothing more may follow."""

    @abstractmethod
    def rollback(self, n: int = 1) -> None:
        """Undo the last ``n`` accepted tokens or byte strings."""

    @abstractmethod
    def copy(self) -> "Matcher":
        """An independent cursor at the same position."""

    @abstractmethod
    def forced_bytes(self) -> bytes:
        """Bytes every continuation must start with (empty when there is a choice)."""

    # -- derived conveniences ---------------------------------------------
    def allowed_token_ids(self) -> np.ndarray:
        out = allocate_mask(self.vocab.size)
        self.fill_mask(out)
        return ids_from_mask(out, self.vocab.size)

    def is_dead(self) -> bool:
        """No token is allowed and the matcher has not finished: a dead end."""
        if self.is_finished():
            return False
        out = allocate_mask(self.vocab.size)
        self.fill_mask(out)
        return not out.any()

    def accept_tokens(self, token_ids: Iterable[int]) -> int:
        """Accept tokens until one is refused; return how many were accepted."""
        n = 0
        for t in token_ids:
            if not self.accept_token(int(t)):
                break
            n += 1
        return n
