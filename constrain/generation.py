"""Constrained generation: a KV-cached decoding loop that masks logits on the model's device.

Per step the host does only what it must: the matcher writes the packed bitmask of allowed
tokens into a (pinned) host buffer, the buffer is copied to the device without blocking, the
bits are unpacked and applied to the logits there, the next token is chosen there, and the one
host synchronisation is reading the chosen id back to advance the matcher.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Sequence

from .errors import ConstraintError, DeadEndError, VocabularyError

__all__ = ["GenerationResult", "generate", "get_constraint", "clear_constraint_cache"]


@dataclass
class GenerationResult:
    """One generated output.

    ``token_ids`` are the generated tokens without the final EOS; ``bytes`` their exact output
    bytes and ``text`` those decoded as UTF-8 (invalid sequences replaced, which only happens
    for partial outputs cut in the middle of a character). ``finished`` is True when the
    constraint was completed (``stop_reason == "eos"``); False for ``"max_tokens"``.
    """

    text: str
    bytes: bytes
    token_ids: list[int]
    finished: bool
    stop_reason: str
    n_prompt_tokens: int
    timings: dict[str, float] = field(default_factory=dict)

    def json(self) -> Any:
        """``json.loads`` of the text."""
        return json.loads(self.text)

    def __str__(self) -> str:
        return self.text


# ---------------------------------------------------------------------------------------------
# Constraint resolution with a small LRU per (kind, text, vocabulary fingerprint)

_CACHE_SIZE = 32
_cache: "OrderedDict[tuple[str, str, str], Any]" = OrderedDict()
_cache_lock = threading.Lock()


def clear_constraint_cache() -> None:
    with _cache_lock:
        _cache.clear()


def _compile_regex_fn():
    import constrain

    fn = getattr(constrain, "compile_regex", None)
    if fn is None:
        from .compile import compile_regex as fn
    return fn


def _load_schema(schema: Any) -> Any:
    from .schema import load_schema

    return load_schema(schema)


def _compile_schema(schema: Any, vocab: Any) -> Any:
    from .schema import compile_json_schema

    return compile_json_schema(schema, vocab)


def get_constraint(vocab: Any, *, regex: str | None = None, schema: Any = None, grammar: Any = None, constraint: Any = None) -> Any:
    """The compiled constraint for exactly one of the keyword arguments (cached)."""
    given = [k for k, v in (("regex", regex), ("schema", schema), ("grammar", grammar), ("constraint", constraint)) if v is not None]
    if len(given) != 1:
        raise ConstraintError(
            "give exactly one of regex=, schema=, grammar= or constraint=" + (f" (got {', '.join(given)})" if given else "")
        )
    kind = given[0]
    if kind == "constraint":
        cvocab = getattr(constraint, "vocab", None)
        if cvocab is not None and cvocab is not vocab and getattr(cvocab, "fingerprint", None) != vocab.fingerprint:
            raise VocabularyError("the constraint was compiled for a different vocabulary than the model's")
        if not callable(getattr(constraint, "matcher", None)):
            raise ConstraintError(f"constraint= must be a compiled Constraint (with .matcher()), not {type(constraint).__name__}")
        return constraint
    if kind == "grammar":
        from .grammar import compile_grammar

        if not isinstance(grammar, (str, os.PathLike)):
            return compile_grammar(grammar, vocab)
        text = os.fspath(grammar)
        obj = grammar
    elif kind == "regex":
        if not isinstance(regex, str):
            raise ConstraintError(f"regex must be a string, not {type(regex).__name__}")
        text = regex
        obj: Any = regex
    else:
        obj = _load_schema(schema)
        text = json.dumps(obj, sort_keys=True, separators=(",", ":"))
    key = (kind, text, vocab.fingerprint)
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
            return hit
    if kind == "regex":
        compiled = _compile_regex_fn()(obj, vocab)
    elif kind == "grammar":
        compiled = compile_grammar(obj, vocab)
    else:
        compiled = _compile_schema(obj, vocab)
    with _cache_lock:
        _cache[key] = compiled
        _cache.move_to_end(key)
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return compiled


# ---------------------------------------------------------------------------------------------
# Device-side masking and sampling


class _DeviceMasker:
    """Host bitmask buffer (pinned when the model is on CUDA) + on-device unpacking."""

    def __init__(self, batch: int, vocab_size: int, width: int, device: Any) -> None:
        import torch

        self.words = (vocab_size + 31) // 32
        self.vocab_size = vocab_size
        self.width = width
        self.device = device
        pin = device.type == "cuda"
        self.host = torch.zeros((batch, self.words), dtype=torch.int32, pin_memory=pin)
        self.shifts = torch.arange(32, dtype=torch.int32, device=device)

    def apply(self, logits: Any) -> Any:
        """``logits`` (batch, width) with disallowed ids set to -inf (host buffer -> device)."""
        import torch

        words = self.host if self.device.type == "cpu" else self.host.to(self.device, non_blocking=True)
        bits = ((words.unsqueeze(-1) >> self.shifts) & 1).reshape(words.shape[0], -1).bool()
        if bits.shape[1] >= self.width:
            allowed = bits[:, : self.width]
        else:  # logits wider than the vocabulary: the extra rows are never allowed
            allowed = torch.zeros((words.shape[0], self.width), dtype=torch.bool, device=self.device)
            allowed[:, : bits.shape[1]] = bits
        return logits.masked_fill(~allowed, float("-inf"))


def _choose(logits: Any, temperature: float, top_k: int, top_p: float, generator: Any) -> Any:
    """Next ids (batch,) from masked logits: argmax when temperature == 0, else sampling."""
    import torch

    if temperature <= 0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(sampling_logits(logits, temperature, top_k, top_p), dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def sampling_logits(logits: Any, temperature: float, top_k: int, top_p: float) -> Any:
    """float32 logits after temperature, then top-k, then top-p (nucleus) filtering.

    The one definition of the sampling transform, shared with speculative verification so
    that both sample from the same distribution.
    """
    import torch

    logits = logits.float() / temperature
    if top_k and 0 < top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if 0.0 < top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probs = torch.softmax(sorted_logits, dim=-1)
        before = torch.cumsum(probs, dim=-1) - probs  # mass strictly before each token
        drop = before >= top_p
        drop[:, 0] = False  # always keep the best token
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    return logits


# ---------------------------------------------------------------------------------------------
# The loop


def _is_conversation(prompt: Any) -> bool:
    return isinstance(prompt, (list, tuple)) and len(prompt) > 0 and all(isinstance(m, dict) for m in prompt)


def generate(
    model: Any,
    prompt: str | list[dict] | Sequence[str | list[dict]],
    *,
    regex: str | None = None,
    schema: Any = None,
    grammar: Any = None,
    constraint: Any = None,
    max_tokens: int = 256,
    temperature: float = 0.0,
    top_p: float = 1.0,
    top_k: int = 0,
    seed: int | None = None,
    chat: bool = True,
    system: str | None = None,
    speculative: Any = None,
) -> GenerationResult | list[GenerationResult]:
    """Generate text that matches exactly one of ``regex``/``schema``/``grammar``/``constraint``.

    ``speculative`` (a draft object, a draft name such as ``"jump-forward+prompt-lookup"``,
    a list of drafts, or a draft model) switches to speculative decoding whose verification
    applies the constraint to both draft and target, so the output distribution is unchanged.

    ``prompt`` is a string (or a chat as a list of message dicts); a list of prompts is
    generated as one batch and gives a list of results in the same order. With ``chat=True``
    prompts go through the model's chat template (``system`` as the system message).
    ``temperature=0`` is greedy decoding; otherwise sampling with optional ``top_k``/``top_p``,
    reproducible with ``seed``. Stops when the constraint is complete and the model picks EOS
    (or nothing but EOS is allowed); at ``max_tokens`` the partial output is returned with
    ``finished=False``. Raises :class:`DeadEndError` if the constraint allows no token.
    """
    single = isinstance(prompt, str) or _is_conversation(prompt)
    prompts = [prompt] if single else list(prompt)
    if not prompts:
        return []
    if max_tokens < 0:
        raise ValueError("max_tokens must be >= 0")
    if temperature < 0:
        raise ValueError("temperature must be >= 0")
    if not 0.0 < top_p <= 1.0:
        raise ValueError("top_p must be in (0, 1]")
    vocab = model.vocab
    compiled = get_constraint(vocab, regex=regex, schema=schema, grammar=grammar, constraint=constraint)
    if speculative is not None:
        from .speculative import speculative_generate

        results = [
            speculative_generate(
                model, p, draft=speculative, constraint=compiled, max_tokens=max_tokens, temperature=temperature,
                top_p=top_p, top_k=top_k, seed=seed, chat=chat, system=system,
            )
            for p in prompts
        ]
        return results[0] if single else results
    results = _run(
        model, compiled, prompts, max_tokens=max_tokens, temperature=temperature, top_p=top_p, top_k=top_k,
        seed=seed, chat=chat, system=system,
    )
    return results[0] if single else results


def _encode_prompts(model: Any, prompts: list[Any], chat: bool, system: str | None) -> list[list[int]]:
    tok = model.tokenizer
    out = []
    for p in prompts:
        if chat:
            text = model.apply_chat_template(p, system=system)
            ids = tok(text, add_special_tokens=False)["input_ids"]
        else:
            if not isinstance(p, str):
                p = "\n".join(str(m.get("content", "")) for m in p)
            if system:
                p = f"{system}\n\n{p}"
            ids = tok(p)["input_ids"]
        if not ids:  # an empty raw prompt: start from BOS (or EOS) so there is something to condition on
            start = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
            ids = [start if start is not None else 0]
        out.append(list(ids))
    return out


def _run(
    model: Any, compiled: Any, prompts: list[Any], *, max_tokens: int, temperature: float, top_p: float,
    top_k: int, seed: int | None, chat: bool, system: str | None,
) -> list[GenerationResult]:
    import numpy as np
    import torch

    vocab = model.vocab
    device = model.device
    hf = model.hf
    batch = len(prompts)
    encoded = _encode_prompts(model, prompts, chat, system)
    lengths = [len(ids) for ids in encoded]
    longest = max(lengths)
    pad_id = model.tokenizer.pad_token_id
    if pad_id is None or not 0 <= pad_id < vocab.size:
        pad_id = min((t for t in vocab.eos_ids if t < vocab.size), default=0)

    width = getattr(model, "logits_width", vocab.size)
    masker = _DeviceMasker(batch, vocab.size, width, device)
    host_np = masker.host.numpy().view(np.uint32)
    eos_words = np.zeros(masker.words, dtype=np.uint32)
    for t in vocab.eos_ids:
        if t < vocab.size:
            eos_words[t >> 5] |= np.uint32(1 << (t & 31))
    not_eos = ~eos_words
    pad_words = np.zeros(masker.words, dtype=np.uint32)
    if 0 <= pad_id < vocab.size:
        pad_words[pad_id >> 5] = np.uint32(1 << (pad_id & 31))

    generator = None
    if temperature > 0:
        generator = torch.Generator(device=device)
        generator.manual_seed(seed if seed is not None else int.from_bytes(os.urandom(8), "little") >> 1)

    matchers = [compiled.matcher() for _ in range(batch)]
    generated: list[list[int]] = [[] for _ in range(batch)]
    stop: list[str | None] = [None] * batch

    # Left padding: row i is [pad]*(longest-len) + prompt.
    input_ids = torch.full((batch, longest), pad_id, dtype=torch.long)
    attn = torch.zeros((batch, longest), dtype=torch.long)
    for i, ids in enumerate(encoded):
        input_ids[i, longest - len(ids):] = torch.tensor(ids, dtype=torch.long)
        attn[i, longest - len(ids):] = 1
    input_ids = input_ids.to(device)
    attn = attn.to(device)
    position_ids = (attn.cumsum(-1) - 1).clamp_min(0)
    next_pos = position_ids[:, -1:] + 1

    fwd_kwargs: dict[str, Any] = {}
    try:
        import inspect

        if "logits_to_keep" in inspect.signature(hf.forward).parameters:
            fwd_kwargs["logits_to_keep"] = 1
    except (TypeError, ValueError):  # pragma: no cover
        pass

    def refresh_masks() -> None:
        """Fill the host mask rows; decide which rows stop before another forward pass."""
        for i, m in enumerate(matchers):
            row = host_np[i]
            if stop[i] is not None:
                row[...] = pad_words
                continue
            m.fill_mask(row)
            if m.is_finished():
                stop[i] = "eos"
                row[...] = pad_words
            elif not row.any():
                partial = vocab.decode(generated[i])
                where = f" (batch row {i})" if batch > 1 else ""
                raise DeadEndError(
                    f"the constraint allows no token after {len(generated[i])} generated tokens{where}; "
                    f"partial output: {partial[-200:]!r}",
                    partial=partial,
                )
            elif m.is_accepting() and not (row & not_eos).any():
                stop[i] = "eos"  # complete, and nothing but EOS could follow
                row[...] = pad_words
            elif len(generated[i]) >= max_tokens:
                stop[i] = "max_tokens"
                row[...] = pad_words

    t0 = time.perf_counter()
    refresh_masks()
    prefill_s = 0.0
    first_tokens = 0
    with torch.inference_mode():
        if any(s is None for s in stop):
            out = hf(
                input_ids=input_ids, attention_mask=attn, position_ids=position_ids, use_cache=True, **fwd_kwargs
            )
            past = out.past_key_values
            logits = out.logits[:, -1, :]
            del out
            first = True
            while True:
                chosen = _choose(masker.apply(logits), temperature, top_k, top_p, generator)
                ids = chosen.tolist()  # the one host sync per step
                if first:
                    prefill_s = time.perf_counter() - t0
                    first = False
                    first_tokens = sum(1 for i, t in enumerate(ids) if stop[i] is None and int(t) not in vocab.eos_ids)
                for i, t in enumerate(ids):
                    if stop[i] is not None:
                        continue
                    if not matchers[i].accept_token(int(t)):  # pragma: no cover - the mask forbids it
                        raise DeadEndError(
                            f"internal error: sampled token {t} was refused by the matcher",
                            partial=vocab.decode(generated[i]),
                        )
                    if int(t) in vocab.eos_ids:
                        stop[i] = "eos"
                    else:
                        generated[i].append(int(t))
                refresh_masks()
                if all(s is not None for s in stop):
                    break
                step_ids = chosen.view(batch, 1)
                attn = torch.cat([attn, attn.new_ones((batch, 1))], dim=-1)
                out = hf(
                    input_ids=step_ids, attention_mask=attn, position_ids=next_pos, past_key_values=past,
                    use_cache=True, **fwd_kwargs,
                )
                next_pos = next_pos + 1
                past = out.past_key_values
                logits = out.logits[:, -1, :]
                del out
    total = time.perf_counter() - t0
    decode_s = max(total - prefill_s, 0.0)
    n_gen = sum(len(g) for g in generated)
    # prefill_s: prompt forward pass + first token (time to first token); decode_s: the rest.
    # tokens_per_s: generated tokens per second of decoding, over all rows of the batch.
    timings = {
        "prefill_s": prefill_s,
        "decode_s": decode_s,
        "tokens_per_s": ((n_gen - first_tokens) / decode_s) if decode_s > 0 else 0.0,
    }
    results = []
    for i in range(batch):
        data = vocab.decode(generated[i])
        reason = stop[i] or "max_tokens"
        results.append(
            GenerationResult(
                text=data.decode("utf-8", errors="replace"),
                bytes=data,
                token_ids=generated[i],
                finished=reason == "eos",
                stop_reason=reason,
                n_prompt_tokens=lengths[i],
                timings=dict(timings),
            )
        )
    return results
