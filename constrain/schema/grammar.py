"""Regular right-hand sides with holes -> the grammar IR.

The JSON Schema compiler's grammar path writes each nonterminal's body as a
regex in which ``(?&name)`` stands for another nonterminal. Here each body is
parsed, and every maximal hole-free sub-expression becomes one terminal (a
byte DFA), so the grammar has as few lexemes as possible: masks inside a big
terminal cost what a DFA mask costs, and the Earley parser only runs at the
edges of holes. Splitting a regex into terminals this way keeps the language,
because the IR considers every lexing (see :mod:`constrain.grammar.ir`).

A hole-free sub-expression whose automaton would be too big is split too:
sequences into runs, alternations into a nonterminal, and long counted
repetition ``X{lo,hi}`` (a ``maxLength`` of 32,767 is common) into chunks of
``K`` copies counted by a chain of nonterminals. A length ``L = jK + t`` has one
parse (``j`` chunks, then a tail of ``t``), so the lexer holds at most a chunk
and a tail at a time and the parser runs once per ``K`` characters, while one
DFA for the whole count would need ``hi`` times the states of ``X``.
"""

from __future__ import annotations

from typing import Mapping

from ..grammar.ir import Grammar, GrammarBuilder, Terminal
from ..regex.parser import Node, parse_regex
from ..regex.to_dfa import TooManyStates, ast_to_dfa, nfa_size, unit_states

__all__ = ["bodies_to_grammar"]

#: Thompson states above which a hole-free sub-expression is split into several terminals.
TERMINAL_NFA_BUDGET = 60_000
#: Thompson states above which a counted repetition inside a split sequence becomes a terminal of its own.
SOLO_REPEAT = 4_096
#: Thompson states of an expression whose counted repetition :func:`repeat_dfa` may build.
UNIT_SIZE = 2_048
#: Thompson states of what may follow a split-off child inside its last terminal (up to a closing quote).
SUFFIX_SIZE = 512
#: DFA states a terminal may have before it is split.
TERMINAL_DFA_BUDGET = 100_000
#: Copies of the repeated expression in one chunk of a long counted repetition. Large: near a
#: chunk's end (the last ``max_chars`` of the vocabulary's plain tokens) masks cannot use the
#: plain-text slice, and most strings end inside their first chunk.
CHUNK = 4_096
#: Chunks a counted repetition may need (one nonterminal each).
MAX_CHUNKS = 8_192


def _has_hole(node: Node, memo: dict[int, bool]) -> bool:
    key = id(node)
    got = memo.get(key)
    if got is not None:
        return got
    kind = node[0]
    if kind == "hole":
        got = True
    elif kind in ("cat", "alt"):
        got = any(_has_hole(c, memo) for c in node[1])
    elif kind == "rep":
        got = _has_hole(node[1], memo)
    else:
        got = False
    memo[key] = got
    return got


def _closer(children: list[Node], i: int, sizes: dict) -> int:
    """End of the suffix glued after ``children[i - 1]``: through the next
    child (within :data:`SUFFIX_SIZE` states) that matches only characters that
    are not plain text (``"``, ``\\``, controls), or none when there is none."""
    size = 0
    for j in range(i, len(children)):
        c = children[j]
        size += nfa_size(c, sizes)
        if size > SUFFIX_SIZE:
            break
        if c[0] == "set" and all(hi < 0x20 or lo in (0x22, 0x5C) and hi == lo for lo, hi in c[1]):
            return j + 1
    return i


def _flat(nodes: list[Node]) -> list[Node]:
    """``nodes`` with nested sequences spliced in (the same language)."""
    out: list[Node] = []
    for c in nodes:
        if c[0] == "cat":
            out.extend(_flat(c[1]))
        else:
            out.append(c)
    return out


def _branches(node: Node) -> list[Node] | None:
    """The alternatives of an alternation or of an optional ``X?`` (the empty
    sequence and ``X``), which a prefix can be distributed over."""
    if node[0] == "alt":
        return list(node[1])
    if node[0] == "rep" and node[2] == 0 and node[3] == 1:
        return [("cat", []), node[1]]
    return None


