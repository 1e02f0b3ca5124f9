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
        # The rest again, each token split after its plain prefix of n characters and filed
        # under the two-byte group path (n >> 8, n & 255): from a chain state the prefix
        # leads to the chain's n-th state whatever it says, so one walk of group n's
        # suffixes from that state serves every prefix (see the forest walks of the kernels).
        keyed: list[bytes | None] = [None] * n
        for i, b in enumerate(token_bytes):
            if chars[i] < 0 and b:
                k, p = _plain_prefix(b)
                keyed[i] = bytes((k >> 8, k & 255)) + b[p:]
        self.forest = f = TokenTrie.build(keyed)
        groups = max((k[0] << 8 | k[1] for k in keyed if k), default=-1) + 1
        self.group_nodes = np.full(groups, -1, dtype=np.int32)
        for i in range(f.num_nodes):  # the depth-1 nodes are the groups
            if f.node_depth[i] == 1:
                parent = i - 1
                while f.node_depth[parent] != 0:
                    parent -= 1
                self.group_nodes[int(f.node_byte[parent]) << 8 | int(f.node_byte[i])] = i
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


def _plain_prefix(b: bytes) -> tuple[int, int]:
    """(characters, bytes) of the longest prefix of ``b`` made of whole plain characters."""
    k = p = 0
    while p < len(b):
        lead = b[p]
        size = 1 if lead < 0x80 else 2 if 0xC2 <= lead <= 0xDF else 3 if 0xE0 <= lead <= 0xEF else \
            4 if 0xF0 <= lead <= 0xF4 else 0
        if size == 0 or p + size > len(b):
            break
        try:
            c = b[p:p + size].decode("utf-8")
        except UnicodeDecodeError:
            break
        if c < " " or c == '"' or c == "\\":
            break
        k += 1
        p += size
    return k, p


def is_plain(b: bytes) -> bool:
    """Complete UTF-8 for characters U+0020.. other than '"' and '\\'."""
    try:
        text = b.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(c >= " " and c != '"' and c != "\\" for c in text)


#: The plain slice of a Vocabulary, built once per distinct vocabulary.
plain_slice_for = PerVocabulary(PlainSlice)


#: states explored by the closure check before giving up (the walk is always correct)
MAX_REACH = 4096
_NO_BLOCKED = np.zeros(1, dtype=np.uint8)


class PlainTables:
    """Automata laid out for :meth:`budget`: row-major tables of ``ncols``
    classes sharing one ``byte_class``, flattened into one array (a grammar's
    terminals, or one DFA), with optional per-state ``blocked`` flags (states
    where a grammar lexeme can end and the parser must be asked)."""

    def __init__(self, flat: np.ndarray, off: np.ndarray, n_states: np.ndarray, ncols: int,
                 byte_class: np.ndarray, blocked: np.ndarray | None = None,
                 blocked_off: np.ndarray | None = None) -> None:
        self.flat = np.ascontiguousarray(flat, dtype=np.int32)
        self.off = np.ascontiguousarray(off, dtype=np.int64)
        self.n_states = np.ascontiguousarray(n_states, dtype=np.int64)
        self.ncols = int(ncols)
        self.byte_class = np.ascontiguousarray(byte_class, dtype=np.int32)
        self.use_blocked = blocked is not None
        self.blocked = _NO_BLOCKED if blocked is None else np.ascontiguousarray(blocked, dtype=np.uint8)
        self.blocked_off = np.zeros(len(self.off), np.int64) if blocked_off is None else \
            np.ascontiguousarray(blocked_off, dtype=np.int64)
        self.pcls = _kernels.plain_classes(self.byte_class)
        self.soff = np.zeros(len(self.n_states), dtype=np.int64)  # each table's first state in the memo
        np.cumsum(self.n_states[:-1], out=self.soff[1:])
        self.memo = np.full(int(self.n_states.sum()), -1, dtype=np.int64)  # chain outcomes per state
        self.reach = np.full((2, int(self.n_states.sum())), -2, dtype=np.int8)  # closure searches per state

    @classmethod
    def of(cls, table: np.ndarray, byte_class: np.ndarray) -> "PlainTables":
        """One DFA's table."""
        table = np.asarray(table)
        return cls(table.reshape(-1), np.zeros(1), np.array([table.shape[0]]), table.shape[1], byte_class)

    def budget(self, tabs: np.ndarray, states: np.ndarray, max_chars: int) -> tuple[int | None, bool]:
        """How many plain characters the automata in ``states`` (of tables
        ``tabs``, moving side by side: the lexemes of a grammar lexer
        configuration, or one DFA state) accept whatever they are: -1 for any
        number, ``k`` when at most ``k`` (``maxLength``), None when it depends on
        the characters (a pattern, a format...), where the slice does not apply;
        and whether the state is a chain.

        Two shapes qualify. A chain: every plain character leads each component
        to one same successor (string bodies, with ``minLength``/``maxLength``
        counters), so n plain characters lead to one state whatever they are; a
        chain longer than ``max_chars`` is as good as unbounded; a component
        dies alone, and none may reach a blocked state. A closure: some
        component, or the components together, stay live on every plain text
        (an object key that may be any string but the declared names, whose
        states differ by prefix), so every plain token is allowed whatever
        lexeme boundaries it crosses."""
        r = int(_kernels.plain_budget_many(self.flat, self.off, self.n_states, self.ncols, self.byte_class,
                                           tabs, states, self.blocked, self.blocked_off, self.use_blocked,
                                           self.pcls, max_chars, MAX_REACH, self.soff, self.memo, self.reach))
        return self.decode(r)

    @staticmethod
    def decode(r: int) -> tuple[int | None, bool]:
        """(budget, chain) of a kernel's answer."""
        if r == _kernels.PLAIN_NONE:
            return None, False
        if r == _kernels.PLAIN_CLOSURE:
            return -1, False
        return r, True


_ONE = np.zeros(1, dtype=np.int64)


def plain_budget(tables: PlainTables, state: int, max_chars: int) -> int | None:
    """The budget (:meth:`PlainTables.budget`) of one state of a one-DFA layout."""
    return tables.budget(_ONE, np.array([state], dtype=np.int64), max_chars)[0]
