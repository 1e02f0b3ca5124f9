"""Regular right-hand sides with holes -> the grammar IR.

The JSON Schema compiler's grammar path writes each nonterminal's body as a
regex in which ``(?&name)`` stands for another nonterminal. Here each body is
parsed, and every maximal hole-free sub-expression becomes one terminal (a
byte DFA), so the grammar has as few lexemes as possible: masks inside a big
terminal cost what a DFA mask costs, and the Earley parser only runs at the
edges of holes. Splitting a regex into terminals this way keeps the language,
because the IR considers every lexing (see :mod:`constrain.grammar.ir`).
"""

from __future__ import annotations

from typing import Mapping

from ..grammar.ir import Grammar, GrammarBuilder, Terminal
from ..regex.parser import Node, parse_regex
from ..regex.to_dfa import ast_to_dfa

__all__ = ["bodies_to_grammar"]


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


class _Converter:
    def __init__(self, names: set[str]) -> None:
        self.b = GrammarBuilder()
        self.names = names
        self.memo: dict[int, bool] = {}
        self.terminals: dict[str, str] = {}
        self.star: dict[str, str] = {}

    def terminal(self, node: Node) -> str:
        key = repr(node)
        got = self.terminals.get(key)
        if got is None:
            got = self.terminals[key] = f"t{len(self.terminals)}"
            self.b.terminal(Terminal(got, ast_to_dfa(node), f"<schema terminal {got}>"))
        return got

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
            return (self.terminal(node),)
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
                        out.append(self.terminal(run[0] if len(run) == 1 else ("cat", run)))
                        run = []
                    out.extend(self.sequence(child))
                else:
                    run.append(child)
            if run:
                out.append(self.terminal(run[0] if len(run) == 1 else ("cat", run)))
            return tuple(out)
        if kind == "alt":
            nt = self.b.fresh("alt")
            self.b.rule(nt, *(self.sequence(c) for c in node[1]))
            return (nt,)
        if kind == "rep":
            _k, child, lo, hi = node
            x = self.symbol(child)
            out = (x,) * lo
            if hi is None:
                star = self.star.get(x)
                if star is None:
                    star = self.star[x] = self.b.fresh("star")
                    self.b.rule(star, (), (star, x))  # left recursion: cheap for Earley
                return out + (star,)
            opt: tuple[str, ...] = ()
            for _ in range(hi - lo):
                nt = self.b.fresh("opt")
                self.b.rule(nt, (), (x,) + opt)
                opt = (nt,)
            return out + opt
        raise AssertionError(f"unexpected regex node {kind!r}")


def bodies_to_grammar(start: str, bodies: Mapping[str, str]) -> Grammar:
    """The grammar whose nonterminal ``name`` derives the language of ``bodies[name]``."""
    conv = _Converter(set(bodies))
    for name, body in bodies.items():
        conv.memo = {}  # keyed by id(): only valid while this body's tree is alive
        conv.b.rule(name, conv.sequence(parse_regex(body, holes=True)))
    return conv.b.build(start=start)
