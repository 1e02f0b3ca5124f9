"""JSON string bodies: code-point sets, an ECMA-262 ``pattern`` parser, and
rendering of string languages as regexes over the *JSON text* of a string.

A string language is described by a small AST over decoded characters:

``("set", ranges)``          one character from ``ranges``
``("any",)``                 one arbitrary character, in *any* JSON encoding
``("cat", [nodes])``         concatenation
``("alt", [nodes])``         alternation
``("rep", node, lo, hi)``    repetition (``hi`` None = unbounded)

Lengths (``minLength``/``maxLength``) count decoded code points, so each AST
character is one unit whatever its JSON encoding.  Characters of a ``set`` are
rendered with exactly the encoding ``json.dumps(..., ensure_ascii=False)``
uses (raw, or ``\\"``, ``\\\\``, ``\\n``..., ``\\u00XX``), a subset of the
valid encodings; ``any`` additionally admits every escape form, a surrogate
pair ``\\uD83D\\uDE00`` as one unit (one code point, as ``jsonschema``
counts it) and no lone surrogate (no code point at all).

Patterns follow JSON Schema (ECMA-262) but the validator most users check
against is Python's ``re``.  Where the two disagree (``\\d`` is ``[0-9]`` in
ECMA but any Unicode digit in Python, ``.`` excludes ``\\r`` only in ECMA...)
we take the *intersection*, so a generated string satisfies both readings.
"""

from __future__ import annotations

import re
import sys
from functools import lru_cache
from typing import Any

from ..regex.charset import negate, union
from ..regex.charset import normalize as norm

MAX_CP = 0x10FFFF
SURR_LO, SURR_HI = 0xD800, 0xDFFF

Ranges = tuple[tuple[int, int], ...]
Node = tuple[Any, ...]

#: Largest count written in a ``{m,n}`` quantifier; larger upper bounds are
#: lowered to it (a subset), larger lower bounds are refused.
MAX_REPEAT = 1_000_000


class PatternUnsupported(Exception):
    """A pattern feature we cannot embed exactly; ``args[0]`` explains, ``pos`` locates."""

    def __init__(self, msg: str, pos: int | None = None) -> None:
        super().__init__(msg)
        self.pos = pos


class PatternInvalid(Exception):
    """The pattern is not a valid regular expression."""


# --------------------------------------------------------------------------
# code-point sets


def intersect(a: Ranges, b: Ranges) -> Ranges:
    return negate(union(negate(a), negate(b)))


def minus(a: Ranges, b: Ranges) -> Ranges:
    return intersect(a, negate(b))


def chars(s: str) -> Ranges:
    return norm((ord(c), ord(c)) for c in s)


def contains(ranges: Ranges, cp: int) -> bool:
    return any(lo <= cp <= hi for lo, hi in ranges)


ALL: Ranges = norm([(0, MAX_CP)])
ECMA_DIGIT = chars("0123456789")
ECMA_WORD = norm([(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)])
ECMA_SPACE = norm(
    [(0x09, 0x0D), (0x20, 0x20), (0xA0, 0xA0), (0x1680, 0x1680), (0x2000, 0x200A),
     (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000), (0xFEFF, 0xFEFF)]
)
ECMA_LINE_TERMINATORS = norm([(0x0A, 0x0A), (0x0D, 0x0D), (0x2028, 0x2029)])


@lru_cache(maxsize=None)
def _python_class(esc: str) -> Ranges:
    """The code points Python's ``re`` matches with ``\\d``/``\\w``/``\\s`` (str patterns)."""
    # what _sre uses for str patterns: isdecimal / isalnum or "_" / isspace
    test = {"d": str.isdecimal, "w": lambda c: c.isalnum() or c == "_", "s": str.isspace}[esc]
    out = []
    start = None
    for cp in range(MAX_CP + 2):
        ok = cp <= MAX_CP and not (SURR_LO <= cp <= SURR_HI) and test(chr(cp))
        if ok and start is None:
            start = cp
        elif not ok and start is not None:
            out.append((start, cp - 1))
            start = None
    return norm(out)


