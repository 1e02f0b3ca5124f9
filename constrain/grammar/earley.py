"""Byte-level (scannerless) Earley recogniser over a :class:`Grammar`.

One Earley set per byte position. A set holds

* rule items ``(dotted rule, origin set)``, kept only as what later sets need:
  ``waiting[symbol] -> [(dotted rule advanced past symbol, origin)]`` and the
  ``kernel`` (the items the set was built from, before closure);
* scan items ``(terminal, dfa state, origin set)``, grouped as
  ``scan[(terminal, state)] -> origins``: a lexeme of ``terminal`` that started
  at ``origin`` and has reached ``state``.

Reading a byte advances every scan item through its terminal's DFA. An item
that reaches an accepting state completes its terminal: the items of its
origin set waiting on the terminal advance into the new set (its kernel);
closure then runs completion and prediction. Predicting a terminal adds the
scan item ``(t, start, here)``. Nullable nonterminals use Aycock & Horspool's
trick (predicting a nullable symbol also advances over it), so completions
whose origin is the current set can be skipped. Terminals never match the
empty string (:meth:`Grammar.trimmed` splits them).

``%ignore`` terminals are predicted in every set that has rule items; an
ignored lexeme that started at set ``o`` and completes here re-adds ``o``'s
kernel, i.e. the parse state is carried across the ignored bytes.

Sets are immutable once built and refer to their origins directly, so a
chart is just a list of sets: rollback truncates it and copies share it.
Invariant used by token masks: since the grammar is trimmed (every symbol
productive) and terminal DFAs are trimmed, every scan item in a set can be
completed to a full sentence, so "some scan item survives" means "the prefix
is viable".
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from ..errors import GrammarError
from .ir import Grammar

_COMPLETE = -(1 << 40)  # next_sym value of a completed dotted rule


class CompiledGrammar:
    """Integer tables for the recogniser, built once per grammar."""

    def __init__(self, grammar: Grammar) -> None:
        g, self.trim_report = grammar.trimmed()
        self.grammar = g
        self.term_names: list[str] = list(g.terminals)
        tid = {n: i for i, n in enumerate(self.term_names)}
        self.num_terminals = len(self.term_names)
        # Ignore occurrences get their own ids after the regular terminals.
        self.ignore_tids = [self.num_terminals + k for k in range(len(g.ignore))]
        self.scan_names = self.term_names + [f"%ignore {n}" for n in g.ignore]
        self.scan_dfas = [g.terminals[n].dfa for n in self.term_names] + [g.terminals[n].dfa for n in g.ignore]
        self.num_scan = len(self.scan_dfas)

        self.nt_names: list[str] = list(g.rules)
        nid = {n: i for i, n in enumerate(self.nt_names)}
        self.start_nt = len(self.nt_names)  # augmented start S' -> start
        self.nt_names.append("<start>")
        rules: list[tuple[int, list[int]]] = []
        for lhs, alts in g.rules.items():
            for alt in alts:
                rules.append((nid[lhs], [nid[s] if s in nid else ~tid[s] for s in alt]))
        rules.append((self.start_nt, [nid[g.start]]))
        self.rules = rules

        # Dotted rules: rule r at dot k is id rule_base[r] + k.
        next_sym: list[int] = []
        lhs_of: list[int] = []
        rule_of: list[int] = []
        self.rule_base: list[int] = []
        for r, (lhs, rhs) in enumerate(rules):
            self.rule_base.append(len(next_sym))
            for k in range(len(rhs) + 1):
                next_sym.append(rhs[k] if k < len(rhs) else _COMPLETE)
                lhs_of.append(lhs)
                rule_of.append(r)
        self.next_sym = next_sym
        self.lhs_of = lhs_of
        self.rule_of = rule_of
        self.start_item = self.rule_base[-1]
        n_nt = len(self.nt_names)
        self.predict: list[list[int]] = [[] for _ in range(n_nt)]
        for r, (lhs, _rhs) in enumerate(rules):
            self.predict[lhs].append(self.rule_base[r])
        nullable = [False] * n_nt
        changed = True
        while changed:
            changed = False
            for lhs, rhs in rules:
                if not nullable[lhs] and all(s >= 0 and nullable[s] for s in rhs):
                    nullable[lhs] = True
                    changed = True
        self.nullable = nullable
        self._pred_cache: dict[frozenset, _Predicted] = {}
        self._local_cache: dict[tuple, "_Local"] = {}
        self._sig_ids: dict[tuple, int] = {}
        self.sig_generation = 0

        # Per scan id: DFA tables as Python lists (fast scalar access).
        self.cls: list[list[int]] = []
        self.tab: list[list[list[int]]] = []
        self.acc: list[list[bool]] = []
        self.has_out: list[list[bool]] = []
        self.start_state: list[int] = []
        self.live_bytes: list[list[int]] = []  # per state: 256-bit int of bytes with a live move
        for dfa in self.scan_dfas:
            cls = [int(x) for x in dfa.byte_class]
            table = np.asarray(dfa.table)
            live = table >= 0
            self.cls.append(cls)
            self.tab.append(table.tolist())
            self.acc.append(np.asarray(dfa.accepting, dtype=bool).tolist())
            self.has_out.append(live.any(axis=1).tolist())
            self.start_state.append(int(dfa.start))
            # bit b of a state's integer: byte b has a live move (packed little-endian per byte)
            bits = np.packbits(live[:, np.asarray(dfa.byte_class, dtype=np.intp)], axis=1, bitorder="little")
            data = bits.tobytes()
            self.live_bytes.append([int.from_bytes(data[i:i + 32], "little") for i in range(0, len(data), 32)])
        # Ignore terminals whose language is closed under concatenation (like
        # /[ \t]+/): two adjacent ignored lexemes of one can always be read as one.
        self.ignore_closed = {t: _concat_closed(self.scan_dfas[t]) for t in self.ignore_tids}

    def lexer_dfa(self):
        """The lexer DFA used by token masks (shared by every vocabulary)."""
        lex = self.__dict__.get("_lexer")
        if lex is None:
            from .masks import LexerDFA

            lex = self.__dict__.setdefault("_lexer", LexerDFA(self))
        return lex

    # -- structural signatures ------------------------------------------------
    MAX_SIGNATURES = 2_000_000

    def signature(self, S: "ESet") -> tuple[int, int]:
        """(generation, id), equal for sets that are bisimilar.

        After closure a set is characterised by its waiting items (dynamic
        ones with their origins, predicted ones via the shared closure),
        whether it predicts ignored terminals and whether it accepts;
        completed items no longer matter. Two sets with equal such data over
        origins of equal signatures have the same future (masks, contexts).
        Interned per grammar; the table is reset (new generation) when it
        grows past MAX_SIGNATURES.
        """
        gen = self.sig_generation
        c = S.cache
        if c is not None:
            got = c.get("sig")
            if got is not None and got[0] == gen:
                return got
        ids = self._sig_ids
        next_sym, lhs_of, start_nt = self.next_sym, self.lhs_of, self.start_nt
        stack = [S]
        while stack:
            X = stack[-1]
            xc = X.cache
            if xc is not None:
                g = xc.get("sig")
                if g is not None and g[0] == gen:
                    stack.pop()
                    continue
            todo = []
            norm = []
            for x, lst in X.waiting.items():
                for d, o in lst:
                    if next_sym[d] == _COMPLETE and lhs_of[d] != start_nt and o is not X:
                        a2, o = leo(self, o, lhs_of[d])
                        d = ~a2  # "completes a2 at o"
                    norm.append((x, d, o))
                    if o is not X:
                        oc = o.cache
                        g = oc.get("sig") if oc is not None else None
                        if g is None or g[0] != gen:
                            todo.append(o)
            if todo:
                stack.extend(dict.fromkeys(todo))
                continue
            stack.pop()
            entries = sorted({(x, d, -1 if o is X else o.cache["sig"][1]) for x, d, o in norm})
            key = (tuple(entries), id(X.pred), bool(X.kernel), X.accepting)
            sid = ids.get(key)
            if sid is None:
                if len(ids) >= self.MAX_SIGNATURES:
                    ids.clear()
                    self.sig_generation += 1
                    return self.signature(S)
                sid = ids[key] = len(ids)
            if X.cache is None:
                X.cache = {}
            X.cache["sig"] = (gen, sid)
        return S.cache["sig"]

    # -- sets -----------------------------------------------------------------
    def initial_set(self) -> "ESet":
        s = ESet(0)
        build_set(self, s, [(self.start_item, s)], {})
        return s

    def recognize(self, data: bytes) -> bool:
        """Whether ``data`` is a complete sentence."""
        s = self.initial_set()
        for b in data:
            s = step(self, s, b)
            if s is None:
                return False
        return s.accepting

    def is_prefix(self, data: bytes) -> bool:
        s = self.initial_set()
        for b in data:
            s = step(self, s, b)
            if s is None:
                return False
        return True


def _concat_closed(dfa) -> bool:
    """Whether L(dfa) . L(dfa) is a subset of L(dfa)."""
    acc = dfa.accepting
    tab = dfa.table
    cls = dfa.byte_class
    classes = sorted({int(c) for c in cls})
    for a in range(dfa.num_states):
        if not acc[a]:
            continue
        # Every word of L read from accepting state a must end accepting.
        seen = {(dfa.start, a)}
        stack = [(dfa.start, a)]
        while stack:
            p, q = stack.pop()
            if acc[p] and not acc[q]:
                return False
            for c in classes:
                np_ = tab[p, c]
                if np_ < 0:
                    continue
                nq = tab[q, c]
                if nq < 0:
                    return False
                if (np_, nq) not in seen:
                    seen.add((np_, nq))
                    stack.append((np_, nq))
    return True


class ESet:
    """One Earley set (see the module doc). Immutable after :func:`build_set`.

    Rule items predicted here (origin = this set) are not stored one by one:
    they depend only on which nonterminals were predicted, so their waiting
    lists live in a shared :class:`_Predicted` closure (``pred``).
    """

    __slots__ = ("pos", "kernel", "waiting", "pred", "scan", "fresh", "accepting", "cache", "leo", "__weakref__")

    def __init__(self, pos: int) -> None:
        self.pos = pos
        self.kernel: tuple = ()
        self.waiting: dict[int, list] = {}
        self.pred: _Predicted = _NO_PRED
        self.scan: dict[tuple[int, int], list] = {}
        self.fresh: tuple[int, ...] = ()
        self.accepting = False
        self.cache: dict | None = None
        self.leo: dict | None = None

    def __repr__(self) -> str:
        return f"<ESet pos={self.pos} kernel={len(self.kernel)} scan={len(self.scan)} acc={self.accepting}>"

    def waiting_on(self, sym: int) -> list:
        """Items of this set waiting on ``sym`` (advanced past it), with their origins."""
        out = self.waiting.get(sym)
        st = self.pred.waiting.get(sym)
        if st is None:
            return out if out is not None else []
        own = [(d, self) for d in st]
        return own if out is None else out + own

    def predicted_terminals(self) -> tuple[int, ...]:
        """Scan ids of the lexemes that start at this set (sorted)."""
        return self.fresh


class _Predicted:
    """The closure of predicting a set of nonterminals (origin = the predicting set)."""

    __slots__ = ("waiting", "terms")

    def __init__(self, waiting: dict[int, tuple[int, ...]], terms: frozenset[int]) -> None:
        self.waiting = waiting
        self.terms = terms


_NO_PRED = _Predicted({}, frozenset())


def _predicted_closure(cg: CompiledGrammar, seeds: frozenset) -> _Predicted:
    got = cg._pred_cache.get(seeds)
    if got is not None:
        return got
    next_sym = cg.next_sym
    predict = cg.predict
    nullable = cg.nullable
    waiting: dict[int, list[int]] = {}
    terms: set[int] = set()
    predicted = set(seeds)
    agenda = [p for x in seeds for p in predict[x]]
    seen: set[int] = set()
    while agenda:
        d = agenda.pop()
        if d in seen:
            continue
        seen.add(d)
        x = next_sym[d]
        if x == _COMPLETE:
            continue  # origin is the predicting set: Aycock-Horspool already advanced
        waiting.setdefault(x, []).append(d + 1)
        if x >= 0:
            if x not in predicted:
                predicted.add(x)
                agenda.extend(predict[x])
            if nullable[x]:
                agenda.append(d + 1)
        else:
            terms.add(~x)
    got = _Predicted({k: tuple(v) for k, v in waiting.items()}, frozenset(terms))
    cg._pred_cache[seeds] = got
    return got


def leo(cg: CompiledGrammar, o: ESet, a: int) -> tuple[int, ESet]:
    """Where completing ``a`` at ``o`` really lands (Leo's deterministic reduction paths).

    While the only item of ``o`` waiting on ``a`` is complete (``X -> ... a .``
    from ``o2``), completing ``a`` at ``o`` just completes ``X`` at ``o2``:
    follow the chain and memoise its top. Right-recursive chains (unary
    operators, ``x: "-" x``) then cost O(1) per completion instead of O(depth),
    and equal tops make otherwise different sets bisimilar.
    """
    lc = o.leo
    if lc is not None:
        got = lc.get(a)
        if got is not None:
            return got
    next_sym = cg.next_sym
    lhs_of = cg.lhs_of
    start_nt = cg.start_nt
    path: list[tuple[int, ESet]] = []
    seen: set = set()
    cur = (a, o)
    while True:
        ca, co = cur
        lc = co.leo
        if lc is not None:
            got = lc.get(ca)
            if got is not None:
                result = got
                break
        key = (ca, id(co))
        if key in seen:
            result = cur
            break
        seen.add(key)
        path.append(cur)
        w = co.waiting_on(ca)
        if len(w) != 1:
            result = cur
            break
        d, o2 = w[0]
        if next_sym[d] != _COMPLETE or lhs_of[d] == start_nt:
            result = cur
            break
        cur = (lhs_of[d], o2)
    for pa, po in path:
        if po.leo is None:
            po.leo = {}
        po.leo[pa] = result
    return result


def build_set(cg: CompiledGrammar, S: ESet, kernel: Iterable, scan: dict) -> ESet:
    """Fill ``S`` from its kernel items and carried scan items (closure).

    Kernel items (and what completion derives from them) are processed one by
    one; everything predicted here comes from the cached closure of the
    predicted nonterminals.
    """
    next_sym = cg.next_sym
    lhs_of = cg.lhs_of
    nullable = cg.nullable
    start_nt = cg.start_nt
    waiting: dict[int, list] = {}
    items: set = set()
    seeds: set = set()
    terms: set = set()
    agenda = list(kernel)
    kern = tuple(dict.fromkeys(agenda))
    accepting = False
    while agenda:
        it = agenda.pop()
        if it in items:
            continue
        items.add(it)
        d, o = it
        x = next_sym[d]
        if x == _COMPLETE:
            a = lhs_of[d]
            if a == start_nt:
                accepting = True
                continue
            if o is S:
                continue  # nullable: already advanced at prediction (Aycock-Horspool)
            a, o = leo(cg, o, a)
            w = o.waiting.get(a)
            if w:
                agenda.extend(w)
            st = o.pred.waiting.get(a)
            if st:
                agenda.extend((d2, o) for d2 in st)
            continue
        nxt = (d + 1, o)
        lst = waiting.get(x)
        if lst is None:
            waiting[x] = [nxt]
        else:
            lst.append(nxt)
        if x >= 0:
            seeds.add(x)
            if nullable[x]:
                agenda.append(nxt)
        else:
            terms.add(~x)
    if seeds:
        pred = _predicted_closure(cg, frozenset(seeds))
        S.pred = pred
        terms |= pred.terms
    if kern:
        terms.update(cg.ignore_tids)
    start_state = cg.start_state
    for t in terms:
        key = (t, start_state[t])
        lst = scan.get(key)
        if lst is None:
            scan[key] = [S]
        else:
            lst.append(S)
    S.kernel = kern
    S.waiting = waiting
    S.fresh = tuple(sorted(terms))
    S.scan = scan
    S.accepting = accepting
    return S


class _Local:
    """What completing terminals does inside one prediction closure (see :func:`_local_cascade`)."""

    __slots__ = ("waiting", "exits", "seeds", "terms")

    def __init__(self, waiting, exits, seeds, terms) -> None:
        self.waiting = waiting
        self.exits = exits
        self.seeds = seeds
        self.terms = terms


def _local_cascade(cg: CompiledGrammar, pred: _Predicted, tids: frozenset) -> _Local:
    """Items of a set ``X`` predicted by closure ``pred`` after lexemes ``tids`` started at ``X`` end.

    Depends only on ``(pred, tids)``, so it is cached: the part of a new set
    that comes from ``X``'s own predictions (origin ``X``) costs a dictionary
    lookup. ``waiting[x]`` lists the advanced dotted rules (origin ``X``)
    waiting on ``x``; ``exits`` the nonterminals completed at ``X``, whose
    items from ``X``'s kernel (deeper origins) the caller still has to
    advance.
    """
    key = (pred, tids)
    got = cg._local_cache.get(key)
    if got is not None:
        return got
    next_sym = cg.next_sym
    lhs_of = cg.lhs_of
    nullable = cg.nullable
    pw = pred.waiting
    agenda = [d for t in tids for d in pw.get(~t, ())]
    seen: set[int] = set()
    waiting: dict[int, list[int]] = {}
    exits: set[int] = set()
    seeds: set[int] = set()
    terms: set[int] = set()
    while agenda:
        d = agenda.pop()
        if d in seen:
            continue
        seen.add(d)
        x = next_sym[d]
        if x == _COMPLETE:
            a = lhs_of[d]
            if a not in exits:
                exits.add(a)
                agenda.extend(pw.get(a, ()))
            continue
        lst = waiting.get(x)
        if lst is None:
            waiting[x] = [d + 1]
        else:
            lst.append(d + 1)
        if x >= 0:
            seeds.add(x)
            if nullable[x]:
                agenda.append(d + 1)
        else:
            terms.add(~x)
    got = _Local({k: tuple(v) for k, v in waiting.items()}, tuple(sorted(exits)), frozenset(seeds),
                 frozenset(terms))
    cg._local_cache[key] = got
    return got


def build_child(cg: CompiledGrammar, S: ESet, parts: list[tuple[ESet, frozenset]]) -> ESet:
    """Fill ``S`` as the set reached when, for each ``(X, tids)`` of ``parts``,
    lexemes of the scan ids ``tids`` that started at ``X`` end (no scan items:
    for token masks, which only need ``waiting``, ``pred`` and ``fresh``).

    Equivalent to :func:`build_set` on the kernel ``X.waiting_on(~t)``; the
    part that comes from ``X``'s prediction closure is taken from
    :func:`_local_cascade`, so only items from ``X``'s kernel (usually a few)
    go through the completion loop.
    """
    next_sym = cg.next_sym
    lhs_of = cg.lhs_of
    nullable = cg.nullable
    start_nt = cg.start_nt
    waiting: dict[int, list] = {}
    seeds: set = set()
    terms: set = set()
    kernel: list = []
    agenda: list = []
    for X, tids in parts:
        loc = _local_cascade(cg, X.pred, tids)
        for x, ds in loc.waiting.items():
            lst = waiting.get(x)
            if lst is None:
                waiting[x] = [(d, X) for d in ds]
            else:
                lst.extend((d, X) for d in ds)
        seeds |= loc.seeds
        terms |= loc.terms
        pw = X.pred.waiting
        xw = X.waiting
        for t in tids:
            st = pw.get(~t)
            if st:
                kernel.extend((d, X) for d in st)
            w = xw.get(~t)
            if w:
                kernel.extend(w)
                agenda.extend(w)
        for a in loc.exits:
            w = xw.get(a)
            if w:
                agenda.extend(w)
    items: set = set()
    accepting = False
    while agenda:
        it = agenda.pop()
        if it in items:
            continue
        items.add(it)
        d, o = it
        x = next_sym[d]
        if x == _COMPLETE:
            a = lhs_of[d]
            if a == start_nt:
                accepting = True
                continue
            a, o = leo(cg, o, a)
            w = o.waiting.get(a)
            if w:
                agenda.extend(w)
            st = o.pred.waiting.get(a)
            if st:
                agenda.extend((d2, o) for d2 in st)
            continue
        nxt = (d + 1, o)
        lst = waiting.get(x)
        if lst is None:
            waiting[x] = [nxt]
        else:
            lst.append(nxt)
        if x >= 0:
            seeds.add(x)
            if nullable[x]:
                agenda.append(nxt)
        else:
            terms.add(~x)
    if len(parts) > 1:  # one part: local items have origin X, completed ones older origins, no duplicates
        for x, lst in waiting.items():
            if len(lst) > 1:
                waiting[x] = list(dict.fromkeys(lst))
    if seeds:
        pred = _predicted_closure(cg, frozenset(seeds))
        S.pred = pred
        terms |= pred.terms
    kern = tuple(dict.fromkeys(kernel))
    if kern:
        terms.update(cg.ignore_tids)
    S.kernel = kern
    S.waiting = waiting
    S.fresh = tuple(sorted(terms))
    S.scan = {}
    S.accepting = accepting
    return S


def step(cg: CompiledGrammar, S: ESet, b: int) -> ESet | None:
    """The set after reading byte ``b`` from ``S`` (None when no lexeme survives)."""
    tab = cg.tab
    cls = cg.cls
    acc = cg.acc
    has_out = cg.has_out
    n_term = cg.num_terminals
    new_scan: dict[tuple[int, int], list] = {}
    kernel: list = []
    merged = False
    for (t, s), origins in S.scan.items():
        ns = tab[t][s][cls[t][b]]
        if ns < 0:
            continue
        if acc[t][ns]:
            if t >= n_term:
                for o in origins:
                    kernel.extend(o.kernel)
            else:
                key = ~t
                for o in origins:
                    kernel.extend(o.waiting_on(key))
        if has_out[t][ns]:
            k = (t, ns)
            lst = new_scan.get(k)
            if lst is None:
                new_scan[k] = list(origins)
            else:
                lst.extend(origins)
                merged = True
    if not new_scan and not kernel:
        return None
    if merged:
        for k, lst in new_scan.items():
            if len(lst) > 1:
                new_scan[k] = list(dict.fromkeys(lst))
    return build_set(cg, ESet(S.pos + 1), kernel, new_scan)


def step_bytes(cg: CompiledGrammar, S: ESet, data: bytes) -> ESet | None:
    for b in data:
        S = step(cg, S, b)
        if S is None:
            return None
    return S


def next_bytes(cg: CompiledGrammar, S: ESet) -> int:
    """256-bit int: bytes that keep some lexeme of ``S`` alive."""
    bits = 0
    lb = cg.live_bytes
    for t, s in S.scan:
        bits |= lb[t][s]
    return bits


def compile_ir(grammar: Grammar) -> CompiledGrammar:
    if not isinstance(grammar, Grammar):
        raise GrammarError(f"expected a Grammar, got {type(grammar).__name__}")
    return CompiledGrammar(grammar)


__all__ = ["CompiledGrammar", "ESet", "build_set", "build_child", "leo", "step", "step_bytes", "next_bytes", "compile_ir"]
