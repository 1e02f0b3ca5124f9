"""Boolean algebra over string languages (intersection, difference, partition).

JSON Schema combines string constraints conjunctively and negatively in ways
a regex cannot spell directly: two ``pattern``s on one string, a key that
matches ``patternProperties`` pattern A but not B and is none of the declared
``properties``.  Here such languages (string ASTs of :mod:`.strings`, over
decoded code points) become small DFAs over a shared alphabet of code-point
classes, get combined by one product construction, and turn back into ASTs by
state elimination, so the rest of the compiler keeps working on ASTs.

Exactness: the product is exact.  The AST it yields renders each character
of a non-full transition in its canonical JSON encoding (as every ``set``
does), and a transition that admits every character as ``any``: the decoded
character then cannot change the state, so any encoding is as good.
"""

from __future__ import annotations

import bisect
from collections import deque

from .strings import ALL, ANY, EPS, NEVER, Node, Ranges, alt, cat, is_never, rep

#: Work limits: states of any DFA built here, NFA states, and AST nodes of a result.
MAX_STATES = 4000
MAX_NFA_STATES = 20_000
MAX_RESULT_NODES = 20_000


class TooComplex(Exception):
    """The languages are regular, but the automata or the result exceed the work limits."""


# alphabet ------------------------------------------------------------------


def _sets_of(n: Node, out: set) -> None:
    k = n[0]
    if k == "set":
        out.add(n[1])
    elif k in ("cat", "alt"):
        for c in n[1]:
            _sets_of(c, out)
    elif k == "rep":
        _sets_of(n[1], out)


class _Alphabet:
    """Code points grouped into classes that no set of the inputs splits."""

    def __init__(self, nodes: list[Node]) -> None:
        found: set = {ALL}
        for n in nodes:
            _sets_of(n, found)
        sets = sorted(found)
        cuts = sorted({b for s in sets for lo, hi in s for b in (lo, hi + 1)})
        # elementary intervals [cuts[i], cuts[i+1]-1] restricted to ALL
        sig_of: dict = {}
        self.ranges: list[list[tuple[int, int]]] = []
        self.starts: list[int] = []
        self.interval_class: list[int] = []
        for i in range(len(cuts) - 1):
            lo, hi = cuts[i], cuts[i + 1] - 1
            sig = tuple(_covers(s, lo) for s in sets)
            if not sig[sets.index(ALL)]:
                cls = -1
            else:
                cls = sig_of.setdefault(sig, len(sig_of))
                if cls == len(self.ranges):
                    self.ranges.append([])
                self.ranges[cls].append((lo, hi))
            self.starts.append(lo)
            self.interval_class.append(cls)
        self.k = len(self.ranges)
        self._cache: dict = {}

    def classes(self, s: Ranges) -> frozenset:
        got = self._cache.get(s)
        if got is None:
            out = set()
            for lo, hi in s:
                i = bisect.bisect_right(self.starts, lo) - 1
                while i < len(self.starts) and self.starts[i] <= hi:
                    if self.interval_class[i] >= 0:
                        out.add(self.interval_class[i])
                    i += 1
            got = self._cache[s] = frozenset(out)
        return got

    def ranges_of(self, classes) -> Ranges:
        return tuple(sorted(r for c in classes for r in self.ranges[c]))


def _covers(s: Ranges, cp: int) -> bool:
    i = bisect.bisect_right(s, (cp, float("inf"))) - 1
    return i >= 0 and s[i][0] <= cp <= s[i][1]


# AST -> DFA ----------------------------------------------------------------


class _NFA:
    def __init__(self, ab: _Alphabet) -> None:
        self.ab = ab
        self.eps: list[list[int]] = []
        self.edges: list[list[tuple[frozenset, int]]] = []

    def new(self) -> int:
        if len(self.eps) >= MAX_NFA_STATES:
            raise TooComplex("NFA too large")
        self.eps.append([])
        self.edges.append([])
        return len(self.eps) - 1

    def build(self, n: Node, a: int, b: int) -> None:
        k = n[0]
        if k in ("set", "any"):
            cls = self.ab.classes(n[1] if k == "set" else ALL)
            if cls:
                self.edges[a].append((cls, b))
        elif k == "cat":
            cur = a
            for i, c in enumerate(n[1]):
                nxt = b if i == len(n[1]) - 1 else self.new()
                self.build(c, cur, nxt)
                cur = nxt
            if not n[1]:
                self.eps[a].append(b)
        elif k == "alt":
            for c in n[1]:
                s, e = self.new(), self.new()
                self.eps[a].append(s)
                self.build(c, s, e)
                self.eps[e].append(b)
        elif k == "rep":
            child, lo, hi = n[1], n[2], n[3]
            cur = a
            for _ in range(lo):
                nxt = self.new()
                self.build(child, cur, nxt)
                cur = nxt
            if hi is None:
                s, e = self.new(), self.new()
                self.eps[cur].append(s)
                self.build(child, s, e)
                self.eps[e].append(s)
                self.eps[s].append(b)
            else:
                for _ in range(hi - lo):
                    self.eps[cur].append(b)
                    nxt = self.new()
                    self.build(child, cur, nxt)
                    cur = nxt
            self.eps[cur].append(b)
        else:  # pragma: no cover
            raise AssertionError(k)

    def closure(self, states) -> frozenset:
        seen = set(states)
        stack = list(states)
        while stack:
            q = stack.pop()
            for r in self.eps[q]:
                if r not in seen:
                    seen.add(r)
                    stack.append(r)
        return frozenset(seen)


