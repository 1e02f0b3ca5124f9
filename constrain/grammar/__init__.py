"""Context-free grammar constraints (lark and GBNF front ends, Earley + lexer-DFA masks).

    >>> c = compile_grammar("grammars/json.lark", vocab)            # doctest: +SKIP
    >>> m = c.matcher(); m.fill_mask(buf); m.accept_token(tok)       # doctest: +SKIP

See docs/grammars.md for the semantics and the design.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from .check import GrammarReport, check_grammar
from .earley import CompiledGrammar
from .ir import Grammar, GrammarBuilder, Terminal
from .matcher import GrammarConstraint, GrammarMatcher

__all__ = [
    "compile_grammar", "load_grammar", "Grammar", "GrammarBuilder", "Terminal", "CompiledGrammar",
    "GrammarConstraint", "GrammarMatcher", "detect_syntax", "check_grammar", "GrammarReport",
]

_SYNTAXES = ("lark", "gbnf")


def detect_syntax(text: str, path: str | None = None) -> str:
    """'gbnf' for .gbnf/.ebnf files or text using ``::=``, else 'lark'."""
    if path is not None:
        suffix = Path(path).suffix.lower()
        if suffix in (".gbnf", ".ebnf", ".bnf"):
            return "gbnf"
        if suffix == ".lark":
            return "lark"
    import re

    if re.search(r"^\s*[A-Za-z0-9_-]+\s*::=", text, re.M):
        return "gbnf"
    return "lark"


def load_grammar(text_or_path: str | Path, *, start: str | None = None, syntax: str | None = None,
                 merge_terminals: bool = True) -> Grammar:
    """Read a grammar (text or file path) into the IR, untrimmed.

    ``syntax``: 'lark', 'gbnf', or None to infer it from the file extension
    (.gbnf/.ebnf) or the text (``::=``). ``start`` defaults to ``start`` for
    lark and ``root`` for GBNF. ``merge_terminals`` (GBNF only) merges runs of
    adjacent literals/classes into one terminal; the language is unchanged.
    """
    from .lark_frontend import lark_to_ir, read_grammar_source

    text, path = read_grammar_source(text_or_path)
    if syntax is None:
        syntax = detect_syntax(text, path)
    if syntax not in _SYNTAXES:
        raise ValueError(f"unknown grammar syntax {syntax!r}; expected one of {_SYNTAXES}")
    if syntax == "lark":
        return lark_to_ir(text, start=start or "start", source=path)
    from .gbnf import gbnf_to_ir

    return gbnf_to_ir(text, start=start or "root", merge=merge_terminals, source=path)


@lru_cache(maxsize=64)
def _compiled(text: str, path: str | None, start: str | None, syntax: str | None) -> CompiledGrammar:
    from .lark_frontend import lark_to_ir

    if syntax is None:
        syntax = detect_syntax(text, path)
    if syntax not in _SYNTAXES:
        raise ValueError(f"unknown grammar syntax {syntax!r}; expected one of {_SYNTAXES}")
    if syntax == "lark":
        g = lark_to_ir(text, start=start or "start", source=path)
    else:
        from .gbnf import gbnf_to_ir

        g = gbnf_to_ir(text, start=start or "root", source=path)
    return CompiledGrammar(g)


def compile_grammar(text_or_path: str | Path | Grammar, vocab: Any, start: str | None = None,
                    syntax: str | None = None) -> GrammarConstraint:
    """Compile a grammar for ``vocab``.

    ``text_or_path``: lark or GBNF text, a path to a grammar file, or a
    :class:`Grammar` built programmatically. ``start`` defaults to ``start``
    (lark) / ``root`` (GBNF); ``syntax`` is 'lark', 'gbnf' or None (infer).
    The language is the grammar's exact CFG language over bytes with every
    lexing considered (lark's Earley ``lexer="dynamic_complete"``). Raises
    GrammarError (with line/column where known) for malformed grammars,
    undefined symbols, terminals that cannot be enforced exactly and empty
    languages. Compiled grammars are cached per text/path.
    """
    if isinstance(text_or_path, Grammar):
        if start is not None and start != text_or_path.start:
            g = text_or_path
            text_or_path = Grammar(g.rules, g.terminals, start, g.ignore, locations=g.locations, source=g.source)
        return GrammarConstraint(text_or_path, vocab)
    from .lark_frontend import read_grammar_source

    text, path = read_grammar_source(text_or_path)
    cg = _compiled(text, path, start, syntax)
    src = path
    return GrammarConstraint(cg, vocab, source=src)
