"""Random sentences of a grammar (for tests, fuzzing and examples).

Expands a random derivation of the start symbol (choosing the shallowest
alternatives once ``max_depth`` is reached, so sampling always terminates),
samples each terminal's lexeme by a random walk on its DFA (biased towards
printable ASCII, steered back to an accepting state once long enough) and
optionally inserts ``%ignore`` lexemes between lexemes. Every sample is in the
language by construction.
"""

from __future__ import annotations

import random
from collections import deque

import numpy as np

from ..automata.dfa import ByteDFA
from .ir import Grammar


class _DFASampler:
    def __init__(self, dfa: ByteDFA) -> None:
        self.dfa = dfa
        n = dfa.num_states
        full = dfa.table[:, dfa.byte_class.astype(np.intp)]  # [n, 256]
        self.moves: list[list[tuple[int, int]]] = [
            [(b, int(full[s, b])) for b in range(256) if full[s, b] >= 0] for s in range(n)
        ]
        # Distance (in bytes) to an accepting state.
        dist = [10**9] * n
        rev: list[list[int]] = [[] for _ in range(n)]
        for s in range(n):
            for _b, t in self.moves[s]:
                rev[t].append(s)
        q = deque()
        for s in range(n):
            if dfa.accepting[s]:
                dist[s] = 0
                q.append(s)
        while q:
            t = q.popleft()
            for s in rev[t]:
                if dist[s] > dist[t] + 1:
                    dist[s] = dist[t] + 1
                    q.append(s)
        self.dist = dist

    @staticmethod
    def _weight(b: int) -> float:
        if 0x20 <= b < 0x7F:
            return 40.0
        if b in (9, 10):
            return 4.0
        if b < 0x80:
            return 0.2
        return 0.5

    def sample(self, rng: random.Random, soft_max: int = 12, stop: float = 0.35) -> bytes:
        s = self.dfa.start
        out = bytearray()
        acc = self.dfa.accepting
        while True:
            if acc[s] and (not self.moves[s] or rng.random() < stop or len(out) >= soft_max):
                return bytes(out)
            moves = self.moves[s]
            if len(out) >= soft_max:
                best = min(self.dist[t] for _b, t in moves)
                moves = [(b, t) for b, t in moves if self.dist[t] == best]
                b, t = rng.choice(moves)
            else:
                b, t = rng.choices(moves, weights=[self._weight(b) for b, _ in moves])[0]
            out.append(b)
            s = t


class GrammarSampler:
    """Samples byte strings from a grammar's language."""

    def __init__(self, grammar: Grammar) -> None:
        g, _ = grammar.trimmed()
        self.grammar = g
        self.term = {name: _DFASampler(t.dfa) for name, t in g.terminals.items()}
        # Height of the shallowest derivation of each symbol.
        inf = 10**9
        h = {n: 0 for n in g.terminals}
        h.update({n: inf for n in g.rules})
        changed = True
        while changed:
            changed = False
            for lhs, alts in g.rules.items():
                best = min((1 + max((h[s] for s in alt), default=0) for alt in alts), default=inf)
                if best < h[lhs]:
                    h[lhs] = best
                    changed = True
        self.height = h

    def sample(self, rng: random.Random | int | None = None, *, max_depth: int = 10, ignore_prob: float = 0.15,
               max_lexemes: int = 400) -> bytes:
        """One random sentence (the concatenation of :meth:`sample_lexemes`)."""
        return b"".join(lx for lx, _t in self.sample_lexemes(rng, max_depth=max_depth, ignore_prob=ignore_prob,
                                                              max_lexemes=max_lexemes))

    def sample_lexemes(self, rng: random.Random | int | None = None, *, max_depth: int = 10,
                       ignore_prob: float = 0.15, max_lexemes: int = 400) -> list[tuple[bytes, str | None]]:
        """One random sentence as its lexemes: ``(bytes, terminal name)``, ``None`` for ``%ignore``d ones.

        Callers that need a particular spelling (benchmarks feeding peers with
        a longest-match lexer) can re-join the lexemes, e.g. with a space
        between two word characters; whatever is inserted must itself be an
        ignored lexeme for the result to stay in the language.
        """
        if not isinstance(rng, random.Random):
            rng = random.Random(rng)
        g = self.grammar
        h = self.height
        lexemes: list[tuple[bytes, str | None]] = []
        stack: list[tuple[str, int]] = [(g.start, 0)]
        while stack:
            sym, depth = stack.pop()
            if sym in g.terminals:
                if g.ignore and rng.random() < ignore_prob:
                    lexemes.append((self.term[rng.choice(g.ignore)].sample(rng, soft_max=3), None))
                lexemes.append((self.term[sym].sample(rng), sym))
                continue
            alts = g.rules[sym]
            if depth >= max_depth or len(lexemes) > max_lexemes:
                best = min(1 + max((h[s] for s in a), default=0) for a in alts)
                alts = [a for a in alts if 1 + max((h[s] for s in a), default=0) == best]
            elif depth < max_depth // 2 and len(alts) > 1:
                # Early on, prefer alternatives that go deeper (more interesting samples).
                alts = [a for a in alts for _ in range(1 + 2 * sum(s in g.rules for s in a))]
            alt = rng.choice(alts)
            for s in reversed(alt):
                stack.append((s, depth + 1))
        if g.ignore and rng.random() < ignore_prob:
            lexemes.append((self.term[rng.choice(g.ignore)].sample(rng, soft_max=3), None))
        return lexemes