def class_escape(c: str) -> tuple[Ranges, Ranges]:
    """(narrow, wide) sets of a class escape: narrow is matched by both ECMA and
    Python, wide by at least one of them.  Positive uses take narrow, negated
    classes take the complement of wide."""
    if c in "dws":
        ecma = {"d": ECMA_DIGIT, "w": ECMA_WORD, "s": ECMA_SPACE}[c]
        py = _python_class(c)
        return intersect(ecma, py), union(ecma, py)
    narrow, wide = class_escape(c.lower())
    return negate(wide), negate(narrow)


# JSON string content ------------------------------------------------------

_SHORT = {0x08: "b", 0x09: "t", 0x0A: "n", 0x0C: "f", 0x0D: "r"}
RAW_OK = negate(norm([(0, 0x1F), (0x22, 0x22), (0x5C, 0x5C)]))
ANY_UNIT_RX = (
    r'(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u(?:[0-9a-cA-Ce-fE-F][0-9a-fA-F]{3}|[dD][0-7][0-9a-fA-F]{2})'
    r'|\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2})'
)

_META = set("\\.^$*+?()[]{}|")
_CLASS_META = set("\\]^-[")


def _cp_text(cp: int, in_class: bool) -> str:
    ch = chr(cp)
    if in_class and ch in _CLASS_META:
        return "\\" + ch
    if not in_class and ch in _META:
        return "\\" + ch
    if cp < 0x20 or cp == 0x7F:
        return "\\x%02x" % cp
    if cp < 0x80:
        return ch
    if cp <= 0xFFFF and not ch.isprintable():
        return "\\u%04x" % cp
    return ch


def escape_literal(s: str) -> str:
    """Escape ``s`` so the regex matches exactly ``s``."""
    return "".join(_cp_text(ord(c), False) for c in s)


def class_text(ranges: Ranges) -> str:
    """A regex atom matching exactly one code point of ``ranges`` (non-empty)."""
    ranges = norm(ranges)
    if len(ranges) == 1 and ranges[0][0] == ranges[0][1]:
        return _cp_text(ranges[0][0], False)

    def body(rs: Ranges) -> str:
        parts = []
        for lo, hi in rs:
            if lo == hi:
                parts.append(_cp_text(lo, True))
            elif hi == lo + 1:
                parts.append(_cp_text(lo, True) + _cp_text(hi, True))
            else:
                parts.append(_cp_text(lo, True) + "-" + _cp_text(hi, True))
        return "".join(parts)

    if ranges == ALL:
        return "[\\s\\S]"
    pos = "[" + body(ranges) + "]"
    neg = "[^" + body(negate(ranges)) + "]"
    return neg if len(neg) < len(pos) else pos


def render_set(ranges: Ranges) -> str | None:
    """Regex over JSON text for one character of ``ranges`` in canonical encoding."""
    return _render_set(norm(ranges))


@lru_cache(maxsize=4096)
def _render_set(ranges: Ranges) -> str | None:
    """:func:`render_set` of normalised ranges, memoised: any key but the declared
    names renders the same few sets at every node of the names' trie (a third of
    a typical MaskBench compile went here)."""
    if not ranges:
        return None
    alts = []
    raw = intersect(ranges, RAW_OK)
    if raw:
        alts.append(class_text(raw))
    if contains(ranges, 0x22):
        alts.append('\\\\"')
    if contains(ranges, 0x5C):
        alts.append("\\\\\\\\")
    short = []
    by_hi: dict[int, list[int]] = {0: [], 1: []}
    for cp in range(0x20):
        if contains(ranges, cp):
            if cp in _SHORT:
                short.append(_SHORT[cp])
            else:
                by_hi[cp >> 4].append(cp & 0xF)
    for hi_nibble, lows in by_hi.items():
        if lows:
            cls = class_text(norm((ord("%x" % d), ord("%x" % d)) for d in lows))
            alts.append("\\\\u00%d" % hi_nibble + cls)
    if short:
        alts.append("\\\\" + (short[0] if len(short) == 1 else "[" + "".join(short) + "]"))
    return alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"


# --------------------------------------------------------------------------
# AST helpers

