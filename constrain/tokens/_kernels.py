"""Numba kernels for token masks, each with a pure-Python reference twin.

The kernels take arrays and scalars only; wrappers in the calling modules
check dtypes and shapes once. ``cache=True`` keeps the JIT cost to the first
import on a machine.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .. import _numba_cache  # noqa: F401  (cache stamps that cover the kernels a kernel calls)


@njit(cache=True, nogil=True)
def dfa_trie_mask(table, byte_class, state, node_byte, node_depth, node_end, tok_start, tok_ids, max_depth, out):
    """OR into ``out`` the bit of every token whose bytes keep ``state`` live.

    Walks the depth-first trie once; a node whose byte kills the automaton
    skips its whole subtree. Returns the number of trie nodes visited.
    """
    n = node_byte.shape[0]
    stack = np.empty(max_depth + 2, dtype=np.int32)
    stack[0] = state
    i = 0
    visited = 0
    while i < n:
        d = node_depth[i]
        s = table[stack[d], byte_class[node_byte[i]]]
        visited += 1
        if s < 0:
            i = node_end[i]
            continue
        stack[d + 1] = s
        for k in range(tok_start[i], tok_start[i + 1]):
            t = tok_ids[k]
            out[t >> 5] |= np.uint32(1) << np.uint32(t & 31)
        i += 1
    return visited


def dfa_trie_mask_py(table, byte_class, state, node_byte, node_depth, node_end, tok_start, tok_ids, max_depth, out):
    """Reference twin of :func:`dfa_trie_mask`."""
    n = len(node_byte)
    stack = [0] * (max_depth + 2)
    stack[0] = state
    i = 0
    visited = 0
    while i < n:
        d = node_depth[i]
        s = table[stack[d], byte_class[node_byte[i]]]
        visited += 1
        if s < 0:
            i = node_end[i]
            continue
        stack[d + 1] = s
        for k in range(tok_start[i], tok_start[i + 1]):
            t = int(tok_ids[k])
            out[t >> 5] |= np.uint32(1 << (t & 31))
        i += 1
    return visited


@njit(cache=True)
def build_trie(data, offsets):
    """Flat depth-first trie from byte strings sorted lexicographically.

    ``data[offsets[k]:offsets[k+1]]`` is the k-th string. Returns
    (node_byte, node_depth, node_end, node_of_string) trimmed to the node count.
    """
    total = data.shape[0]
    n_str = offsets.shape[0] - 1
    node_byte = np.empty(total, dtype=np.uint8)
    node_depth = np.empty(total, dtype=np.int32)
    node_of = np.empty(n_str, dtype=np.int32)
    max_len = 0
    for k in range(n_str):
        max_len = max(max_len, offsets[k + 1] - offsets[k])
    path = np.empty(max_len + 1, dtype=np.int32)
    n = 0
    prev_start = 0
    prev_len = 0
    for k in range(n_str):
        s = offsets[k]
        length = offsets[k + 1] - s
        lcp = 0
        lim = min(length, prev_len)
        while lcp < lim and data[prev_start + lcp] == data[s + lcp]:
            lcp += 1
        for d in range(lcp, length):
            path[d] = n
            node_byte[n] = data[s + d]
            node_depth[n] = d
            n += 1
        node_of[k] = path[length - 1]
        prev_start = s
        prev_len = length
    node_end = np.full(n, n, dtype=np.int32)
    stack = np.empty(max_len + 1, dtype=np.int32)
    top = 0
    for i in range(n):
        d = node_depth[i]
        while top > 0 and node_depth[stack[top - 1]] >= d:
            top -= 1
            node_end[stack[top]] = i
        stack[top] = i
        top += 1
    return node_byte[:n].copy(), node_depth[:n].copy(), node_end, node_of


def build_trie_py(data, offsets):
    """Reference twin of :func:`build_trie`."""
    strings = [bytes(data[offsets[k]:offsets[k + 1]]) for k in range(len(offsets) - 1)]
    node_byte: list[int] = []
    node_depth: list[int] = []
    node_of: list[int] = []
    path: list[int] = []
    prev = b""
    for s in strings:
        lcp = 0
        while lcp < min(len(prev), len(s)) and prev[lcp] == s[lcp]:
            lcp += 1
        del path[lcp:]
        for d in range(lcp, len(s)):
            path.append(len(node_byte))
            node_byte.append(s[d])
            node_depth.append(d)
        node_of.append(path[len(s) - 1])
        prev = s
    n = len(node_byte)
    node_end = [n] * n
    open_nodes: list[int] = []
    for i in range(n):
        while open_nodes and node_depth[open_nodes[-1]] >= node_depth[i]:
            node_end[open_nodes.pop()] = i
        open_nodes.append(i)
    return (np.array(node_byte, np.uint8), np.array(node_depth, np.int32),
            np.array(node_end, np.int32), np.array(node_of, np.int32))


# UTF-8 shapes of the code points U+0020..U+10FFFF other than '"' and '\\'
# (surrogates excluded): (lead lo, lead hi, then (lo, hi) per continuation byte)
PLAIN_SHAPES = np.array([
    # lead lo, lead hi, c1 lo, c1 hi, c2 lo, c2 hi, c3 lo, c3 hi (0, -1: absent)
    [0x20, 0x21, 0, -1, 0, -1, 0, -1],  # ASCII around '"' (0x22) and '\\' (0x5C)
    [0x23, 0x5B, 0, -1, 0, -1, 0, -1],
    [0x5D, 0x7F, 0, -1, 0, -1, 0, -1],
    [0xC2, 0xDF, 0x80, 0xBF, 0, -1, 0, -1],
    [0xE0, 0xE0, 0xA0, 0xBF, 0x80, 0xBF, 0, -1],
    [0xE1, 0xEC, 0x80, 0xBF, 0x80, 0xBF, 0, -1],
    [0xED, 0xED, 0x80, 0x9F, 0x80, 0xBF, 0, -1],
    [0xEE, 0xEF, 0x80, 0xBF, 0x80, 0xBF, 0, -1],
    [0xF0, 0xF0, 0x90, 0xBF, 0x80, 0xBF, 0x80, 0xBF],
    [0xF1, 0xF3, 0x80, 0xBF, 0x80, 0xBF, 0x80, 0xBF],
    [0xF4, 0xF4, 0x80, 0x8F, 0x80, 0xBF, 0x80, 0xBF],
], dtype=np.int32)

_SET_CAP = 64


@njit(cache=True, nogil=True)
def _set_add(buf, n, t):
    """Add ``t`` to the small set ``buf[:n]``: the new size, or -1 when the buffer is full."""
    for m in range(n):
        if buf[m] == t:
            return n
    if n == buf.shape[0]:
        return -1
    buf[n] = t
    return n + 1


def plain_classes(byte_class: np.ndarray) -> np.ndarray:
    """The distinct byte classes of each byte range of :data:`PLAIN_SHAPES`
    under ``byte_class``: ``[shape, step, 0]`` is their count (0: the shape
    has no such byte), followed by the classes. The kernels step through
    classes, not bytes (a few per range instead of up to 64). Vectorised: it
    runs once per grammar or DFA layout, while it compiles."""
    byte_class = np.asarray(byte_class)
    width = int(byte_class.max()) + 2 if len(byte_class) else 1
    rng, byt = _PLAIN_RANGE_BYTES
    present = np.zeros((PLAIN_SHAPES.shape[0] * 4, width - 1), dtype=bool)
    present[rng, byte_class[byt]] = True
    count = present.sum(axis=1)
    order = np.argsort(~present, axis=1, kind="stable")  # present classes first, ascending
    out = np.zeros((PLAIN_SHAPES.shape[0] * 4, width), dtype=np.int32)
    out[:, 0] = count
    out[:, 1:] = np.where(np.arange(width - 1) < count[:, None], order, 0)
    return out.reshape(PLAIN_SHAPES.shape[0], 4, width)


def _range_bytes() -> tuple[np.ndarray, np.ndarray]:
    """(range index ``4 * shape + step``, byte) for every byte of every range of :data:`PLAIN_SHAPES`
    (a step's range ends the shape when it is empty)."""
    rng, byt = [], []
    for r, row in enumerate(PLAIN_SHAPES.tolist()):
        for step in range(4):
            lo, hi = row[2 * step], row[2 * step + 1]
            if hi < lo:
                break
            rng.extend([4 * r + step] * (hi - lo + 1))
            byt.extend(range(lo, hi + 1))
    return np.array(rng, dtype=np.int64), np.array(byt, dtype=np.int64)


_PLAIN_RANGE_BYTES = _range_bytes()


@njit(cache=True, nogil=True)
def _plain_targets(table, state, pcls, out, cur, nxt):
    """The distinct states plain characters (code points U+0020..U+10FFFF other
    than '"' and '\\\\') lead to from ``state``, into ``out``; returns their
    count, negated minus one when some plain character is rejected (so -1: all
    rejected), or -(1 << 30) when a buffer overflows.

    The states reachable after each byte of a UTF-8 shape are tracked as a
    small set over the byte classes of its ranges (:func:`plain_classes`):
    every combination of bytes in a shape's ranges is a valid code point, so
    the set is exact."""
    n_out = 0
    died = False
    for r in range(pcls.shape[0]):
        n_cur = 1
        cur[0] = state
        for step in range(4):
            cnt = pcls[r, step, 0]
            if cnt == 0:
                break
            n_nxt = 0
            for j in range(n_cur):
                s = cur[j]
                for q in range(1, cnt + 1):
                    t = table[s, pcls[r, step, q]]
                    if t < 0:
                        died = True
                        continue
                    n_nxt = _set_add(nxt, n_nxt, t)
                    if n_nxt < 0:
                        return -(1 << 30)
            for m in range(n_nxt):
                cur[m] = nxt[m]
            n_cur = n_nxt
            if n_cur == 0:
                break
        for j in range(n_cur):
            n_out = _set_add(out, n_out, cur[j])
            if n_out < 0:
                return -(1 << 30)
    return -n_out - 1 if died else n_out


@njit(cache=True, nogil=True)
def plain_successor(table, byte_class, state, pcls):
    """The one state every plain character leads to from ``state``; -1 when
    every plain character is rejected; -2 when they disagree (some rejected, or
    several successors, or too many to track)."""
    out = np.empty(_SET_CAP, dtype=np.int32)
    cur = np.empty(_SET_CAP, dtype=np.int32)
    nxt = np.empty(_SET_CAP, dtype=np.int32)
    n = _plain_targets(table, state, pcls, out, cur, nxt)
    if n == -1:
        return -1
    if n == 1:
        return out[0]
    return -2


@njit(cache=True, nogil=True)
def plain_reach(table, byte_class, state, pcls, blocked, use_blocked, need_live, max_states, memo):
    """Explore every state plain text leads to from ``state``: 1 when none is
    blocked and (with ``need_live``) no plain character is ever rejected, so
    every plain token keeps the automaton live; 0 when that fails; -1 when more
    than ``max_states`` states would have to be explored.

    ``memo`` (one int8 per state of ``table``, -2 unknown) keeps answers for
    later calls with the same ``need_live``, shared along reachability: a
    success holds for every state it explored (their reachable sets are
    subsets), a known success is not explored again, and reaching a known
    failure fails.
    """
    r = memo[state]
    if r != -2:
        return r
    seen = np.zeros(table.shape[0], dtype=np.uint8)
    queue = np.empty(max_states + 1, dtype=np.int32)
    out = np.empty(_SET_CAP, dtype=np.int32)
    cur = np.empty(_SET_CAP, dtype=np.int32)
    nxt = np.empty(_SET_CAP, dtype=np.int32)
    queue[0] = state
    seen[state] = 1
    head = 0
    tail = 1
    r = 1
    while head < tail and r == 1:
        s = queue[head]
        head += 1
        n = _plain_targets(table, s, pcls, out, cur, nxt)
        if n == -(1 << 30):
            r = -1
            break
        if n < 0:
            if need_live:
                r = 0
                break
            n = -n - 1
        for m in range(n):
            t = out[m]
            if seen[t] != 0:
                continue
            if (use_blocked and blocked[t]) or memo[t] == 0:
                r = 0
                break
            seen[t] = 1
            if memo[t] == 1:
                continue  # everything it reaches is known to be fine
            if tail > max_states:
                r = -1
                break
            queue[tail] = t
            tail += 1
    if r == 1:
        for i in range(tail):
            memo[queue[i]] = 1
    else:
        memo[state] = r
    return r


#: plain_budget_many's answers when the slice does not apply, and for a closure (any length)
PLAIN_NONE = -3
PLAIN_CLOSURE = -4


@njit(cache=True, nogil=True)
def _view(flat, off, n_states, ncols, i):
    return flat[off[i]:off[i] + n_states[i] * ncols].reshape((n_states[i], ncols))


@njit(cache=True, nogil=True)
def _chain_outcome(flat, off, n_states, ncols, soff, byte_class, pcls, bflat, boff, use_blocked, memo, t, s):
    """What plain text does to state ``s`` of table ``t`` alone, memoised in
    ``memo[soff[t] + s]`` as ``4 * step + kind``: after ``step`` one-successor
    steps every plain character dies (kind 0), the chain loops (1), plain
    characters disagree (2, a closure candidate) or reach a blocked state (3).
    Following the chain fills the memo of every state on it, so the counter
    states of a ``maxLength`` string cost one step each, not one chain each."""
    base = soff[t]
    m = memo[base + s]
    if m >= 0:
        return m
    nst = n_states[t]
    tab = _view(flat, off, n_states, ncols, t)
    path = np.empty(64, dtype=np.int64)  # grown on demand: a chain is usually short
    n = 0
    cur = s
    cyc = False
    while True:
        m = memo[base + cur]
        if m >= 0:
            r = m
            break
        if n >= nst:  # more steps than states: a cycle (plain text of some lengths only)
            r = 1
            cyc = True
            break
        nx = plain_successor(tab, byte_class, cur, pcls)
        if nx == -2:
            r = 2
        elif nx < 0:
            r = 0
        elif use_blocked and bflat[boff[t] + nx] != 0:
            r = 3
        elif nx == cur:
            r = 1
        else:
            if n == path.shape[0]:
                grown = np.empty(2 * n, dtype=np.int64)
                grown[:n] = path
                path = grown
            path[n] = cur
            n += 1
            cur = nx
            continue
        break
    if not cyc:
        memo[base + cur] = r
    for i in range(n - 1, -1, -1):
        r += 4
        memo[base + path[i]] = r
    return memo[base + s]


@njit(cache=True, nogil=True)
def _reach_memo(flat, off, n_states, ncols, byte_class, pcls, bflat, boff, use_blocked, max_reach, soff, reach, t, s,
                need_live):
    """:func:`plain_reach` of state ``s`` of table ``t``, memoised in row
    ``need_live`` of ``reach`` (at ``soff[t] + s``): the search is asked again for
    every lexer configuration that holds a state (5-30 us each, more on counters
    such as ``[a-f]{40}``)."""
    lo = soff[t]
    row = 1 if need_live else 0
    got = reach[row, lo + s]
    if got != -2:  # answered before: read it without building the table views (600 ns a call)
        return got
    memo = reach[row, lo:lo + n_states[t]]
    return plain_reach(_view(flat, off, n_states, ncols, t), byte_class, s, pcls,
                       bflat[boff[t]:boff[t] + n_states[t]], use_blocked, need_live, max_reach, memo)


#: :func:`_union_live`: plain characters explored, and distinct configurations per step, before giving up
UNION_DEPTH = 4
UNION_WIDTH = 64


@njit(cache=True, nogil=True)
def _held(flat, off, n_states, ncols, byte_class, pcls, bflat, boff, max_reach, soff, reach, tabs, js, ss, n):
    """Whether one of the ``n`` components ``(js[q], ss[q])`` is live on every plain text alone."""
    for q in range(n):
        t = tabs[js[q]]
        r = reach[1, soff[t] + ss[q]]  # memoised: read here, as calls with a dozen arrays cost 400 ns
        if r == -2:
            r = _reach_memo(flat, off, n_states, ncols, byte_class, pcls, bflat, boff, False, max_reach, soff, reach,
                            t, ss[q], True)
        if r == 1:
            return True
    return False


@njit(cache=True, nogil=True)
def _union_live(flat, off, n_states, ncols, byte_class, pcls, bflat, boff, max_reach, soff, reach, tabs, states):
    """Whether the components together stay live on every plain text, though
    none does alone: any key but the declared names, split into one terminal
    per first character, or declared names beside such a key. Every plain text
    of at most ``UNION_DEPTH`` characters must lead to a configuration holding
    a component that is live on every plain text (:func:`plain_reach`), with
    at most ``UNION_WIDTH`` distinct configurations per length that hold none;
    1 or 0.

    Plain characters are enumerated as class paths through each UTF-8 shape
    (:func:`plain_classes`): every path is some code point's, so the
    configurations are exactly those code points reach. Configurations are
    kept sparse (the live components only, in order): at a key's start some
    sixty first-character terminals are live and one character later one or
    two, so stepping dense rows cost 700 us on Snowplow's keys."""
    m = tabs.shape[0]
    cur_j = np.empty((UNION_WIDTH, m), dtype=np.int64)
    cur_s = np.empty((UNION_WIDTH, m), dtype=np.int64)
    cur_n = np.zeros(UNION_WIDTH, dtype=np.int64)
    nxt_j = np.empty((UNION_WIDTH, m), dtype=np.int64)
    nxt_s = np.empty((UNION_WIDTH, m), dtype=np.int64)
    nxt_n = np.zeros(UNION_WIDTH, dtype=np.int64)
    lv_j = np.empty((5, m), dtype=np.int64)  # live components after each byte of a class path
    lv_s = np.empty((5, m), dtype=np.int64)
    lv_n = np.zeros(5, dtype=np.int64)
    digits = np.zeros(4, dtype=np.int64)
    n0 = 0
    for j in range(m):
        if states[j] >= 0:
            cur_j[0, n0] = j
            cur_s[0, n0] = states[j]
            n0 += 1
    cur_n[0] = n0
    if n0 == 0:
        return 0
    if _held(flat, off, n_states, ncols, byte_class, pcls, bflat, boff, max_reach, soff, reach, tabs,
             cur_j[0], cur_s[0], n0):
        return 1
    n_cur = 1
    for depth in range(UNION_DEPTH):  # every kept configuration holds no live component
        n_nxt = 0
        for i in range(n_cur):
            ni = cur_n[i]
            for q in range(ni):
                lv_j[0, q] = cur_j[i, q]
                lv_s[0, q] = cur_s[i, q]
            lv_n[0] = ni
            for r in range(pcls.shape[0]):
                steps = 0
                while steps < 4 and pcls[r, steps, 0] > 0:
                    steps += 1
                if steps == 0:
                    continue
                # class paths depth first: a prefix's live components are stepped once for all its
                # continuations (after a multi-byte lead, the ASCII first-character terminals are gone)
                k = 0
                digits[0] = 0
                while k >= 0:
                    if digits[k] == pcls[r, k, 0]:
                        k -= 1
                        if k >= 0:
                            digits[k] += 1
                        continue
                    g = pcls[r, k, 1 + digits[k]]
                    cnt = 0
                    for q in range(lv_n[k]):
                        j = lv_j[k, q]
                        s = flat[off[tabs[j]] + lv_s[k, q] * ncols + g]
                        if s >= 0:
                            lv_j[k + 1, cnt] = j
                            lv_s[k + 1, cnt] = s
                            cnt += 1
                    if cnt == 0:
                        return 0  # the prefix of some plain character that every component rejects
                    lv_n[k + 1] = cnt
                    if k + 1 < steps:
                        k += 1
                        digits[k] = 0
                        continue
                    digits[k] += 1
                    row_j = lv_j[steps]
                    row_s = lv_s[steps]
                    held = False
                    for q in range(cnt):  # inline: a call with a dozen array arguments costs 250 ns
                        t = tabs[row_j[q]]
                        h = reach[1, soff[t] + row_s[q]]
                        if h == -2:
                            h = _reach_memo(flat, off, n_states, ncols, byte_class, pcls, bflat, boff, False,
                                            max_reach, soff, reach, t, row_s[q], True)
                        if h == 1:
                            held = True
                            break
                    if held:
                        continue
                    if depth + 1 == UNION_DEPTH:
                        return 0  # a text of UNION_DEPTH characters with no live component
                    known = False
                    for q in range(n_nxt):
                        if nxt_n[q] != cnt:
                            continue
                        same = True
                        for e in range(cnt):
                            if nxt_j[q, e] != row_j[e] or nxt_s[q, e] != row_s[e]:
                                same = False
                                break
                        if same:
                            known = True
                            break
                    if not known:
                        if n_nxt == UNION_WIDTH:
                            return 0
                        nxt_j[n_nxt, :cnt] = row_j[:cnt]
                        nxt_s[n_nxt, :cnt] = row_s[:cnt]
                        nxt_n[n_nxt] = cnt
                        n_nxt += 1
        if n_nxt == 0:
            return 1
        cur_j, nxt_j = nxt_j, cur_j
        cur_s, nxt_s = nxt_s, cur_s
        cur_n, nxt_n = nxt_n, cur_n
        n_cur = n_nxt
    return 1


@njit(cache=True, nogil=True)
def plain_budget_many(flat, off, n_states, ncols, byte_class, tabs, states, bflat, boff, use_blocked, pcls,
                      max_chars, max_reach, soff, memo, reach):
    """:meth:`constrain.tokens.slices.PlainTables.budget` of automata moving side by side.

    Component ``j`` is state ``states[j]`` of table ``tabs[j]``, stored
    row-major at ``flat[off[t]:]`` with ``n_states[t]`` rows of ``ncols``
    classes (one ``byte_class`` for all); its blocked flags are
    ``bflat[boff[t] + state]`` when ``use_blocked``. Returns a chain's budget
    (>= 0, or -1 for any number of characters), ``PLAIN_CLOSURE`` (any number,
    not a chain) or ``PLAIN_NONE``. Each component's chain comes from
    :func:`_chain_outcome` (``memo``, per state of ``soff``'s layout); stepping
    them side by side ends at the first event. With no disagreement and no
    blocked state within ``max_chars`` steps, the budget is the last death (-1
    when some chain loops or outlasts ``max_chars``). Otherwise it is a closure
    when some component, or failing that the components together
    (:func:`_union_live`), stay live on every plain text: every plain token is
    then allowed, and a lexeme ending on the way can only add continuations, so
    blocked states do not matter (the searches are memoised in ``reach``).
    """
    m = states.shape[0]
    last = 0
    endless = False
    closure = False
    blocked_hit = False
    for j in range(m):
        r = memo[soff[tabs[j]] + states[j]]  # read inline when known: calls cost 250 ns each
        if r < 0:
            r = _chain_outcome(flat, off, n_states, ncols, soff, byte_class, pcls, bflat, boff, use_blocked, memo,
                               tabs[j], states[j])
        kind = r & 3
        step = r >> 2
        if kind == 1 or step > max_chars:
            endless = True
        elif kind == 0:
            last = max(last, step)
        elif kind == 2:
            closure = True
        else:
            blocked_hit = True
    if not closure and not blocked_hit:
        return -1 if endless else last
    for j in range(m):
        h = reach[1, soff[tabs[j]] + states[j]]
        if h == -2:
            h = _reach_memo(flat, off, n_states, ncols, byte_class, pcls, bflat, boff, False, max_reach, soff,
                            reach, tabs[j], states[j], True)
        if h == 1:
            return PLAIN_CLOSURE
    if m > 1 and _union_live(flat, off, n_states, ncols, byte_class, pcls, bflat, boff, max_reach, soff, reach,
                             tabs, states) == 1:
        return PLAIN_CLOSURE
    return PLAIN_NONE


def union_live_py(views, byte_class, states, max_reach):
    """Reference twin of :func:`_union_live`: configurations stepped over every
    plain code point at once (vectorised), deduplicated per length."""
    mat, lens = _plain_code_point_bytes()
    cls = np.asarray(byte_class)
    n_cp = len(lens)

    def live(j, s):
        return plain_reach_py(views[j], byte_class, s, None, None, False, True, max_reach) == 1

    level = {tuple(int(s) for s in states)}
    for depth in range(UNION_DEPTH + 1):
        nxt = set()
        for cfg in level:
            if any(s >= 0 and live(j, s) for j, s in enumerate(cfg)):
                continue
            if depth == UNION_DEPTH:
                return 0
            cols = []
            for j, s in enumerate(cfg):
                v = np.full(n_cp, s, dtype=np.int64)
                for k in range(4):
                    go = (lens > k) & (v >= 0)
                    v[go] = views[j][v[go], cls[mat[go, k]]]
                cols.append(np.maximum(v, -1))
            rows = np.unique(np.stack(cols, axis=1), axis=0)
            if (rows < 0).all(axis=1).any():
                return 0
            nxt.update(r for r in map(tuple, rows.tolist()) if not any(s >= 0 and live(j, s) for j, s in enumerate(r)))
        if len(nxt) > UNION_WIDTH:
            return 0
        if not nxt:
            return 1
        level = nxt
    return 1


def plain_budget_many_py(flat, off, n_states, ncols, byte_class, tabs, states, bflat, boff, use_blocked, pcls,
                         max_chars, max_reach, soff=None, memo=None, reach=None):
    """Reference twin of :func:`plain_budget_many`: the components stepped side by
    side one plain character at a time (over the code-point twins), no memo."""
    views = [np.asarray(flat[off[t]:off[t] + n_states[t] * ncols]).reshape(n_states[t], ncols) for t in tabs]
    blocked = [np.asarray(bflat[boff[t]:boff[t] + n_states[t]]) for t in tabs]
    live = [(j, int(s)) for j, s in enumerate(states)]
    chain = True
    for k in range(max_chars + 1):
        nxt = []
        for j, s in live:
            t = plain_successor_py(views[j], byte_class, s, pcls)
            if t == -2 or (t >= 0 and use_blocked and blocked[j][t]):
                chain = False
                break
            if t >= 0:
                nxt.append((j, t))
        if not chain:
            break
        if not nxt:
            return k
        if nxt == live:
            return -1
        live = nxt
    if chain:
        return -1
    for j, s in enumerate(states):
        if plain_reach_py(views[j], byte_class, s, pcls, None, False, True, max_reach) == 1:
            return PLAIN_CLOSURE
    if len(states) > 1 and union_live_py(views, byte_class, states, max_reach) == 1:
        return PLAIN_CLOSURE
    return PLAIN_NONE


_PLAIN_BYTES: list = []


def _plain_code_point_bytes() -> tuple[np.ndarray, np.ndarray]:
    """UTF-8 of every plain code point: (bytes padded to 4 columns, lengths); built once."""
    if not _PLAIN_BYTES:
        cps = [cp for cp in range(0x20, 0x110000) if cp not in (0x22, 0x5C) and not 0xD800 <= cp <= 0xDFFF]
        enc = [chr(cp).encode("utf-8") for cp in cps]
        mat = np.zeros((len(enc), 4), dtype=np.int64)
        lens = np.fromiter((len(e) for e in enc), dtype=np.int64, count=len(enc))
        for k in range(4):
            mat[:, k] = [e[k] if len(e) > k else 0 for e in enc]
        _PLAIN_BYTES.append((mat, lens))
    return _PLAIN_BYTES[0]


def plain_targets_py(table, byte_class, state) -> tuple[set, bool]:
    """Reference for the kernels: (states plain characters lead to, whether some are rejected),
    reading every plain code point's bytes through the table (vectorised over code points)."""
    mat, lens = _plain_code_point_bytes()
    table = np.asarray(table)
    cls = np.asarray(byte_class)
    s = np.full(len(lens), state, dtype=np.int64)
    for k in range(4):
        go = (lens > k) & (s >= 0)
        s[go] = table[s[go], cls[mat[go, k]]]
    died = bool((s < 0).any())
    return set(s[s >= 0].tolist()), died


def plain_successor_py(table, byte_class, state, pcls):
    """Reference twin of :func:`plain_successor`."""
    targets, died = plain_targets_py(table, byte_class, state)
    if not targets:
        return -1
    if died or len(targets) > 1:
        return -2
    return targets.pop()


def plain_reach_py(table, byte_class, state, pcls, blocked, use_blocked, need_live, max_states, memo=None):
    """Reference twin of :func:`plain_reach` (no memo)."""
    seen = {state}
    queue = [state]
    while queue:
        s = queue.pop()
        targets, died = plain_targets_py(table, byte_class, s)
        if died and need_live:
            return 0
        for t in targets:
            if t in seen:
                continue
            if use_blocked and blocked[t]:
                return 0
            if len(seen) > max_states:
                return -1
            seen.add(t)
            queue.append(t)
    return 1
