"""Python (``re``) regex syntax -> the regex AST of :mod:`constrain.regex`.

Lark terminals are Python regexes, so they must keep Python's meaning, not
the ECMA meaning our own regex parser gives JSON Schema patterns: ``\\d``,
``\\w`` and ``\\s`` are Unicode classes, ``.`` excludes only ``\\n`` (any
character under the ``s`` flag), ``i`` folds case the way ``re`` does.
We let ``re``'s own parser read the pattern and translate its parse tree;
character sets whose membership depends on Unicode tables or case folding
are computed by asking ``re`` itself which code points match, so the
translation is exact by construction.

Lazy quantifiers are read as their language (``a*?`` is ``a*``).
Anchors, lookaround, backreferences, atomic groups and possessive
quantifiers have no regular-language reading inside a grammar and raise
:class:`UnsupportedError` naming the feature.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

try:  # Python >= 3.11
    import re._constants as _c  # type: ignore[import-not-found]
    import re._parser as _p  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - Python 3.10
    import sre_constants as _c  # type: ignore[no-redef]
    import sre_parse as _p  # type: ignore[no-redef]

from ..errors import RegexError, UnsupportedError
from ..regex import charset as cs
from ..regex.parser import MAX_REPEAT, Node

_I = re.IGNORECASE
_S = re.DOTALL
_A = re.ASCII
_ALL_CP_RANGES = ((0, 0xD7FF), (0xE000, cs.MAX_CODEPOINT))


@lru_cache(maxsize=1)
def _all_chars() -> str:
    """Every Unicode scalar value once, in order (surrogates excluded)."""
    return "".join(chr(c) for lo, hi in _ALL_CP_RANGES for c in range(lo, hi + 1))


@lru_cache(maxsize=1)
def _cased_chars() -> str:
    """Characters that take part in case folding (candidates for ``re.I`` matches)."""
    return "".join(ch for ch in _all_chars() if ch.lower() != ch or ch.upper() != ch or ch.casefold() != ch)


def _ranges_of(cps: list[int]) -> cs.Ranges:
    out: list[tuple[int, int]] = []
    for c in sorted(set(cps)):
        if out and c == out[-1][1] + 1:
            out[-1] = (out[-1][0], c)
        else:
            out.append((c, c))
    return cs.normalize(out)


@lru_cache(maxsize=4096)
def _matching(single_char_regex: str, flags: int, cased_only: bool = False) -> cs.Ranges:
    """Code points that ``re`` matches with a one-character regex (exact, cached)."""
    pat = re.compile(single_char_regex, flags)
    text = _cased_chars() if cased_only else _all_chars()
    return _ranges_of([ord(m.group()) for m in pat.finditer(text)])


def _esc(cp: int) -> str:
    return f"\\U{cp:08x}"


def _literal_set(cp: int, flags: int) -> cs.Ranges:
    if not flags & _I:
        return ((cp, cp),)
    # A character that is not cased only ever matches itself or cased characters.
    extra = _matching(_esc(cp), flags & (_I | _A), cased_only=True)
    return cs.union(((cp, cp),), extra)


_CATEGORY_TEXT = {
    "CATEGORY_DIGIT": r"\d", "CATEGORY_NOT_DIGIT": r"\D",
    "CATEGORY_SPACE": r"\s", "CATEGORY_NOT_SPACE": r"\S",
    "CATEGORY_WORD": r"\w", "CATEGORY_NOT_WORD": r"\W",
}


def _set_items(items: list[tuple[Any, Any]], flags: int) -> cs.Ranges:
    """The code points matched by an ``IN`` node's items."""
    negate = False
    plain: list[tuple[int, int]] = []
    text_parts: list[str] = []
    needs_re = bool(flags & _I)
    for op, av in items:
        name = str(op)
        if name == "NEGATE":
            negate = True
        elif name == "LITERAL":
            plain.append((av, av))
            text_parts.append(_esc(av))
        elif name == "RANGE":
            plain.append((av[0], av[1]))
            text_parts.append(f"{_esc(av[0])}-{_esc(av[1])}")
        elif name == "CATEGORY":
            cat = _CATEGORY_TEXT.get(str(av))
            if cat is None:
                raise UnsupportedError(f"unsupported character category {av}")
            text_parts.append(cat)
            needs_re = True
        else:  # pragma: no cover - defensive
            raise UnsupportedError(f"unsupported character-set item {name}")
    if not needs_re:
        r = cs.normalize(plain)
        return cs.negate(r) if negate else r
    # Let `re` decide membership: exact for categories and case folding.
    cls = "[" + ("^" if negate else "") + "".join(text_parts) + "]"
    return _matching(cls, flags & (_I | _A))


