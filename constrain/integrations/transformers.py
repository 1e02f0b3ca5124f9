"""A transformers ``LogitsProcessor`` that enforces a constrain constraint inside ``model.generate``.

    from transformers import LogitsProcessorList
    from constrain.integrations.transformers import ConstrainLogitsProcessor

    proc = ConstrainLogitsProcessor.from_regex(r"\\d{4}-\\d{2}-\\d{2}", model)
    out = model.hf.generate(**inputs, logits_processor=LogitsProcessorList([proc]),
                            max_new_tokens=32, do_sample=False)

Each batch row gets its own matcher, advanced with the tokens generated since the prompt; the
allowed-token bitmask is unpacked and applied on the scores' device. Use one processor per
``generate`` call (or call :meth:`ConstrainLogitsProcessor.reset`). Rows are matched to their
token history on every call, so beam search (which reorders rows) works too - pass
``on_invalid="eos"`` for it (see the class). Put this processor last in the list so that no
later processor can change the masked scores.
"""

from __future__ import annotations

from typing import Any, Sequence

from transformers import LogitsProcessor

from ..errors import ConstraintError, DeadEndError

__all__ = ["ConstrainLogitsProcessor"]


def _vocab_of(obj: Any) -> Any:
    if obj is None:
        return None
    if hasattr(obj, "token_bytes") and hasattr(obj, "fingerprint"):
        return obj
    vocab = getattr(obj, "vocab", None)  # a constrain Model
    if vocab is not None:
        return vocab
    raise TypeError(f"expected a constrain Vocabulary or Model, not {type(obj).__name__}")


class _Invalid:
    """Stands in for the matcher of a row that holds a forbidden token (``on_invalid="eos"``)."""


_INVALID = _Invalid()


