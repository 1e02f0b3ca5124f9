"""Grammar IR: a context-free grammar whose terminals are byte DFAs.

Every front end (lark, GBNF, and programmatic builders such as a JSON Schema
compiler) produces a :class:`Grammar`; everything downstream (the Earley
recogniser, token masks, the checker, the sampler) consumes only this.

* ``rules``: nonterminal name -> list of alternatives, each a tuple of symbol
  names (terminal or nonterminal); ``()`` is the empty alternative.
* ``terminals``: name -> :class:`Terminal` (a regex or literal compiled to a
  minimal UTF-8 :class:`ByteDFA`). Terminal and nonterminal names are disjoint.
* ``start``: the start nonterminal.
* ``ignore``: terminal names that may appear, any number of times, between
  any two lexemes and at both ends (lark's ``%ignore``).

Semantics are scannerless: a byte string is in the language iff it can be
split into lexemes (terminal matches, plus ignored lexemes) whose terminal
sequence derives from ``start``. All lexings count; there is no longest-match
or priority rule.

Programmatic construction::

    b = GrammarBuilder()
    lb = b.literal("[")                       # terminal name, deduplicated
    num = b.regex(r"-?(0|[1-9][0-9]*)")       # our (ECMA) regex dialect
    items = b.fresh("items")                  # a fresh nonterminal name
    b.rule(items, [num], [items, b.literal(","), num])
    b.rule("array", [lb, b.literal("]")], [lb, items, b.literal("]")])
    grammar = b.build(start="array")
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

import numpy as np

from ..automata.dfa import ByteDFA, trim_and_minimize
from ..errors import GrammarError
from ..regex import regex_to_dfa
from ..regex.parser import Node
from ..regex.to_dfa import ast_to_dfa

Alternative = tuple[str, ...]


@dataclass(frozen=True, eq=False)
class Terminal:
    """A named regular language over bytes.

    ``pattern`` is a human-readable regex for messages (Python syntax when the
    terminal came from lark or GBNF); ``literal`` is set when the terminal
    matches exactly one string.
    """

    name: str
    dfa: ByteDFA
    pattern: str
    literal: bytes | None = None

    @classmethod
    def from_literal(cls, name: str, text: str | bytes) -> "Terminal":
        data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        if not data:
            raise GrammarError(f"terminal {name!r} is the empty string")
        return cls(name, literal_dfa(data), repr(data.decode("utf-8", "replace")), data)

    @classmethod
    def from_regex(cls, name: str, pattern: str, *, dialect: str = "ecma", flags: int = 0) -> "Terminal":
        """``dialect="ecma"``: constrain's regex dialect (JSON Schema); ``"python"``: ``re`` syntax."""
        if dialect == "ecma":
            if flags:
                raise ValueError("flags are only supported with dialect='python'")
            dfa = regex_to_dfa(pattern)
        elif dialect == "python":
            from .pyregex import pyregex_to_ast

            dfa = ast_to_dfa(pyregex_to_ast(pattern, flags))
        else:
            raise ValueError(f"unknown regex dialect {dialect!r}")
        return cls(name, dfa, f"/{pattern}/")

    @classmethod
    def from_ast(cls, name: str, node: Node, pattern: str | None = None) -> "Terminal":
        from .pyregex import ast_literal, ast_to_pyregex

        lit = ast_literal(node)
        dfa = literal_dfa(lit.encode("utf-8")) if lit else ast_to_dfa(node)
        if pattern is None:
            pattern = repr(lit) if lit is not None else f"/{ast_to_pyregex(node)}/"
        return cls(name, dfa, pattern, lit.encode("utf-8") if lit is not None else None)

    @property
    def nullable(self) -> bool:
        return bool(self.dfa.accepting[self.dfa.start])


def literal_dfa(data: bytes) -> ByteDFA:
    """The minimal DFA of one byte string (a chain)."""
    n = len(data)
    cuts = sorted(set(data))
    byte_class = np.full(256, len(cuts), dtype=np.int32)
    for i, b in enumerate(cuts):
        byte_class[b] = i
    table = np.full((n + 1, len(cuts) + 1), -1, dtype=np.int32)
    for i, b in enumerate(data):
        table[i, byte_class[b]] = i + 1
    acc = np.zeros(n + 1, bool)
    acc[n] = True
    return ByteDFA(byte_class=byte_class, table=table, accepting=acc, start=0)


def without_empty(dfa: ByteDFA) -> ByteDFA | None:
    """The DFA of L(dfa) minus the empty string (None when nothing is left)."""
    if not dfa.accepting[dfa.start]:
        return dfa
    n, k = dfa.table.shape
    table = np.concatenate([dfa.table, dfa.table[dfa.start:dfa.start + 1]], axis=0)
    acc = np.concatenate([dfa.accepting, [False]])
    t, a, st = trim_and_minimize(table, acc, n)
    if st < 0:
        return None
    return ByteDFA(byte_class=dfa.byte_class.copy(), table=t, accepting=a, start=st)


