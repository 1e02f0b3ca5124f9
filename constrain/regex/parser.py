"""Regex text -> a small AST over code-point sets.

The dialect is the subset of Python/ECMA-262 syntax that describes regular
languages, the one JSON Schema ``pattern`` and lark terminals use. Character
class escapes follow ECMA-262 (what JSON Schema mandates): ``\\d`` is
``[0-9]``, ``\\w`` is ``[A-Za-z0-9_]``, ``\\s`` is ECMA whitespace and ``.``
excludes line terminators. Features that leave regular languages
(backreferences, lookaround, word boundaries) raise :class:`UnsupportedError`
naming the feature instead of being approximated.

AST nodes are tuples:
``("set", ranges)``, ``("cat", [nodes])``, ``("alt", [nodes])``,
``("rep", node, min, max_or_None)``.
"""

from __future__ import annotations

from typing import Any

from ..errors import RegexError, UnsupportedError
from . import charset as cs

Node = tuple[Any, ...]

EMPTY: Node = ("cat", [])

_SIMPLE_ESCAPES = {"n": 0x0A, "t": 0x09, "r": 0x0D, "f": 0x0C, "v": 0x0B, "0": 0x00, "a": 0x07}
_CLASS_ESCAPES = {
    "d": cs.DIGIT,
    "D": cs.negate(cs.DIGIT),
    "w": cs.WORD,
    "W": cs.negate(cs.WORD),
    "s": cs.SPACE,
    "S": cs.negate(cs.SPACE),
}
# Maximum total repetition expansion before we refuse (keeps automata bounded).
MAX_REPEAT = 1_000_000


