"""The plain-text slice of a vocabulary, shared by every string-body state.

Inside a JSON string with no pattern or length bound, the DFA loops on every
character but ``"``, ``\\`` and controls, so nearly the whole vocabulary is
allowed and a trie walk visits nearly every node (milliseconds on a 150k
vocabulary, paid once per such state of every schema). The tokens made only of
such characters (the slice) are allowed from any state that absorbs them, so
their mask is computed once per vocabulary; only the remaining tokens, a few
percent, are walked. llguidance's "slicer" applies the same observation to its
lexer's string states.
"""

from __future__ import annotations

import numpy as np

from . import _kernels
from .bitmask import mask_from_ids
from .trie import PerVocabulary, TokenTrie


class PlainSlice:
    """The plain tokens of one vocabulary and a trie of all the others."""

    def __init__(self, token_bytes) -> None:
        n = len(token_bytes)
        chars = np.full(n, -1, dtype=np.int32)  # characters of each plain token, -1 if not plain
        for i, b in enumerate(token_bytes):
            if b and is_plain(b):
                chars[i] = len(b.decode("utf-8"))
        self.chars = chars
        self.max_chars = int(chars.max()) if n else 0
        self.count = int((chars >= 0).sum())
        self.rest = TokenTrie.build([None if chars[i] >= 0 else b for i, b in enumerate(token_bytes)])
        # cumulative masks by length: _by_budget[k] holds the plain tokens of <= k characters
        acc = np.zeros_like(mask_from_ids([], n))
        self._by_budget = []
        for k in range(self.max_chars + 1):
            ids = np.nonzero(chars == k)[0]
            if len(ids):
                acc = acc | mask_from_ids(ids, n)
            acc.setflags(write=False)
            self._by_budget.append(acc)

    def words(self, budget: int) -> np.ndarray:
        """Packed mask (read-only) of the plain tokens of at most ``budget`` characters (-1: any length)."""
        if budget < 0 or budget >= self.max_chars:
            budget = self.max_chars
        return self._by_budget[budget]


def is_plain(b: bytes) -> bool:
    """Complete UTF-8 for characters U+0020.. other than '"' and '\\'."""
    try:
        text = b.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(c >= " " and c != '"' and c != "\\" for c in text)


#: The plain slice of a Vocabulary, built once per distinct vocabulary.
plain_slice_for = PerVocabulary(PlainSlice)


Component = tuple  # (table, byte_class, state, blocked: bool array or None)


#: states explored by the closure check before giving up (the walk is always correct)
MAX_REACH = 4096
_NO_BLOCKED = np.zeros(1, dtype=bool)


def plain_budget(components: list[Component], max_chars: int) -> int | None:
    """How many plain characters a state accepts whatever they are: -1 for any
    number, ``k`` when at most ``k`` (``maxLength``), None when it depends on the
    characters (a pattern, a format...), where the slice does not apply.

    The state is a tuple of automaton states that move side by side (the
    lexemes of a grammar lexer configuration; one DFA state for a regex), each
    ``(table, byte_class, state, blocked)``: a component dies alone, and a state
    flagged in ``blocked`` (where a grammar lexeme can end and the parser must
    be asked) must not be reachable by plain text.

    Two shapes qualify. A chain: every plain character leads each component to
    one same successor (string bodies, with ``minLength``/``maxLength``
    counters); a chain longer than ``max_chars`` is as good as unbounded. A
    closure: some component stays live on every plain text (an object key that
    may be any string but the declared names, whose states differ by prefix)."""
    shapes = _kernels.PLAIN_SHAPES
    if len(components) == 1:  # one automaton: the chain in one kernel call
        table, byte_class, s, blocked = components[0]
        use = blocked is not None
        r = int(_kernels.plain_chain(table, byte_class, s, shapes, blocked if use else _NO_BLOCKED, use, max_chars))
        if r == -3:
            return None
        return _closure_budget(components) if r == -2 else r
    live = list(components)
    k = 0
    while k <= max_chars:
        nxt = []
        for table, byte_class, s, blocked in live:
            t = int(_kernels.plain_successor(table, byte_class, s, shapes))
            if t == -2:
                return _closure_budget(components)
            if t >= 0:
                if blocked is not None and blocked[t]:
                    return None
                nxt.append((table, byte_class, t, blocked))
        if not nxt:
            return k
        if len(nxt) == len(live) and all(a[2] == b[2] for a, b in zip(nxt, live)):
            return -1
        live, k = nxt, k + 1
    return -1


def _closure_budget(components: list[Component]) -> int | None:
    shapes = _kernels.PLAIN_SHAPES
    some_live = False
    for table, byte_class, s, blocked in components:
        use = blocked is not None
        b = blocked if use else _NO_BLOCKED
        if not some_live and _kernels.plain_reach(table, byte_class, s, shapes, b, use, True, MAX_REACH) == 1:
            some_live = True
        elif use and _kernels.plain_reach(table, byte_class, s, shapes, b, use, False, MAX_REACH) != 1:
            return None
    return -1 if some_live else None