class _Converter:
    def __init__(self, names: set[str]) -> None:
        self.b = GrammarBuilder()
        self.names = names
        self.memo: dict[int, bool] = {}
        self.sizes: dict[int, tuple[Node, int]] = {}
        self.counters: dict[int, tuple[Node, bool]] = {}
        self.terminals: dict[str, str] = {}
        self.star: dict[str, str] = {}
        self.chains: dict[tuple, str] = {}
        self.units: dict[str, int | None] = {}

    def _size(self, node: Node) -> int:
        return nfa_size(node, self.sizes)

    def _counter(self, node: Node) -> bool:
        """Whether ``node`` holds a long counted repetition, which gets terminals of its own."""
        got = self.counters.get(id(node))
        if got is not None and got[0] is node:
            return got[1]
        kind = node[0]
        if kind == "rep":
            yes = (node[3] is not None and node[3] >= 2 and self._size(node) > SOLO_REPEAT) or self._counter(node[1])
        elif kind in ("cat", "alt"):
            yes = any(self._counter(c) for c in node[1])
        else:
            yes = False
        self.counters[id(node)] = (node, yes)
        return yes

    def lexemes(self, node: Node, suffix: tuple[Node, ...] = ()) -> tuple[str, ...]:
        """Symbols deriving hole-free ``node`` then ``suffix``: one terminal, or
        several when its automaton would be too big.

        A long counted repetition becomes terminals of its own, and identical
        ones (the same ``maxLength`` string in many properties) are shared.
        ``suffix`` (a string's closing quote) is glued to the repetition's
        last terminal: otherwise that terminal would accept after every
        character, and a terminal boundary at every character keeps masks from
        using the plain-text slice (see :mod:`constrain.tokens.slices`).
        """
        solo = node[0] == "rep" and not self._counter(node[1])
        unit = self._unit(node[1]) if solo and node[3] is not None and node[3] >= 2 else None
        fits = unit is not None and node[3] * unit <= TERMINAL_DFA_BUDGET  # built without an NFA
        if fits or (self._size(node) <= TERMINAL_NFA_BUDGET and (solo or not self._counter(node))):
            whole = ("cat", [node, *suffix]) if suffix else node
            key = repr(whole)
            got = self.terminals.get(key)
            if got is not None:
                return (got,)
            try:
                dfa = ast_to_dfa(whole, TERMINAL_DFA_BUDGET)
            except TooManyStates:
                if node[0] == "set":
                    raise
            else:
                got = self.terminals[key] = f"t{len(self.terminals)}"
                self.b.terminal(Terminal(got, dfa, f"<schema terminal {got}>"))
                return (got,)
        return self.split(node, suffix)

    def _unit(self, node: Node) -> int | None:
        """States per copy of ``node`` in :func:`repeat_dfa` (None when it does not apply)."""
        key = repr(node)
        if key not in self.units:
            got = None
            if self._size(node) <= UNIT_SIZE:
                inner = unit_states(ast_to_dfa(node, TERMINAL_DFA_BUDGET))
                got = None if inner is None else len(inner)
            self.units[key] = got
        return self.units[key]

    def _suffix(self, suffix: tuple[Node, ...]) -> tuple[str, ...]:
        return self.lexemes(suffix[0] if len(suffix) == 1 else ("cat", list(suffix))) if suffix else ()

    def split(self, node: Node, suffix: tuple[Node, ...] = ()) -> tuple[str, ...]:
        """Symbols for ``node`` then ``suffix`` when they are too big for one terminal.

        A child too big for a terminal of its own keeps the closing quote
        after it (:func:`_closer`) as a suffix, pushed into each branch of an
        alternation and into the last copy of a short repetition: a terminal
        that ended before the quote would accept inside plain text (any key but
        the declared names accepts after nearly every character), and such a
        boundary keeps masks off the plain-text slice (see
        :mod:`constrain.tokens.slices`).
        """
        kind = node[0]
        if kind == "cat":
            out: list[str] = []
            run: list[Node] = []
            size = 0
            children = _flat([*node[1], *suffix])
            i = 0
            while i < len(children):
                child = children[i]
                i += 1
                n = self._size(child)
                solo = self._counter(child) or n > TERMINAL_NFA_BUDGET
                branches = _branches(child) if solo and run and size <= SUFFIX_SIZE else None
                if branches is not None:  # a short prefix goes into each branch: no boundary after it
                    j = _closer(children, i, self.sizes)
                    alts = [("cat", _flat([*run, b])) for b in branches]
                    out.extend(self.lexemes(("alt", alts), tuple(children[i:j])))
                    run, size = [], 0
                    i = j
                    continue
                if run and (solo or size + n > TERMINAL_NFA_BUDGET):
                    out.extend(self.lexemes(run[0] if len(run) == 1 else ("cat", run)))
                    run, size = [], 0
                if solo:
                    j = _closer(children, i, self.sizes)
                    out.extend(self.lexemes(child, tuple(children[i:j])))
                    i = j
                    continue
                run.append(child)
                size += n
            if len(run) == len(children):  # the automaton of the whole blew up: one lexeme per child
                return tuple(s for c in run for s in self.lexemes(c))
            if run:
                out.extend(self.lexemes(run[0] if len(run) == 1 else ("cat", run)))
            return tuple(out)
        if kind == "alt":
            nt = self.b.fresh("alt")
            self.b.rule(nt, *(self.lexemes(c, suffix) for c in node[1]))
            return (nt,)
        if kind == "rep":
            return self.counted(node, suffix)
        raise TooManyStates(f"a character set needs more than {TERMINAL_NFA_BUDGET} automaton states")

    def counted(self, node: Node, suffix: tuple[Node, ...] = ()) -> tuple[str, ...]:
        """``X{lo,hi}`` as chunks of ``K`` copies of ``X`` counted by nonterminals ``D_j`` (see the module doc)."""
        _k, child, lo, hi = node
        if hi is None:  # X{lo,} = X{lo} X*
            head = self.counted(("rep", child, lo, lo)) if lo else ()
            return head + self._copies(self.symbol(child), 0, None) + self._suffix(suffix)
        if self._lengths_min(child) == 0:
            raise TooManyStates("a long counted repetition of an expression that matches the empty string")
        unit = self._unit(child)
        if unit is not None:  # chunks straight from the unit's DFA: bounded by DFA states only
            k = max(1, min(CHUNK, TERMINAL_DFA_BUDGET // unit))
        else:
            k = max(1, min(CHUNK, TERMINAL_NFA_BUDGET // (2 * self._size(child))))
        if hi < 2 * k:  # under two chunks: two of half the count (copies would put a boundary after each)
            k = hi // 2
        if k < 2 and hi < 4:  # too few copies to chunk
            if not suffix:
                return self._copies(self.symbol(child), lo, hi)
            x = self.symbol(child) if hi >= 2 else ""  # only copies before the last one need it
            return self._copies(x, lo, hi, last=self.lexemes(child, suffix), tail=self._suffix(suffix))
        if hi // k > MAX_CHUNKS:
            raise TooManyStates(f"counted repetition {{{lo},{hi}}} needs more than {MAX_CHUNKS} chunks")
        key = (repr(child), lo, hi, repr(suffix))
        got = self.chains.get(key)
        if got is not None:
            return (got,)
        chunk = self.symbol(("rep", child, k, k))
        last = hi // k
        names = [self.b.fresh("count") for _ in range(last + 1)]
        for j in range(last, -1, -1):
            alts: list[tuple[str, ...]] = []
            a, b = max(0, lo - j * k), min(k - 1, hi - j * k)
            if a <= b:
                if a == 0:
                    alts.append(self._suffix(suffix))
                if b >= 1:
                    alts.append(self.lexemes(("rep", child, max(a, 1), b), suffix))
            if j < last:
                alts.append((chunk, names[j + 1]))
            self.b.rule(names[j], *alts)
        self.chains[key] = names[0]
        return (names[0],)

    @staticmethod
    def _lengths_min(node: Node) -> int:
        from .strings import lengths

        return lengths(node)[0]

    def _copies(self, x: str, lo: int, hi: int | None, last: tuple[str, ...] | None = None,
                tail: tuple[str, ...] = ()) -> tuple[str, ...]:
        """``x{lo,hi}`` as symbols: ``lo`` copies, then a star or a chain of optional copies.

        With ``last`` (``x`` then ``tail`` as symbols, glued into terminals:
        see :meth:`split`), ``x{lo,hi} tail`` with ``tail`` inside the last copy:
        ``O_1 -> tail | last``, ``O_j -> tail | x O_{j-1}``.
        """
        if hi is None:
            star = self.star.get(x)
            if star is None:
                star = self.star[x] = self.b.fresh("star")
                self.b.rule(star, (), (star, x))  # left recursion: cheap for Earley
            return (x,) * lo + (star,) + tail
        if last is None:
            last = (x,) + tail  # no glued form
        if hi == lo:
            return (x,) * (lo - 1) + last if lo else tail
        opt = None
        for _ in range(hi - lo):
            nt = self.b.fresh("opt")
            self.b.rule(nt, tail, (x, opt) if opt else last)
            opt = nt
        return (x,) * lo + (opt,)

    def symbol(self, node: Node) -> str:
        """One symbol deriving ``node``'s language."""
        seq = self.sequence(node)
        if len(seq) == 1:
            return seq[0]
        nt = self.b.fresh("seq")
        self.b.rule(nt, seq)
        return nt

    def sequence(self, node: Node) -> tuple[str, ...]:
        kind = node[0]
        if not _has_hole(node, self.memo):
            if kind == "cat" and not node[1]:
                return ()
            return self.lexemes(node)
        if kind == "hole":
            name = node[1]
            if name not in self.names:
                raise KeyError(f"undefined nonterminal {name!r} in a schema grammar body")
            return (name,)
        if kind == "cat":
            out: list[str] = []
            run: list[Node] = []
            for child in node[1]:
                if _has_hole(child, self.memo):
                    if run:
                        out.extend(self.lexemes(run[0] if len(run) == 1 else ("cat", run)))
                        run = []
                    out.extend(self.sequence(child))
                else:
                    run.append(child)
            if run:
                out.extend(self.lexemes(run[0] if len(run) == 1 else ("cat", run)))
            return tuple(out)
        if kind == "alt":
            nt = self.b.fresh("alt")
            self.b.rule(nt, *(self.sequence(c) for c in node[1]))
            return (nt,)
        if kind == "rep":
            _k, child, lo, hi = node
            return self._copies(self.symbol(child), lo, hi)
        raise AssertionError(f"unexpected regex node {kind!r}")


def bodies_to_grammar(start: str, bodies: Mapping[str, str]) -> Grammar:
    """The grammar whose nonterminal ``name`` derives the language of ``bodies[name]``."""
    conv = _Converter(set(bodies))
    for name, body in bodies.items():
        conv.memo = {}  # keyed by id(): only valid while this body's tree is alive
        conv.b.rule(name, conv.sequence(parse_regex(body, holes=True)))
    return conv.b.build(start=start)