class _Parser:
    def __init__(self, text: str, holes: bool = False) -> None:
        self.text = text
        self.i = 0
        self.holes = holes

    # -- helpers -----------------------------------------------------------
    def error(self, msg: str, pos: int | None = None) -> RegexError:
        return RegexError(msg, source=self.text, position=self.i if pos is None else pos)

    def unsupported(self, feature: str, pos: int) -> UnsupportedError:
        return UnsupportedError(
            f"unsupported regex feature: {feature} (it does not describe a regular language)",
            source=self.text,
            position=pos,
        )

    def peek(self, k: int = 0) -> str:
        j = self.i + k
        return self.text[j] if j < len(self.text) else ""

    def eat(self, s: str) -> bool:
        if self.text.startswith(s, self.i):
            self.i += len(s)
            return True
        return False

    # -- grammar -----------------------------------------------------------
    def parse(self) -> Node:
        node = self.alternation(top=True)
        if self.i < len(self.text):
            if self.peek() == ")":
                raise self.error("unbalanced parenthesis")
            raise self.error(f"unexpected {self.peek()!r}")
        return node

    def alternation(self, top: bool = False) -> Node:
        branches = [self.concatenation(top)]
        while self.eat("|"):
            branches.append(self.concatenation(top))
        return branches[0] if len(branches) == 1 else ("alt", branches)

    def concatenation(self, top: bool) -> Node:
        items: list[Node] = []
        start = self.i
        while self.i < len(self.text) and self.peek() not in "|)":
            c = self.peek()
            pos = self.i
            if c in "^$" or self.text.startswith(("\\A", "\\Z", "\\z"), self.i):
                self.i += 1 if c in "^$" else 2
                at_start = pos == start
                at_end = self.i >= len(self.text) or self.peek() in "|)"
                # Matching is always against the whole output, so an anchor at
                # the edge of a top-level branch is a no-op; elsewhere it is not.
                if top and ((c in "^A" or self.text[pos:pos + 2] == "\\A") and at_start):
                    start = self.i
                    continue
                if top and (c == "$" or self.text[pos:pos + 2] in ("\\Z", "\\z")) and at_end:
                    continue
                raise self.unsupported(f"anchor {self.text[pos:self.i]!r} inside the pattern", pos)
            atom = self.atom()
            items.append(self.quantified(atom, pos))
        return items[0] if len(items) == 1 else ("cat", items)

    def quantified(self, atom: Node, atom_pos: int) -> Node:
        c = self.peek()
        pos = self.i
        if c == "*":
            self.i += 1
            lo, hi = 0, None
        elif c == "+":
            self.i += 1
            lo, hi = 1, None
        elif c == "?":
            self.i += 1
            lo, hi = 0, 1
        elif c == "{":
            bounds = self.braces()
            if bounds is None:
                return atom
            lo, hi = bounds
        else:
            return atom
        if self.peek() == "?":  # lazy: same language
            self.i += 1
        elif self.peek() == "+":
            raise self.unsupported("possessive quantifier", self.i)
        if hi is not None and hi < lo:
            raise self.error(f"min repeat greater than max repeat in {{{lo},{hi}}}", pos)
        if max(lo, hi or 0) > MAX_REPEAT:
            raise self.unsupported(f"repetition count above {MAX_REPEAT}", pos)
        if self.peek() in ("*", "+", "?") or (self.peek() == "{" and self.braces_at(self.i)):
            raise self.error("multiple repeat", self.i)
        return ("rep", atom, lo, hi)

    def braces(self) -> tuple[int, int | None] | None:
        """Parse ``{m}``, ``{m,}``, ``{m,n}``, ``{,n}``; None when it is a literal brace."""
        j = self.i + 1
        text = self.text
        k = j
        while k < len(text) and text[k].isdigit():
            k += 1
        lo_s = text[j:k]
        if k < len(text) and text[k] == "}":
            if not lo_s:
                return None
            self.i = k + 1
            return int(lo_s), int(lo_s)
        if k >= len(text) or text[k] != ",":
            return None
        m = k + 1
        while m < len(text) and text[m].isdigit():
            m += 1
        hi_s = text[k + 1:m]
        if m >= len(text) or text[m] != "}":
            return None
        self.i = m + 1
        return (int(lo_s) if lo_s else 0), (int(hi_s) if hi_s else None)

    def atom(self) -> Node:
        c = self.peek()
        pos = self.i
        if c == "(":
            return self.group()
        if c == "[":
            return ("set", self.char_class())
        if c == ".":
            self.i += 1
            return ("set", cs.DOT)
        if c == "\\":
            return self.escape(in_class=False)
        if c in "*+?":
            raise self.error("nothing to repeat", pos)
        if c == "{" and self.braces_at(pos):
            raise self.error("nothing to repeat", pos)
        self.i += 1
        return ("set", ((ord(c), ord(c)),))

    def braces_at(self, pos: int) -> bool:
        save = self.i
        try:
            return self.braces() is not None
        finally:
            self.i = save

    def group(self) -> Node:
        start = self.i
        self.i += 1
        if self.eat("?"):
            if self.eat(":"):
                pass
            elif self.eat("P<") or (self.peek() == "<" and self.peek(1) not in "=!" and self.eat("<")):
                end = self.text.find(">", self.i)
                name = self.text[self.i:end] if end >= 0 else ""
                if end < 0 or not name.isidentifier():
                    raise self.error("bad group name", self.i)
                self.i = end + 1
            elif self.peek() in "=!" or self.text.startswith(("<=", "<!"), self.i):
                raise self.unsupported("lookaround assertion", start)
            elif self.eat("P="):
                raise self.unsupported("backreference", start)
            elif self.holes and self.eat("&"):
                end = self.text.find(")", self.i)
                name = self.text[self.i:end] if end >= 0 else ""
                if not name:
                    raise self.error("bad hole name", self.i)
                self.i = end + 1
                return ("hole", name)
            elif self.peek() == "#":
                end = self.text.find(")", self.i)
                if end < 0:
                    raise self.error("missing ), unterminated comment", start)
                self.i = end + 1
                return EMPTY
            else:
                raise self.unsupported("inline flags or extension group", start)
        node = self.alternation()
        if not self.eat(")"):
            raise self.error("missing ), unterminated subpattern", start)
        return node

    def char_class(self) -> cs.Ranges:
        start = self.i
        self.i += 1
        negated = self.eat("^")
        ranges: list[tuple[int, int]] = []
        first = True
        while True:
            if self.i >= len(self.text):
                raise self.error("unterminated character set", start)
            c = self.peek()
            if c == "]" and not first:
                self.i += 1
                break
            first = False
            lo_pos = self.i
            lo = self.class_atom()
            if isinstance(lo, tuple):  # a class escape like \d
                ranges.extend(lo)
                continue
            if self.peek() == "-" and self.peek(1) not in ("]", ""):
                self.i += 1
                hi = self.class_atom()
                if isinstance(hi, tuple):
                    raise self.error("bad character range", lo_pos)
                if hi < lo:
                    raise self.error(f"bad character range {chr(lo)}-{chr(hi)}", lo_pos)
                ranges.append((lo, hi))
            else:
                ranges.append((lo, lo))
        out = cs.normalize(ranges)
        return cs.negate(out) if negated else out

    def class_atom(self) -> int | cs.Ranges:
        c = self.peek()
        if c == "\\":
            node = self.escape(in_class=True)
            r = node[1]
            if len(r) == 1 and r[0][0] == r[0][1] and node[2] == "char":
                return r[0][0]
            return r
        if c == "[" and self.peek(1) == ":":
            raise self.unsupported("POSIX character class", self.i)
        self.i += 1
        return ord(c)

    def escape(self, in_class: bool) -> Node:
        pos = self.i
        self.i += 1
        c = self.peek()
        if not c:
            raise self.error("bad escape (end of pattern)", pos)
        self.i += 1
        if c in _CLASS_ESCAPES:
            return ("set", _CLASS_ESCAPES[c], "class")
        if c in _SIMPLE_ESCAPES:
            if c == "0" and self.peek().isdigit():
                raise self.unsupported("octal escape", pos)
            return self.char(_SIMPLE_ESCAPES[c])
        if c == "b":
            if in_class:
                return self.char(0x08)
            raise self.unsupported("word boundary \\b", pos)
        if c == "B":
            raise self.unsupported("word boundary \\B", pos)
        if c == "x":
            return self.char(self.hex_digits(2, pos))
        if c == "u":
            if self.peek() == "{":
                end = self.text.find("}", self.i)
                if end < 0:
                    raise self.error("bad escape \\u{", pos)
                digits = self.text[self.i + 1:end]
                self.i = end + 1
                try:
                    cp = int(digits, 16)
                except ValueError:
                    raise self.error("bad escape \\u{...}", pos) from None
                return self.char(self.check_cp(cp, pos))
            return self.char(self.hex_digits(4, pos))
        if c == "U":
            return self.char(self.check_cp(self.hex_digits(8, pos), pos))
        if c.isdigit():
            raise self.unsupported(f"backreference \\{c}", pos)
        if c == "k":
            raise self.unsupported("named backreference", pos)
        if c in "pP":
            raise self.unsupported(f"Unicode property escape \\{c}{{...}}", pos)
        if c in "AZz":
            raise self.unsupported(f"anchor \\{c} inside the pattern", pos)
        if c == "N":
            raise self.unsupported("named character escape \\N{...}", pos)
        if c.isascii() and c.isalpha():
            raise self.error(f"bad escape \\{c}", pos)
        return self.char(ord(c))

    def hex_digits(self, n: int, pos: int) -> int:
        digits = self.text[self.i:self.i + n]
        if len(digits) != n or any(d not in "0123456789abcdefABCDEF" for d in digits):
            raise self.error(f"bad escape {self.text[pos:self.i + n]!r}: expected {n} hex digits", pos)
        self.i += n
        return int(digits, 16)

    def check_cp(self, cp: int, pos: int) -> int:
        if cp > cs.MAX_CODEPOINT:
            raise self.error("code point above U+10FFFF", pos)
        return cp

    @staticmethod
    def char(cp: int) -> Node:
        return ("set", ((cp, cp),), "char")


def parse_regex(pattern: str, *, holes: bool = False) -> Node:
    """Parse ``pattern``; raise RegexError (with position) or UnsupportedError.

    ``holes=True`` also accepts ``(?&name)`` (PCRE's subroutine call syntax) as
    a ``("hole", name)`` node: a reference to a nonterminal, which is how the
    JSON Schema compiler writes the regular right-hand sides of a grammar.
    """
    if not isinstance(pattern, str):
        raise RegexError(f"regex must be a str, not {type(pattern).__name__}")
    return _Parser(pattern, holes).parse()
