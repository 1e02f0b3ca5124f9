"""GBNF (llama.cpp / transformers-CFG dialect) -> :class:`~constrain.grammar.ir.Grammar`.

Syntax::

    # comment
    root   ::= "(" expr ")" | [a-z]+ name?
    name   ::= [^\\n"]{1,8} ( "-" name )*

* rules ``name ::= alternatives``; names are letters, digits, ``-`` and ``_``;
  a rule ends at a newline unless the line ends inside parentheses or after
  ``|`` or ``::=`` (a following line that starts with ``|`` also continues it);
* string literals ``"..."`` with escapes ``\\n \\r \\t \\\\ \\" \\xHH \\uHHHH
  \\UHHHHHHHH`` (``""`` is the empty string);
* character classes ``[a-z_]``, ``[^...]`` with the same escapes; ``.`` is any
  character;
* groups ``( ... )``, quantifiers ``* + ?`` and ``{m}``, ``{m,}``, ``{m,n}``;
* rule references by name. There is no ``%ignore``: every byte is explicit.

Every literal and class is a terminal. For speed, runs of adjacent
terminal-only elements in a sequence (literals, classes, groups and
repetitions made only of them) are merged into one regular terminal
(``merge=True``, the default); the language is the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from ..errors import GrammarError
from ..regex import charset as cs
from ..regex.parser import Node
from .ir import Grammar, Terminal
from .pyregex import ast_literal, ast_nullable, ast_to_pyregex

# -- surface AST -----------------------------------------------------------------


@dataclass(frozen=True)
class Chars:  # a literal string (tuple of code points) or a class (ranges)
    node: Node


@dataclass(frozen=True)
class Ref:
    name: str
    line: int
    col: int


@dataclass(frozen=True)
class Group:
    alts: tuple[tuple["Elem", ...], ...]


@dataclass(frozen=True)
class Repeat:
    elem: "Elem"
    lo: int
    hi: int | None


Elem = Union[Chars, Ref, Group, Repeat]

_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0
        self.depth = 0

    # -- positions / errors ---------------------------------------------------
    def loc(self, pos: int | None = None) -> tuple[int, int]:
        pos = self.i if pos is None else pos
        line = self.text.count("\n", 0, pos) + 1
        col = pos - (self.text.rfind("\n", 0, pos) + 1) + 1
        return line, col

    def error(self, msg: str, pos: int | None = None) -> GrammarError:
        line, col = self.loc(pos)
        return GrammarError(f"GBNF syntax error: {msg}", line=line, column=col)

    def peek(self) -> str:
        return self.text[self.i] if self.i < len(self.text) else ""

    # -- whitespace ------------------------------------------------------------
    def skip_space(self, newlines: bool) -> None:
        t = self.text
        while self.i < len(t):
            c = t[self.i]
            if c == "#":
                while self.i < len(t) and t[self.i] != "\n":
                    self.i += 1
            elif c in " \t\r" or (newlines and c == "\n"):
                self.i += 1
            elif c == "\\" and t.startswith("\\\n", self.i):  # line continuation
                self.i += 2
            else:
                break

    def at_rule_start(self) -> bool:
        """Whether the text at i starts ``name ::=``."""
        j = self.i
        t = self.text
        while j < len(t) and t[j] in _NAME_CHARS:
            j += 1
        if j == self.i:
            return False
        while j < len(t) and t[j] in " \t":
            j += 1
        return t.startswith("::=", j)

    # -- grammar -----------------------------------------------------------------
    def parse(self) -> tuple[dict[str, list[tuple[Elem, ...]]], dict[str, tuple[int, int]], list[str]]:
        rules: dict[str, list[tuple[Elem, ...]]] = {}
        locs: dict[str, tuple[int, int]] = {}
        order: list[str] = []
        self.skip_space(True)
        while self.i < len(self.text):
            pos = self.i
            name = self.name()
            if not name:
                raise self.error(f"expected a rule name, found {self.peek()!r}")
            self.skip_space(False)
            if not self.text.startswith("::=", self.i):
                raise self.error(f"expected '::=' after rule name {name!r}")
            self.i += 3
            self.skip_space(True)
            alts = self.alternates(pos)
            if name in rules:
                rules[name].extend(alts)
            else:
                rules[name] = list(alts)
                locs[name] = self.loc(pos)
                order.append(name)
            self.skip_space(False)
            if self.i < len(self.text) and self.peek() != "\n":
                raise self.error(f"expected end of line after rule {name!r}, found {self.peek()!r}")
            self.skip_space(True)
        return rules, locs, order

    def name(self) -> str:
        j = self.i
        while j < len(self.text) and self.text[j] in _NAME_CHARS:
            j += 1
        out = self.text[self.i:j]
        self.i = j
        return out

    def alternates(self, rule_pos: int) -> list[tuple[Elem, ...]]:
        alts = [self.sequence()]
        while True:
            save = self.i
            self.skip_space(self.depth > 0)
            if self.peek() == "|":
                self.i += 1
                self.skip_space(True)
                alts.append(self.sequence())
                continue
            if self.depth == 0 and self.peek() == "\n":
                # A following line starting with '|' continues the rule.
                self.skip_space(True)
                if self.peek() == "|":
                    continue
            self.i = save
            return alts

    def sequence(self) -> tuple[Elem, ...]:
        items: list[Elem] = []
        while True:
            self.skip_space(self.depth > 0)
            c = self.peek()
            if not c or c in "|)":
                break
            if c == "\n":
                # Top level: the rule ends here, unless the next line is a plain
                # continuation (neither a new rule nor an alternative).
                save = self.i
                self.skip_space(True)
                if self.i >= len(self.text) or self.peek() in "|" or self.at_rule_start():
                    self.i = save
                    break
                continue
            items.append(self.quantified(self.atom()))
        return tuple(items)

    def atom(self) -> Elem:
        c = self.peek()
        pos = self.i
        if c == '"':
            return Chars(("cat", [("set", ((cp, cp),)) for cp in self.string()]))
        if c == "[":
            return Chars(("set", self.char_class()))
        if c == ".":
            self.i += 1
            return Chars(("set", cs.ANY))
        if c == "(":
            self.i += 1
            self.depth += 1
            self.skip_space(True)
            alts = self.alternates(pos)
            self.skip_space(True)
            if self.peek() != ")":
                raise self.error("expected ')'" if self.peek() else "unterminated group: expected ')'", self.i)
            self.i += 1
            self.depth -= 1
            return Group(tuple(alts))
        if c in _NAME_CHARS:
            line, col = self.loc()
            name = self.name()
            return Ref(name, line, col)
        raise self.error(f"unexpected {c!r}")

    def quantified(self, atom: Elem) -> Elem:
        while True:
            c = self.peek()
            if c == "*":
                self.i += 1
                atom = Repeat(atom, 0, None)
            elif c == "+":
                self.i += 1
                atom = Repeat(atom, 1, None)
            elif c == "?":
                self.i += 1
                atom = Repeat(atom, 0, 1)
            elif c == "{":
                pos = self.i
                end = self.text.find("}", self.i)
                if end < 0:
                    raise self.error("unterminated repetition '{'", pos)
                body = self.text[self.i + 1:end].replace(" ", "")
                try:
                    if "," in body:
                        lo_s, hi_s = body.split(",", 1)
                        lo, hi = int(lo_s or 0), (int(hi_s) if hi_s else None)
                    else:
                        lo = hi = int(body)
                except ValueError:
                    raise self.error(f"bad repetition {{{body}}}", pos) from None
                if hi is not None and hi < lo:
                    raise self.error(f"bad repetition {{{body}}}: max below min", pos)
                if max(lo, hi or 0) > 10_000:
                    raise self.error("repetition count above 10000", pos)
                self.i = end + 1
                atom = Repeat(atom, lo, hi)
            else:
                return atom

    def escape(self) -> int:
        pos = self.i
        self.i += 1
        c = self.peek()
        if not c:
            raise self.error("unterminated escape", pos)
        self.i += 1
        simple = {"n": 10, "r": 13, "t": 9, "\\": 92, '"': 34, "[": 91, "]": 93, "-": 45, "^": 94,
                  "f": 12, "v": 11, "0": 0, "/": 47, "'": 39, "a": 7, "b": 8, "e": 27, " ": 32}
        if c in simple:
            return simple[c]
        width = {"x": 2, "u": 4, "U": 8}.get(c)
        if width is None:
            raise self.error(f"unknown escape \\{c}", pos)
        digits = self.text[self.i:self.i + width]
        if len(digits) != width or any(d not in "0123456789abcdefABCDEF" for d in digits):
            raise self.error(f"escape \\{c} needs {width} hex digits", pos)
        self.i += width
        cp = int(digits, 16)
        if cp > cs.MAX_CODEPOINT or cs.SURROGATES[0] <= cp <= cs.SURROGATES[1]:
            raise self.error(f"escape \\{c}{digits} is not a Unicode scalar value", pos)
        return cp

    def string(self) -> list[int]:
        start = self.i
        self.i += 1
        out: list[int] = []
        while True:
            c = self.peek()
            if not c or c == "\n":
                raise self.error("unterminated string literal", start)
            if c == '"':
                self.i += 1
                return out
            if c == "\\":
                out.append(self.escape())
            else:
                out.append(ord(c))
                self.i += 1

    def char_class(self) -> cs.Ranges:
        start = self.i
        self.i += 1
        negated = False
        if self.peek() == "^":
            negated = True
            self.i += 1
        ranges: list[tuple[int, int]] = []
        first = True
        while True:
            c = self.peek()
            if not c or c == "\n":
                raise self.error("unterminated character class", start)
            if c == "]" and not first:
                self.i += 1
                break
            first = False
            lo = self.escape() if c == "\\" else self._char()
            if self.peek() == "-" and self.text[self.i + 1:self.i + 2] not in ("]", "", "\n"):
                self.i += 1
                hi = self.escape() if self.peek() == "\\" else self._char()
                if hi < lo:
                    raise self.error(f"bad character range {chr(lo)!r}-{chr(hi)!r}", start)
                ranges.append((lo, hi))
            else:
                ranges.append((lo, lo))
        r = cs.normalize(ranges)
        return cs.negate(r) if negated else r

    def _char(self) -> int:
        c = self.peek()
        self.i += 1
        return ord(c)


# -- lowering to the IR ------------------------------------------------------------


def _terminal_only(e: Elem) -> bool:
    if isinstance(e, Chars):
        return True
    if isinstance(e, Ref):
        return False
    if isinstance(e, Group):
        return all(_terminal_only(x) for alt in e.alts for x in alt)
    return _terminal_only(e.elem)


def _to_node(e: Elem) -> Node:
    if isinstance(e, Chars):
        return e.node
    if isinstance(e, Group):
        alts = [("cat", [_to_node(x) for x in alt]) for alt in e.alts]
        return alts[0] if len(alts) == 1 else ("alt", alts)
    if isinstance(e, Repeat):
        return ("rep", _to_node(e.elem), e.lo, e.hi)
    raise AssertionError(e)


def _flatten(node: Node) -> Node:
    if node[0] == "cat":
        parts: list[Node] = []
        for c in node[1]:
            c = _flatten(c)
            if c[0] == "cat":
                parts.extend(c[1])
            else:
                parts.append(c)
        return parts[0] if len(parts) == 1 else ("cat", parts)
    if node[0] == "alt":
        return ("alt", [_flatten(c) for c in node[1]])
    if node[0] == "rep":
        return ("rep", _flatten(node[1]), node[2], node[3])
    return node


class _Lowerer:
    def __init__(self, merge: bool) -> None:
        self.merge = merge
        self.rules: dict[str, list[tuple[str, ...]]] = {}
        self.terminals: dict[str, Terminal] = {}
        self._term_by_pattern: dict[str, str] = {}
        self._helper_by_key: dict[tuple, str] = {}
        self.counter = 0

    def terminal(self, node: Node) -> str | None:
        """Terminal name for a non-nullable node (None for the empty string)."""
        node = _flatten(node)
        if node == ("cat", []):
            return None
        assert not ast_nullable(node)
        lit = ast_literal(node)
        key = repr(lit) if lit is not None else "/" + ast_to_pyregex(node) + "/"
        got = self._term_by_pattern.get(key)
        if got is None:
            got = key
            self.terminals[got] = Terminal.from_ast(got, node, pattern=key)
            self._term_by_pattern[key] = got
        return got

    def helper(self, base: str, key: tuple, alts: list[tuple[str, ...]]) -> str:
        got = self._helper_by_key.get(key)
        if got is None:
            self.counter += 1
            got = f"{base}~{self.counter}"
            self.rules[got] = alts
            self._helper_by_key[key] = got
        return got

    def seq(self, base: str, items: tuple[Elem, ...]) -> tuple[str, ...]:
        out: list[str] = []
        i = 0
        while i < len(items):
            if self.merge and _terminal_only(items[i]):
                j = i
                while j < len(items) and _terminal_only(items[j]):
                    j += 1
                group = items[i:j]
                nodes = [_to_node(x) for x in group]
                if not all(ast_nullable(n) for n in nodes):
                    name = self.terminal(("cat", nodes))
                    if name is not None:
                        out.append(name)
                    i = j
                    continue
                # All nullable: lower one by one so no terminal matches the empty string.
                for x in group:
                    out.extend(self.elem(base, x))
                i = j
                continue
            out.extend(self.elem(base, items[i]))
            i += 1
        return tuple(out)

    def elem(self, base: str, e: Elem) -> tuple[str, ...]:
        if isinstance(e, Ref):
            return (e.name,)
        if isinstance(e, Chars):
            name = self.terminal(e.node)
            return (name,) if name else ()
        if isinstance(e, Group):
            if len(e.alts) == 1:
                return self.seq(base, e.alts[0])
            if self.merge and _terminal_only(e) and not ast_nullable(_to_node(e)):
                name = self.terminal(_to_node(e))
                return (name,) if name else ()
            alts = [self.seq(base, alt) for alt in e.alts]
            return (self.helper(base, ("group", tuple(alts)), alts),)
        assert isinstance(e, Repeat)
        if self.merge and _terminal_only(e.elem):
            node = _to_node(e.elem)
            if not ast_nullable(node):
                if e.lo >= 1 or e.hi == 0:
                    if e.hi == 0:
                        return ()
                    name = self.terminal(("rep", node, e.lo, e.hi))
                    return (name,) if name else ()
                # x* / x{0,n}: optional non-empty repetition.
                name = self.terminal(("rep", node, 1, e.hi))
                if name is None:
                    return ()
                return (self.helper(base, ("opt", name), [(), (name,)]),)
        inner = self.elem(base, e.elem)
        if not inner:
            return ()
        return self.repeat(base, inner, e.lo, e.hi)

    def repeat(self, base: str, inner: tuple[str, ...], lo: int, hi: int | None) -> tuple[str, ...]:
        if hi is None:
            # star: S -> eps | S inner (left recursion suits Earley)
            star = self.helper(base, ("star", inner), [(), ()])
            self.rules[star] = [(), (star,) + inner]
            return inner * lo + (star,)
        if lo == hi:
            return inner * lo
        # inner{lo,hi} = inner^lo then (hi-lo) nested optionals
        tail: tuple[str, ...] = ()
        for _ in range(hi - lo):
            opt = self.helper(base, ("opt", inner + tail), [(), inner + tail])
            tail = (opt,)
        return inner * lo + tail


def gbnf_to_ir(text: str, *, start: str = "root", merge: bool = True, source: str | None = None) -> Grammar:
    """Parse GBNF text into the IR (GrammarError with line/column on errors)."""
    p = _Parser(text)
    surface, locs, order = p.parse()
    if not surface:
        raise GrammarError("GBNF grammar defines no rules")
    for name, alts in surface.items():
        for alt in alts:
            for ref in _refs(alt):
                if ref.name not in surface:
                    raise GrammarError(f"undefined rule {ref.name!r} (used in {name})", line=ref.line, column=ref.col)
    low = _Lowerer(merge)
    for name in order:
        low.rules[name] = [low.seq(name, alt) for alt in surface[name]]
    if start not in low.rules:
        raise GrammarError(f"the start rule {start!r} is not defined (rules: {', '.join(order[:8])}...)")
    return Grammar(low.rules, low.terminals, start, (), locations=locs, source=source)


def _refs(items: tuple[Elem, ...]):
    for e in items:
        if isinstance(e, Ref):
            yield e
        elif isinstance(e, Group):
            for alt in e.alts:
                yield from _refs(alt)
        elif isinstance(e, Repeat):
            yield from _refs((e.elem,))