class _Translator:
    def __init__(self, pattern: str) -> None:
        self.pattern = pattern

    def unsupported(self, feature: str) -> UnsupportedError:
        return UnsupportedError(f"unsupported regex feature: {feature}", source=self.pattern)

    def seq(self, data: Any, flags: int) -> Node:
        items = [self.item(op, av, flags) for op, av in data]
        return items[0] if len(items) == 1 else ("cat", items)

    def item(self, op: Any, av: Any, flags: int) -> Node:
        name = str(op)
        if name == "LITERAL":
            return ("set", _literal_set(av, flags))
        if name == "NOT_LITERAL":
            return ("set", cs.negate(_literal_set(av, flags)))
        if name == "ANY":
            if flags & _S:
                return ("set", cs.ANY)
            return ("set", cs.negate(((0x0A, 0x0A),)))
        if name == "IN":
            return ("set", _set_items(av, flags))
        if name == "BRANCH":
            return ("alt", [self.seq(branch, flags) for branch in av[1]])
        if name == "SUBPATTERN":
            _group, add, delete, sub = av
            return self.seq(sub, (flags | add) & ~delete)
        if name in ("MAX_REPEAT", "MIN_REPEAT"):
            lo, hi, sub = av
            hi_v = None if hi == _c.MAXREPEAT else int(hi)
            if max(int(lo), hi_v or 0) > MAX_REPEAT:
                raise self.unsupported(f"repetition count above {MAX_REPEAT}")
            return ("rep", self.seq(sub, flags), int(lo), hi_v)
        if name == "POSSESSIVE_REPEAT":
            raise self.unsupported("possessive quantifier")
        if name == "ATOMIC_GROUP":
            raise self.unsupported("atomic group (?>...)")
        if name in ("ASSERT", "ASSERT_NOT"):
            raise self.unsupported("lookaround assertion")
        if name in ("GROUPREF", "GROUPREF_EXISTS"):
            raise self.unsupported("backreference")
        if name == "AT":
            raise self.unsupported(f"anchor or word boundary ({av})")
        raise self.unsupported(f"regex construct {name}")


def pyregex_to_ast(pattern: str, flags: int = 0) -> Node:
    """Translate a Python regex (with ``re`` flags) into a regex AST."""
    try:
        parsed = _p.parse(pattern, flags)
    except re.error as e:
        raise RegexError(f"invalid Python regex: {e.msg}", source=pattern, position=e.pos) from None
    gflags = parsed.state.flags
    return _Translator(pattern).seq(parsed.data, gflags)


def literal_to_ast(text: str, ignore_case: bool = False) -> Node:
    """A literal string, optionally matched case-insensitively the way ``re`` does."""
    flags = _I if ignore_case else 0
    return ("cat", [("set", _literal_set(ord(ch), flags)) for ch in text])


# -- AST -> Python regex text (for display and lark export) ---------------------

_META = set("\\.^$*+?{}[]()|/-\"'#&~ ")


def _char_text(cp: int, in_class: bool) -> str:
    ch = chr(cp)
    if ch == "\n":
        return "\\n"
    if ch == "\t":
        return "\\t"
    if ch == "\r":
        return "\\r"
    if cp < 0x20 or cp == 0x7F:
        return f"\\x{cp:02x}"
    if ch in _META or (in_class and ch in "^"):
        return "\\" + ch
    if cp > 0x7E:
        return f"\\u{cp:04x}" if cp <= 0xFFFF else f"\\U{cp:08x}"
    return ch


def _set_text(ranges: cs.Ranges) -> str:
    if len(ranges) == 1 and ranges[0][0] == ranges[0][1]:
        return _char_text(ranges[0][0], False)
    comp = cs.negate(ranges)
    neg = False
    if sum(h - l for l, h in comp) < sum(h - l for l, h in ranges) and len(comp) <= len(ranges):
        ranges, neg = comp, True
    parts = []
    for lo, hi in ranges:
        if lo == hi:
            parts.append(_char_text(lo, True))
        elif hi == lo + 1:
            parts.append(_char_text(lo, True) + _char_text(hi, True))
        else:
            parts.append(_char_text(lo, True) + "-" + _char_text(hi, True))
    return "[" + ("^" if neg else "") + "".join(parts) + "]"


def ast_to_pyregex(node: Node) -> str:
    """Python regex text with the same language as ``node`` (for display/export)."""
    kind = node[0]
    if kind == "set":
        if not node[1]:
            return "(?!)"
        return _set_text(node[1])
    if kind == "cat":
        parts = []
        for child in node[1]:
            t = ast_to_pyregex(child)
            if child[0] == "alt":
                t = f"(?:{t})"
            parts.append(t)
        return "".join(parts)
    if kind == "alt":
        return "|".join(ast_to_pyregex(c) for c in node[1])
    if kind == "rep":
        _, child, lo, hi = node
        t = ast_to_pyregex(child)
        simple = child[0] == "set" or (child[0] == "cat" and len(child[1]) == 1 and child[1][0][0] == "set")
        if not simple:
            t = f"(?:{t})"
        if (lo, hi) == (0, None):
            q = "*"
        elif (lo, hi) == (1, None):
            q = "+"
        elif (lo, hi) == (0, 1):
            q = "?"
        elif hi is None:
            q = f"{{{lo},}}"
        elif lo == hi:
            q = f"{{{lo}}}"
        else:
            q = f"{{{lo},{hi}}}"
        return t + q
    raise AssertionError(kind)


def ast_nullable(node: Node) -> bool:
    kind = node[0]
    if kind == "set":
        return False
    if kind == "cat":
        return all(ast_nullable(c) for c in node[1])
    if kind == "alt":
        return any(ast_nullable(c) for c in node[1])
    if kind == "rep":
        return node[2] == 0 or ast_nullable(node[1])
    raise AssertionError(kind)


def ast_literal(node: Node) -> str | None:
    """The single string ``node`` matches, when it is a fixed string."""
    kind = node[0]
    if kind == "set":
        r = node[1]
        return chr(r[0][0]) if len(r) == 1 and r[0][0] == r[0][1] else None
    if kind == "cat":
        out = []
        for c in node[1]:
            s = ast_literal(c)
            if s is None:
                return None
            out.append(s)
        return "".join(out)
    if kind == "rep" and node[2] == node[3]:
        s = ast_literal(node[1])
        return None if s is None else s * node[2]
    return None