EPS: Node = ("cat", [])
NEVER: Node = ("alt", [])
ANY: Node = ("any",)


def is_never(n: Node) -> bool:
    return n[0] == "alt" and not n[1]


def cat(nodes) -> Node:
    out = []
    for n in nodes:
        if is_never(n):
            return NEVER
        if n[0] == "cat":
            out.extend(n[1])
        else:
            out.append(n)
    return out[0] if len(out) == 1 else ("cat", out)


def alt(nodes) -> Node:
    out = []
    for n in nodes:
        if is_never(n):
            continue
        for m in (n[1] if n[0] == "alt" else [n]):
            if m not in out:
                out.append(m)
    return out[0] if len(out) == 1 else ("alt", out)


def rep(n: Node, lo: int, hi: int | None) -> Node:
    if hi is not None and hi < lo:
        return NEVER
    if is_never(n):
        return EPS if lo == 0 else NEVER
    if n == EPS or hi == 0:
        return EPS
    if lo == hi == 1:
        return n
    return ("rep", n, lo, hi)


def literal(s: str) -> Node:
    """The one string ``s`` (each character canonically encoded when rendered)."""
    return cat([("set", chars(ch)) for ch in s])


def any_string(lo: int = 0, hi: int | None = None) -> Node:
    return rep(ANY, lo, hi)


def lengths(n: Node) -> tuple[int, int | None]:
    k = n[0]
    if k in ("set", "any"):
        return 1, 1
    if k == "cat":
        mn, mx = 0, 0
        for c in n[1]:
            a, b = lengths(c)
            mn += a
            mx = None if mx is None or b is None else mx + b
        return mn, mx
    if k == "alt":
        if not n[1]:
            return 0, 0
        ls = [lengths(c) for c in n[1]]
        mn = min(a for a, _ in ls)
        mx = None if any(b is None for _, b in ls) else max(b for _, b in ls)
        return mn, mx
    if k == "rep":
        a, b = lengths(n[1])
        lo, hi = n[2], n[3]
        mx = None if (hi is None and b != 0) or b is None else (b * hi if hi is not None else 0)
        return a * lo, mx
    raise AssertionError(k)


def nullable(n: Node) -> bool:
    return lengths(n)[0] == 0


def _is_any_star(n: Node) -> bool:
    return n[0] == "rep" and n[1] == ANY and n[2] == 0 and n[3] is None


def simplify(n: Node) -> Node:
    """Cheap structural simplifications that keep the language."""
    k = n[0]
    if k == "cat":
        parts = [simplify(c) for c in n[1]]
        out: list[Node] = []
        for p in parts:
            for q in (p[1] if p[0] == "cat" else [p]):
                if out and _is_any_star(q) and _is_any_star(out[-1]):
                    continue
                out.append(q)
        if out and (_is_any_star(out[0]) or _is_any_star(out[-1])):
            inner = out[(1 if _is_any_star(out[0]) else 0):(len(out) - 1 if _is_any_star(out[-1]) else len(out))]
            if all(nullable(q) for q in inner):
                return any_string()
        return cat(out)
    if k == "alt":
        parts = [simplify(c) for c in n[1]]
        if any(_is_any_star(p) for p in parts):
            return any_string()
        return alt(parts)
    if k == "rep":
        return rep(simplify(n[1]), n[2], n[3])
    return n


def exclude_strings(names) -> Node:
    """All strings except ``names``, each character in its canonical encoding
    (so that the JSON text determines the value and cannot spell an excluded
    name in another way)."""
    trie: dict = {}
    end = object()
    for n in set(names):
        t = trie
        for ch in n:
            t = t.setdefault(ch, {})
        t[end] = True
    canon_any = ("set", ALL)

    def build(t: dict) -> Node:
        kids = [k for k in t if k is not end]
        alts = []
        if end not in t:
            alts.append(EPS)
        others = minus(ALL, chars("".join(kids)))
        if others:
            alts.append(cat([("set", others), rep(canon_any, 0, None)]))
        for k in kids:
            alts.append(cat([("set", chars(k)), build(t[k])]))
        return alt(alts)

    return build(trie)