class _DFA:
    """Complete DFA over alphabet classes; state 0 is the start."""

    def __init__(self, table: list[list[int]], accept: list[bool]) -> None:
        self.table = table
        self.accept = accept


def _explore(start, successors, what: str) -> tuple[list, list[list[int]]]:
    """Breadth-first interning of the states reachable from ``start``, where
    ``successors(state)`` lists the targets per alphabet class: (states by id, table)."""
    ids = {start: 0}
    order = [start]
    table: list[list[int]] = []
    i = 0
    while i < len(order):
        row = []
        for tgt in successors(order[i]):
            j = ids.get(tgt)
            if j is None:
                if len(order) >= MAX_STATES:
                    raise TooComplex(f"{what} too large")
                j = ids[tgt] = len(order)
                order.append(tgt)
            row.append(j)
        table.append(row)
        i += 1
    return order, table


def _to_dfa(n: Node, ab: _Alphabet) -> _DFA:
    nfa = _NFA(ab)
    s, e = nfa.new(), nfa.new()
    nfa.build(n, s, e)

    def successors(cur: frozenset) -> list:
        moves: list[set] = [set() for _ in range(ab.k)]
        for q in cur:
            for cls, r in nfa.edges[q]:
                for c in cls:
                    moves[c].add(r)
        return [nfa.closure(m) if m else frozenset() for m in moves]

    order, table = _explore(nfa.closure([s]), successors, "DFA")
    return _reduced(table, [e in st for st in order])


def _moore_blocks(table: list[list[int]], accept: list[bool]) -> list[int]:
    """Moore refinement of a complete DFA: the block of each state, compact ids 0..m-1
    (equivalent states share one)."""
    block = [1 if a else 0 for a in accept]
    while True:
        keys: dict = {}
        new = [keys.setdefault((block[q], tuple(block[t] for t in table[q])), len(keys)) for q in range(len(table))]
        stable = len(keys) == len(set(block))
        block = new  # compact ids (the initial 0/1 labels may skip 0)
        if stable:
            return block


def _reduced(table: list[list[int]], accept: list[bool]) -> _DFA:
    """The minimal complete DFA (start 0) of a complete one.

    Subset construction keeps one sink per place it entered ``any*`` (a name
    excluded from keys has one after each of its prefixes), and the product
    multiplies those copies by every other input's states: keys matching
    ``[a-z]{1,255}`` and none of 3 names were 5,000 product states, over the
    limit, and are 280 after this."""
    block = _moore_blocks(table, accept)
    # renumber blocks in breadth-first order from the start, so the start is 0
    ids = {block[0]: 0}
    order = [0]
    out: list[list[int]] = []
    acc: list[bool] = []
    i = 0
    while i < len(order):
        q = order[i]
        row = []
        for t in table[q]:
            j = ids.get(block[t])
            if j is None:
                j = ids[block[t]] = len(order)
                order.append(t)
            row.append(j)
        out.append(row)
        acc.append(accept[q])
        i += 1
    return _DFA(out, acc)


# product, minimisation, DFA -> AST -------------------------------------------


def _product(dfas: list[_DFA], k: int):
    """Reachable product states: (table, signature per state)."""
    order, table = _explore(tuple(0 for _ in dfas),
                            lambda cur: [tuple(d.table[q][c] for d, q in zip(dfas, cur)) for c in range(k)],
                            "product automaton")
    sigs = [tuple(d.accept[q] for d, q in zip(dfas, st)) for st in order]
    return table, sigs


def _minimise(table: list[list[int]], accept: list[bool]) -> tuple[list[list[int]], list[bool], int]:
    """Moore refinement, then drop states that cannot reach acceptance.
    Returns (table with -1 for dead moves, accept, start) or start -1 when empty."""
    n = len(table)
    block = _moore_blocks(table, accept)
    m = len(set(block))
    small = [[0] * len(table[0]) for _ in range(m)] if table and table[0] else [[] for _ in range(m)]
    acc = [False] * m
    for q in range(n):
        small[block[q]] = [block[t] for t in table[q]]
        acc[block[q]] = accept[q]
    # co-reachability
    rev: list[set] = [set() for _ in range(m)]
    for q in range(m):
        for t in small[q]:
            rev[t].add(q)
    live = {q for q in range(m) if acc[q]}
    dq = deque(live)
    while dq:
        q = dq.popleft()
        for p in rev[q]:
            if p not in live:
                live.add(p)
                dq.append(p)
    start = block[0]
    if start not in live:
        return [], [], -1
    return [[t if t in live else -1 for t in row] for row in small], acc, start