class ConstrainLogitsProcessor(LogitsProcessor):
    """Mask ``scores`` so every row of ``generate`` stays inside ``constraint``.

    ``constraint``: a compiled constraint (``constrain.compile_regex(...)``), or a regex string
    when ``vocab`` is given. ``vocab``: a :class:`~constrain.Vocabulary` or a constrain ``Model``
    (defaults to the constraint's vocabulary). ``prompt_lengths``: where generated tokens start in
    ``input_ids`` - one int for the (left-padded) batch, or one per row; by default the length
    of ``input_ids`` at the first call, which is right for ``generate``.

    ``on_invalid``: what to do when a row already holds a token the constraint forbids.
    ``"raise"`` (default) raises :class:`DeadEndError` - with greedy search or sampling that
    only happens when something overrode the mask. Beam search does it by design (when fewer
    candidates than beams are allowed it keeps ``-inf``-scored rows around), so pass
    ``on_invalid="eos"`` there: such rows may then only produce EOS, with their score at -inf.
    """

    supports_continuous_batching = False

    def __init__(
        self,
        constraint: Any,
        vocab: Any = None,
        prompt_lengths: int | Sequence[int] | None = None,
        *,
        on_invalid: str = "raise",
    ) -> None:
        if on_invalid not in ("raise", "eos"):
            raise ValueError("on_invalid must be 'raise' or 'eos'")
        self.on_invalid = on_invalid
        vocab = _vocab_of(vocab)
        if isinstance(constraint, str):
            if vocab is None:
                raise ConstraintError("a regex constraint needs the vocabulary (or model) as second argument")
            from ..generation import get_constraint

            constraint = get_constraint(vocab, regex=constraint)
        if not callable(getattr(constraint, "matcher", None)):
            raise ConstraintError(f"expected a compiled constraint, not {type(constraint).__name__}")
        cvocab = getattr(constraint, "vocab", None)
        if vocab is None:
            vocab = cvocab
        elif cvocab is not None and cvocab is not vocab and cvocab.fingerprint != vocab.fingerprint:
            from ..errors import VocabularyError

            raise VocabularyError("the constraint was compiled for a different vocabulary")
        if vocab is None:
            raise ConstraintError("cannot tell the vocabulary: pass it (or the model) as second argument")
        self.constraint = constraint
        self.vocab = vocab
        self.prompt_lengths = prompt_lengths
        self._eos = sorted(t for t in vocab.eos_ids if t < vocab.size)
        self.reset()

    @classmethod
    def from_regex(cls, pattern: str, model_or_vocab: Any, **kwargs: Any) -> "ConstrainLogitsProcessor":
        from ..generation import get_constraint

        vocab = _vocab_of(model_or_vocab)
        return cls(get_constraint(vocab, regex=pattern), vocab, **kwargs)

    @classmethod
    def from_schema(cls, schema: Any, model_or_vocab: Any, **kwargs: Any) -> "ConstrainLogitsProcessor":
        """``schema``: a dict, JSON text or a path to a JSON Schema file."""
        from ..generation import get_constraint

        vocab = _vocab_of(model_or_vocab)
        return cls(get_constraint(vocab, schema=schema), vocab, **kwargs)

    def reset(self) -> None:
        """Forget all rows (start of a new ``generate`` call)."""
        self._starts: list[int] | None = None
        self._matchers: list[Any] = []
        self._hist: list[list[int]] = []
        self._masker = None
        self._last_len = -1

    # -- per-row bookkeeping ---------------------------------------------------------------
    def _row_starts(self, batch: int, length: int) -> list[int]:
        p = self.prompt_lengths
        if p is None:
            return [length] * batch
        if isinstance(p, int):
            return [p] * batch
        p = list(p)
        if len(p) != batch:
            raise ValueError(f"prompt_lengths has {len(p)} entries for a batch of {batch} rows")
        return p

    def _sync(self, input_ids: Any) -> None:
        batch, length = input_ids.shape
        if self._starts is None or len(self._starts) != batch or length < self._last_len:
            self.reset()
            self._starts = self._row_starts(batch, length)
            self._matchers = [self.constraint.matcher() for _ in range(batch)]
            self._hist = [[] for _ in range(batch)]
        self._last_len = length
        lo = min(self._starts)
        rows = input_ids[:, lo:].tolist()  # the host sync: the matchers need the tokens
        old_m, old_h = self._matchers, self._hist
        # Which previous row each row continues (itself, unless beam search reordered the rows);
        # decided before any matcher moves, so a forked matcher is copied in its old state.
        seqs = [rows[i][self._starts[i] - lo:] for i in range(batch)]
        parents: list[int | None] = []
        for i, seq in enumerate(seqs):
            if seq[: len(old_h[i])] == old_h[i]:
                parents.append(i)
                continue
            best: int | None = None
            for j in range(batch):
                hj = old_h[j]
                if seq[: len(hj)] == hj and (best is None or len(hj) > len(old_h[best])):
                    best = j
            parents.append(best)
        uses: dict[int, int] = {}
        for p in parents:
            if p is not None:
                uses[p] = uses.get(p, 0) + 1
        starts: list[tuple[Any, list[int]]] = []
        for p in parents:
            if p is None:
                starts.append((self.constraint.matcher(), []))
            else:
                m = old_m[p]
                if uses[p] > 1 and m is not _INVALID:
                    m = m.copy()
                starts.append((m, list(old_h[p])))
        new_m: list[Any] = []
        new_h: list[list[int]] = []
        for i, seq in enumerate(seqs):
            m, h = starts[i]
            for t in seq[len(h):]:
                if m is _INVALID:
                    h.append(int(t))
                elif m.accept_token(int(t)):
                    h.append(int(t))
                elif m.is_finished():
                    h.append(int(t))  # padding after EOS
                elif self.on_invalid == "eos":
                    m = _INVALID
                    h.append(int(t))
                else:
                    partial = self.vocab.decode([x for x in h if x not in self.vocab.eos_ids])
                    raise DeadEndError(
                        f"row {i}: token {t} is not allowed by the constraint (did another logits "
                        f"processor or forced token produce it? with beam search, pass "
                        f"on_invalid='eos'); partial output: {partial[-200:]!r}",
                        partial=partial,
                    )
            new_m.append(m)
            new_h.append(h)
        self._matchers, self._hist = new_m, new_h

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import numpy as np

        from ..generation import _DeviceMasker

        self._sync(input_ids)
        batch, width = scores.shape
        masker = self._masker
        if masker is None or masker.host.shape[0] != batch or masker.width != width or masker.device != scores.device:
            masker = self._masker = _DeviceMasker(batch, self.vocab.size, width, scores.device)
        host = masker.host.numpy().view(np.uint32)
        for i, m in enumerate(self._matchers):
            row = host[i]
            if m is _INVALID or m.is_finished():
                row[...] = 0
                for t in self._eos:  # the row is complete: only EOS may follow
                    row[t >> 5] |= np.uint32(1 << (t & 31))
                continue
            m.fill_mask(row)
            if not row.any():
                partial = self.vocab.decode(self._hist[i])
                raise DeadEndError(
                    f"row {i}: the constraint allows no token after {len(self._hist[i])} tokens; "
                    f"partial output: {partial[-200:]!r}",
                    partial=partial,
                )
        return masker.apply(scores)