class CannotRestrict(Exception):
    pass


def restrict_length(n: Node, lo: int, hi: int | None) -> Node:
    """L(n) ∩ {strings of length in [lo, hi]} exactly, or raise CannotRestrict."""
    lo = max(lo, 0)
    mn, mx = lengths(n)
    if mn >= lo and (hi is None or (mx is not None and mx <= hi)):
        return n
    if (hi is not None and mn > hi) or (mx is not None and mx < lo) or (hi is not None and hi < lo):
        return NEVER
    k = n[0]
    if k == "alt":
        return alt(restrict_length(c, lo, hi) for c in n[1])
    if k == "cat":
        kids = n[1]
        var = [i for i, c in enumerate(kids) if lengths(c)[0] != lengths(c)[1]]
        if len(var) == 1:
            fixed = sum(lengths(c)[0] for i, c in enumerate(kids) if i != var[0])
            i = var[0]
            new = restrict_length(kids[i], lo - fixed, None if hi is None else hi - fixed)
            return cat(list(kids[:i]) + [new] + list(kids[i + 1:]))
        # ANY* X ANY* with X of fixed length: position of the first X occurrence
        # does not matter for the language; spell it with bounded fillers.
        raise CannotRestrict("several variable-length parts")
    if k == "rep":
        child, a, b = n[1], n[2], n[3]
        cmn, cmx = lengths(child)
        if cmn == cmx and cmn > 0:
            new_lo = max(a, -(-lo // cmn))
            new_hi = b if hi is None else (hi // cmn if b is None else min(b, hi // cmn))
            return rep(child, new_lo, new_hi)
        if a == 0 and b == 1:
            return alt([EPS if lo <= 0 else NEVER, restrict_length(child, lo, hi)])
        raise CannotRestrict("repetition of a variable-length group")
    raise CannotRestrict(k)


def render(n: Node) -> str | None:
    """Regex over the JSON text of the string body (without quotes); None = empty language."""
    if is_never(n):
        return None
    return _render(n)[0]


def _render(n: Node) -> tuple[str, str]:
    """(text, kind): kind is "atom" (one unit), "quant" (quantified unit) or "seq"."""
    k = n[0]
    if k == "any":
        return ANY_UNIT_RX, "atom"
    if k == "set":
        r = render_set(n[1])
        if r is None:
            raise AssertionError("empty set reached render")
        return (r, "atom") if is_atomic(r) else ("(?:" + r + ")", "atom")
    if k == "cat":
        parts = [_render(c) for c in n[1]]
        if len(parts) == 1:
            return parts[0]
        return "".join(t for t, _k in parts), "seq"
    if k == "alt":
        texts = []
        has_eps = False
        for c in n[1]:
            if c == EPS:
                has_eps = True
                continue
            if is_never(c):
                continue
            texts.append(_render(c))
        if not texts:
            return "", "seq"
        if len(texts) == 1:
            body, kind = texts[0]
        else:
            body, kind = "(?:" + "|".join(t for t, _k in texts) + ")", "atom"
        if has_eps:
            return (body if kind == "atom" else "(?:" + body + ")") + "?", "quant"
        return body, kind
    if k == "rep":
        text, kind = _render(n[1])
        body = text if kind == "atom" else "(?:" + text + ")"
        lo, hi = n[2], n[3]
        if lo > MAX_REPEAT:
            raise PatternUnsupported(f"repetition count {lo} above {MAX_REPEAT}")
        if hi is not None and hi > MAX_REPEAT:
            hi = MAX_REPEAT  # a subset: regex engines bound counted repetition
        if (lo, hi) == (0, None):
            return body + "*", "quant"
        if (lo, hi) == (1, None):
            return body + "+", "quant"
        if (lo, hi) == (0, 1):
            return body + "?", "quant"
        if hi is None:
            return body + "{%d,}" % lo, "quant"
        if lo == hi:
            return body + "{%d}" % lo, "quant"
        return body + "{%d,%d}" % (lo, hi), "quant"
    raise AssertionError(k)


def _atom_end(s: str, i: int) -> int:
    """Index just past the atom starting at s[i]."""
    c = s[i]
    if c == "\\":
        if s[i + 1] == "x":
            return i + 4
        if s[i + 1] == "u":
            return i + 6
        if s[i + 1] == "U":
            return i + 10
        return i + 2
    if c == "[":
        j = i + 1
        if j < len(s) and s[j] == "^":
            j += 1
        while s[j] != "]":
            j += 2 if s[j] == "\\" else 1
        return j + 1
    if c == "(":
        depth = 0
        j = i
        in_class = False
        while True:
            ch = s[j]
            if ch == "\\":
                j += 2
                continue
            if in_class:
                if ch == "]":
                    in_class = False
            elif ch == "[":
                in_class = True
            elif ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
                if depth == 0:
                    return j + 1
            j += 1
    return i + 1


def is_atomic(s: str) -> bool:
    if not s:
        return False
    try:
        return _atom_end(s, 0) == len(s)
    except IndexError:
        return False


def atom(s: str) -> str:
    return s if is_atomic(s) else "(?:" + s + ")"


# --------------------------------------------------------------------------
# ECMA-262 pattern parser


BOL: Node = ("bol",)
EOL: Node = ("eol",)


def _has_anchor(n: Node) -> bool:
    """Zero-width items: ``^``, ``$`` and lookaheads (``("look", negative, alternatives)``)."""
    k = n[0]
    if k in ("bol", "eol", "look", "tempered"):
        return True
    if k in ("cat", "alt"):
        return any(_has_anchor(c) for c in n[1])
    if k == "rep":
        return _has_anchor(n[1])
    return False


def _cat_keep(items: list[Node]) -> Node:
    """Concatenation that keeps anchors (cat() would be fine too; kept explicit)."""
    return items[0] if len(items) == 1 else ("cat", list(items))


def _flatten_anchors(n: Node, limit: int = 64) -> list[list[Node]]:
    """Distribute alternations that contain anchors: a list of sequences whose union is n."""
    if not _has_anchor(n):
        return [[n]]
    k = n[0]
    if k in ("bol", "eol", "look", "tempered"):
        return [[n]]
    if k == "alt":
        out = []
        for c in n[1]:
            out.extend(_flatten_anchors(c, limit))
        if len(out) > limit:
            raise PatternUnsupported("too many anchored alternatives")
        return out
    if k == "cat":
        seqs: list[list[Node]] = [[]]
        for c in n[1]:
            sub = _flatten_anchors(c, limit)
            seqs = [a + b for a in seqs for b in sub]
            if len(seqs) > limit:
                raise PatternUnsupported("too many anchored alternatives")
        return seqs
    raise PatternUnsupported("anchor or lookahead inside a repetition")


class _PatternParser:
    """``wide``: the strings that at least one of ECMA-262 and Python matches
    (the default is the strings both match); lookaheads are unsupported there."""

    def __init__(self, text: str, wide: bool = False) -> None:
        self.t = text
        self.i = 0
        self.wide = wide

    def peek(self, k: int = 0) -> str:
        j = self.i + k
        return self.t[j] if j < len(self.t) else ""

    def unsup(self, msg: str, pos: int | None = None) -> PatternUnsupported:
        return PatternUnsupported(msg, self.i if pos is None else pos)

    def parse(self) -> list[tuple[bool, Node, bool]]:
        """Top-level alternatives as (anchored_start, body, anchored_end)."""
        node = self.disjunction()
        if self.i < len(self.t):
            if self.peek() == ")":
                raise PatternInvalid("unbalanced parenthesis")
            raise self.unsup(f"unexpected {self.peek()!r}")
        out = []
        for seq in _flatten_anchors(node):
            start = end = False
            while seq and seq[0] == BOL:
                seq = seq[1:]
                start = True
            while seq and seq[-1] == EOL:
                seq = seq[:-1]
                end = True
            if seq and seq[-1][0] == "tempered" and end:
                seq = seq[:-1] + [self._tempered(seq[-1])]
            if self.wide and any(x[0] in ("look", "tempered") for x in seq):
                raise self.unsup("lookahead in the wide reading")
            if any(x[0] == "look" for x in seq):
                out.append((start, self._lookaheads(seq, end), True))
                continue
            # '^' after '$' or similar leftovers: only legal when nothing is consumed in between
            if any(_has_anchor(x) for x in seq):
                raise self.unsup("'^'/'$' anchor inside the pattern")
            out.append((start, cat(seq), end))
        return out

    def _lookaheads(self, seq: list[Node], end: bool) -> Node:
        """The language of a sequence with lookaheads, up to the end of the string:
        ``A (?=X) B`` is ``A`` followed by what ``B`` (and the rest) and ``X`` (then
        anything, unless ``X`` ends with ``$``) both match; ``(?!X)`` takes the
        difference. Exact, by the automata of :mod:`.string_sets`."""
        from . import string_sets as ss

        rest = EPS if end else any_string()
        i = len(seq)
        try:
            while i > 0:
                j = i - 1
                while j >= 0 and seq[j][0] != "look":
                    j -= 1
                items = seq[j + 1:i]
                if any(_has_anchor(x) for x in items):
                    raise self.unsup("'^'/'$' anchor inside the pattern")
                rest = cat(list(items) + [rest])
                if j < 0:
                    break
                _k, negative, inner = seq[j]
                ahead = alt([self._lookahead_language(a) for a in _flatten_anchors(inner)])
                rest = ss.difference(rest, [ahead]) if negative else ss.intersect_all([rest, ahead])
                i = j
        except ss.TooComplex as e:
            raise self.unsup(f"lookahead too complex to resolve exactly ({e})") from None
        return rest

    def _tempered(self, n: Node) -> Node:
        """``((?!X)Y){lo,hi}`` right before the final ``$``: the repetitions of ``Y``
        in which no match of ``X`` starts, i.e. that do not contain one (X non-empty)."""
        from . import string_sets as ss

        _k, inner, body, lo, hi = n
        xs = []
        for a in _flatten_anchors(inner):
            if any(_has_anchor(x) for x in a):
                raise self.unsup("anchor or nested lookahead inside a lookahead")
            x = cat(a)
            if nullable(x):
                raise self.unsup("a negative lookahead that matches the empty string")
            xs.append(cat([any_string(), x, any_string()]))
        try:
            return ss.difference(rep(body, lo, hi), xs)
        except ss.TooComplex as e:
            raise self.unsup(f"lookahead too complex to resolve exactly ({e})") from None

    def _lookahead_language(self, seq: list[Node]) -> Node:
        end = bool(seq) and seq[-1] == EOL
        if end:
            seq = seq[:-1]
        if any(_has_anchor(x) for x in seq):
            raise self.unsup("anchor or nested lookahead inside a lookahead")
        return cat(list(seq) + ([] if end else [any_string()]))

    def sequence(self) -> list[Node]:
        items: list[Node] = []
        while self.i < len(self.t) and self.peek() not in "|)":
            c = self.peek()
            if c == "$":
                self.i += 1
                items.append(EOL)
                continue
            if c == "^":
                self.i += 1
                items.append(BOL)
                continue
            a = self.atom()
            items.append(self.quantifier(a))
        return items

    def disjunction(self) -> Node:
        branches = [_cat_keep(self.sequence())]
        while self.peek() == "|":
            self.i += 1
            branches.append(_cat_keep(self.sequence()))
        return ("alt", branches) if len(branches) > 1 else branches[0]

    def quantifier(self, a: Node) -> Node:
        c = self.peek()
        pos = self.i
        if c and c in "*+?":
            self.i += 1
            lo, hi = {"*": (0, None), "+": (1, None), "?": (0, 1)}[c]
        elif c == "{":
            m = re.match(r"\{(\d+)(,(\d*))?\}", self.t[self.i:])
            if not m:
                if re.match(r"\{,\d*\}", self.t[self.i:]):
                    raise self.unsup("'{,n}' quantifier (literal in ECMA-262, a quantifier in Python)")
                return a  # literal brace: handled as an atom next round
            self.i += m.end()
            lo = int(m.group(1))
            hi = lo if m.group(2) is None else (int(m.group(3)) if m.group(3) else None)
            if hi is not None and hi < lo:
                raise PatternInvalid("numbers out of order in {} quantifier")
        else:
            return a
        if self.peek() == "?":
            self.i += 1
        elif self.peek() == "+":
            raise self.unsup("possessive quantifier", self.i)
        if self.peek() in ("*", "+", "?") or (self.peek() == "{" and re.match(r"\{\d+(,\d*)?\}", self.t[self.i:])):
            raise PatternInvalid("nothing to repeat")
        if (a[0] == "cat" and a[1] and a[1][0][0] == "look" and a[1][0][1]
                and not any(_has_anchor(x) for x in a[1][1:])):
            # the "tempered" repetition ((?!X)Y)*: no X may start inside it
            return ("tempered", a[1][0][2], cat(a[1][1:]), lo, hi)
        if _has_anchor(a):
            raise self.unsup("quantified anchor or lookahead", pos)
        return rep(a, lo, hi) if not (lo == 0 and hi == 0) else EPS

    def atom(self) -> Node:
        c = self.peek()
        pos = self.i
        if c == "(":
            self.i += 1
            if self.t.startswith("?:", self.i):
                self.i += 2
            elif self.t.startswith("?<", self.i) and self.peek(2) not in "=!":
                m = re.match(r"\?<([A-Za-z_][A-Za-z0-9_]*)>", self.t[self.i:])
                if not m:
                    raise self.unsup("group name", pos)
                self.i += m.end()
            elif self.t.startswith("?=", self.i) or self.t.startswith("?!", self.i):
                negative = self.peek(1) == "!"
                self.i += 2
                inner = self.disjunction()
                if self.peek() != ")":
                    raise PatternInvalid("missing )")
                self.i += 1
                return ("look", negative, inner)
            elif self.peek() == "?":
                raise self.unsup("lookbehind or group extension", pos)
            node = self.disjunction()
            if self.peek() != ")":
                raise PatternInvalid("missing )")
            self.i += 1
            return node
        if c == "[":
            return ("set", self.char_class())
        if c == ".":
            self.i += 1
            return ("set", negate(chars("\n") if self.wide else ECMA_LINE_TERMINATORS))
        if c == "\\":
            narrow, wide = self.escape(in_class=False)
            return ("set", wide if self.wide else narrow)
        if c in "*+?":
            raise PatternInvalid("nothing to repeat")
        if c == "{" and re.match(r"\{\d+(,\d*)?\}", self.t[self.i:]):
            raise PatternInvalid("nothing to repeat")
        if c in "])}" and c != ")":
            # Annex B: literal ] and }; Python agrees.
            pass
        self.i += 1
        return ("set", chars(c))

    def escape(self, in_class: bool) -> tuple[Ranges, Ranges]:
        pos = self.i
        self.i += 1
        c = self.peek()
        if not c:
            raise PatternInvalid("trailing backslash")
        self.i += 1
        if c in "dDwWsS":
            return class_escape(c)
        simple = {"t": 9, "n": 10, "v": 11, "f": 12, "r": 13}
        if c in simple:
            s = chars(chr(simple[c]))
            return s, s
        if c == "0":
            if self.peek().isdigit():
                raise self.unsup("octal escape", pos)
            s = chars("\0")
            return s, s
        if c == "b":
            if in_class:
                s = chars("\b")
                return s, s
            raise self.unsup("word boundary \\b", pos)
        if c == "x":
            h = self.t[self.i:self.i + 2]
            if not re.fullmatch(r"[0-9a-fA-F]{2}", h):
                raise self.unsup("malformed \\x escape", pos)
            self.i += 2
            s = chars(chr(int(h, 16)))
            return s, s
        if c == "u":
            h = self.t[self.i:self.i + 4]
            if not re.fullmatch(r"[0-9a-fA-F]{4}", h):
                raise self.unsup("\\u escape that Python and ECMA-262 read differently", pos)
            self.i += 4
            cp = int(h, 16)
            if SURR_LO <= cp <= SURR_HI:
                raise self.unsup("surrogate escape", pos)
            s = chars(chr(cp))
            return s, s
        if c.isalnum() or c == "_":
            raise self.unsup(f"escape \\{c}", pos)
        if ord(c) > 0x7F:
            raise self.unsup(f"escape \\{c}", pos)
        s = chars(c)
        return s, s

    def char_class(self) -> Ranges:
        pos = self.i
        self.i += 1
        negated = False
        if self.peek() == "^":
            negated = True
            self.i += 1
        if self.peek() == "]":
            raise self.unsup("empty character class ('[]' / '[^]')", pos)
        narrow: list[Ranges] = []
        wide: list[Ranges] = []
        while True:
            if self.i >= len(self.t):
                raise PatternInvalid("unterminated character class")
            c = self.peek()
            if c == "]":
                self.i += 1
                break
            if c == "[" and self.peek(1) in ":=.":
                raise self.unsup("POSIX-style class syntax", self.i)
            lo_n, lo_w, lo_single = self.class_atom()
            if self.peek() == "-" and self.peek(1) not in ("]", ""):
                dash = self.i
                self.i += 1
                hi_n, hi_w, hi_single = self.class_atom()
                if lo_single is None or hi_single is None:
                    raise self.unsup("class escape used as a range bound", dash)
                if hi_single < lo_single:
                    raise PatternInvalid("bad character range")
                r = norm([(lo_single, hi_single)])
                narrow.append(r)
                wide.append(r)
            else:
                narrow.append(lo_n)
                wide.append(lo_w)
        if self.wide:
            narrow, wide = wide, narrow
        if negated:
            return negate(union(*wide))
        return union(*narrow)

    def class_atom(self) -> tuple[Ranges, Ranges, int | None]:
        c = self.peek()
        if c == "\\":
            n, w = self.escape(in_class=True)
            single = n[0][0] if n == w and len(n) == 1 and n[0][0] == n[0][1] else None
            return n, w, single
        self.i += 1
        s = chars(c)
        return s, s, ord(c)


def parse_pattern(pattern: str, *, wide: bool = False) -> Node:
    """The language of JSON string *values* an (unanchored, per the spec)
    JSON Schema ``pattern`` accepts, as an AST.  Raises PatternUnsupported or
    PatternInvalid.

    Where ECMA-262 and Python's ``re`` (which validators such as ``jsonschema``
    use) read the pattern differently (``\\d``, ``\\s``, ``.``, and ``$``, which
    Python also matches before a final newline), the language is the strings
    both match; ``wide=True`` gives the strings either matches, for keys that
    must *not* match a pattern."""
    try:
        re.compile(pattern)
    except re.error as e:
        raise PatternInvalid(f"Python cannot compile the pattern: {e}") from None
    except (OverflowError, RecursionError):  # pragma: no cover
        raise PatternUnsupported("pattern too large") from None
    if sys.getrecursionlimit() < 2000:  # pragma: no cover
        sys.setrecursionlimit(2000)
    alts = _PatternParser(pattern, wide).parse()
    out = []
    for start, body, end in alts:
        parts = []
        if not start:
            parts.append(any_string())
        parts.append(body)
        if not end:
            parts.append(any_string())
        elif wide:
            parts.append(alt([EPS, ("set", chars("\n"))]))
        out.append(simplify(cat(parts)))
    return simplify(alt(out))


def to_python_regex(n: Node) -> str:
    """A Python regex over decoded string values (for checking values)."""
    k = n[0]
    if k == "any":
        return "[\\s\\S]"
    if k == "set":
        if not n[1]:
            return "(?!)"
        return class_text(n[1])
    if k == "cat":
        return "".join("(?:" + to_python_regex(c) + ")" for c in n[1])
    if k == "alt":
        if not n[1]:
            return "(?!)"
        return "(?:" + "|".join(to_python_regex(c) for c in n[1]) + ")"
    if k == "rep":
        lo, hi = n[2], n[3]
        q = "{%d,%s}" % (lo, "" if hi is None else hi)
        return "(?:" + to_python_regex(n[1]) + ")" + q
    raise AssertionError(k)
