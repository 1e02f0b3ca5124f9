"""Lark grammars -> :class:`~constrain.grammar.ir.Grammar`.

Lark's own loader reads the grammar, so everything lark users write works:
rules, terminals built from strings/regexes/other terminals, priorities,
``%import`` (``common.*`` and relative files), ``%ignore``, ``%override``,
``%extend``, templates, ``?rule``/``_rule`` inlining, aliases and the EBNF
operators. Tree-shaping features (``?``, ``_``, aliases, ``!``) and terminal
priorities do not change the language and are ignored.

Terminal patterns keep Python ``re`` semantics (see :mod:`.pyregex`). The
language is the one lark's Earley parser accepts with
``lexer="dynamic_complete"`` (all lexings), read as regular languages: a lazy
quantifier is its language, so ``/a+?/`` matches ``aa`` too (lark's
``re.match``-based scanner only ever tries the first match of a regex and
its prefixes; the two agree for the usual greedy terminals).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

from ..errors import ConstraintError, GrammarError, RegexError, UnsupportedError
from .ir import Grammar, Terminal
from .pyregex import pyregex_to_ast


# Lookaround idioms from lark's standard library whose language (as lark's
# scanner reads it: the first match of re.match and its prefixes) is regular,
# mapped to an exactly equivalent regex. ESCAPED_STRING is
# "\"" _STRING_ESC_INNER "\"" = /".*?(?<!\\)(\\\\)*?"/: the lazy body stops
# at the first quote preceded by an even run of backslashes, i.e. a body
# where backslashes pair with the next character and other quotes are
# excluded (no newlines: no s flag).
_KNOWN_LOOKAROUND = {
    r'".*?(?<!\\)(\\\\)*?"': r'"(?:[^"\\\n]|\\[^\n])*"',
}


def _find(text: str, needle: str, *, word: bool = False, definition: bool = False) -> tuple[int, int] | None:
    """1-based (line, column) of the first occurrence of ``needle`` in ``text``."""
    if not needle:
        return None
    if definition:
        m = re.search(r"^[ \t]*[?!_]?" + re.escape(needle) + r"\b", text, re.M)
        pos = m.start() + m.group().index(needle.lstrip("?!")) if m else -1
    elif word:
        m = re.search(r"(?<![\w.])" + re.escape(needle) + r"(?![\w])", text)
        pos = m.start() if m else -1
    else:
        pos = text.find(needle)
    if pos < 0:
        return None
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return line, col


def _lark_error(e: Exception, text: str) -> GrammarError:
    from lark.exceptions import UnexpectedInput

    if isinstance(e, UnexpectedInput):
        line = getattr(e, "line", None)
        col = getattr(e, "column", None)
        ctx = ""
        try:
            ctx = e.get_context(text).rstrip()
        except Exception:  # pragma: no cover - defensive
            pass
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        msg = f"lark grammar syntax error: {first}"
        if ctx:
            msg += "\n" + ctx + "\n"
        if isinstance(line, int) and line > 0:
            return GrammarError(msg, line=line, column=col)
        return GrammarError(msg)
    msg = str(e).strip()
    loc = None
    m = re.search(r"Rule '([^']+)' used but not defined", msg) or re.search(r"Terminal[^']*'([^']+)'", msg)
    if m is None:
        m = re.search(r"(?:not defined|undefined)[^A-Za-z_]*([A-Za-z_][\w.]*)", msg)
    if m is not None:
        loc = _find(text, m.group(1), word=True)
    if "not defined" in msg or "undefined" in msg.lower():
        msg = f"undefined symbol: {msg}"
    if loc is not None:
        return GrammarError(f"lark grammar error: {msg}", line=loc[0], column=loc[1])
    return GrammarError(f"lark grammar error: {msg}")


def read_grammar_source(text_or_path: str | Path) -> tuple[str, str | None]:
    """(text, path-or-None): accept grammar text or a path to a grammar file."""
    if isinstance(text_or_path, Path):
        return text_or_path.read_text(encoding="utf-8"), str(text_or_path)
    s = str(text_or_path)
    if "\n" not in s and len(s) < 4096:
        p = Path(s)
        try:
            if p.is_file():
                return p.read_text(encoding="utf-8"), str(p)
        except OSError:
            pass
    return s, None


def lark_to_ir(text: str, *, start: str = "start", source: str | None = None,
               import_paths: Sequence[str] = ()) -> Grammar:
    """Load lark grammar text into the IR (raises GrammarError with line/column)."""
    try:
        from lark.exceptions import LarkError
        from lark.load_grammar import load_grammar
    except ImportError as e:  # pragma: no cover - lark is a dependency
        raise GrammarError("lark is required for syntax='lark'") from e
    paths = list(import_paths)
    if source is not None:
        paths.append(str(Path(source).resolve().parent))
    try:
        lg, _used = load_grammar(text, source or "<string>", paths, False)
        terminal_defs, rules, ignore = lg.compile([start], set())
    except LarkError as e:
        raise _lark_error(e, text) from None
    except (KeyError, AssertionError) as e:  # lark raises these for some malformed grammars
        raise GrammarError(f"lark grammar error: {type(e).__name__}: {e}") from None
    except OSError as e:
        raise GrammarError(f"lark grammar error: cannot import: {e}") from None

    locations: dict[str, tuple[int, int]] = {}
    declared = {name for name, (tree, _p) in lg.term_defs if tree is None}
    terminals: dict[str, Terminal] = {}
    for td in terminal_defs:
        pat = td.pattern
        raw = getattr(pat, "raw", None)
        loc = _find(text, td.name, definition=True) or (raw and _find(text, raw))
        if loc:
            locations[td.name] = loc
        regexp = pat.to_regexp()
        regexp = _KNOWN_LOOKAROUND.get(regexp, regexp)
        display = raw or (repr(pat.value) if pat.type == "str" else f"/{pat.value}/")
        try:
            node = pyregex_to_ast(regexp)
            t = Terminal.from_ast(str(td.name), node, pattern=f"/{regexp}/")
        except (UnsupportedError, RegexError) as e:
            where = f" ({display})" if display and display != td.name else ""
            msg = f"terminal {td.name}{where} cannot be enforced: {e.message}"
            if loc:
                raise GrammarError(msg, line=loc[0], column=loc[1]) from None
            raise GrammarError(msg) from None
        except ConstraintError as e:
            raise GrammarError(f"terminal {td.name}: {e}") from None
        if pat.type == "str":
            t = Terminal(t.name, t.dfa, display, t.literal)
        terminals[str(td.name)] = t

    rule_map: dict[str, list[tuple[str, ...]]] = {}
    for r in rules:
        rule_map.setdefault(str(r.origin.name), []).append(tuple(str(s.name) for s in r.expansion))
        if r.origin.name not in locations:
            loc = _find(text, str(r.origin.name), definition=True)
            if loc:
                locations[r.origin.name] = loc
    for r in rules:
        for s in r.expansion:
            if s.is_term and s.name not in terminals:
                loc = _find(text, s.name, word=True)
                why = " (declared with %declare: it needs a post-lexer, which constrain cannot run)" \
                    if s.name in declared else ""
                msg = f"undefined terminal {s.name}{why} used in rule {r.origin.name}"
                if loc:
                    raise GrammarError(msg, line=loc[0], column=loc[1])
                raise GrammarError(msg)
    if start not in rule_map:
        raise GrammarError(f"the start rule {start!r} is not defined (or has no alternatives)")
    for name in ignore:
        if name not in terminals:
            raise GrammarError(f"%ignore names an undefined terminal {name}")
    return Grammar(rule_map, terminals, start, [str(n) for n in ignore], locations=locations, source=source)


def lark_defined_names(text: str, source: str | None = None) -> tuple[list[str], list[str]]:
    """(rule names, terminal names) defined in the grammar text itself (for the checker)."""
    from lark.load_grammar import load_grammar

    lg, _ = load_grammar(text, source or "<string>", [str(Path(source).resolve().parent)] if source else [], False)
    rules = [n for n, params, _t, _o in lg.rule_defs if not params]
    terms = [n for n, _ in lg.term_defs]
    return rules, terms