@dataclass
class TrimReport:
    """What :meth:`Grammar.trimmed` removed."""

    unproductive: list[str] = field(default_factory=list)
    unreachable: list[str] = field(default_factory=list)
    unused_terminals: list[str] = field(default_factory=list)
    empty_terminals: list[str] = field(default_factory=list)


class Grammar:
    """A context-free grammar over byte-DFA terminals (see the module doc)."""

    def __init__(
        self,
        rules: Mapping[str, Iterable[Sequence[str]]],
        terminals: Mapping[str, Terminal],
        start: str,
        ignore: Sequence[str] = (),
        *,
        locations: Mapping[str, tuple[int, int]] | None = None,
        source: str | None = None,
    ) -> None:
        self.rules: dict[str, list[Alternative]] = {}
        for lhs, alts in rules.items():
            seen: dict[Alternative, None] = {}
            for alt in alts:
                seen.setdefault(tuple(alt), None)
            self.rules[lhs] = list(seen)
        self.terminals: dict[str, Terminal] = dict(terminals)
        self.start = start
        self.ignore: list[str] = list(dict.fromkeys(ignore))
        self.locations: dict[str, tuple[int, int]] = dict(locations or {})
        self.source = source
        self._validate()

    # -- checks -------------------------------------------------------------
    def _error(self, message: str, name: str | None = None) -> GrammarError:
        loc = self.locations.get(name) if name is not None else None
        if loc is not None:
            return GrammarError(message, line=loc[0], column=loc[1])
        return GrammarError(message)

    def _validate(self) -> None:
        clash = sorted(set(self.rules) & set(self.terminals))
        if clash:
            raise self._error(f"names used for both a rule and a terminal: {', '.join(clash)}", clash[0])
        for name, t in self.terminals.items():
            if t.name != name:
                raise GrammarError(f"terminal registered as {name!r} is named {t.name!r}")
        if self.start not in self.rules:
            if self.start in self.terminals:
                raise GrammarError(f"the start symbol {self.start!r} is a terminal; it must be a rule")
            raise GrammarError(f"the start rule {self.start!r} is not defined")
        undefined: dict[str, str] = {}
        for lhs, alts in self.rules.items():
            for alt in alts:
                for sym in alt:
                    if sym not in self.rules and sym not in self.terminals and sym not in undefined:
                        undefined[sym] = lhs
        for name in self.ignore:
            if name not in self.terminals and name not in undefined:
                undefined[name] = "%ignore"
        if undefined:
            names = ", ".join(f"{s!r} (used in {u})" for s, u in undefined.items())
            first = next(iter(undefined))
            loc = self.locations.get(first) or self.locations.get(undefined[first])
            msg = f"undefined symbol{'s' if len(undefined) > 1 else ''}: {names}"
            if loc is not None:
                raise GrammarError(msg, line=loc[0], column=loc[1])
            raise GrammarError(msg)

    # -- analyses -----------------------------------------------------------
    def nullable_rules(self) -> set[str]:
        nullable: set[str] = set()
        nt = {n for n, t in self.terminals.items() if t.nullable}
        changed = True
        while changed:
            changed = False
            for lhs, alts in self.rules.items():
                if lhs in nullable:
                    continue
                if any(all(s in nullable or s in nt for s in alt) for alt in alts):
                    nullable.add(lhs)
                    changed = True
        return nullable

    def productive(self) -> set[str]:
        good: set[str] = set(self.terminals)
        changed = True
        while changed:
            changed = False
            for lhs, alts in self.rules.items():
                if lhs not in good and any(all(s in good for s in alt) for alt in alts):
                    good.add(lhs)
                    changed = True
        return good

    def reachable(self, rules: Mapping[str, list[Alternative]] | None = None) -> set[str]:
        rules = self.rules if rules is None else rules
        seen = {self.start}
        stack = [self.start]
        while stack:
            for alt in rules.get(stack.pop(), ()):
                for s in alt:
                    if s not in seen:
                        seen.add(s)
                        stack.append(s)
        return seen | set(self.ignore)

    # -- normal form --------------------------------------------------------
    def trimmed(self) -> tuple["Grammar", TrimReport]:
        """Drop unproductive and unreachable symbols and split nullable terminals.

        A terminal that matches the empty string is replaced in rules by a
        nonterminal ``<T>?`` deriving either nothing or the terminal minus the
        empty string (the recogniser wants non-empty lexemes). Raises
        GrammarError when the language is empty.
        """
        report = TrimReport()
        good = self.productive()
        if self.start not in good:
            raise self._error(
                f"the grammar describes the empty language: the start rule {self.start!r} derives no finite string "
                "(every alternative needs an unproductive rule, e.g. unbounded recursion without a base case)",
                self.start,
            )
        report.unproductive = sorted(n for n in self.rules if n not in good)
        rules = {
            lhs: [alt for alt in alts if all(s in good for s in alt)]
            for lhs, alts in self.rules.items() if lhs in good
        }
        reach = self.reachable(rules)
        report.unreachable = sorted(n for n in rules if n not in reach)
        report.unused_terminals = sorted(n for n in self.terminals if n not in reach)
        rules = {lhs: alts for lhs, alts in rules.items() if lhs in reach}
        terminals: dict[str, Terminal] = {}
        replace: dict[str, tuple[str, ...] | None] = {}  # terminal -> replacement symbols or None (epsilon)
        for name, t in self.terminals.items():
            if name not in reach:
                continue
            if not t.nullable:
                terminals[name] = t
                continue
            report.empty_terminals.append(name)
            dfa = without_empty(t.dfa)
            if dfa is None:  # matches only the empty string
                replace[name] = ()
                continue
            terminals[name] = Terminal(name, dfa, t.pattern + " (non-empty)", t.literal)
            opt = f"{name}?"
            while opt in rules or opt in self.terminals:
                opt += "?"
            replace[name] = (opt,)
        if replace:
            rules = {
                lhs: list(dict.fromkeys(
                    tuple(x for s in alt for x in (replace[s] if s in replace else (s,))) for alt in alts))
                for lhs, alts in rules.items()
            }
            for name, rep in replace.items():
                if rep:
                    rules[rep[0]] = [(), (name,)]
        ignore = [n for n in self.ignore if n in terminals]
        g = Grammar(rules, terminals, self.start, ignore, locations=self.locations, source=self.source)
        return g, report

    # -- export -------------------------------------------------------------
    def to_lark(self) -> str:
        """Lark text with the same language (terminal patterns must be Python regexes).

        Used to cross-check against lark; names are mangled to lark's rules.
        """
        import re

        names: dict[str, str] = {}

        def mangle(sym: str, term: bool) -> str:
            got = names.get(sym)
            if got is None:
                base = re.sub(r"[^a-z0-9_]", "_", sym.lower()).strip("_") or "x"
                got = ("T_" if term else "r_") + base
                got = got.upper() if term else got
                while got in names.values():
                    got += "_"
                names[sym] = got
            return got

        lines = [f"start: {mangle(self.start, False)}"]
        for lhs, alts in self.rules.items():
            bodies = [" ".join(mangle(s, s in self.terminals) for s in alt) for alt in alts]
            lines.append(f"{mangle(lhs, False)}: " + "\n    | ".join(bodies))
        for name, t in self.terminals.items():
            if t.literal is not None:
                body = '"' + t.literal.decode("utf-8").replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
            else:
                pat = t.pattern
                if not (pat.startswith("/") and pat.endswith("/")):
                    raise ValueError(f"terminal {name} has no exportable pattern: {pat}")
                body = pat
            lines.append(f"{mangle(name, True)}: {body}")
        for name in self.ignore:
            lines.append(f"%ignore {mangle(name, True)}")
        return "\n".join(lines) + "\n"

    def __repr__(self) -> str:
        return (f"<Grammar start={self.start!r} rules={len(self.rules)} terminals={len(self.terminals)}"
                f" ignore={self.ignore}>")


