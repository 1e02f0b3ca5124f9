"""Token masks for grammars: a lexer DFA walked by numba kernels, the parser
consulted only where a lexeme can end and only for tokens not allowed yet.

Walking the token trie byte by byte through Earley sets in Python would cost
one Earley step per trie node. Instead, as in XGrammar and llguidance, the
lexer is split from the parser:

* A *lexer configuration* is a set of triples ``(scan id, DFA state, k)``
  where ``k`` ranks the origin of the lexeme among the origins of the Earley
  set the walk started from (0 = most recent), plus the terminals that
  restart at rank ``k`` after an ``%ignore`` lexeme. Configurations are the
  states of a *lexer DFA* whose rows are computed lazily inside the walks
  (:mod:`._kernels`); it is shared by every vocabulary of the grammar.
* The root walk of a configuration allows every token whose bytes keep it
  live, whatever the parser says (every scan item in an Earley set is
  viable). It depends only on the configuration and is memoised.
* A *boundary* is a trie node where a regular terminal can end and below
  which some token is not allowed yet. There the parser decides: completing
  the accepting triples at their origins gives a new Earley set (a
  *context*) whose freshly predicted terminals form a configuration (all
  ``k = 0``) from which the node's subtree is walked again, and so on.
  Contexts are interned globally by a structural key (bisimilar sets share an
  id) and the transitions ``(context, configuration) -> child context`` live
  in a table read by the numba kernel, which follows boundaries by itself and
  returns only the transitions it has never seen (the Earley closure for
  those runs in Python, once per grammar).

Pruning is exact because masks are unions: a walk below a node can only add
tokens of that node's subtree, so small subtrees whose tokens are all allowed
already are skipped and boundaries whose subtree is allowed by then are
dropped in post-order. In scannerless
grammars where keywords and identifiers may touch (``SELECTa``), nearly every
alphanumeric trie node is a boundary, but almost all of them are covered by
the identifier lexeme itself.

The union of the bits is exactly the set of tokens ``t`` for which some
lexing of ``prefix + t`` is a viable prefix, i.e. what stepping the Earley
chart through the token's bytes would accept. EOS bits are set exactly when
the current set is accepting.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import numpy as np

from ..tokens.bitmask import mask_from_ids, mask_words
from ..tokens.slices import MAX_REACH, PlainTables, plain_slice_for
from ..tokens.trie import trie_for
from . import _kernels as K
from .earley import _COMPLETE, CompiledGrammar, ESet, build_child, leo

Config = tuple  # (sorted (scan id, state, k) triples, sorted (k, restart scan ids) pairs)

_RP = K.RP_FLAG
_NO_NODES = np.zeros(0, dtype=np.int32)
_NO_NODES.setflags(write=False)


def _pow2(n: int) -> int:
    return 1 << max(4, int(n - 1).bit_length())


class LexerDFA:
    """Deterministic automaton over lexer configurations (grown lazily, shared).

    The arrays live here; the numba kernels read them and fill missing rows.
    Ignored lexemes are handled inside the lexer: when an ``%ignore`` triple
    of rank ``k`` reaches an accepting state, the lexemes that could start at
    origin ``k`` start again with the same rank, because skipping ignored
    bytes leaves the parser where it was. So only regular terminals create
    boundaries.

    Also holds the grammar-level parser contexts of the mask engines (they do
    not depend on the vocabulary): ``ctx_sets[gid]`` (an Earley set),
    ``ctx_fresh[gid]`` (its fresh configuration or -1) and the child table.
    All mutation happens under ``lock``.
    """

    MAX_CONTEXTS = 100_000  # about 2 KB each; past this the table starts again (between masks)

    def __init__(self, cg: CompiledGrammar, max_configs: int = 2_000_000) -> None:
        self.cg = cg
        self.max_configs = max_configs
        n = cg.num_scan
        if n >= (1 << 21) or any(len(tab) >= (1 << 21) for tab in cg.tab):
            raise MemoryError("grammar too large for the lexer DFA key encoding")
        # Global byte classes: bytes that every terminal DFA treats alike.
        sig: dict[tuple, int] = {}
        gcls = np.zeros(256, dtype=np.int32)
        reps: list[int] = []
        for b in range(256):
            key = tuple(cg.cls[t][b] for t in range(n))
            g = sig.get(key)
            if g is None:
                g = sig[key] = len(reps)
                reps.append(b)
            gcls[b] = g
        self.gcls = gcls
        self.num_classes = G = len(reps)
        rep_arr = np.asarray(reps, dtype=np.int64)
        ttab, toff, soff, tacc, sizes = [], [], [], [], []
        o = so = 0
        for t in range(n):
            dfa = cg.scan_dfas[t]
            sub = np.asarray(dfa.table, dtype=np.int32)[:, np.asarray(dfa.byte_class, dtype=np.int64)[rep_arr]]
            ttab.append(sub.reshape(-1))
            toff.append(o)
            o += sub.size
            tacc.append(np.asarray(dfa.accepting, dtype=np.uint8))
            soff.append(so)
            sizes.append(dfa.num_states)
            so += dfa.num_states
        self.is_ignore = [t >= cg.num_terminals for t in range(n)]
        closed = [bool(cg.ignore_closed.get(t, False)) for t in range(n)]
        self.static = (
            np.concatenate(ttab) if ttab else np.zeros(0, np.int32),
            np.asarray(toff, dtype=np.int64),
            np.asarray(soff, dtype=np.int64),
            np.concatenate(tacc) if tacc else np.zeros(0, np.uint8),
            np.asarray(cg.start_state, dtype=np.int32),
            np.asarray(self.is_ignore, dtype=np.uint8),
            np.asarray(closed, dtype=np.uint8),
        )
        self._rs_index: dict[tuple[int, ...], int] = {}
        self._rs_lists: list[tuple[int, ...]] = []
        self.rs_ptr = np.zeros(1, dtype=np.int64)
        self.rs_ids = np.zeros(16, dtype=np.int32)
        cap = 256
        self.pool = np.zeros(1 << 14, dtype=np.int64)
        self.cfg_ptr = np.zeros(cap + 1, dtype=np.int64)
        self.chash = np.zeros(cap, dtype=np.int64)
        self.table = np.full((cap, G), -2, dtype=np.int32)
        self.boundary = np.zeros(cap, dtype=np.uint8)
        self.loop = np.zeros((cap, 4), dtype=np.uint64)
        self.lflag = np.zeros(cap, dtype=np.uint8)
        self.hslots = np.full(4 * cap, -1, dtype=np.int32)
        self.meta = np.array([0, 0, 0, max_configs], dtype=np.int64)
        self.scratch = np.zeros(1 << 12, dtype=np.int64)
        self._acc_pairs: dict[int, tuple[tuple[int, int], ...]] = {}
        self._made: dict[tuple, int] = {}  # (triples, restarts) -> configuration id, ahead of the kernel
        # built with the grammar, not on its first mask (about 50 us there, a tail step per schema)
        flat, off, soff_all, acc = self.static[:4]
        self.plain = PlainTables(flat, off, np.asarray(sizes, dtype=np.int64), G, gcls, acc, soff_all)
        self.lock = threading.RLock()
        self.reset_contexts()

    # -- arrays ---------------------------------------------------------------
    def arrays(self) -> tuple:
        """The tuple the kernels take (valid until the next growth)."""
        return (*self.static, self.rs_ptr, self.rs_ids, self.pool, self.cfg_ptr, self.chash, self.table,
                self.boundary, self.hslots, self.meta, self.loop, self.lflag)

    def __len__(self) -> int:
        return int(self.meta[0])

    def handle(self, code: int) -> None:
        """Grow whatever error ``code`` (from a kernel) says is too small."""
        if code == K.ERR_LEXER:
            self._grow()
        elif code == K.ERR_SCRATCH:
            self.scratch = np.zeros(max(2 * len(self.scratch), int(self.meta[2])), dtype=np.int64)
        elif code == K.ERR_MAX_CONFIGS:
            raise MemoryError(f"grammar lexer needs more than {self.max_configs} configurations")
        else:  # pragma: no cover - a kernel bug
            raise RuntimeError(f"unexpected lexer kernel code {code}")

    def _grow(self) -> None:
        ncfg, used, want = (int(x) for x in self.meta[:3])
        cap = self.table.shape[0]
        if ncfg + 2 >= cap:
            new = 2 * cap
            cfg_ptr = np.zeros(new + 1, dtype=np.int64)
            cfg_ptr[: cap + 1] = self.cfg_ptr
            chash = np.zeros(new, dtype=np.int64)
            chash[:cap] = self.chash
            table = np.full((new, self.num_classes), -2, dtype=np.int32)
            table[:cap] = self.table
            boundary = np.zeros(new, dtype=np.uint8)
            boundary[:cap] = self.boundary
            loop = np.zeros((new, 4), dtype=np.uint64)
            loop[:cap] = self.loop
            lflag = np.zeros(new, dtype=np.uint8)
            lflag[:cap] = self.lflag
            self.cfg_ptr, self.chash, self.table, self.boundary = cfg_ptr, chash, table, boundary
            self.loop, self.lflag = loop, lflag
        if used + max(want, 1) > len(self.pool) // 2:
            pool = np.zeros(max(2 * len(self.pool), 2 * (used + want)), dtype=np.int64)
            pool[:used] = self.pool[:used]
            self.pool = pool
        if 4 * (ncfg + 2) > len(self.hslots):
            self.hslots = np.full(2 * len(self.hslots), -1, dtype=np.int32)
            K.lex_rehash(self.cfg_ptr, self.chash, ncfg, self.hslots)

    def restart_id(self, tids: tuple[int, ...]) -> int:
        rid = self._rs_index.get(tids)
        if rid is None:
            rid = len(self._rs_lists)
            self._rs_index[tids] = rid
            self._rs_lists.append(tids)
            end = int(self.rs_ptr[-1])
            if end + len(tids) > len(self.rs_ids):
                ids = np.zeros(max(2 * len(self.rs_ids), end + len(tids)), dtype=np.int32)
                ids[:end] = self.rs_ids[:end]
                self.rs_ids = ids
            self.rs_ids[end:end + len(tids)] = tids
            self.rs_ptr = np.append(self.rs_ptr, end + len(tids))
        return rid

    # -- configurations -------------------------------------------------------
    def make(self, triples, restart: dict[int, tuple[int, ...]]) -> int:
        """Intern a configuration from triples and the restart sets of its ranks (-1 when empty)."""
        ig = self.is_ignore
        keys = {(k << 42) | (t << 21) | s for t, s, k in triples}
        for k in {k for t, _s, k in triples if ig[t]}:
            keys.add(_RP | (k << 31) | self.restart_id(tuple(restart[k])))
        return self.make_keys(frozenset(keys))

    def make_keys(self, keys: frozenset) -> int:
        """Intern a configuration given as its kernel keys (triples ``k << 42 | t << 21 | s``,
        restart pairs ``RP_FLAG | k << 31 | restart id``); -1 when empty."""
        if not keys:
            return -1
        got = self._made.get(keys)
        if got is not None:
            return got
        arr = np.fromiter(keys, dtype=np.int64, count=len(keys))
        with self.lock:
            while True:
                r = int(K.lex_make(self.arrays(), arr))
                if r >= -1:
                    self._made[keys] = r
                    return r
                self.handle(r)

    def config(self, cid: int) -> Config:
        """The configuration ``cid`` as ``(triples, restart pairs)`` (for tests and debugging)."""
        keys = self.pool[self.cfg_ptr[cid]:self.cfg_ptr[cid + 1]].tolist()
        triples = tuple(sorted(((k >> 21) & K.M21, k & K.M21, k >> 42) for k in keys if k < _RP))
        rest = tuple(((k >> 31) & K.M31, self._rs_lists[k & K.M31]) for k in keys if k >= _RP)
        return triples, rest

    def step(self, cid: int, g: int) -> int:
        """Successor of ``cid`` on global class ``g`` (computed by the kernel when missing)."""
        with self.lock:
            while True:
                s = int(self.table[cid, g])
                if s != -2:
                    return s
                r = int(K.lex_transition(self.arrays(), self.scratch, cid, g))
                if r < -1:
                    self.handle(r)

    def acc_pairs(self, cid: int) -> tuple[tuple[int, int], ...]:
        """Sorted (terminal, rank) pairs of the regular terminals that accept in ``cid``."""
        got = self._acc_pairs.get(cid)
        if got is None:
            acc = self.cg.acc
            ig = self.is_ignore
            got = tuple(sorted({(t, k) for t, s, k in self.config(cid)[0] if acc[t][s] and not ig[t]}))
            self._acc_pairs[cid] = got
        return got

    # -- parser contexts (shared by the engines of every vocabulary) ------------
    def reset_contexts(self) -> None:
        self.ctx_sets: list[ESet] = []
        self.ctx_fresh = np.full(1024, -1, dtype=np.int32)
        self.ctx_index: dict[Any, int] = {}
        self.child_keys = np.full(1 << 12, -1, dtype=np.int64)
        self.child_vals = np.full(1 << 12, -1, dtype=np.int32)
        self.child_meta = np.zeros(1, dtype=np.int64)
        self.root_children: dict[tuple, int] = {}
        self.ctx_children: dict[tuple, int] = {}
        self._fresh_ids: dict[tuple[int, ...], int] = {}
        self.ctx_generation = getattr(self, "ctx_generation", -1) + 1

    def context_id(self, parts: list[tuple[ESet, frozenset]], key: Any) -> int:
        """Global id of the context after the lexemes ``parts`` end (structural ``key``)."""
        gid = self.ctx_index.get(key)
        if gid is not None:
            return gid
        C = ESet(-1)
        build_child(self.cg, C, parts)
        tids = C.fresh
        fid = self._fresh_ids.get(tids)
        if fid is None:
            start = self.cg.start_state
            fid = self._fresh_ids[tids] = self.make([(t, start[t], 0) for t in tids], {0: tids})
        gid = len(self.ctx_sets)
        self.ctx_sets.append(C)
        if gid >= len(self.ctx_fresh):
            fresh = np.full(2 * len(self.ctx_fresh), -1, dtype=np.int32)
            fresh[:gid] = self.ctx_fresh[:gid]
            self.ctx_fresh = fresh
        self.ctx_fresh[gid] = fid
        self.ctx_index[key] = gid
        return gid

    def set_child(self, parent: int, cfg: int, child: int) -> None:
        key = (parent << 32) | cfg
        while K.hmap_put(self.child_keys, self.child_vals, self.child_meta, key, child) < 0:
            keys = np.empty(2 * len(self.child_keys), dtype=np.int64)
            vals = np.empty(2 * len(self.child_vals), dtype=np.int32)
            K.hmap_rehash(self.child_keys, self.child_vals, keys, vals)
            self.child_keys, self.child_vals = keys, vals


class MaskEngine:
    """Computes packed token masks for Earley sets of one grammar and vocabulary."""

    def __init__(self, cg: CompiledGrammar, vocab: Any, *, use_numba: bool = True,
                 root_cache_size: int = 2048, set_cache_size: int = 4096) -> None:
        self.cg = cg
        self.vocab = vocab
        self.trie = trie_for(vocab)
        self.lexer = cg.lexer_dfa()
        self.words = mask_words(vocab.size)
        eos = [t for t in vocab.eos_ids if t < vocab.size]
        self.eos_words = mask_from_ids(eos, vocab.size)
        self.use_numba = use_numba
        if use_numba:
            self._root_walk, self._multi_walk, self._push = K.root_walk, K.multi_walk, K.push_items
            self._filter = K.filter_pending
        else:  # the interpreted twins (nested helpers stay compiled; NUMBA_DISABLE_JIT=1 for all-Python)
            self._root_walk, self._multi_walk, self._push = K.root_walk.py_func, K.multi_walk.py_func, \
                K.push_items.py_func
            self._filter = K.filter_pending.py_func
        self.counters = np.zeros(2, dtype=np.int64)  # (boundary items walked, trie nodes visited below boundaries)
        self._scratch_counters = np.zeros(2, dtype=np.int64)
        self._root: "OrderedDict[int, tuple]" = OrderedDict()
        self._root_cache_size = root_cache_size
        self._sets: "OrderedDict[tuple, np.ndarray]" = OrderedDict()
        self._set_cache_size = set_cache_size
        self._empty = np.zeros(self.words, dtype=np.uint32)
        self._empty.setflags(write=False)
        self.eos_words.setflags(write=False)
        t = self.trie
        self._trie_args = (t.node_byte, t.node_depth, t.node_end, t.tok_start, t.tok_ids, _subtree_bytes(t))
        self._slice: Any = None
        self._rest_args: tuple | None = None  # the plain slice's rest trie, built on first use
        self._forest_args: tuple | None = None  # and its forest of suffixes (see _slice_args)
        self._b_node = np.empty(1 << 12, dtype=np.int32)
        self._b_cfg = np.empty(1 << 12, dtype=np.int32)
        self._st_node = np.empty(1 << 12, dtype=np.int32)
        self._st_ctx = np.empty(1 << 12, dtype=np.int32)
        self._p_node = np.empty(1 << 12, dtype=np.int32)
        self._p_ctx = np.empty(1 << 12, dtype=np.int32)
        self._p_cfg = np.empty(1 << 12, dtype=np.int32)
        self._vkeys = np.empty(1 << 10, dtype=np.int64)  # _follow's visited set, when it fits
        self._vvals = np.empty(1 << 10, dtype=np.int32)
        self._vmeta = np.zeros(1, dtype=np.int64)
        self._st_meta = np.zeros(3, dtype=np.int64)
        self.stats = {"root_walks": 0, "computed": 0, "kernel_calls": 0, "contexts": 0, "pending": 0}

    # -- configurations -----------------------------------------------------
    def root_config(self, S: ESet) -> tuple[int, list[ESet]]:
        c = S.cache
        if c is not None and "cfg" in c:
            return c["cfg"], c["ranks"]
        scan = S.scan
        origins: dict[ESet, int] = {}
        for lst in scan.values():
            for o in lst:
                origins[o] = o.pos
        lex = self.lexer
        ig = lex.is_ignore
        if len(origins) == 1:  # the usual case: every lexeme started at one origin (rank 0)
            ranks = list(origins)
            keys = {(t << 21) | s for t, s in scan}
            if any(ig[t] for t, _s in scan):
                keys.add(_RP | lex.restart_id(_predicted(ranks[0])))
        else:
            ranks = sorted(origins, key=lambda o: -o.pos)
            rank = {o: i for i, o in enumerate(ranks)}
            keys = set()
            ig_ranks = set()
            for (t, s), lst in scan.items():
                for o in lst:
                    k = rank[o]
                    keys.add((k << 42) | (t << 21) | s)
                    if ig[t]:
                        ig_ranks.add(k)
            for k in ig_ranks:
                keys.add(_RP | (k << 31) | lex.restart_id(_predicted(ranks[k])))
        cid = lex.make_keys(frozenset(keys))
        if S.cache is None:
            S.cache = {}
        S.cache["cfg"] = cid
        S.cache["ranks"] = ranks
        return cid, ranks

    def carry(self, S: ESet, data: bytes, nxt: ESet) -> None:
        """Give ``nxt`` (the set after ``data`` from ``S``) its root
        configuration without :meth:`root_config`'s rebuild, when ``data``
        stays inside the lexemes of ``S``.

        With no restart pair in ``S``'s configuration (so no ignored terminal)
        and no boundary on the way, no terminal ends inside ``data``: the
        parser did not move, the origins are ``S``'s, and the configuration is
        the lexer's successor over the bytes. Most tokens are such steps
        (string contents, numbers, names), and the rebuild is a Python loop
        over every live lexeme.
        """
        c = S.cache
        if c is None or nxt.cache is not None:
            return
        cid = c.get("cfg")
        if cid is None or cid < 0:
            return
        lex = self.lexer
        with lex.lock:
            if lex.pool[lex.cfg_ptr[cid + 1] - 1] >= _RP:  # keys are sorted: restart pairs last
                return
            gcls = lex.gcls
            for b in data:
                s = lex.step(cid, int(gcls[b]))
                if s < 0 or lex.boundary[s]:
                    return
                cid = s
        nxt.cache = {"cfg": cid, "ranks": c["ranks"]}
        if "sigs" in c:
            nxt.cache["sigs"] = c["sigs"]

    def root_walk(self, cid: int) -> tuple:
        """(bits, boundary nodes, distinct boundary configs, index per node) of a configuration, memoised.

        Only boundary nodes with a token below them that ``bits`` does not
        allow are kept (the parser cannot add anything below the others).
        """
        got = self._root.get(cid)
        if got is not None:
            self._root.move_to_end(cid)
            return got
        lex = self.lexer
        with lex.lock:
            trie_args = self._trie_args
            budget, chain = None, False
            if self.use_numba:  # the interpreted twins check the plain walk on the whole trie
                sl = self._slice
                if sl is None:
                    sl = self._slice = plain_slice_for(self.vocab)  # a per-vocabulary lookup: 4 us
                budget, chain = self._plain_budget(cid, sl.max_chars)
            if budget is None:
                out = np.zeros(self.words, dtype=np.uint32)
            else:  # plain tokens cross no boundary: their bits are the slice's, the walk covers the rest
                out = sl.words(budget).copy()
                trie_args = self._slice_args(sl, chain)
            while True:
                if chain:  # the rest as suffixes after plain prefixes, one walk per prefix length
                    nb = int(K.chain_walk(lex.arrays(), lex.scratch, *trie_args, lex.gcls, self._forest_depth,
                                          self._groups, self._g_plain, cid, out, self._b_node, self._b_cfg,
                                          self._scratch_counters))
                else:
                    nb = int(self._root_walk(lex.arrays(), lex.scratch, *trie_args, lex.gcls, self.trie.max_depth,
                                             cid, out, self._b_node, self._b_cfg, self._scratch_counters,
                                             self._loop_min(trie_args, K.LOOP_MIN_ROOT)))
                if nb >= 0:
                    break
                self._handle(nb)
        if nb == 0:  # most walks: no boundary below which a token is still missing
            bn = ucfg = inv = _NO_NODES
        else:
            bn = self._b_node[:nb].copy()
            index: dict[int, int] = {}  # a few boundaries: cheaper than np.unique
            inv = np.array([index.setdefault(c, len(index)) for c in self._b_cfg[:nb].tolist()], dtype=np.int64)
            ucfg = np.array(list(index), dtype=np.int32)
        for a in (out, bn, ucfg, inv):
            a.setflags(write=False)
        self.stats["root_walks"] += 1
        entry = (out, bn, ucfg, inv, trie_args)
        self._root[cid] = entry
        while len(self._root) > self._root_cache_size:
            self._root.popitem(last=False)
        return entry

    def _loop_min(self, trie_args: tuple, whole: int) -> int:
        """Self-loop tests (see :data:`._kernels.LOOP_MIN_ROOT`) on the whole trie, never on the slice's rest."""
        return whole if trie_args is self._trie_args else K.LOOP_NEVER

    def _slice_args(self, sl: Any, chain: bool) -> tuple:
        """Trie arrays of the plain slice's rest (built on first use): its
        forest of suffixes grouped by plain prefix length for chains, else the
        rest trie."""
        if chain:
            if self._forest_args is None:
                f = sl.forest
                self._forest_args = (f.node_byte, f.node_depth, f.node_end, f.tok_start, f.tok_ids,
                                     _subtree_bytes(f))
                self._groups = sl.group_nodes
                self._forest_depth = max(self.trie.max_depth, f.max_depth)
                self._g_plain = int(self.lexer.gcls[ord("a")])
            return self._forest_args
        if self._rest_args is None:
            r = sl.rest
            self._rest_args = (r.node_byte, r.node_depth, r.node_end, r.tok_start, r.tok_ids, _subtree_bytes(r))
        return self._rest_args

    def _plain_budget(self, cid: int, max_chars: int) -> tuple[int | None, bool]:
        """:meth:`PlainTables.budget` of a configuration, read off its terminals'
        DFAs (complete tables) instead of growing lexer rows for every UTF-8 byte
        class. A plain character moves each triple ``(t, state, k)`` inside
        terminal ``t`` or drops it; a boundary arises exactly where a terminal
        accepts. Ignored lexemes restart other terminals, so configurations with
        any are left out."""
        lex = self.lexer
        pt = lex.plain
        r = int(K.config_plain_budget(lex.arrays(), cid, lex.gcls, pt.n_states, pt.pcls, max_chars, MAX_REACH,
                                      pt.soff, pt.memo, pt.reach))
        return PlainTables.decode(r)

    def _handle(self, code: int) -> None:
        if code == K.ERR_BOUNDARY:
            self._b_node = np.empty(2 * len(self._b_node), dtype=np.int32)
            self._b_cfg = np.empty(2 * len(self._b_cfg), dtype=np.int32)
        else:
            self.lexer.handle(code)

    # -- masks ----------------------------------------------------------------
    def _rank_sigs(self, S: ESet, ranks: list[ESet]) -> tuple:
        """Signatures of the ranked origins of ``S`` (after :meth:`root_config`),
        kept in ``S.cache`` for the signature table's generation; sets carried
        inside a lexeme (:meth:`carry`) share their parent's."""
        gen = self.cg.sig_generation
        c = S.cache
        got = c.get("sigs")
        if got is not None and got[0] == gen:
            return got[1]
        sig = self.cg.signature
        sigs = tuple(sig(o) for o in ranks)
        c["sigs"] = (gen, sigs)
        return sigs

    def mask(self, S: ESet) -> np.ndarray:
        """The read-only packed mask of Earley set ``S``.

        Exactly determined by (lexer configuration, the origin sets it ranks,
        whether ``S`` accepts); origin sets are compared by structural
        signature (bisimilar sets behave alike), which is the memo key: tokens
        inside one long lexeme and repeated structure (list items, object
        members) reuse one mask.
        """
        if not S.scan:
            return self.eos_words if S.accepting else self._empty
        with self.lexer.lock:
            cid, ranks = self.root_config(S)
            sigs = self._rank_sigs(S, ranks)
            key = (cid, S.accepting, sigs)
            got = self._sets.get(key)
            if got is not None:
                self._sets.move_to_end(key)
                return got
            out = self._compute(S, cid, ranks, sigs)
            out.setflags(write=False)
            self._sets[key] = out
            while len(self._sets) > self._set_cache_size:
                self._sets.popitem(last=False)
            return out

    def compute(self, S: ESet) -> np.ndarray:
        """The mask of ``S``, computed without the mask memo (fresh array)."""
        if not S.scan:
            out = np.zeros(self.words, dtype=np.uint32)
            if S.accepting:
                np.bitwise_or(out, self.eos_words, out=out)
            return out
        with self.lexer.lock:
            cid, ranks = self.root_config(S)
            return self._compute(S, cid, ranks, self._rank_sigs(S, ranks))

    def _compute(self, S: ESet, cid: int, ranks: list[ESet], sigs: tuple) -> np.ndarray:
        self.stats["computed"] += 1
        bits, bn, ucfg, inv, trie_args = self.root_walk(cid)
        out = bits.copy()
        if len(bn):
            lex = self.lexer
            if len(lex.ctx_sets) >= lex.MAX_CONTEXTS or len(lex.root_children) + len(lex.ctx_children) >= 4 * lex.MAX_CONTEXTS:
                lex.reset_contexts()  # only between masks: the kernels' stacks hold context ids
            kids = np.array([self._root_child(ranks, sigs, int(c)) for c in ucfg.tolist()], dtype=np.int32)
            self._follow(bn, kids[inv], out, trie_args)
        if S.accepting:
            np.bitwise_or(out, self.eos_words, out=out)
        return out

    # -- contexts ---------------------------------------------------------------
    def _kernel_key(self, kernel) -> frozenset:
        """Structural key of completion items (complete ones normalised by Leo chains).

        Origins are compared by signature (bisimilar sets alike), not by
        identity: the merged contexts share their whole subtree of children,
        which more than pays for the signatures (identity keys double the
        number of contexts on sql.lark).
        """
        cg = self.cg
        sig = cg.signature
        ns, lhs, st = cg.next_sym, cg.lhs_of, cg.start_nt
        out = set()
        for d, o in kernel:
            if ns[d] == _COMPLETE and lhs[d] != st:
                a2, o = leo(cg, o, lhs[d])
                d = ~a2
            out.add((d, sig(o)))
        return frozenset(out)

    def _new_context(self, parts: list[tuple[ESet, frozenset]]) -> int:
        kernel: list = []
        for X, tids in parts:
            for t in tids:
                kernel.extend(X.waiting_on(~t))
        lex = self.lexer
        n0 = len(lex.ctx_sets)
        gid = lex.context_id(parts, self._kernel_key(kernel))
        if len(lex.ctx_sets) > n0:
            self.stats["contexts"] += 1
        return gid

    def _root_child(self, ranks: list[ESet], sigs: tuple, cfg: int) -> int:
        """Context after the lexemes accepting in ``cfg`` end at their (ranked) origins of the root set."""
        lex = self.lexer
        pairs = lex.acc_pairs(cfg)
        key = (sigs, pairs)
        gid = lex.root_children.get(key)
        if gid is None:
            by_rank: dict[int, set[int]] = {}
            for t, k in pairs:
                by_rank.setdefault(k, set()).add(t)
            gid = self._new_context([(ranks[k], frozenset(ts)) for k, ts in sorted(by_rank.items())])
            lex.root_children[key] = gid
        return gid

    def _context_child(self, parent: int, cfg: int) -> int:
        """Context after the lexemes accepting in ``cfg`` (all started at context ``parent``) end."""
        lex = self.lexer
        pairs = lex.acc_pairs(cfg)
        assert all(k == 0 for _t, k in pairs), "configurations walked from a context have rank 0 only"
        key = (parent, pairs)
        gid = lex.ctx_children.get(key)
        if gid is None:
            gid = self._new_context([(lex.ctx_sets[parent], frozenset(t for t, _k in pairs))])
            lex.ctx_children[key] = gid
        return gid

    def _follow(self, nodes: np.ndarray, ctxs: np.ndarray, out: np.ndarray, trie_args: tuple) -> None:
        """Walk below every (boundary node, context) pair, to the bottom (caller holds the lock).

        ``trie_args`` is the trie the boundary nodes index: the whole vocabulary's,
        or the plain slice's rest when the root walk started from the slice."""
        lex = self.lexer
        n = len(nodes)
        vcap = _pow2(4 * n + 256)
        if vcap <= len(self._vkeys):  # the usual few boundaries: reuse the visited set (allocations cost 5 us)
            vkeys, vvals = self._vkeys, self._vvals
            vkeys.fill(-1)
        else:
            vkeys = np.full(vcap, -1, dtype=np.int64)
            vvals = np.zeros(vcap, dtype=np.int32)
        vmeta = self._vmeta
        vmeta[0] = 0
        st_meta = self._st_meta
        st_meta[:] = 0
        if len(self._st_node) < n:
            self._st_node = np.empty(_pow2(n), dtype=np.int32)
            self._st_ctx = np.empty(_pow2(n), dtype=np.int32)
        self._push(nodes, ctxs, lex.ctx_fresh, vkeys, vvals, vmeta, self._st_node, self._st_ctx, st_meta)
        loop_min = self._loop_min(trie_args, K.LOOP_MIN_BELOW)
        while True:
            self.stats["kernel_calls"] += 1
            rc = int(self._multi_walk(lex.arrays(), lex.scratch, *trie_args, lex.gcls, self.trie.max_depth,
                                      out, lex.ctx_fresh, lex.child_keys, lex.child_vals, vkeys, vvals, vmeta,
                                      self._st_node, self._st_ctx, st_meta, self._p_node, self._p_ctx, self._p_cfg,
                                      self._b_node, self._b_cfg, self.counters, loop_min))
            if rc == K.ERR_STACK:
                sp, npend, nb = (int(x) for x in st_meta)
                if len(self._st_node) < sp + nb:
                    self._st_node = _grown(self._st_node, sp + nb)
                    self._st_ctx = _grown(self._st_ctx, sp + nb)
                if len(self._p_node) < npend + nb:
                    self._p_node = _grown(self._p_node, npend + nb)
                    self._p_ctx = _grown(self._p_ctx, npend + nb)
                    self._p_cfg = _grown(self._p_cfg, npend + nb)
                continue
            if rc == K.ERR_VISITED:
                keys = np.empty(2 * len(vkeys), dtype=np.int64)
                vals = np.empty(2 * len(vkeys), dtype=np.int32)
                K.hmap_rehash(vkeys, vvals, keys, vals)
                vkeys, vvals = keys, vals
                continue
            if rc < 0:
                self._handle(rc)
                continue
            npend = int(st_meta[1])
            if npend:
                # Walks done since a boundary was found may have allowed everything below it.
                npend = int(self._filter(out, trie_args[2], trie_args[3], trie_args[4], self._p_node, self._p_ctx,
                                         self._p_cfg, npend))
            if not npend:
                return
            # Run the parser for the transitions the table lacks, then follow them.
            self.stats["pending"] += npend
            pn = self._p_node[:npend].copy()
            st_meta[1] = 0
            memo: dict[tuple[int, int], int] = {}
            kids_l = []
            for parent, cfg in zip(self._p_ctx[:npend].tolist(), self._p_cfg[:npend].tolist()):
                child = memo.get((parent, cfg))
                if child is None:
                    child = memo[(parent, cfg)] = self._context_child(parent, cfg)
                    lex.set_child(parent, cfg, child)
                kids_l.append(child)
            kids = np.array(kids_l, dtype=np.int32)
            need = int(st_meta[0]) + npend
            if len(self._st_node) < need:
                self._st_node = _grown(self._st_node, need)
                self._st_ctx = _grown(self._st_ctx, need)
            while 2 * (int(vmeta[0]) + npend + 1) > len(vkeys):
                keys = np.empty(2 * len(vkeys), dtype=np.int64)
                vals = np.empty(2 * len(vkeys), dtype=np.int32)
                K.hmap_rehash(vkeys, vvals, keys, vals)
                vkeys, vvals = keys, vals
            self._push(pn, kids, lex.ctx_fresh, vkeys, vvals, vmeta, self._st_node, self._st_ctx, st_meta)


_BELOW: dict[int, np.ndarray] = {}
_BELOW_LOCK = threading.Lock()


def _subtree_bytes(trie: Any) -> np.ndarray:
    """Per trie node, the bytes below it (256-bit sets), computed once per trie (10 MB for 333k nodes)."""
    with _BELOW_LOCK:
        got = _BELOW.get(id(trie))
        if got is None or got[0] is not trie:
            below = np.empty((trie.num_nodes, 4), dtype=np.uint64)
            K.subtree_bytes(trie.node_byte, trie.node_end, below)
            below.setflags(write=False)
            if len(_BELOW) >= 4:
                _BELOW.clear()
            got = _BELOW[id(trie)] = (trie, below)
        return got[1]


def _grown(a: np.ndarray, need: int) -> np.ndarray:
    b = np.empty(_pow2(max(need, 2 * len(a))), dtype=a.dtype)
    b[: len(a)] = a
    return b


def _predicted(o: ESet) -> tuple[int, ...]:
    """Scan ids predicted at ``o`` (cached on the set)."""
    c = o.cache
    if c is None:
        c = o.cache = {}
    got = c.get("R")
    if got is None:
        got = c["R"] = o.predicted_terminals()
    return got


__all__ = ["LexerDFA", "MaskEngine"]
