"""Numba kernels for grammar token masks (see :mod:`.masks` for the design).

Three groups, all operating on flat numpy arrays owned by Python objects that
grow them on request:

* **the lexer DFA** (:func:`lex_make`, :func:`lex_transition`): states are
  *configurations*, sorted arrays of int64 keys interned in an open-addressing
  hash table. A key is either a triple ``(origin rank k, scan id t, DFA state
  s)`` = ``k << 42 | t << 21 | s`` or a restart pair ``RP_FLAG | k << 31 |
  rid`` (the terminals that restart at rank ``k`` when an ``%ignore`` lexeme
  of that rank ends, as restart set ``rid``). Rows of the transition table are
  computed lazily, inside the trie walks, the first time a walk needs them
  (``-2`` = not computed yet, ``-1`` = dead);
* **trie walks** (:func:`root_walk`, :func:`multi_walk`): depth-first walks of
  the vocabulary trie through the lexer DFA. Tokens that keep the lexer live
  are allowed; nodes where a lexeme can end and whose subtree still holds a
  token that is not allowed yet (checked in post-order, so subtrees the walk
  itself fully allowed are dropped) are *boundaries*. :func:`multi_walk`
  follows boundaries through a global table ``(parser context, lexer
  configuration) -> child context`` and reports the pairs missing from it
  (the caller runs the Earley parser for those and calls again);
* small open-addressing hash maps/sets of int64 keys.

Every kernel returns a negative code when an array is too small; the caller
grows it and calls again (work done so far is kept or harmlessly redone).

The pure-Python twin of each kernel is its interpreted source
(``kernel.py_func``, or the whole module under ``NUMBA_DISABLE_JIT=1``); the
tests compare them, and compare the lexer transitions with an independent
set-based implementation. Integer arithmetic is written so that Python ints
and wrapping int64 give identical results (hashes are masked to 63 bits).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .. import _numba_cache  # noqa: F401  (cache stamps that cover the kernels a kernel calls)
from ..tokens._kernels import PLAIN_NONE, plain_budget_many

RP_FLAG = 1 << 62
M21 = (1 << 21) - 1
M31 = (1 << 31) - 1
MASK63 = (1 << 63) - 1

# Error codes (negative returns).
ERR_LEXER = -3  # lexer arrays full (configs, pool or hash slots): grow them
ERR_SCRATCH = -4  # scratch buffer too small (meta[2] says how big)
ERR_MAX_CONFIGS = -5  # the lexer reached its configuration limit
ERR_BOUNDARY = -6  # per-walk boundary buffer too small
ERR_STACK = -7  # multi_walk stack or pending buffer too small
ERR_VISITED = -8  # visited set too full

# Indices into the lexer tuple ``lx``.
#   0 ttab    int32   next DFA state: ttab[toff[t] + s * G + g]
#   1 toff    int64   per scan id
#   2 soff    int64   per scan id: offset of its states in tacc
#   3 tacc    uint8   accepting flags
#   4 tstart  int32   start state per scan id
#   5 tign    uint8   1 for %ignore scan ids
#   6 tclosed uint8   1 for %ignore scan ids closed under concatenation
#   7 rs_ptr  int64   restart sets (CSR)
#   8 rs_ids  int32
#   9 pool    int64   configuration keys, configuration c = pool[cfg_ptr[c]:cfg_ptr[c + 1]]
#  10 cfg_ptr int64
#  11 chash   int64   hash per configuration
#  12 table   int32   [capacity, G] transitions (-2 unknown, -1 dead)
#  13 boundary uint8  1 when a regular (non-ignored) terminal accepts
#  14 hslots  int32   hash slots -> configuration id (-1 empty)
#  15 meta    int64   [count, pool used, requested size, max configs]
#  16 loop    uint64  [capacity, 4] bytes on which a configuration stays itself (see loop_bytes)
#  17 lflag   uint8   1 once loop[c] is computed


@njit(cache=True, nogil=True)
def _mix(x):
    """A 63-bit integer mixer for non-negative ``x``: every input bit affects the low bits.

    No product can overflow (32-bit halves times constants below 2**30):
    numba marks signed multiplications "no signed wrap", so LLVM may drop a
    mask after an overflowing multiply, and the interpreted twin must get the
    same numbers anyway.
    """
    lo = x & 0xFFFFFFFF
    hi = (x >> 32) & 0x7FFFFFFF
    h = (lo * 1103515245) ^ (hi * 1013904223) ^ (x >> 17)
    lo = h & 0xFFFFFFFF
    hi = (h >> 32) & 0x7FFFFFFF
    h = (lo * 1013904223) ^ (hi * 1103515245) ^ (h >> 29)
    return h & MASK63


@njit(cache=True, nogil=True)
def _keys_hash(keys, lo, hi):
    h = 1469598103934665603
    for i in range(lo, hi):
        h = _mix(h ^ int(keys[i]))
    return h


@njit(cache=True, nogil=True, inline="always")
def _intern(lx, keys, n):
    tign = lx[5]
    tacc = lx[3]
    soff = lx[2]
    pool = lx[9]
    cfg_ptr = lx[10]
    chash = lx[11]
    table = lx[12]
    boundary = lx[13]
    hslots = lx[14]
    meta = lx[15]
    h = _keys_hash(keys, 0, n)
    mask = hslots.shape[0] - 1
    slot = h & mask
    while True:
        c = hslots[slot]
        if c < 0:
            break
        if chash[c] == h:
            lo = cfg_ptr[c]
            if cfg_ptr[c + 1] - lo == n:
                same = True
                for i in range(n):
                    if pool[lo + i] != keys[i]:
                        same = False
                        break
                if same:
                    return c
        slot = (slot + 1) & mask
    ncfg = meta[0]
    used = meta[1]
    if ncfg >= meta[3]:
        return ERR_MAX_CONFIGS
    if ncfg + 1 >= table.shape[0] or used + n > pool.shape[0] or 2 * (ncfg + 1) > hslots.shape[0]:
        meta[2] = n
        return ERR_LEXER
    for i in range(n):
        pool[used + i] = keys[i]
    cfg_ptr[ncfg + 1] = used + n
    chash[ncfg] = h
    b = 0
    for i in range(n):
        key = int(keys[i])
        if key >= RP_FLAG:
            break
        t = (key >> 21) & M21
        if tign[t] == 0 and tacc[soff[t] + (key & M21)] != 0:
            b = 1
            break
    boundary[ncfg] = b
    for g in range(table.shape[1]):
        table[ncfg, g] = -2
    hslots[slot] = ncfg
    meta[0] = ncfg + 1
    meta[1] = used + n
    return ncfg


@njit(cache=True, nogil=True)
def _sort_unique(buf, n):
    if n <= 16:  # the usual size: insertion sort in place, no allocation
        for i in range(1, n):
            x = buf[i]
            j = i - 1
            while j >= 0 and buf[j] > x:
                buf[j + 1] = buf[j]
                j -= 1
            buf[j + 1] = x
        a = buf
    else:
        a = np.sort(buf[:n])
    m = 0
    for i in range(n):
        if m == 0 or a[i] != buf[m - 1]:
            buf[m] = a[i]
            m += 1
    return m


@njit(cache=True, nogil=True)
def lex_make(lx, keys):
    """Intern the configuration made of ``keys`` (any order, duplicates allowed)."""
    n = keys.shape[0]
    if n == 0:
        return -1
    buf = keys.copy()
    m = _sort_unique(buf, n)
    return _intern(lx, buf, m)


@njit(cache=True, nogil=True, inline="always")
def _successor(lx, scratch, c, g):
    """Keys of the successor of configuration ``c`` on global byte class ``g``, into ``scratch``.

    Returns their count (0: dead) or an error code. Every triple advances through its terminal's DFA (dead ones drop); an
    ``%ignore`` triple that reaches an accepting state restarts the terminals
    of its rank's restart set at the same rank (ignored bytes leave the
    parser where it was), except itself when it is closed under
    concatenation. Restart pairs are kept for the ranks that still have an
    ignore triple.
    """
    ttab = lx[0]
    toff = lx[1]
    soff = lx[2]
    tacc = lx[3]
    tstart = lx[4]
    tign = lx[5]
    tclosed = lx[6]
    rs_ptr = lx[7]
    rs_ids = lx[8]
    pool = lx[9]
    cfg_ptr = lx[10]
    meta = lx[15]
    G = lx[12].shape[1]
    lo = cfg_ptr[c]
    hi = cfg_ptr[c + 1]
    rp = hi
    for idx in range(lo, hi):
        if pool[idx] >= RP_FLAG:
            rp = idx
            break
    cap = scratch.shape[0]
    n = 0
    for idx in range(lo, rp):
        key = int(pool[idx])
        k = key >> 42
        t = (key >> 21) & M21
        s = key & M21
        ns = int(ttab[toff[t] + s * G + g])
        if ns < 0:
            continue
        if n >= cap:
            meta[2] = 2 * cap + 2 * (hi - lo)
            return ERR_SCRATCH
        scratch[n] = (k << 42) | (t << 21) | ns
        n += 1
        if tign[t] != 0 and tacc[soff[t] + ns] != 0:
            rid = -1
            for j in range(rp, hi):
                pk = int(pool[j])
                if ((pk >> 31) & M31) == k:
                    rid = pk & M31
                    break
            if rid < 0:
                continue
            for j in range(rs_ptr[rid], rs_ptr[rid + 1]):
                t2 = int(rs_ids[j])
                if t2 != t or tclosed[t] == 0:
                    if n >= cap:
                        meta[2] = 2 * cap + 2 * (rs_ptr[rid + 1] - rs_ptr[rid]) + 2 * (hi - lo)
                        return ERR_SCRATCH
                    scratch[n] = (k << 42) | (t2 << 21) | int(tstart[t2])
                    n += 1
    if n == 0:
        return 0
    m = _sort_unique(scratch, n)
    total = m
    for j in range(rp, hi):
        pk = int(pool[j])
        kk = (pk >> 31) & M31
        keep = False
        for i in range(m):
            key = int(scratch[i])
            if (key >> 42) == kk and tign[(key >> 21) & M21] != 0:
                keep = True
                break
        if keep:
            if total >= cap:
                meta[2] = 2 * cap
                return ERR_SCRATCH
            scratch[total] = pk
            total += 1
    return total


@njit(cache=True, nogil=True)
def lex_transition(lx, scratch, c, g):
    """Successor of configuration ``c`` on global byte class ``g`` (interned, stored in the table)."""
    n = _successor(lx, scratch, c, g)
    if n < 0:
        return n
    table = lx[12]
    if n == 0:
        table[c, g] = -1
        return -1
    r = _intern(lx, scratch, n)
    if r >= 0:
        table[c, g] = r
    return r


@njit(cache=True, nogil=True)
def loop_bytes(lx, scratch, gcls, c):
    """Compute (once) the bytes on which configuration ``c`` stays itself, into ``lx[16][c]``.

    Returns 0, or an error code. Successors are compared with ``c`` without
    interning them, so the test creates no configurations.
    """
    table = lx[12]
    loop = lx[16]
    flag = lx[17]
    if flag[c] != 0:
        return 0
    pool = lx[9]
    cfg_ptr = lx[10]
    lo = cfg_ptr[c]
    size = cfg_ptr[c + 1] - lo
    G = table.shape[1]
    for w in range(4):
        loop[c, w] = 0
    ttab = lx[0]
    toff = lx[1]
    isloop = np.zeros(G, dtype=np.uint8)
    for g in range(G):
        t = table[c, g]
        same = False
        if t >= -1:
            same = t == c
        else:
            # Fast path without restart pairs (no restarts can re-add a
            # triple): every triple staying put is a loop, and a lone triple
            # that moves or dies is none. Otherwise (several triples could map
            # onto one another) _successor compares the whole set.
            simple = int(pool[lo + size - 1]) < RP_FLAG
            moved = False
            if simple:
                for idx in range(lo, lo + size):
                    key = int(pool[idx])
                    tt = (key >> 21) & M21
                    st = key & M21
                    if int(ttab[toff[tt] + st * G + g]) != st:
                        moved = True
                        break
            if moved and size == 1:
                continue
            if simple and not moved:
                table[c, g] = c
                isloop[g] = 1
                continue
            n = _successor(lx, scratch, c, g)
            if n < 0:
                return n
            if n == size:
                same = True
                for i in range(n):
                    if scratch[i] != pool[lo + i]:
                        same = False
                        break
            if same:
                table[c, g] = c
        if same:
            isloop[g] = 1
    for b in range(256):
        if isloop[gcls[b]] != 0:
            loop[c, b >> 6] |= np.uint64(1) << np.uint64(b & 63)
    flag[c] = 1
    return 0


@njit(cache=True, nogil=True)
def lex_rehash(cfg_ptr, chash, ncfg, hslots):
    """Rebuild the configuration hash slots (after growing them)."""
    hslots[:] = -1
    mask = hslots.shape[0] - 1
    for c in range(ncfg):
        slot = chash[c] & mask
        while hslots[slot] >= 0:
            slot = (slot + 1) & mask
        hslots[slot] = c


# --------------------------------------------------------------------------- walks

#: Subtrees with at most this many tokens are checked against ``out`` before walking them.
SMALL_SUBTREE = 6


@njit(cache=True, nogil=True)
def _all_set(out, tok_ids, lo, hi):
    for k in range(lo, hi):
        t = tok_ids[k]
        if (out[t >> 5] >> np.uint32(t & 31)) & np.uint32(1) == 0:
            return False
    return True


@njit(cache=True, nogil=True)
def _walk(lx, scratch, node_byte, node_depth, node_end, tok_start, tok_ids, below, gcls, stack, ok, bid,
          r, cfg, out, b_node, b_cfg, nb0, counters, loop_min):
    """Walk below trie node ``r`` (-1: the whole trie) from lexer configuration ``cfg``.

    Sets the bits of the tokens that keep the lexer live and appends the
    boundary nodes (node, configuration) at ``b_node[nb0:]``; returns the new
    count, or an error code. A boundary is dropped in post-order when every
    token below it turned out to be allowed (by this walk, or already in
    ``out`` for small subtrees the walk did not enter): the parser could only
    add allowed tokens there. Small subtrees whose tokens are all allowed
    already are not walked at all, and neither are subtrees whose bytes
    (``below[i]``, a 256-bit set per node) all keep the configuration
    unchanged: every token there is allowed; that test is made for subtrees of
    at least ``loop_min`` tokens (it reads 32 bytes per node of a 10 MB array).
    """
    table = lx[12]
    boundary = lx[13]
    loop = lx[16]
    lflag = lx[17]
    n = node_byte.shape[0]
    if r < 0:
        lo = 0
        hi = n
        base = 0
    else:
        lo = r + 1
        hi = node_end[r]
        base = node_depth[r] + 1
    cap = b_node.shape[0]
    nb = nb0
    stack[0] = cfg
    top = 0
    visited = 0
    i = lo
    while i <= hi:
        d = 0
        if i < hi:
            d = node_depth[i] - base
        while top > d:  # close the open nodes at depth >= d (post-order)
            top -= 1
            if ok[top] != 0:
                if bid[top] >= 0:
                    b_node[bid[top]] = -1
            elif top > 0:
                ok[top - 1] = 0
        if i == hi:
            break
        e_i = node_end[i]
        t_lo = tok_start[i]
        t_hi = tok_start[e_i]
        small = t_hi - t_lo <= SMALL_SUBTREE
        if r >= 0 and small and _all_set(out, tok_ids, t_lo, t_hi):
            i = e_i  # nothing to add below: skip (the parent stays "all set")
            continue
        visited += 1
        c = stack[d]
        g = gcls[node_byte[i]]
        s = table[c, g]
        if s == -2:
            s = lex_transition(lx, scratch, c, g)
            if s < -1:
                return s
        if s < 0:
            if d > 0 and not (small and _all_set(out, tok_ids, t_lo, t_hi)):
                ok[d - 1] = 0
            i = e_i
            continue
        stack[d + 1] = s
        if t_hi - t_lo >= loop_min:
            if lflag[s] == 0:
                rc = loop_bytes(lx, scratch, gcls, s)
                if rc < 0:
                    return rc
                table = lx[12]
            if ((below[i, 0] & ~loop[s, 0]) | (below[i, 1] & ~loop[s, 1]) | (below[i, 2] & ~loop[s, 2])
                    | (below[i, 3] & ~loop[s, 3])) == 0:
                for k in range(t_lo, t_hi):  # the whole subtree is allowed
                    t = tok_ids[k]
                    out[t >> 5] |= np.uint32(1) << np.uint32(t & 31)
                i = e_i  # the parent's "all set" flag stays
                continue
        for k in range(t_lo, tok_start[i + 1]):
            t = tok_ids[k]
            out[t >> 5] |= np.uint32(1) << np.uint32(t & 31)
        e = -1
        if boundary[s] != 0 and e_i > i + 1:
            if nb >= cap:
                return ERR_BOUNDARY
            b_node[nb] = i
            b_cfg[nb] = s
            e = nb
            nb += 1
        ok[d] = 1
        bid[d] = e
        top = d + 1
        i += 1
    counters[1] += visited
    w = nb0
    for k in range(nb0, nb):
        if b_node[k] >= 0:
            b_node[w] = b_node[k]
            b_cfg[w] = b_cfg[k]
            w += 1
    return w


#: Self-loop tests (see :func:`_walk`) pay on the big subtrees of root walks over the whole trie,
#: rarely on the small ones below boundaries, and never on the plain slice's rest trie, whose tokens
#: hold the bytes (quotes, escapes, controls) string states do not loop on: without them a root
#: walk of a key-or-string closure over the rest of Qwen3's vocabulary takes 55 us instead of 89.
LOOP_MIN_ROOT = 8
LOOP_MIN_BELOW = 64
LOOP_NEVER = 1 << 30


@njit(cache=True, nogil=True)
def root_walk(lx, scratch, node_byte, node_depth, node_end, tok_start, tok_ids, below, gcls, max_depth,
              cfg, out, b_node, b_cfg, counters, loop_min):
    """The walk of the whole trie from ``cfg``: bits into ``out``, boundaries into ``b_*``."""
    stack = np.empty(max_depth + 2, dtype=np.int32)
    ok = np.empty(max_depth + 2, dtype=np.uint8)
    bid = np.empty(max_depth + 2, dtype=np.int32)
    return _walk(lx, scratch, node_byte, node_depth, node_end, tok_start, tok_ids, below, gcls, stack, ok, bid,
                 -1, cfg, out, b_node, b_cfg, 0, counters, loop_min)


@njit(cache=True, nogil=True)
def config_plain_budget(lx, cid, gcls, n_states, pcls, max_chars, max_reach, memo_off, memo, reach):
    """The plain budget (:func:`constrain.tokens._kernels.plain_budget_many`) of
    configuration ``cid``, read off its terminals' own tables; ``PLAIN_NONE``
    when it has ignored lexemes (they restart other terminals)."""
    pool = lx[9]
    cfg_ptr = lx[10]
    tign = lx[5]
    lo = cfg_ptr[cid]
    m = cfg_ptr[cid + 1] - lo
    tabs = np.empty(m, dtype=np.int64)
    states = np.empty(m, dtype=np.int64)
    for i in range(m):
        key = int(pool[lo + i])
        if key >= RP_FLAG:
            return PLAIN_NONE
        t = (key >> 21) & M21
        if tign[t] != 0:
            return PLAIN_NONE
        tabs[i] = t
        states[i] = key & M21
    return plain_budget_many(lx[0], lx[1], n_states, lx[12].shape[1], gcls, tabs, states, lx[3], lx[2], True, pcls,
                             max_chars, max_reach, memo_off, memo, reach)


@njit(cache=True, nogil=True)
def chain_walk(lx, scratch, node_byte, node_depth, node_end, tok_start, tok_ids, below, gcls, max_depth,
               groups, g_plain, cfg, out, b_node, b_cfg, counters):
    """The root walk of a chain configuration over the plain slice's forest.

    Every plain character leads ``cfg`` to one same successor, so the tokens
    of group ``n`` (``n`` plain characters, then a suffix) are walked as their
    suffixes from ``cfg`` stepped ``n`` times on one plain byte (class
    ``g_plain``): one walk per group instead of one per distinct prefix.
    """
    stack = np.empty(max_depth + 2, dtype=np.int32)
    ok = np.empty(max_depth + 2, dtype=np.uint8)
    bid = np.empty(max_depth + 2, dtype=np.int32)
    nb = 0
    c = cfg
    for n in range(groups.shape[0]):
        r = groups[n]
        if r >= 0:
            nb = _walk(lx, scratch, node_byte, node_depth, node_end, tok_start, tok_ids, below, gcls, stack, ok,
                       bid, r, c, out, b_node, b_cfg, nb, counters, LOOP_NEVER)
            if nb < 0:
                return nb
        table = lx[12]
        s = table[c, g_plain]
        if s == -2:
            s = lex_transition(lx, scratch, c, g_plain)
            if s < -1:
                return s
        if s < 0:
            break
        c = s
    return nb


@njit(cache=True, nogil=True)
def hmap_get(keys, vals, key):
    """Value of ``key`` in an open-addressing map (keys >= 0, -1 = empty slot), or -1."""
    mask = keys.shape[0] - 1
    slot = _mix(key) & mask
    while True:
        k = keys[slot]
        if k == key:
            return vals[slot]
        if k < 0:
            return -1
        slot = (slot + 1) & mask


@njit(cache=True, nogil=True)
def hmap_put(keys, vals, meta, key, val):
    """Insert or overwrite; returns 1 when inserted, 0 when overwritten, -1 when the map is too full."""
    mask = keys.shape[0] - 1
    slot = _mix(key) & mask
    while True:
        k = keys[slot]
        if k == key:
            vals[slot] = val
            return 0
        if k < 0:
            if 2 * (meta[0] + 1) > keys.shape[0]:
                return -1
            keys[slot] = key
            vals[slot] = val
            meta[0] += 1
            return 1
        slot = (slot + 1) & mask


@njit(cache=True, nogil=True)
def hmap_rehash(keys, vals, new_keys, new_vals):
    new_keys[:] = -1
    mask = new_keys.shape[0] - 1
    for i in range(keys.shape[0]):
        key = int(keys[i])
        if key < 0:
            continue
        slot = _mix(key) & mask
        while new_keys[slot] >= 0:
            slot = (slot + 1) & mask
        new_keys[slot] = key
        new_vals[slot] = vals[i]


@njit(cache=True, nogil=True)
def filter_pending(out, node_end, tok_start, tok_ids, p_node, p_ctx, p_cfg, n):
    """Drop the pending boundaries below which every token is allowed by now (compacts in place)."""
    w = 0
    for j in range(n):
        i = p_node[j]
        if _all_set(out, tok_ids, tok_start[i + 1], tok_start[node_end[i]]):
            continue
        p_node[w] = i
        p_ctx[w] = p_ctx[j]
        p_cfg[w] = p_cfg[j]
        w += 1
    return w


@njit(cache=True, nogil=True)
def push_items(nodes, ctxs, ctx_fresh, vkeys, vvals, vmeta, st_node, st_ctx, st_meta):
    """Push (node, context) items not visited yet onto the multi_walk stack.

    The caller guarantees room (stack and visited set sized for every item).
    """
    sp = st_meta[0]
    for j in range(nodes.shape[0]):
        ch = ctxs[j]
        if ch < 0 or ctx_fresh[ch] < 0:
            continue
        if hmap_put(vkeys, vvals, vmeta, (int(nodes[j]) << 32) | int(ch), 0) == 1:
            st_node[sp] = nodes[j]
            st_ctx[sp] = ch
            sp += 1
    st_meta[0] = sp


@njit(cache=True, nogil=True)
def multi_walk(lx, scratch, node_byte, node_depth, node_end, tok_start, tok_ids, below, gcls, max_depth,
               out, ctx_fresh, ckeys, cvals, vkeys, vvals, vmeta,
               st_node, st_ctx, st_meta, p_node, p_ctx, p_cfg, b_node, b_cfg, counters, loop_min):
    """Process the stack of (trie node, parser context) items until it is empty.

    Each item walks the node's subtree from the context's fresh lexer
    configuration; each boundary (node, configuration) found there is
    followed through the child table ``(context << 32 | configuration) ->
    child context`` and pushed once per (node, child); boundaries whose child
    is unknown go to the pending buffer ``p_*`` (count ``st_meta[1]``) for the
    caller to resolve. Returns 0, or an error code with the current item
    still on the stack.
    """
    stack = np.empty(max_depth + 2, dtype=np.int32)
    ok = np.empty(max_depth + 2, dtype=np.uint8)
    bid = np.empty(max_depth + 2, dtype=np.int32)
    sp = st_meta[0]
    npend = st_meta[1]
    while sp > 0:
        node = st_node[sp - 1]
        ctx = st_ctx[sp - 1]
        nb = _walk(lx, scratch, node_byte, node_depth, node_end, tok_start, tok_ids, below, gcls, stack, ok, bid,
                   node, ctx_fresh[ctx], out, b_node, b_cfg, 0, counters, loop_min)
        if nb < 0:
            st_meta[0] = sp
            st_meta[1] = npend
            return nb
        if sp - 1 + nb > st_node.shape[0] or npend + nb > p_node.shape[0]:
            st_meta[0] = sp
            st_meta[1] = npend
            st_meta[2] = nb
            return ERR_STACK
        if 2 * (vmeta[0] + nb + 1) > vkeys.shape[0]:
            st_meta[0] = sp
            st_meta[1] = npend
            st_meta[2] = nb
            return ERR_VISITED
        sp -= 1
        counters[0] += 1
        for j in range(nb):
            i = b_node[j]
            cfg = b_cfg[j]
            ch = hmap_get(ckeys, cvals, (int(ctx) << 32) | int(cfg))
            if ch < 0:
                p_node[npend] = i
                p_ctx[npend] = ctx
                p_cfg[npend] = cfg
                npend += 1
            elif ctx_fresh[ch] >= 0:
                if hmap_put(vkeys, vvals, vmeta, (int(i) << 32) | int(ch), 0) == 1:
                    st_node[sp] = i
                    st_ctx[sp] = ch
                    sp += 1
    st_meta[0] = 0
    st_meta[1] = npend
    return 0


@njit(cache=True, nogil=True)
def subtree_bytes(node_byte, node_end, below):
    """``below[i]``: the 256-bit set of bytes on the nodes strictly below trie node ``i``."""
    n = node_byte.shape[0]
    for i in range(n - 1, -1, -1):
        for w in range(4):
            below[i, w] = 0
        j = i + 1
        e = node_end[i]
        while j < e:
            b = node_byte[j]
            below[i, b >> 6] |= np.uint64(1) << np.uint64(b & 63)
            for w in range(4):
                below[i, w] |= below[j, w]
            j = node_end[j]
