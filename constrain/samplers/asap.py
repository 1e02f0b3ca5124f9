"""Grammar-aligned sampling: ASAp (Park, Wang, Berg-Kirkpatrick, Polikarpova, D'Antoni, NeurIPS 2024).

The target is ``P_LM(x | x in L)``. Its exact next-token weight at prefix ``w`` is
``P(t | w) * EFG(w t)``, where the *expected future grammaticality* ``EFG(w)`` is the LM
probability that a continuation of ``w`` ends in ``L``. ASAp keeps a trie of the prefixes it
has sampled. Each node stores, for every token the constraint allows there, the LM probability
``P(t | w)`` and an estimate ``EFG~(w t)``: 1 for children never visited (an over-approximation),
exactly 1 for EOS (``w`` is complete), masked tokens are absent (weight 0). A sample walks down,
drawing ``t`` proportionally to ``P(t | w) EFG~(w t)``; afterwards the path is updated bottom-up,
``EFG~(w) = sum_t P(t | w) EFG~(w t)``. Estimates only decrease and converge to ``EFG``, so the
sampling distribution converges to the target (exactly equal once every live prefix has been
explored).

The trie lives in an :class:`ASAp` object bound to one LM (with its prompt) and one constraint:
call :meth:`ASAp.sample` repeatedly to keep refining, :meth:`ASAp.save`/:meth:`ASAp.load` to
persist it. Memory is bounded by ``max_nodes``; see :class:`ASAp` for the eviction policy.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..errors import ConstraintError, DeadEndError, VocabularyError
from .result import SampleResult, TrieFullError, check_vocab, make_result, seed_or_random

__all__ = ["ASAp"]

_NODE_OVERHEAD = 240  # bytes per node besides its arrays: object, slots, dict entry (approximate)
_FORMAT = "constrain.asap/1"


class _Node:
    __slots__ = ("ids", "logp", "efg", "children", "parent", "token", "stamp")

    def __init__(self, ids: np.ndarray, logp: np.ndarray, parent: "_Node | None", token: int, stamp: int) -> None:
        self.ids = ids  # int32, sorted: the allowed tokens
        self.logp = logp  # float32: LM log P(t | w) of each allowed token
        self.efg = np.ones(ids.shape[0], dtype=np.float64)  # EFG~(w t) of each allowed token
        self.children: dict[int, _Node] = {}
        self.parent = parent
        self.token = token
        self.stamp = stamp

    def pos(self, token: int) -> int:
        j = int(np.searchsorted(self.ids, token))
        if j >= self.ids.shape[0] or int(self.ids[j]) != token:
            return -1
        return j

    def value(self) -> float:
        """``sum_t P(t | w) EFG~(w t)``."""
        if self.ids.shape[0] == 0:
            return 0.0
        return float(np.dot(np.exp(self.logp), self.efg))

    def nbytes(self) -> int:
        return self.ids.nbytes + self.logp.nbytes + self.efg.nbytes + _NODE_OVERHEAD


class ASAp:
    """An ASAp trie for one language model (prompt included) and one constraint.

    ``max_nodes`` and ``max_bytes`` bound the trie (each node holds three arrays over the tokens
    allowed at its prefix, 16 bytes per allowed token: with a loose constraint on a 150k
    vocabulary a node can take 2 MB). When a new node would exceed either bound:

    * ``on_full="evict"`` (default): least recently used leaves (not on the path being sampled)
      are dropped, about a tenth of ``max_nodes`` at a time. Their parent keeps the child's
      ``EFG~`` estimate, so nothing learnt about the evicted prefix's total is lost; if it is
      visited again its subtree restarts from the over-approximation 1, and the parent keeps the
      minimum of the old and new estimates (both are upper bounds of the true EFG). Convergence
      still holds; it just needs more samples.
    * ``on_full="error"``: raise :class:`TrieFullError`.

    :attr:`num_nodes` and :attr:`approx_bytes` report the size.
    """

    def __init__(
        self,
        lm: Any,
        constraint: Any,
        *,
        max_nodes: int = 100_000,
        max_bytes: int = 1 << 30,
        on_full: str = "evict",
        seed: int | None = None,
    ) -> None:
        if max_nodes < 1 or max_bytes < 1:
            raise ValueError("max_nodes and max_bytes must be >= 1")
        if on_full not in ("evict", "error"):
            raise ValueError(f"on_full must be 'evict' or 'error', not {on_full!r}")
        check_vocab(lm, constraint)
        self.lm = lm
        self.constraint = constraint
        self.vocab = lm.vocab
        self.max_nodes = int(max_nodes)
        self.max_bytes = int(max_bytes)
        self.on_full = on_full
        self.rng = np.random.default_rng(seed_or_random(seed))
        self._root: _Node | None = None
        self._num_nodes = 0
        self._bytes = 0
        self._clock = 0  # samples drawn (node stamps)
        self.num_samples = 0
        self.num_evicted = 0
        self.lm_calls = 0

    def __repr__(self) -> str:
        return f"<ASAp nodes={self._num_nodes} samples={self.num_samples} efg_root={self.efg_root:.4g}>"

    # -- size -------------------------------------------------------------------------------

    @property
    def num_nodes(self) -> int:
        return self._num_nodes

    @property
    def approx_bytes(self) -> int:
        """Approximate memory held by the trie (arrays plus a per-node overhead)."""
        return self._bytes

    @property
    def efg_root(self) -> float:
        """Current estimate of ``P_LM(x in L)`` (an upper bound; 1 before any sample)."""
        return 1.0 if self._root is None else self._root.value()

    def reset(self) -> None:
        """Forget everything learnt."""
        self._root = None
        self._num_nodes = self._bytes = 0

    # -- nodes ------------------------------------------------------------------------------

    def _expand_data(self, ctx: tuple[int, ...], matcher: Any) -> tuple[np.ndarray, np.ndarray]:
        ids = matcher.allowed_token_ids().astype(np.int32)
        self.lm_calls += 1
        row = self.lm.next_logprobs([ctx])[0]
        if ids.shape[0]:
            logp = row[torch.as_tensor(ids.astype(np.int64), device=row.device)].float().cpu().numpy()
        else:
            logp = np.zeros(0, dtype=np.float32)
        return ids, logp

    def _new_node(self, ctx: tuple[int, ...], matcher: Any, parent: _Node | None, token: int, protect: list[_Node]) -> _Node:
        if self._num_nodes >= self.max_nodes:
            self._make_room(protect)
        ids, logp = self._expand_data(ctx, matcher)
        node = _Node(ids, logp, parent, token, self._clock)
        if self._bytes + node.nbytes() > self.max_bytes:
            self._make_room(protect, need_bytes=node.nbytes())
        self._num_nodes += 1
        self._bytes += node.nbytes()
        return node

    def _make_room(self, protect: list[_Node], need_bytes: int = 0) -> None:
        if self.on_full == "error":
            raise TrieFullError(
                f"the ASAp trie reached max_nodes={self.max_nodes} or max_bytes={self.max_bytes} "
                f"({self._num_nodes} nodes, ~{self._bytes / 1e6:.1f} MB); "
                "raise the bound, call reset(), or use on_full='evict'"
            )
        # evict a tenth of the nodes, or enough bytes to get a tenth under max_bytes
        target = max(1, self.max_nodes // 10) if not need_bytes else 1
        byte_target = self._bytes + need_bytes - (self.max_bytes - self.max_bytes // 10) if need_bytes else 0
        protected = {id(n) for n in protect}
        evicted = freed = 0
        while evicted < target or freed < byte_target:
            leaves = [n for n in self._iter_nodes() if not n.children and n.parent is not None and id(n) not in protected]
            if not leaves:
                break
            leaves.sort(key=lambda n: n.stamp)
            for n in leaves:
                if evicted >= target and freed >= byte_target:
                    break
                del n.parent.children[n.token]  # the parent's efg entry keeps the estimate
                n.parent = None
                self._num_nodes -= 1
                self._bytes -= n.nbytes()
                freed += n.nbytes()
                evicted += 1
        self.num_evicted += evicted
        if evicted == 0 or self._bytes + need_bytes > self.max_bytes:
            raise TrieFullError(
                f"the ASAp trie reached max_nodes={self.max_nodes} or max_bytes={self.max_bytes} and every "
                "node is on the current path; raise the bound (it must hold one output's path)"
            )

    def _iter_nodes(self):
        if self._root is None:
            return
        stack = [self._root]
        while stack:
            n = stack.pop()
            yield n
            stack.extend(n.children.values())

    # -- sampling ---------------------------------------------------------------------------

    def sample(self, n: int = 1, *, max_tokens: int = 256) -> list[SampleResult]:
        """Draw ``n`` samples one after the other, refining the trie after each.

        ``log_weight`` is ``log P_LM(x) - log q(x)`` with ``q`` the proposal the sample was drawn
        from (an importance weight for ``P_LM(x) 1[x in L]``; -inf if cut at ``max_tokens``).
        ``n_checks`` counts ``vocab.size`` per new trie node (one mask computation); revisited
        prefixes cost neither checks nor LM calls.
        """
        if n < 0:
            raise ValueError("n must be >= 0")
        if max_tokens < 0:
            raise ValueError("max_tokens must be >= 0")
        return [self._sample_one(max_tokens) for _ in range(n)]

    def _sample_one(self, max_tokens: int) -> SampleResult:
        vocab = self.vocab
        eos = vocab.eos_ids
        self._clock += 1
        checks = 0
        while True:  # restarts only when a prefix turned out to have EFG 0
            m = self.constraint.matcher()
            if self._root is None:
                self._root = self._new_node((), m, None, -1, [])
                checks += vocab.size
            node = self._root
            node.stamp = self._clock
            path: list[_Node] = [node]
            edges: list[int] = []  # position chosen in each path node (len(path) - 1, or len(path) at EOS)
            tokens: list[int] = []
            logq = logp_sum = 0.0
            finished = dead = False
            while True:
                if len(tokens) >= max_tokens:
                    break
                w = np.exp(node.logp) * node.efg
                total = float(w.sum())
                if not total > 0.0:
                    dead = True
                    break
                cum = np.cumsum(w)
                j = int(np.searchsorted(cum, self.rng.random() * cum[-1], side="right"))
                j = min(j, w.shape[0] - 1)
                while w[j] <= 0.0:  # pragma: no cover - rounding at a zero-weight boundary
                    j -= 1
                t = int(node.ids[j])
                logq += math.log(w[j] / total)
                logp_sum += float(node.logp[j])
                edges.append(j)
                if t in eos:
                    finished = True
                    break
                if not m.accept_token(t):  # pragma: no cover - ids come from the mask
                    raise DeadEndError(f"internal error: token {t} allowed by the mask was refused")
                tokens.append(t)
                child = node.children.get(t)
                if child is None:
                    child = self._new_node(tuple(tokens), m, node, t, path)
                    node.children[t] = child
                    checks += vocab.size
                child.stamp = self._clock
                node = child
                path.append(node)
            self._update(path, edges)
            if dead:
                if self._root.value() <= 0.0:
                    raise DeadEndError(
                        "the language model gives probability 0 to every output the constraint allows "
                        "(or the constraint allows no token)"
                    )
                continue
            break
        self.num_samples += 1
        log_weight = (logp_sum - logq) if finished else -math.inf
        return make_result(
            vocab, tokens, logprob=logp_sum, log_weight=log_weight, n_checks=checks, finished=finished, method="asap"
        )

    def _update(self, path: list[_Node], edges: list[int]) -> None:
        """Bottom-up ``EFG~(w) = sum_t P(t|w) EFG~(w t)`` along the sampled path (never increasing)."""
        value = path[-1].value()
        for i in range(len(path) - 2, -1, -1):
            node, j = path[i], edges[i]
            if value < node.efg[j]:
                node.efg[j] = value
            value = node.value()

    # -- inspection -------------------------------------------------------------------------

    def proposal_logprob(self, token_ids: Sequence[int]) -> float:
        """``log q(x)`` of the complete output ``token_ids`` (then any EOS) under the current trie.

        Does not modify the trie; prefixes it lacks are evaluated on the fly (LM call and mask),
        with the unvisited estimate 1 for their children.
        """
        eos = self.vocab.eos_ids
        m = self.constraint.matcher()
        node = self._root
        ctx: list[int] = []
        logq = 0.0
        for t in list(token_ids) + [None]:
            if node is not None:
                ids, logp, efg = node.ids, node.logp, node.efg
            else:
                ids, logp = self._expand_data(tuple(ctx), m)
                efg = np.ones(ids.shape[0])
            w = np.exp(logp) * efg
            total = float(w.sum())
            if total <= 0:
                return -math.inf
            if t is None:
                sel = np.isin(ids, np.fromiter(eos, dtype=np.int64))
                return logq + math.log(float(w[sel].sum()) / total) if w[sel].sum() > 0 else -math.inf
            j = int(np.searchsorted(ids, t))
            if j >= ids.shape[0] or int(ids[j]) != t or w[j] <= 0:
                return -math.inf
            logq += math.log(w[j] / total)
            if not m.accept_token(int(t)):
                return -math.inf
            ctx.append(int(t))
            node = node.children.get(int(t)) if node is not None else None
        return logq  # pragma: no cover

    # -- persistence ------------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """Write the trie to ``path`` (a numpy ``.npz`` file; no pickle)."""
        nodes: list[_Node] = []
        parent_idx: list[int] = []
        index: dict[int, int] = {}
        if self._root is not None:
            queue = [self._root]
            while queue:
                nxt = []
                for n in queue:
                    index[id(n)] = len(nodes)
                    nodes.append(n)
                    parent_idx.append(-1 if n.parent is None else index[id(n.parent)])
                    nxt.extend(n.children[t] for t in sorted(n.children))
                queue = nxt
        offsets = np.zeros(len(nodes) + 1, dtype=np.int64)
        for i, n in enumerate(nodes):
            offsets[i + 1] = offsets[i] + n.ids.shape[0]
        cat = lambda attr, dt: (  # noqa: E731
            np.concatenate([getattr(n, attr) for n in nodes]).astype(dt) if nodes else np.zeros(0, dtype=dt)
        )
        meta = {
            "format": _FORMAT,
            "vocab": self.vocab.fingerprint,
            "constraint": getattr(self.constraint, "source", None),
            "lm": self.lm.cache_key(),
            "num_samples": self.num_samples,
            "clock": self._clock,
            "max_nodes": self.max_nodes,
            "max_bytes": self.max_bytes,
            "on_full": self.on_full,
        }
        with open(path, "wb") as f:
            np.savez_compressed(
                f,
                meta=np.array(json.dumps(meta)),
                parent=np.asarray(parent_idx, dtype=np.int64),
                token=np.asarray([n.token for n in nodes], dtype=np.int64),
                stamp=np.asarray([n.stamp for n in nodes], dtype=np.int64),
                offsets=offsets,
                ids=cat("ids", np.int32),
                logp=cat("logp", np.float32),
                efg=cat("efg", np.float64),
            )

    @classmethod
    def load(cls, path: str | Path, lm: Any, constraint: Any, *, seed: int | None = None, **kwargs: Any) -> "ASAp":
        """Read a trie written by :meth:`save`, for the same LM (and prompt) and constraint.

        Raises :class:`VocabularyError` / :class:`ConstraintError` when the file was made for
        another vocabulary, constraint (by source text) or LM (by :meth:`LanguageModel.cache_key`).
        ``kwargs`` override ``max_nodes``/``max_bytes``/``on_full``.
        """
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            if meta.get("format") != _FORMAT:
                raise ConstraintError(f"{path} is not an ASAp trie file (format {meta.get('format')!r})")
            if meta["vocab"] != lm.vocab.fingerprint:
                raise VocabularyError(f"the ASAp trie in {path} was built for another vocabulary")
            src = getattr(constraint, "source", None)
            if meta["constraint"] is not None and src is not None and meta["constraint"] != src:
                raise ConstraintError(
                    f"the ASAp trie in {path} was built for constraint {meta['constraint'][:80]!r}, not {src[:80]!r}"
                )
            key = lm.cache_key()
            if meta["lm"] is not None and key is not None and meta["lm"] != key:
                raise ConstraintError(
                    f"the ASAp trie in {path} was built for another model or prompt ({meta['lm']!r} vs {key!r})"
                )
            opts = {"max_nodes": meta["max_nodes"], "max_bytes": meta["max_bytes"], "on_full": meta["on_full"], **kwargs}
            self = cls(lm, constraint, seed=seed, **opts)
            parent, token, stamp, offsets = data["parent"], data["token"], data["stamp"], data["offsets"]
            ids, logp, efg = data["ids"], data["logp"], data["efg"]
            nodes: list[_Node] = []
            for i in range(parent.shape[0]):
                a, b = int(offsets[i]), int(offsets[i + 1])
                p = None if parent[i] < 0 else nodes[int(parent[i])]
                n = _Node(ids[a:b].copy(), logp[a:b].copy(), p, int(token[i]), int(stamp[i]))
                n.efg = efg[a:b].copy()
                if p is not None:
                    p.children[n.token] = n
                nodes.append(n)
            self._root = nodes[0] if nodes else None
            self._num_nodes = len(nodes)
            self._bytes = sum(n.nbytes() for n in nodes)
            self.num_samples = int(meta["num_samples"])
            self._clock = int(meta["clock"])
        if self._num_nodes > self.max_nodes or self._bytes > self.max_bytes:
            raise TrieFullError(
                f"the saved trie ({self._num_nodes} nodes, ~{self._bytes / 1e6:.1f} MB) exceeds "
                f"max_nodes={self.max_nodes} / max_bytes={self.max_bytes}"
            )
        return self