class GrammarBuilder:
    """Incremental construction of a :class:`Grammar` (for compilers targeting the IR)."""

    def __init__(self) -> None:
        self.rules: dict[str, list[Alternative]] = {}
        self.terminals: dict[str, Terminal] = {}
        self._by_key: dict[tuple[str, str], str] = {}
        self._counter = 0

    def fresh(self, hint: str = "r") -> str:
        """A nonterminal name not used yet."""
        while True:
            self._counter += 1
            name = f"{hint}#{self._counter}"
            if name not in self.rules and name not in self.terminals:
                self.rules.setdefault(name, [])
                return name

    def rule(self, lhs: str, *alternatives: Sequence[str]) -> str:
        """Add alternatives to ``lhs`` (created if new); returns ``lhs``."""
        self.rules.setdefault(lhs, []).extend(tuple(a) for a in alternatives)
        return lhs

    def literal(self, text: str | bytes) -> str:
        """The terminal matching exactly ``text`` (one per distinct string)."""
        data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        key = ("lit", data.hex())
        got = self._by_key.get(key)
        if got is None:
            got = self._by_key[key] = f'"{data.decode("utf-8", "backslashreplace")}"#{len(self._by_key)}'
            self.terminals[got] = Terminal.from_literal(got, data)
        return got

    def regex(self, pattern: str, *, dialect: str = "ecma", name: str | None = None) -> str:
        """The terminal matching ``pattern`` (one per distinct pattern)."""
        key = (dialect, pattern)
        got = self._by_key.get(key)
        if got is None:
            got = name or f"/{pattern}/#{len(self._by_key)}"
            self.terminals[got] = Terminal.from_regex(got, pattern, dialect=dialect)
            self._by_key[key] = got
        return got

    def terminal(self, terminal: Terminal) -> str:
        self.terminals[terminal.name] = terminal
        return terminal.name

    def build(self, start: str, ignore: Sequence[str] = ()) -> Grammar:
        return Grammar(self.rules, self.terminals, start, ignore)
