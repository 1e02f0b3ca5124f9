"""``constrain grammar check FILE``: static checks of a grammar.

:func:`check_grammar` never raises for a bad grammar; it returns a
:class:`GrammarReport` with

* ``errors``: what stops the grammar from compiling (syntax errors with
  line/column, undefined symbols, terminals that cannot be enforced, an
  empty language);
* ``unreachable`` / ``unproductive`` / ``unused_terminals``: symbols that are
  defined but can never take part in a sentence (they are dropped);
* ``warnings``: cheap ambiguity and semantics hints: terminal collisions
  (two terminals match a common string, with a witness), ignored terminals
  that can end early under all-lexings semantics (e.g. ``/#[^\\n]*/``),
  alternatives that are left- and right-recursive at once (``e: e "+" e``),
  terminals matching the empty string, lazy quantifiers.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..automata.dfa import ByteDFA
from ..errors import ConstraintError
from .ir import Grammar


@dataclass
class GrammarReport:
    source: str | None = None
    syntax: str | None = None
    errors: list[str] = field(default_factory=list)
    error_locations: list[tuple[int | None, int | None]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    unreachable: list[str] = field(default_factory=list)
    unproductive: list[str] = field(default_factory=list)
    unused_terminals: list[str] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors

    def format(self) -> str:
        lines = [f"{self.source or '<grammar>'} ({self.syntax or '?'}): {'OK' if self.ok else 'ERROR'}"]
        if self.stats:
            lines.append("  " + ", ".join(f"{k}: {v}" for k, v in self.stats.items()))
        for e in self.errors:
            lines.append(f"  error: {e}")
        if self.unreachable:
            lines.append(f"  unreachable rules (dropped): {', '.join(self.unreachable)}")
        if self.unproductive:
            lines.append(f"  unproductive rules (derive no finite string, dropped): {', '.join(self.unproductive)}")
        if self.unused_terminals:
            lines.append(f"  unused terminals: {', '.join(self.unused_terminals)}")
        for w in self.warnings:
            lines.append(f"  warning: {w}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()


def _intersection_witness(a: ByteDFA, b: ByteDFA, limit: int = 20000) -> bytes | None:
    """A shortest string in L(a) and L(b), or None (BFS over the product)."""
    start = (a.start, b.start)
    prev: dict[tuple[int, int], tuple[tuple[int, int], int] | None] = {start: None}
    q = deque([start])
    ta, tb = a.table, b.table
    ca, cb = a.byte_class, b.byte_class
    # Representative bytes: one per pair of classes.
    reps: dict[tuple[int, int], int] = {}
    for x in range(256):
        reps.setdefault((int(ca[x]), int(cb[x])), x)
    rep_list = list(reps.values())
    while q:
        st = q.popleft()
        p, r = st
        if a.accepting[p] and b.accepting[r]:
            out = bytearray()
            cur = st
            while prev[cur] is not None:
                cur, x = prev[cur]  # type: ignore[misc]
                out.append(x)
            return bytes(reversed(out))
        if len(prev) > limit:
            return None
        for x in rep_list:
            np_ = ta[p, ca[x]]
            nr = tb[r, cb[x]]
            if np_ < 0 or nr < 0:
                continue
            nxt = (int(np_), int(nr))
            if nxt not in prev:
                prev[nxt] = (st, x)
                q.append(nxt)
    return None


def _extension_bytes(dfa: ByteDFA) -> set[int]:
    """Bytes that extend some complete lexeme (live moves out of accepting states)."""
    out: set[int] = set()
    for s in range(dfa.num_states):
        if dfa.accepting[s]:
            for x in range(256):
                if dfa.table[s, dfa.byte_class[x]] >= 0:
                    out.add(x)
    return out


def _first_bytes(dfa: ByteDFA) -> set[int]:
    return {x for x in range(256) if dfa.table[dfa.start, dfa.byte_class[x]] >= 0}


def _show(data: bytes) -> str:
    return repr(data.decode("utf-8", "backslashreplace"))


def _pat(text: str) -> str:
    """A pattern for display: control characters escaped."""
    return "".join(ch if ch >= " " or ch == "\t" else repr(ch)[1:-1] for ch in text)


def grammar_warnings(g: Grammar, max_collisions: int = 30) -> list[str]:
    """Cheap ambiguity / semantics warnings for a (trimmed) grammar."""
    from .earley import _concat_closed

    warnings: list[str] = []
    names = list(g.terminals)
    # Terminal collisions, grouped by the broader terminal.
    groups: dict[str, list[tuple[str, bytes]]] = {}
    for i, x in enumerate(names):
        for y in names[i + 1:]:
            w = _intersection_witness(g.terminals[x].dfa, g.terminals[y].dfa)
            if w is None:
                continue
            lx, ly = g.terminals[x].literal, g.terminals[y].literal
            big, small = (x, y) if lx is None and ly is not None else (y, x) if ly is None and lx is not None \
                else (x, y)
            groups.setdefault(big, []).append((small, w))
    count = 0
    for big, smalls in groups.items():
        if count >= max_collisions:
            warnings.append("... more terminal collisions not shown")
            break
        count += 1
        if len(smalls) > 3:
            shown = ", ".join(s for s, _ in smalls[:12]) + (" ..." if len(smalls) > 12 else "")
            warnings.append(f"terminal collision: {big} ({_pat(g.terminals[big].pattern)}) also matches what "
                            f"{len(smalls)} other terminals match ({shown}); every lexing is kept, so the "
                            "grammar may be ambiguous where both are allowed")
        else:
            for s, w in smalls:
                warnings.append(f"terminal collision: {big} ({_pat(g.terminals[big].pattern)}) and {s} "
                                f"({_pat(g.terminals[s].pattern)}) both match {_show(w)}")
    # Ignored terminals that can end before their natural delimiter.
    firsts: set[int] = set()
    for t in g.terminals.values():
        firsts |= _first_bytes(t.dfa)
    for name in g.ignore:
        t = g.terminals[name]
        # Extending a whitespace run by whitespace changes nothing; comments are the trap.
        ext = _extension_bytes(t.dfa) - set(b" \t\r\n\f\v")
        if not ext:
            continue
        others: set[int] = set()
        for n2, t2 in g.terminals.items():
            if n2 == name and _concat_closed(t.dfa):
                continue
            others |= _first_bytes(t2.dfa)
        clash = ext & others
        if clash:
            ex = min(clash, key=lambda x: (not (0x20 < x < 0x7F), x))
            warnings.append(
                f"ignored terminal {name} ({_pat(t.pattern)}) can end before a byte that would extend it "
                f"(e.g. {_show(bytes([ex]))}): all lexings are kept, so text that lark's lexer would swallow "
                "into it (it matches ignored terminals greedily) may be parsed as code here; include the "
                "delimiter in the terminal (e.g. /#[^\\n]*\\n/ for a line comment)")
    # Alternatives both left- and right-recursive: e -> e op e is ambiguous.
    for lhs, alts in g.rules.items():
        for alt in alts:
            if len(alt) >= 2 and alt[0] == lhs and alt[-1] == lhs:
                warnings.append(f"rule {lhs}: alternative {' '.join(alt)} is left- and right-recursive "
                                "(ambiguous associativity)")
                break
    for name, t in g.terminals.items():
        if re.search(r"(?<!\\)(?:[*+?}])\?", t.pattern):
            warnings.append(f"terminal {name} ({_pat(t.pattern)}) uses a lazy quantifier: constrain reads it as "
                            "its language (every match length), not the first match as lark's re.match does")
    return warnings


def check_grammar(text_or_path: str | Path | Grammar, syntax: str | None = None, start: str | None = None,
                  ) -> GrammarReport:
    """Check a grammar (lark or GBNF text, a path, or an IR Grammar); see the module doc."""
    from . import detect_syntax
    from .lark_frontend import lark_defined_names, lark_to_ir, read_grammar_source

    report = GrammarReport()
    if isinstance(text_or_path, Grammar):
        g0 = text_or_path
        report.syntax = "ir"
        text = None
    else:
        text, path = read_grammar_source(text_or_path)
        report.source = path
        syntax = syntax or detect_syntax(text, path)
        report.syntax = syntax
        try:
            if syntax == "lark":
                g0 = lark_to_ir(text, start=start or "start", source=path)
            elif syntax == "gbnf":
                from .gbnf import gbnf_to_ir

                g0 = gbnf_to_ir(text, start=start or "root", source=path)
            else:
                raise ValueError(f"unknown grammar syntax {syntax!r}")
        except ConstraintError as e:
            report.errors.append(str(e))
            report.error_locations.append((e.line, e.column))
            return report
    for name, t in g0.terminals.items():
        if t.nullable:
            report.warnings.append(f"terminal {name} ({_pat(t.pattern)}) matches the empty string; it is treated "
                                   "as optional (lark's Earley parser rejects zero-width terminals)")
    try:
        g, trim = g0.trimmed()
    except ConstraintError as e:
        report.errors.append(str(e))
        report.error_locations.append((e.line, e.column))
        return report
    report.unproductive = trim.unproductive
    unreachable = list(trim.unreachable)
    unused_terms = list(trim.unused_terminals)
    if report.syntax == "lark" and text is not None:
        # lark drops unused rules before we see them: compare with the definitions.
        try:
            rules, terms = lark_defined_names(text, report.source)
            unreachable += [r for r in rules if r not in g0.rules and r not in unreachable]
            used = set(g0.terminals)
            unused_terms += [t for t in terms if t not in used and not t.startswith("_") and t not in unused_terms
                             and not any(t in tt.pattern for tt in g0.terminals.values())]
        except Exception:  # pragma: no cover - the grammar loaded once already
            pass
    report.unreachable = sorted(set(unreachable))
    report.unused_terminals = sorted(set(unused_terms))
    report.stats = {"rules": len(g.rules), "alternatives": sum(len(a) for a in g.rules.values()),
                    "terminals": len(g.terminals), "ignored": len(g.ignore)}
    report.warnings.extend(grammar_warnings(g))
    return report
