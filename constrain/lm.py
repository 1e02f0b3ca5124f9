"""The language-model interface the samplers talk to.

A :class:`LanguageModel` maps token-id *contexts* (the tokens generated so far, after a prompt
the model is bound to) to next-token log-probabilities, many contexts per call::

    logp = lm.next_logprobs([(), (17,), (17, 4)])   # torch.Tensor [3, lm.vocab.size]

Two implementations:

* :class:`TableLM` - explicit next-token distributions over a (tiny) vocabulary, for tests and
  for checking samplers against exact enumeration.
* :class:`HFLM` - a transformers causal LM (a :class:`constrain.Model`) bound to a prompt, with a
  prefix cache of KV states: the prompt is encoded once, and a context that extends a cached one
  (typically the previous step of the same sequence or particle) only runs the new tokens. Contexts
  of equal length are run as one batch with their caches stacked.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

__all__ = ["LanguageModel", "TableLM", "HFLM"]

Context = tuple[int, ...]


class LanguageModel(ABC):
    """Next-token log-probabilities for token-id contexts (batched)."""

    vocab: Any

    @property
    def eos_ids(self) -> frozenset[int]:
        return self.vocab.eos_ids

    @property
    def device(self) -> torch.device:
        """Where :meth:`next_logprobs` returns its tensor."""
        return torch.device("cpu")

    @abstractmethod
    def next_logprobs(self, contexts: Sequence[Sequence[int]]) -> torch.Tensor:
        """``[len(contexts), vocab.size]`` float32 log-probabilities of the next token."""

    def cache_key(self) -> str | None:
        """A string identifying this distribution (prompt included), or None when unknown.

        Used to check that a saved :class:`~constrain.samplers.ASAp` trie is loaded for the
        same model and prompt.
        """
        return None

    def score(self, token_ids: Sequence[int]) -> float:
        """``sum_i log P(token_ids[i] | token_ids[:i])`` (include an EOS id to score the end)."""
        ids = [int(t) for t in token_ids]
        if not ids:
            return 0.0
        logp = self.next_logprobs([tuple(ids[:i]) for i in range(len(ids))])
        idx = torch.tensor(ids, device=logp.device).unsqueeze(1)
        return float(logp.gather(1, idx).double().sum())


# ---------------------------------------------------------------------------------------------


class TableLM(LanguageModel):
    """A language model given by explicit next-token distributions.

    ``table`` maps a context (tuple of token ids) to that context's next-token distribution, or
    is a callable ``context -> distribution``. A distribution is a sequence of ``vocab.size``
    non-negative numbers or a mapping ``{token_id: probability}`` (missing ids get 0); it is
    normalised. ``default`` is used for contexts the dict does not list (without it they raise
    ``KeyError``). Rows are memoised, so a callable is called once per context.
    """

    def __init__(
        self,
        vocab: Any,
        table: Mapping[Context, Any] | Callable[[Context], Any],
        default: Any = None,
        *,
        name: str = "table",
    ) -> None:
        self.vocab = vocab
        self._table = table
        self._default = None if default is None else self._to_logprobs(default, "default")
        self._rows: dict[Context, torch.Tensor] = {}
        self.name = name
        self.n_calls = 0

    def __repr__(self) -> str:
        return f"TableLM({self.name!r}, vocab_size={self.vocab.size})"

    def _to_logprobs(self, dist: Any, where: Any) -> torch.Tensor:
        size = self.vocab.size
        if isinstance(dist, Mapping):
            arr = np.zeros(size, dtype=np.float64)
            for t, p in dist.items():
                t = int(t)
                if not 0 <= t < size:
                    raise ValueError(f"TableLM: token id {t} out of range in the distribution for {where!r}")
                arr[t] = float(p)
        else:
            arr = np.asarray(dist, dtype=np.float64).reshape(-1)
            if arr.shape[0] != size:
                raise ValueError(
                    f"TableLM: the distribution for {where!r} has {arr.shape[0]} entries, expected {size}"
                )
        if not np.all(np.isfinite(arr)) or np.any(arr < 0) or arr.sum() <= 0:
            raise ValueError(f"TableLM: the distribution for {where!r} must be finite, >= 0 and not all zero")
        with np.errstate(divide="ignore"):
            logp = np.log(arr / arr.sum())
        return torch.from_numpy(logp.astype(np.float32))

    def _row(self, ctx: Context) -> torch.Tensor:
        row = self._rows.get(ctx)
        if row is not None:
            return row
        table = self._table
        if callable(table) and not isinstance(table, Mapping):
            row = self._to_logprobs(table(ctx), ctx)
        elif ctx in table:
            row = self._to_logprobs(table[ctx], ctx)
        elif self._default is not None:
            row = self._default
        else:
            raise KeyError(f"TableLM has no next-token distribution for context {ctx!r} (and no default)")
        self._rows[ctx] = row
        return row

    def next_logprobs(self, contexts: Sequence[Sequence[int]]) -> torch.Tensor:
        self.n_calls += 1
        if not contexts:
            return torch.empty((0, self.vocab.size), dtype=torch.float32)
        return torch.stack([self._row(tuple(int(t) for t in c)) for c in contexts])

    def cache_key(self) -> str | None:
        return f"table:{self.name}"


# ---------------------------------------------------------------------------------------------


class _Entry:
    """KV state after ``prompt + context`` (one row, per layer (keys, values)) and the next-token log-probs."""

    __slots__ = ("kv", "logp", "length", "nbytes")

    def __init__(self, kv: list[tuple[torch.Tensor, torch.Tensor]] | None, logp: torch.Tensor, length: int) -> None:
        self.kv = kv
        self.logp = logp
        self.length = length
        self.nbytes = logp.numel() * logp.element_size() + (
            0 if kv is None else sum(k.numel() * k.element_size() + v.numel() * v.element_size() for k, v in kv)
        )


def _cache_tensors(cache: Any) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
    """Per-layer (keys, values) of a transformers cache, or None if it is not a plain dynamic cache."""
    layers = getattr(cache, "layers", None)
    if layers is not None:
        out = []
        for layer in layers:
            if type(layer).__name__ != "DynamicLayer" or getattr(layer, "keys", None) is None:
                return None
            out.append((layer.keys, layer.values))
        return out
    keys = getattr(cache, "key_cache", None)
    if keys is not None:
        return list(zip(keys, cache.value_cache))
    if isinstance(cache, (tuple, list)):
        return [(kv[0], kv[1]) for kv in cache]
    return None


def _make_cache(pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> Any:
    """A dynamic cache holding ``pairs`` *without copying them*.

    ``DynamicCache(ddp_cache_data=...)`` fills each layer through ``update``, i.e. a
    ``torch.cat`` onto an empty tensor: a full copy of the KV state before the forward pass makes
    its own (unavoidable) copy to append the new tokens. With a 2,000-token prompt that first
    copy was half the time of a one-token step on CPU. The forward pass never writes into the
    tensors it is given (``update`` concatenates), so sharing them with the cache entry is safe.
    """
    from transformers import DynamicCache

    try:
        from transformers.cache_utils import DynamicLayer

        cache = DynamicCache()
        if isinstance(getattr(cache, "layers", None), list) and not cache.layers:
            for k, v in pairs:
                layer = DynamicLayer()
                layer.lazy_initialization(k, v)
                layer.keys, layer.values = k, v
                cache.layers.append(layer)
            return cache
    except (ImportError, TypeError, AttributeError):  # pragma: no cover - other transformers versions
        pass
    try:
        return DynamicCache(ddp_cache_data=pairs)
    except TypeError:  # older transformers
        return DynamicCache.from_legacy_cache(tuple(pairs))


class HFLM(LanguageModel):
    """A transformers causal LM bound to a prompt, with a prefix cache of KV states.

    ``model`` is a :class:`constrain.Model` (anything with ``.hf``, ``.vocab``, ``.device``);
    ``prompt_ids`` the token ids of the (already templated) prompt, at least one.

    Caching: the prompt's KV state is computed once and kept. Every context computed is cached
    (its KV state and next-token log-probs, on the model's device) in an LRU of at most
    ``cache_size`` entries and ``cache_bytes`` bytes (``None``: no byte bound); a new context runs only the tokens after its longest cached prefix. Contexts asked
    in one call that extend cached prefixes of the same length by the same number of tokens run
    as one batch (caches stacked along the batch dimension). Models whose cache is not a plain
    dynamic KV cache (sliding windows, recurrent layers) fall back to running ``prompt + context``
    from scratch. Memory: each entry holds the KV of its whole context (prompt included: about
    46 KB per token for SmolLM2-135M in float32, so ~100 MB per entry with a 2,000-token prompt),
    hence the byte bound; the cache always keeps the contexts of the current call, even above it.
    ``cached_bytes`` reports the current total.
    """

    def __init__(
        self,
        model: Any,
        prompt_ids: Sequence[int],
        *,
        cache_size: int = 128,
        cache_bytes: int | None = 1 << 30,
        max_batch: int = 64,
    ) -> None:
        self.model = model
        self.hf = model.hf
        self.vocab = model.vocab
        self._device = torch.device(model.device)
        self.prompt_ids: Context = tuple(int(t) for t in prompt_ids)
        if not self.prompt_ids:
            raise ValueError("HFLM needs at least one prompt token (e.g. BOS) to condition on")
        if cache_size < 1 or max_batch < 1:
            raise ValueError("cache_size and max_batch must be >= 1")
        if cache_bytes is not None and cache_bytes < 1:
            raise ValueError("cache_bytes must be >= 1 (or None for no byte bound)")
        self.cache_size = int(cache_size)
        self.cache_bytes = None if cache_bytes is None else int(cache_bytes)
        self._nbytes = 0
        self.max_batch = int(max_batch)
        self._cache: OrderedDict[Context, _Entry] = OrderedDict()
        self._root: _Entry | None = None
        self._kv_reuse = True
        self._width = self.vocab.size
        self.n_forward = 0
        self.n_forward_tokens = 0
        self._fwd_kwargs: dict[str, Any] = {}
        try:
            import inspect

            if "logits_to_keep" in inspect.signature(self.hf.forward).parameters:
                self._fwd_kwargs["logits_to_keep"] = 1
        except (TypeError, ValueError):  # pragma: no cover
            pass

    @classmethod
    def from_prompt(
        cls, model: Any, prompt: Any, *, chat: bool = True, system: str | None = None, **kwargs: Any
    ) -> "HFLM":
        """Bind ``model`` to a text prompt (or chat messages), through its chat template when ``chat``."""
        return cls(model, encode_prompt(model, prompt, chat=chat, system=system), **kwargs)

    def __repr__(self) -> str:
        name = getattr(self.model, "name", type(self.hf).__name__)
        return f"HFLM({name!r}, prompt_tokens={len(self.prompt_ids)}, device={str(self._device)!r})"

    @property
    def device(self) -> torch.device:
        return self._device

    def cache_key(self) -> str | None:
        name = getattr(self.model, "name", type(self.hf).__name__)
        h = hashlib.sha256(np.asarray(self.prompt_ids, dtype=np.int64).tobytes()).hexdigest()[:16]
        return f"hf:{name}:{self.vocab.fingerprint[:16]}:{h}"

    def clear_cache(self) -> None:
        """Drop every cached context except the prompt."""
        self._cache.clear()
        self._nbytes = 0

    @property
    def cached_bytes(self) -> int:
        """Bytes held by the cached contexts (KV states and log-probs; the prompt's not counted)."""
        return self._nbytes

    def _store(self, ctx: Context, entry: _Entry) -> None:
        old = self._cache.pop(ctx, None)
        if old is not None:
            self._nbytes -= old.nbytes
        self._cache[ctx] = entry
        self._nbytes += entry.nbytes

    def _evict(self, current: dict[Context, Any]) -> None:
        """Drop least recently used entries above ``cache_size`` / ``cache_bytes``, never those of
        the current call (they were all moved to the end of the LRU order)."""
        protected = sum(1 for c in current if c in self._cache)
        limit = self.cache_bytes
        while len(self._cache) > protected and (
            len(self._cache) > self.cache_size or (limit is not None and self._nbytes > limit)
        ):
            _, old = self._cache.popitem(last=False)
            self._nbytes -= old.nbytes

    @property
    def num_cached(self) -> int:
        return len(self._cache)

    # -- forward passes ---------------------------------------------------------------------

    def _logprobs(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(logits[:, -1, : self._width].float(), dim=-1)

    def _forward(self, input_ids: torch.Tensor, pairs: list[tuple[torch.Tensor, torch.Tensor]] | None) -> tuple[torch.Tensor, Any]:
        self.n_forward += 1
        self.n_forward_tokens += int(input_ids.numel())
        kwargs = dict(self._fwd_kwargs)
        if pairs is not None:
            kwargs["past_key_values"] = _make_cache(pairs)
        out = self.hf(input_ids=input_ids, use_cache=self._kv_reuse, **kwargs)
        return self._logprobs(out.logits), (out.past_key_values if self._kv_reuse else None)

    def _root_entry(self) -> _Entry:
        if self._root is None:
            ids = torch.tensor([self.prompt_ids], dtype=torch.long, device=self._device)
            logp, cache = self._forward(ids, None)
            kv = _cache_tensors(cache) if cache is not None else None
            if kv is None:
                self._kv_reuse = False
            self._root = _Entry(kv, logp[0], len(self.prompt_ids))
        return self._root

    def _lookup(self, ctx: Context) -> _Entry | None:
        if not ctx:
            return self._root_entry()
        e = self._cache.get(ctx)
        if e is not None:
            self._cache.move_to_end(ctx)
        return e

    def _base_for(self, ctx: Context) -> tuple[int, _Entry]:
        """Longest cached proper prefix of ``ctx`` (the prompt at worst): (its length, entry)."""
        for k in range(len(ctx) - 1, 0, -1):
            e = self._cache.get(ctx[:k])
            if e is not None and e.kv is not None:
                return k, e
        return 0, self._root_entry()

    def next_logprobs(self, contexts: Sequence[Sequence[int]]) -> torch.Tensor:
        ctxs = [tuple(int(t) for t in c) for c in contexts]
        if not ctxs:
            return torch.empty((0, self._width), dtype=torch.float32, device=self._device)
        got: dict[Context, torch.Tensor] = {}
        with torch.inference_mode():
            root = self._root_entry()
            missing: list[Context] = []
            for c in dict.fromkeys(ctxs):
                e = self._lookup(c)
                if e is not None:
                    got[c] = e.logp
                else:
                    missing.append(c)
            if missing and not self._kv_reuse:
                self._run_uncached(missing, got)
            elif missing:
                groups: dict[tuple[int, int], list[tuple[Context, _Entry]]] = {}
                for c in missing:
                    k, base = self._base_for(c)
                    groups.setdefault((k, len(c) - k), []).append((c, base))
                for (k, _), items in groups.items():
                    for i in range(0, len(items), self.max_batch):
                        self._run_group(items[i : i + self.max_batch], k, got)
            self._evict(got)
            del root
            return torch.stack([got[c] for c in ctxs])

    def _run_group(self, items: list[tuple[Context, _Entry]], k: int, got: dict[Context, torch.Tensor]) -> None:
        new = torch.tensor([c[k:] for c, _ in items], dtype=torch.long, device=self._device)
        if len(items) == 1:
            pairs = items[0][1].kv
        else:
            n_layers = len(items[0][1].kv)
            pairs = [
                (torch.cat([b.kv[l][0] for _, b in items], 0), torch.cat([b.kv[l][1] for _, b in items], 0))
                for l in range(n_layers)
            ]
        logp, cache = self._forward(new, pairs)
        kv = _cache_tensors(cache)
        for i, (c, base) in enumerate(items):
            row_kv = None if kv is None else [(kk[i : i + 1], vv[i : i + 1]) for kk, vv in kv]
            entry = _Entry(row_kv, logp[i], base.length + len(c) - k)
            self._store(c, entry)
            got[c] = entry.logp

    def _run_uncached(self, missing: list[Context], got: dict[Context, torch.Tensor]) -> None:
        by_len: dict[int, list[Context]] = {}
        for c in missing:
            by_len.setdefault(len(c), []).append(c)
        for _, cs in by_len.items():
            for i in range(0, len(cs), self.max_batch):
                chunk = cs[i : i + self.max_batch]
                ids = torch.tensor([self.prompt_ids + c for c in chunk], dtype=torch.long, device=self._device)
                logp, _ = self._forward(ids, None)
                for j, c in enumerate(chunk):
                    self._store(c, _Entry(None, logp[j], len(self.prompt_ids) + len(c)))
                    got[c] = logp[j]


def encode_prompt(model: Any, prompt: Any, *, chat: bool = True, system: str | None = None) -> list[int]:
    """Token ids of ``prompt`` for ``model``: through the chat template when ``chat``.

    ``prompt`` may also be a sequence of token ids, used as is. An empty raw prompt becomes the
    BOS (else EOS) token so there is something to condition on.
    """
    tok = model.tokenizer
    if isinstance(prompt, (list, tuple)) and prompt and all(isinstance(t, (int, np.integer)) for t in prompt):
        return [int(t) for t in prompt]
    if prompt is None:
        prompt = ""
    if chat:
        text = model.apply_chat_template(prompt, system=system)
        ids = tok(text, add_special_tokens=False)["input_ids"]
    else:
        if not isinstance(prompt, str):
            prompt = "\n".join(str(m.get("content", "")) for m in prompt)
        if system:
            prompt = f"{system}\n\n{prompt}"
        ids = tok(prompt)["input_ids"] if prompt else []
    if not ids:
        start = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
        ids = [start if start is not None else 0]
    return list(ids)