def _size(n: Node) -> int:
    k = n[0]
    if k in ("cat", "alt"):
        return 1 + sum(_size(c) for c in n[1])
    if k == "rep":
        return 1 + _size(n[1])
    return 1


def _to_ast(table: list[list[int]], accept: list[bool], start: int, ab: _Alphabet) -> Node:
    """State elimination, cheapest state first (fewest in x out edges)."""
    full = frozenset(range(ab.k))
    edges: dict[int, dict[int, Node]] = {}
    live = [q for q in range(len(table)) if any(t >= 0 for t in table[q]) or accept[q]]
    S, E = -2, -3
    for q in live:
        groups: dict[int, set] = {}
        for c, t in enumerate(table[q]):
            if t >= 0:
                groups.setdefault(t, set()).add(c)
        edges[q] = {}
        for t, cls in groups.items():
            fs = frozenset(cls)
            edges[q][t] = ANY if fs == full else ("set", ab.ranges_of(fs))
        if accept[q]:
            edges[q][E] = EPS
    edges[S] = {start: EPS}
    edges[E] = {}

    # AST nodes over all edges, kept up to date (summing them after each elimination is quadratic)
    size: dict[tuple[int, int], int] = {(p, r): _size(lab) for p, outs in edges.items() for r, lab in outs.items()}
    total = sum(size.values())

    def add(p: int, r: int, lab: Node, n: int) -> None:
        """Edge p -> r gets ``lab`` (of at most ``n`` nodes) as one more alternative."""
        nonlocal total
        old = edges[p].get(r)
        edges[p][r] = lab if old is None else alt([old, lab])
        m = size.get((p, r), 0)
        n += m + 1 if m else 0  # an upper bound: cat and alt flatten, never grow
        total += n - m
        size[(p, r)] = n

    remaining = set(live)
    preds: dict[int, set] = {q: set() for q in edges}
    for p, outs in edges.items():
        for r in outs:
            preds[r].add(p)
    while remaining:
        q = min(remaining, key=lambda s: (len(preds[s] - {s}) * len(set(edges[s]) - {s}), s))
        remaining.discard(q)
        loop = edges[q].pop(q, None)
        preds[q].discard(q)
        star = EPS if loop is None else rep(loop, 0, None)
        outs = edges.pop(q)
        n_star = size.pop((q, q), -1) + 1
        n_outs = {r: size.pop((q, r)) for r in outs}
        total -= n_star + sum(n_outs.values())
        for p in preds[q]:
            a = edges[p].pop(q)
            n_a = size.pop((p, q))
            total -= n_a
            for r, b in outs.items():
                add(p, r, cat([a, star, b]), n_a + n_star + n_outs[r] + 1)
                preds[r].add(p)
        for r in outs:
            preds[r].discard(q)
        del preds[q]
        if total > MAX_RESULT_NODES:
            raise TooComplex("the language's regex is too large")
    return edges[S].get(E, NEVER)


# public ----------------------------------------------------------------------


def regions(langs: list[Node], within: list[Node] = (), *, skip_complex: bool = False) -> dict[frozenset, Node | None]:
    """For each set S of indices into ``langs`` that some string realises, the
    language of strings in every ``within`` language that belong to exactly the
    languages of S.  Sets no string realises are absent.  Raises TooComplex;
    with ``skip_complex`` a region whose regex alone is too large maps to None
    instead, so the caller can drop just that one.

    A region equal to one of the input languages (a pattern that no declared
    name matches) is that language's own AST: state elimination can write a
    regex exponentially larger than the one it came from."""
    nodes = list(langs) + list(within)
    ab = _Alphabet(nodes)
    dfas = [_to_dfa(n, ab) for n in nodes]
    table, sigs = _product(dfas, ab.k)
    nl = len(langs)
    out: dict[frozenset, Node | None] = {}
    wanted = {s[:nl] for s in sigs if all(s[nl:])}
    for want in wanted:
        acc = [s[:nl] == want and all(s[nl:]) for s in sigs]
        key = frozenset(i for i, b in enumerate(want) if b)
        same = next((i for i in range(len(nodes)) if all(a == s[i] for a, s in zip(acc, sigs))), None)
        if same is not None:
            out[key] = nodes[same]
            continue
        small, a, start = _minimise(table, acc)
        if start < 0:
            continue
        try:
            ast = _to_ast(small, a, start, ab)
        except TooComplex:
            if not skip_complex:
                raise
            out[key] = None
            continue
        if not is_never(ast):
            out[key] = ast
    return out


def intersect_all(langs: list[Node]) -> Node:
    """The intersection of several string languages (NEVER when empty)."""
    if len(langs) == 1:
        return langs[0]
    part = regions([], within=langs)
    return part.get(frozenset(), NEVER)


def difference(lang: Node, minus: list[Node]) -> Node:
    """Strings of ``lang`` in none of ``minus``."""
    return regions(minus, within=[lang]).get(frozenset(), NEVER)
