"""Token masks for grammars: a lexer DFA walked by a numba kernel, the parser
consulted only where a lexeme can end.

Walking the token trie byte by byte through Earley sets in Python would cost
one Earley step per trie node. Instead, as in XGrammar and llguidance, the
lexer is split from the parser:

* A *lexer configuration* is a set of triples ``(scan id, DFA state, k)``
  where ``k`` ranks the origin of the lexeme among the origins of the Earley
  set the walk started from (0 = most recent). Configurations are the states
  of a *lexer DFA*, built lazily: a byte advances every triple and drops dead
  ones; a configuration is a *boundary* when some triple is accepting.
* The kernel walks the trie from the current set's configuration. A token
  whose bytes keep it live is allowed whatever the parser says (every scan
  item in an Earley set is viable). This part depends only on the
  configuration and is memoised per configuration.
* Where a lexeme can end inside a token (a boundary node with children), the
  parser decides: completing the accepting triples at their origins gives a
  new Earley set (a *context*, memoised by its kernel items) whose freshly
  predicted terminals form a new configuration (all ``k = 0``); the node's
  children are walked from there, in one batched kernel call per nesting
  level. Lexemes that continue past the node are covered by the first walk.

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
from ..tokens.trie import trie_for
from . import _kernels
from .earley import _COMPLETE, CompiledGrammar, ESet, build_set, leo

Config = tuple  # (sorted (scan id, state, k) triples, sorted (k, restart scan ids) pairs)


class LexerDFA:
    """Deterministic automaton over lexer configurations (grown lazily, shared).

    A configuration is ``(triples, restart)``. Ignored lexemes are handled
    inside the lexer: when an ``%ignore`` triple with origin rank ``k``
    reaches an accepting state, the lexemes that could start at origin ``k``
    (``restart[k]``, the scan ids predicted there) start again with the same
    origin rank, because skipping ignored bytes leaves the parser where it
    was. So only regular terminals create boundaries.
    """

    def __init__(self, cg: CompiledGrammar, max_configs: int = 2_000_000) -> None:
        self.cg = cg
        self.max_configs = max_configs
        n = cg.num_scan
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
        self.num_classes = len(reps)
        # Per scan id and state: the next state for each global class.
        self.tabg = [[[row[cg.cls[t][b]] for b in reps] for row in cg.tab[t]] for t in range(n)]
        self.is_ignore = [t >= cg.num_terminals for t in range(n)]
        self.closed = [bool(cg.ignore_closed.get(t, False)) for t in range(n)]
        self.configs: list[Config] = []
        self.index: dict[Config, int] = {}
        self.acc_pairs: list[tuple[tuple[int, int], ...]] = []
        cap = 64
        self.table = np.full((cap, self.num_classes), -2, dtype=np.int32)
        self.boundary = np.zeros(cap, dtype=np.uint8)
        self.lock = threading.RLock()

    def __len__(self) -> int:
        return len(self.configs)

    def make(self, triples, restart: dict[int, tuple[int, ...]]) -> int:
        """Intern a configuration from triples and the restart sets of its ranks."""
        if not triples:
            return -1
        triples = tuple(sorted(set(triples)))
        ig = self.is_ignore
        ranks = sorted({k for t, _s, k in triples if ig[t]})
        return self.intern((triples, tuple((k, restart[k]) for k in ranks)))

    def intern(self, cfg: Config) -> int:
        """Id of a configuration (-1 for the empty one)."""
        if not cfg[0]:
            return -1
        got = self.index.get(cfg)
        if got is not None:
            return got
        with self.lock:
            got = self.index.get(cfg)
            if got is not None:
                return got
            cid = len(self.configs)
            if cid >= self.max_configs:
                raise MemoryError(f"grammar lexer needs more than {self.max_configs} configurations")
            if cid >= self.table.shape[0]:
                cap = self.table.shape[0] * 2
                table = np.full((cap, self.num_classes), -2, dtype=np.int32)
                table[:cid] = self.table[:cid]
                boundary = np.zeros(cap, dtype=np.uint8)
                boundary[:cid] = self.boundary[:cid]
                self.table, self.boundary = table, boundary  # old arrays stay valid for running walks
            acc = self.cg.acc
            ig = self.is_ignore
            pairs = tuple(sorted({(t, k) for t, s, k in cfg[0] if acc[t][s] and not ig[t]}))
            self.acc_pairs.append(pairs)
            self.boundary[cid] = 1 if pairs else 0
            self.configs.append(cfg)
            self.index[cfg] = cid
            return cid

    def ensure(self, cid: int) -> None:
        """Compute every row reachable from ``cid`` (the kernel needs them all)."""
        if cid < 0 or self.table[cid, 0] != -2:
            return
        with self.lock:
            stack = [cid]
            tabg = self.tabg
            acc = self.cg.acc
            start = self.cg.start_state
            ig = self.is_ignore
            closed = self.closed
            G = self.num_classes
            while stack:
                c = stack.pop()
                if self.table[c, 0] != -2:
                    continue
                triples, rs = self.configs[c]
                restart = dict(rs)
                row = [-1] * G
                for g in range(G):
                    nxt = set()
                    for t, s, k in triples:
                        ns = tabg[t][s][g]
                        if ns < 0:
                            continue
                        nxt.add((t, ns, k))
                        if ig[t] and acc[t][ns]:
                            for t2 in restart[k]:
                                if t2 != t or not closed[t]:
                                    nxt.add((t2, start[t2], k))
                    if nxt:
                        nid = self.make(nxt, restart)
                        row[g] = nid
                        if self.table[nid, 0] == -2 and nid != c:
                            stack.append(nid)
                self.table[c] = row


class MaskEngine:
    """Computes packed token masks for Earley sets of one grammar and vocabulary."""

    def __init__(self, cg: CompiledGrammar, vocab: Any, *, use_numba: bool = True,
                 root_cache_size: int = 4096, set_cache_size: int = 1024,
                 context_cache_size: int = 20_000) -> None:
        self.cg = cg
        self.vocab = vocab
        self.trie = trie_for(vocab)
        self.lexer = cg.lexer_dfa()
        self.words = mask_words(vocab.size)
        eos = [t for t in vocab.eos_ids if t < vocab.size]
        self.eos_words = mask_from_ids(eos, vocab.size)
        self.walk = _kernels.lexer_trie_walk if use_numba else _kernels.lexer_trie_walk_py
        self._root: "OrderedDict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]" = OrderedDict()
        self._root_cache_size = root_cache_size
        self._sets: "OrderedDict[tuple, np.ndarray]" = OrderedDict()
        self._contexts: "OrderedDict[tuple, tuple[ESet, int]]" = OrderedDict()
        self._context_cache_size = context_cache_size
        self._empty = np.zeros(self.words, dtype=np.uint32)
        self._empty.setflags(write=False)
        self.eos_words.setflags(write=False)
        self._set_cache_size = set_cache_size
        self._lock = threading.Lock()
        self._cap = max(1024, min(self.trie.num_nodes, 1 << 16))
        self._fresh_ids: dict[tuple[int, ...], int] = {}
        self.stats = {"root_walks": 0, "boundary_levels": 0, "contexts": 0, "boundary_nodes": 0}

    # -- configurations -----------------------------------------------------
    def root_config(self, S: ESet) -> tuple[int, list[ESet]]:
        c = S.cache
        if c is not None and "cfg" in c:
            return c["cfg"], c["ranks"]
        origins: dict[ESet, int] = {}
        for lst in S.scan.values():
            for o in lst:
                origins[o] = o.pos
        ranks = sorted(origins, key=lambda o: -o.pos)
        rank = {o: i for i, o in enumerate(ranks)}
        triples = {(t, s, rank[o]) for (t, s), lst in S.scan.items() for o in lst}
        ig = self.lexer.is_ignore
        restart = {k: _predicted(ranks[k]) for k in {k for t, _s, k in triples if ig[t]}}
        cid = self.lexer.make(triples, restart)
        self.lexer.ensure(cid)
        if S.cache is None:
            S.cache = {}
        S.cache["cfg"] = cid
        S.cache["ranks"] = ranks
        return cid, ranks

    def _run(self, roots_node: np.ndarray, roots_cfg: np.ndarray, out: np.ndarray):
        t = self.trie
        lex = self.lexer
        while True:
            cap = self._cap
            b_node = np.empty(cap, dtype=np.int32)
            b_cfg = np.empty(cap, dtype=np.int32)
            b_src = np.empty(cap, dtype=np.int32)
            nb = self.walk(lex.table, lex.gcls, lex.boundary, roots_node, roots_cfg, t.node_byte, t.node_depth,
                           t.node_end, t.tok_start, t.tok_ids, t.max_depth, out, b_node, b_cfg, b_src)
            if nb >= 0:
                return b_node[:nb].copy(), b_cfg[:nb].copy(), b_src[:nb].copy()
            self._cap = cap * 4

    def root_walk(self, cid: int) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
        """(bits, boundary nodes, (distinct boundary configs, index per node)) of a configuration, memoised."""
        got = self._root.get(cid)
        if got is not None:
            return got
        self.lexer.ensure(cid)
        out = np.zeros(self.words, dtype=np.uint32)
        bn, bc, _ = self._run(np.array([-1], np.int32), np.array([cid], np.int32), out)
        ucfg, inv = np.unique(bc, return_inverse=True)
        for a in (out, bn, ucfg, inv):
            a.setflags(write=False)
        self.stats["root_walks"] += 1
        entry = (out, bn, (ucfg, inv.reshape(-1)))
        with self._lock:
            self._root[cid] = entry
            while len(self._root) > self._root_cache_size:
                self._root.popitem(last=False)
        return entry

    # -- masks ----------------------------------------------------------------
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
        cid, ranks = self.root_config(S)
        sig = self.cg.signature
        key = (cid, S.accepting, *[sig(o) for o in ranks])
        got = self._sets.get(key)
        if got is not None:
            self._sets.move_to_end(key)
            return got
        out = self.compute(S)
        out.setflags(write=False)
        with self._lock:
            self._sets[key] = out
            while len(self._sets) > self._set_cache_size:
                self._sets.popitem(last=False)
        return out

    def compute(self, S: ESet) -> np.ndarray:
        """The mask of ``S``, computed without the memo (fresh array)."""
        out = np.zeros(self.words, dtype=np.uint32)
        if S.scan:
            cid, ranks = self.root_config(S)
            bits, bn, uq = self.root_walk(cid)
            np.bitwise_or(out, bits, out=out)
            if len(bn):
                self._boundaries(ranks, bn, uq, out)
        if S.accepting:
            np.bitwise_or(out, self.eos_words, out=out)
        return out

    def _context(self, kernel) -> tuple[ESet, int]:
        """The Earley set built from completion items, and its fresh lexer configuration."""
        C = ESet(-1)
        build_set(self.cg, C, kernel, {})
        tids = C.fresh
        fid = self._fresh_ids.get(tids)
        if fid is None:
            fid = self.lexer.make([(t, self.cg.start_state[t], 0) for t in tids], {0: tids})
            self.lexer.ensure(fid)
            self._fresh_ids[tids] = fid
        self.stats["contexts"] += 1
        return C, fid

    def _kernel_key(self, kernel) -> frozenset:
        """Structural key of completion items (complete ones normalised by Leo chains)."""
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

    def _child_context(self, rk: list[ESet], pairs: tuple[tuple[int, int], ...]) -> tuple[ESet, int]:
        """Context after the lexemes ``pairs`` (terminal, origin rank) end.

        Cached on the origin set when all lexemes started at one origin, and
        globally by the structural signature of the completion items.
        """
        o0 = rk[pairs[0][1]]
        single = all(k == pairs[0][1] for _t, k in pairs)
        if single:
            okey = pairs[0][0] if len(pairs) == 1 else frozenset(t for t, _ in pairs)
            oc = o0.cache
            if oc is None:
                oc = o0.cache = {}
            got = oc.get(okey)
            if got is not None:
                return got
        kernel: list = []
        for t, k in pairs:
            kernel.extend(rk[k].waiting_on(~t))
        skey = self._kernel_key(kernel)
        got = self._contexts.get(skey)
        if got is None:
            got = self._context(kernel)
            with self._lock:
                self._contexts[skey] = got
                while len(self._contexts) > self._context_cache_size:
                    self._contexts.popitem(last=False)
        if single:
            o0.cache[okey] = got  # type: ignore[index]
        return got

    def _boundaries(self, ranks: list[ESet], bn: np.ndarray, uq: tuple[np.ndarray, np.ndarray],
                    out: np.ndarray) -> None:
        lex = self.lexer
        ctx_ranks: list[list[ESet]] = [ranks]
        ctx_fresh: list[int] = [-1]
        ctx_index: dict[int, int] = {}
        child_memo: dict[int, int] = {}
        CFG_SPAN = 1 << 31

        def child(parent: int, cfg: int) -> int:
            key = parent * CFG_SPAN + cfg
            idx = child_memo.get(key)
            if idx is None:
                C, fid = self._child_context(ctx_ranks[parent], lex.acc_pairs[cfg])
                idx = ctx_index.get(id(C))
                if idx is None:
                    idx = ctx_index[id(C)] = len(ctx_ranks)
                    ctx_ranks.append([C])
                    ctx_fresh.append(fid)
                child_memo[key] = idx
            return idx

        # Level 1: the root walk's boundary nodes, all from the root context.
        ucfg, inv = uq
        kids = np.array([child(0, c) for c in ucfg.tolist()], dtype=np.int64)
        cctx = kids[inv]
        fcfg = np.asarray(ctx_fresh, dtype=np.int32)[cctx]
        live = fcfg >= 0
        r_node = np.ascontiguousarray(bn[live])
        r_ctx = cctx[live]
        self.stats["boundary_levels"] += 1
        self.stats["boundary_nodes"] += len(bn)
        if not len(r_node):
            return
        b_node, b_cfg, b_src = self._run(r_node, np.ascontiguousarray(fcfg[live]), out)
        if not len(b_node):
            return
        # Deeper levels: walk the children of every (node, context) pair not walked
        # yet. (Level-1 pairs need no dedup: a level only ever goes deeper in the trie.)
        visited: set[int] = set()
        parents = r_ctx[b_src]
        while len(b_node):
            n = len(b_node)
            self.stats["boundary_levels"] += 1
            self.stats["boundary_nodes"] += n
            if n <= 512:
                rn: list[int] = []
                rc: list[int] = []
                rx: list[int] = []
                for nd, c, p in zip(b_node.tolist(), b_cfg.tolist(), parents.tolist()):
                    idx = child_memo.get(p * CFG_SPAN + c)
                    if idx is None:
                        idx = child(p, c)
                    f = ctx_fresh[idx]
                    if f < 0:
                        continue
                    vk = (nd << 24) | idx
                    if vk in visited:
                        continue
                    visited.add(vk)
                    rn.append(nd)
                    rc.append(f)
                    rx.append(idx)
                if not rn:
                    break
                r_ctx = np.asarray(rx, dtype=np.int64)
                b_node, b_cfg, b_src = self._run(np.asarray(rn, dtype=np.int32), np.asarray(rc, dtype=np.int32), out)
            else:
                pair = (parents << 31) | b_cfg.astype(np.int64)
                upair, pinv = np.unique(pair, return_inverse=True)
                kids = np.array([child(p >> 31, p & (CFG_SPAN - 1)) for p in upair.tolist()], dtype=np.int64)
                cctx = kids[pinv.reshape(-1)]
                fcfg = np.asarray(ctx_fresh, dtype=np.int32)[cctx]
                keys = (b_node.astype(np.int64) << 24) | cctx
                _uk, first = np.unique(keys, return_index=True)
                sel = first[fcfg[first] >= 0]
                if not len(sel):
                    break
                r_ctx = cctx[sel]
                b_node, b_cfg, b_src = self._run(np.ascontiguousarray(b_node[sel]),
                                                 np.ascontiguousarray(fcfg[sel]), out)
            parents = r_ctx[b_src]

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
