"""Samplers against exact enumeration on table language models.

The main example is the GAD paper's grammar of 17 binary strings of length 5 (Park et al. 2024),
with a skewed, context-dependent table LM over {0, 1, EOS}. Exact ``P_LM(x | x in L)`` and LCD's
exact output distribution are enumerated; every statistical bound below is derived from the
sample size (chi-square quantiles at p = 1e-3, McDiarmid bounds for total variation, CLT bounds
with 4 standard errors), and the seeds are fixed.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter

import numpy as np
import pytest
import torch

from constrain import ConstrainError, DeadEndError, RegexError, Vocabulary, VocabularyError, compile_regex
from constrain.lm import TableLM
from constrain.samplers import (
    ASAp,
    CriticError,
    ParticlesDeadError,
    SampleResult,
    TrieFullError,
    awrs_sample,
    awrs_step,
    lcd_sample,
    resample_indices,
    sample,
    smc,
)

from .conftest import shared_data

EOS = 2
BIN = Vocabulary([b"0", b"1", None], eos_ids={EOS})


# ---------------------------------------------------------------------------------------------
# statistics helpers


def chi2_quantile(df: int, upper: float = 1e-3) -> float:
    """Upper quantile of chi-square (Wilson-Hilferty; within 1% for df >= 2 at 1e-3)."""
    z = {1e-3: 3.090232306167813}[upper]
    return df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3


def pearson(counts: Counter, probs: dict, n: int) -> tuple[float, int]:
    """Pearson statistic and degrees of freedom, pooling cells with expected count < 5."""
    stat, df = 0.0, -1
    pool_o = pool_e = 0.0
    for k, p in probs.items():
        e = n * p
        if e < 5:
            pool_o += counts.get(k, 0)
            pool_e += e
            continue
        stat += (counts.get(k, 0) - e) ** 2 / e
        df += 1
    if pool_e > 0:
        stat += (pool_o - pool_e) ** 2 / pool_e
        df += 1
    assert sum(c for k, c in counts.items() if k not in probs) == 0, "sample outside the support"
    return stat, df


def empirical(texts) -> dict:
    c = Counter(texts)
    n = sum(c.values())
    return {k: v / n for k, v in c.items()}


def tv(a: dict, b: dict) -> float:
    return 0.5 * sum(abs(a.get(k, 0.0) - b.get(k, 0.0)) for k in set(a) | set(b))


def kl(emp: dict, target: dict) -> float:
    return sum(p * math.log(p / target[k]) for k, p in emp.items() if p > 0)


def tv_noise_bound(k: int, n: int, fail: float = 1e-3) -> float:
    """With n iid draws from p over k outcomes, TV(empirical, p) < this with prob >= 1 - fail.

    E[TV] <= 0.5 * sum_i sqrt(p_i / n) <= 0.5 sqrt(k / n) (Cauchy-Schwarz), and TV moves by at
    most 1/n per draw, so McDiarmid adds sqrt(log(1/fail) / (2 n)).
    """
    return 0.5 * math.sqrt(k / n) + math.sqrt(math.log(1 / fail) / (2 * n))


# ---------------------------------------------------------------------------------------------
# the GAD example


def skewed_table(seed: int):
    """A context-dependent LM over {0, 1, EOS}: P(1 | w) random in [0.05, 0.95], EOS rare before length 5."""

    def dist(ctx):
        rng = np.random.default_rng([seed] + [t + 1 for t in ctx] + [99])
        p1 = rng.uniform(0.05, 0.95)
        eos = 0.02 if len(ctx) < 5 else rng.uniform(0.3, 0.9)
        return [(1 - eos) * (1 - p1), (1 - eos) * p1, eos]

    return dist


class GAD:
    def __init__(self) -> None:
        path = shared_data("gad", "asap_release", "examples", "test", "binary_len_5_0.ebnf")
        body = re.search(r"^s\s*::=(.*)$", path.read_text(), re.M).group(1)
        self.strings = re.findall(r'"([01]+)"', body)
        self.pattern = "(" + "|".join(self.strings) + ")"
        self.constraint = compile_regex(self.pattern, BIN)
        self.lm = TableLM(BIN, skewed_table(7), name="gad-skewed-7")
        joint, lcd = {}, {}
        for s in self.strings:
            ids = [int(ch) for ch in s] + [EOS]
            joint[s] = math.exp(self.lm.score(ids))
            m, q = self.constraint.matcher(), 1.0
            for i, t in enumerate(ids):
                p = np.exp(self.lm.next_logprobs([tuple(ids[:i])])[0].double().numpy())
                q *= p[t] / p[m.allowed_token_ids()].sum()
                assert m.accept_token(t)
            lcd[s] = q
        self.Z = sum(joint.values())  # P_LM(x in L)
        self.target = {s: v / self.Z for s, v in joint.items()}
        self.lcd = lcd


@pytest.fixture(scope="module")
def gad() -> GAD:
    return GAD()


def test_exact_enumeration(gad: GAD) -> None:
    assert len(gad.strings) == 17 and len(set(gad.strings)) == 17
    assert math.isclose(sum(gad.target.values()), 1.0)
    assert math.isclose(sum(gad.lcd.values()), 1.0, rel_tol=1e-9)
    # The example is interesting: LCD's exact distribution is far from the target.
    assert tv(gad.lcd, gad.target) > 0.3


# ---------------------------------------------------------------------------------------------
# LCD


def test_lcd_follows_its_local_distribution_and_is_biased(gad: GAD) -> None:
    n = 4000
    res = lcd_sample(gad.lm, gad.constraint, n, seed=1)
    assert all(r.finished and re.fullmatch(gad.pattern, r.text) for r in res)
    counts = Counter(r.text for r in res)
    stat, df = pearson(counts, gad.lcd, n)
    assert stat < chi2_quantile(df), f"LCD samples do not follow LCD's distribution (chi2={stat:.1f}, df={df})"
    bound = tv_noise_bound(len(gad.strings), n)
    observed = tv(empirical(r.text for r in res), gad.target)
    assert observed > bound, f"LCD should be measurably biased: TV={observed:.3f} <= noise bound {bound:.3f}"
    # results carry the unconstrained log-prob (EOS included) and the local-normaliser weight
    r = res[0]
    ids = r.token_ids + [EOS]
    assert math.isclose(r.logprob, gad.lm.score(ids), rel_tol=1e-5)
    assert math.isclose(math.exp(r.logprob - r.log_weight), gad.lcd[r.text], rel_tol=1e-5)
    assert r.n_checks == BIN.size * len(ids)


def test_lcd_greedy_and_truncated_sampling(gad: GAD) -> None:
    greedy = lcd_sample(gad.lm, gad.constraint, 3, temperature=0)
    assert len({tuple(r.token_ids) for r in greedy}) == 1
    m, ids = gad.constraint.matcher(), []
    while not m.is_finished():  # the argmax path, by hand
        allowed = m.allowed_token_ids()
        p = gad.lm.next_logprobs([tuple(ids)])[0].numpy()
        t = int(allowed[np.argmax(p[allowed])])
        m.accept_token(t)
        if t != EOS:
            ids.append(t)
    assert greedy[0].token_ids == ids
    top1 = lcd_sample(gad.lm, gad.constraint, 2, top_k=1, seed=3)
    assert all(r.token_ids == ids for r in top1) and all(math.isnan(r.log_weight) for r in top1)
    hot = lcd_sample(gad.lm, gad.constraint, 20, temperature=2.0, top_p=0.9, seed=3)
    assert all(r.text in gad.target for r in hot)
    cut = lcd_sample(gad.lm, gad.constraint, 2, max_tokens=3, seed=0)
    assert all(not r.finished and len(r.token_ids) == 3 and r.log_weight == -math.inf for r in cut)


# ---------------------------------------------------------------------------------------------
# ASAp


def test_asap_converges_to_the_exact_conditional(gad: GAD) -> None:
    a = ASAp(gad.lm, gad.constraint, seed=0)

    def proposal() -> dict:
        return {s: math.exp(a.proposal_logprob([int(c) for c in s])) for s in gad.strings}

    q0 = proposal()
    assert tv(q0, gad.lcd) < 1e-6  # (float32 LM rows) before any sample, ASAp proposes exactly like LCD
    res = a.sample(2000)
    assert all(r.finished and re.fullmatch(gad.pattern, r.text) for r in res)
    # The language is finite: once every live prefix is explored, the estimates are exact.
    assert math.isclose(a.efg_root, gad.Z, rel_tol=1e-6)
    assert tv(proposal(), gad.target) < 1e-6
    assert a.num_nodes <= 1 + 2 + 4 + 8 + 16 + 32
    # Empirically: the later half is indistinguishable from the target at p = 1e-3.
    late = [r.text for r in res[1000:]]
    k = kl(empirical(late), gad.target)
    assert k < chi2_quantile(len(gad.strings) - 1) / (2 * len(late)), f"KL(late || target) = {k:.4f}"
    # Importance weights are exact once converged: log P_LM(x) - log q(x) = log Z.
    assert math.isclose(res[-1].log_weight, math.log(gad.Z), rel_tol=1e-6)
    # Revisited prefixes cost neither constraint checks nor LM calls.
    assert res[-1].n_checks == 0


def test_asap_kl_falls_across_windows(gad: GAD) -> None:
    """Pool windows of many independent chains: early windows are measurably biased, late ones are not."""
    chains, length, window = 30, 120, 10
    runs = [[r.text for r in ASAp(gad.lm, gad.constraint, seed=100 + c).sample(length)] for c in range(chains)]

    def pooled(lo: int) -> list[str]:
        return [t for run in runs for t in run[lo : lo + window]]

    n = chains * window
    bound = chi2_quantile(len(gad.strings) - 1) / (2 * n)  # 2n KL ~ chi2(16) when sampling the target
    early = kl(empirical(pooled(0)), gad.target)
    late = kl(empirical(pooled(length - window)), gad.target)
    assert early > bound > late, f"early KL {early:.4f}, late KL {late:.4f}, noise bound {bound:.4f}"


def test_asap_persists_and_round_trips(gad: GAD, tmp_path) -> None:
    a = ASAp(gad.lm, gad.constraint, seed=1)
    a.sample(30)
    path = tmp_path / "trie.npz"
    a.save(path)
    b = ASAp.load(path, gad.lm, gad.constraint, seed=2)
    assert b.num_nodes == a.num_nodes and b.num_samples == 30
    assert math.isclose(b.efg_root, a.efg_root)
    for s in gad.strings:
        ids = [int(c) for c in s]
        assert math.isclose(a.proposal_logprob(ids), b.proposal_logprob(ids), rel_tol=1e-12)
    # sample() continues a given state
    more = sample(None, None, None, method="asap", n=5, asap=b)
    assert len(more) == 5 and b.num_samples == 35
    other = compile_regex("(0|1)+", BIN)
    with pytest.raises(ConstrainError, match="built for constraint"):
        ASAp.load(path, gad.lm, other)


def test_asap_memory_bound(gad: GAD) -> None:
    a = ASAp(gad.lm, gad.constraint, max_nodes=4, on_full="error", seed=0)
    with pytest.raises(TrieFullError, match="max_nodes=4"):
        a.sample(50)
    assert isinstance(TrieFullError("x"), ConstrainError)
    # Eviction keeps the trie within the bound, outputs valid, and estimates upper bounds that still
    # converge: the parent keeps an evicted child's estimate.
    e = ASAp(gad.lm, gad.constraint, max_nodes=12, on_full="evict", seed=0)
    res = e.sample(400)
    assert e.num_nodes <= 12 and e.num_evicted > 0 and e.approx_bytes > 0
    assert all(r.finished and r.text in gad.target for r in res)
    assert gad.Z - 1e-12 <= e.efg_root < 0.5  # an upper bound, and far below the initial 1
    with pytest.raises(TrieFullError, match="current path"):
        ASAp(gad.lm, gad.constraint, max_nodes=3, seed=0).sample(1)
    # the byte bound works the same way
    with pytest.raises(TrieFullError, match="max_bytes=600"):
        ASAp(gad.lm, gad.constraint, max_bytes=600, on_full="error", seed=0).sample(5)
    small = ASAp(gad.lm, gad.constraint, max_bytes=3000, seed=0)
    assert all(r.text in gad.target for r in small.sample(200))
    assert small.approx_bytes <= 3000 and small.num_evicted > 0


# ---------------------------------------------------------------------------------------------
# AWRS


def exact_expected_weight(p: list[float], valid: list[bool]) -> tuple[float, list[float]]:
    """E[Z_hat] and E[Z_hat 1[token = a]] for the two-round estimator, by enumerating orders."""
    n = len(p)
    total = 0.0
    per_token = [0.0] * n

    def round2(remaining: frozenset, n_rej: int, prob: float, r1_mass: float, k1: int, tok: int) -> None:
        nonlocal total
        mass = sum(p[i] for i in remaining)
        for i in remaining:
            q = prob * p[i] / mass
            if valid[i]:
                w = (1 - r1_mass) / (k1 + n_rej + 1)
                total += q * w
                per_token[tok] += q * w
            else:
                round2(remaining - {i}, n_rej + 1, q, r1_mass, k1, tok)

    def round1(remaining: frozenset, rejected: list[int], prob: float) -> None:
        mass = sum(p[i] for i in remaining)
        for i in remaining:
            q = prob * p[i] / mass
            if valid[i]:
                rest = frozenset(range(n)) - set(rejected)
                round2(rest, 0, q, sum(p[j] for j in rejected), len(rejected), i)
            else:
                round1(remaining - {i}, rejected + [i], q)

    round1(frozenset(i for i in range(n) if p[i] > 0), [], 1.0)
    return total, per_token


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_awrs_estimator_is_unbiased_by_enumeration(seed: int) -> None:
    rng = np.random.default_rng(seed)
    p = list(rng.dirichlet(np.full(5, 0.7)))
    valid = [True, False, True, False, False]
    z = sum(pi for pi, v in zip(p, valid) if v)
    mean, per_token = exact_expected_weight(p, valid)
    assert math.isclose(mean, z, rel_tol=1e-12)
    for i in range(5):  # properly weighted: E[Z_hat 1[token = a]] = p(a) 1[a valid]
        assert math.isclose(per_token[i], p[i] if valid[i] else 0.0, rel_tol=1e-12, abs_tol=1e-15)


LETTERS = Vocabulary([bytes([c]) for c in b"abcdefghijkl"] + [None], eos_ids={12})


@pytest.mark.parametrize("topk", [32, 1])
def test_awrs_step_distribution_and_weight(topk: int) -> None:
    """One AWRS step, many times: tokens follow p(t) 1[valid] / Z (chi-square) and mean(Z_hat) = Z (CLT)."""
    c = compile_regex("[a-e]+", LETTERS)
    rng = np.random.default_rng(5)
    p = rng.dirichlet(np.full(LETTERS.size, 0.5))
    logp = torch.tensor(np.log(p), dtype=torch.float32)
    m = c.matcher()
    assert m.accept_token(0)  # after "a": a-e or EOS are allowed
    valid = np.zeros(LETTERS.size, dtype=bool)
    valid[m.allowed_token_ids()] = True
    z = float(p[valid].sum())
    n = 20000 if topk > 1 else 4000
    g = torch.Generator().manual_seed(11)
    steps = awrs_step(logp.expand(n, -1), [m] * n, generator=g, topk=topk)
    tokens = Counter(s.token for s in steps)
    stat, df = pearson(tokens, {t: p[t] / z for t in np.nonzero(valid)[0]}, n)
    assert stat < chi2_quantile(df), f"chi2={stat:.1f} df={df}"
    w = np.exp([s.log_z for s in steps])
    se = w.std(ddof=1) / math.sqrt(n)
    assert abs(w.mean() - z) < 4 * se, f"mean Z_hat {w.mean():.4f} vs Z {z:.4f} (se {se:.4f})"
    checks = np.array([s.n_checks for s in steps])
    assert checks.min() >= 1 and m.num_steps == 1  # the shared matcher was never advanced
    # Variance is modest: relative sd about 0.9 on this example (recorded in docs/samplers.md).
    assert w.std() / z < 1.5


def test_awrs_sequences_follow_lcd_and_weights_are_unbiased(gad: GAD) -> None:
    n = 3000
    res = awrs_sample(gad.lm, gad.constraint, n, seed=4)
    assert all(r.finished and re.fullmatch(gad.pattern, r.text) for r in res)
    stat, df = pearson(Counter(r.text for r in res), gad.lcd, n)
    assert stat < chi2_quantile(df)
    w = np.exp([r.log_weight for r in res])
    se = w.std(ddof=1) / math.sqrt(n)
    assert abs(w.mean() - gad.Z) < 4 * se  # E[prod Z_hat] = P_LM(x in L)
    # Self-normalised weights correct LCD's bias.
    post: dict = {}
    for r, wi in zip(res, w / w.sum()):
        post[r.text] = post.get(r.text, 0.0) + wi
    assert tv(post, gad.target) < tv(empirical(r.text for r in res), gad.target) / 3
    assert math.isclose(res[0].logprob, gad.lm.score(res[0].token_ids + [EOS]), rel_tol=1e-5)


# ---------------------------------------------------------------------------------------------
# SMC


def test_smc_posterior_matches_the_exact_conditional(gad: GAD) -> None:
    runs, n = 8, 200
    posts, mls, resamples = [], [], 0
    for r in range(runs):
        out = smc(gad.lm, gad.constraint, n, seed=r, ess_threshold=0.9,
                  resampling="systematic" if r % 2 else "multinomial")
        assert all(p.finished and re.fullmatch(gad.pattern, p.text) for p in out.particles)
        assert math.isclose(sum(out.posterior.values()), 1.0)
        posts.append(out.posterior)
        mls.append(math.exp(out.log_ml))
        resamples += out.n_resamples
    assert resamples > 0
    avg = {s: float(np.mean([p.get(s, 0.0) for p in posts])) for s in gad.strings}
    # Noise of a weighted particle estimate with at least n/2 effective samples per run.
    bound = tv_noise_bound(len(gad.strings), runs * n // 2)
    assert tv(avg, gad.target) < bound, f"TV {tv(avg, gad.target):.3f} >= {bound:.3f}"
    assert tv(avg, gad.target) < tv(gad.lcd, gad.target) / 4
    se = np.std(mls, ddof=1) / math.sqrt(runs)
    assert abs(np.mean(mls) - gad.Z) < 4 * se + 1e-9, f"E[exp(log_ml)]={np.mean(mls):.4f} vs Z={gad.Z:.4f}"


def test_smc_with_masking_proposal(gad: GAD) -> None:
    out = smc(gad.lm, gad.constraint, 600, seed=0, proposal="lcd", ess_threshold=0.5)
    assert tv(out.posterior, gad.target) < tv_noise_bound(len(gad.strings), 300)
    assert out.n_checks == 600 * 6 * BIN.size


@pytest.mark.parametrize("mode", ["complete", "prefix"])
def test_smc_critic_reweights_the_target(gad: GAD, mode: str) -> None:
    def critic(text: str) -> float:  # favours outputs starting with "0" and vetoes "11111"
        if text == "11111":
            return -math.inf
        return math.log(20.0) if text.startswith("0") else 0.0

    tilted = {s: gad.target[s] * math.exp(critic(s)) for s in gad.strings}
    total = sum(tilted.values())
    tilted = {s: v / total for s, v in tilted.items()}
    runs, n = 4, 300
    posts = [smc(gad.lm, gad.constraint, n, seed=10 + r, critic=critic, critic_mode=mode).posterior for r in range(runs)]
    assert all("11111" not in p for p in posts)
    avg = {s: float(np.mean([p.get(s, 0.0) for p in posts])) for s in gad.strings}
    assert tv(avg, tilted) < tv_noise_bound(len(gad.strings), runs * n // 2)


def test_resampling_schemes() -> None:
    rng = np.random.default_rng(0)
    w = np.array([0.5, 0.25, 0.125, 0.125, 0.0])
    idx = resample_indices(np.log(w + 1e-300), rng, "systematic")
    counts = np.bincount(idx, minlength=5)
    assert np.all(np.abs(counts - 5 * w) < 1) and counts[4] == 0  # systematic: floor/ceil of N w
    idx = resample_indices(np.log(np.array([1.0, 0.0, 0.0]) + 1e-300), rng, "multinomial")
    assert list(idx) == [0, 0, 0]
    with pytest.raises(ValueError):
        resample_indices(np.zeros(3), rng, "stratified-ish")


# ---------------------------------------------------------------------------------------------
# validity and the public API on another language


AB = Vocabulary([b"a", b"b", b"ab", b"ba", b"x", None], eos_ids={5})


def ab_lm() -> TableLM:
    return TableLM(AB, lambda ctx: [0.2, 0.2, 0.2, 0.15, 0.2, 0.05 + 0.1 * min(len(ctx), 5)])


@pytest.mark.parametrize("method", ["lcd", "awrs", "asap", "smc"])
def test_every_method_satisfies_the_constraint(method: str) -> None:
    pattern = r"(ab)+a?"
    out = sample(ab_lm(), None, pattern, method=method, n=25, seed=3, max_tokens=40)
    results = out.particles if method == "smc" else out
    assert len(results) == 25 and all(isinstance(r, SampleResult) for r in results)
    for r in results:
        assert r.finished and re.fullmatch(pattern, r.text), r
        assert r.bytes == r.text.encode() and r.method == method
        assert math.isclose(r.logprob, ab_lm().score(r.token_ids + [5]), rel_tol=1e-5)


def test_api_errors() -> None:
    lm = ab_lm()
    with pytest.raises(ValueError, match="unknown method"):
        sample(lm, None, "a", method="beam")
    with pytest.raises(ValueError, match="already bound"):
        sample(lm, "a prompt", "a")
    with pytest.raises(ConstrainError):
        sample(lm, None, 42)
    with pytest.raises(VocabularyError):
        sample(lm, None, compile_regex("a", BIN))
    with pytest.raises(TypeError):
        sample(lm, None, "a", method="lcd", bogus=1)


# ---------------------------------------------------------------------------------------------
# bad input and failures


def test_empty_language_is_rejected_at_compile_time() -> None:
    with pytest.raises(RegexError, match="empty language"):
        compile_regex(r"[^\s\S]", BIN)


@pytest.mark.parametrize("method", ["lcd", "awrs", "asap"])
def test_unreachable_language_raises_dead_end(method: str) -> None:
    # "2" is a valid regex, but no token of the vocabulary can start it.
    lm = TableLM(BIN, lambda ctx: [0.4, 0.4, 0.2])
    with pytest.raises(DeadEndError):
        sample(lm, None, "2", method=method, n=2, seed=0)


def test_all_particles_die() -> None:
    lm = TableLM(BIN, lambda ctx: [1.0, 0.0, 0.0])  # the model never says "1"
    with pytest.raises(ParticlesDeadError, match="all 8 particles"):
        smc(lm, compile_regex("1", BIN), 8, seed=0)
    with pytest.raises(ParticlesDeadError):
        smc(lm, compile_regex("2", BIN), 8, seed=0)
    with pytest.raises(ParticlesDeadError, match="max_tokens=3"):
        smc(TableLM(BIN, lambda ctx: [0.4, 0.4, 0.2]), compile_regex("[01]{5}", BIN), 8, seed=0, max_tokens=3)
    assert issubclass(ParticlesDeadError, DeadEndError)


def test_critic_failures_raise_critic_error(gad: GAD) -> None:
    def boom(text: str) -> float:
        raise KeyError("no such table")

    with pytest.raises(CriticError, match="KeyError") as info:
        smc(gad.lm, gad.constraint, 4, seed=0, critic=boom)
    assert isinstance(info.value.__cause__, KeyError) and isinstance(info.value, ConstrainError)
    with pytest.raises(CriticError, match="nan"):
        smc(gad.lm, gad.constraint, 4, seed=0, critic=lambda t: float("nan"), critic_mode="prefix")
    with pytest.raises(CriticError, match="float"):
        smc(gad.lm, gad.constraint, 4, seed=0, critic=lambda t: "good")
    with pytest.raises(ParticlesDeadError):
        smc(gad.lm, gad.constraint, 4, seed=0, critic=lambda t: -math.inf)


def test_table_lm_validation() -> None:
    with pytest.raises(ValueError, match="entries"):
        TableLM(BIN, {(): [0.5, 0.5]}).next_logprobs([()])
    with pytest.raises(ValueError, match=">= 0"):
        TableLM(BIN, {(): [-1, 1, 1]}).next_logprobs([()])
    with pytest.raises(KeyError, match="no next-token distribution"):
        TableLM(BIN, {(): [1, 1, 1]}).next_logprobs([(0,)])
    lm = TableLM(BIN, {(): {1: 3.0, 2: 1.0}}, default=[1, 1, 1])
    assert torch.allclose(lm.next_logprobs([(), (0, 1)]).exp(), torch.tensor([[0, 0.75, 0.25], [1 / 3] * 3]))


def test_binary_grammar_enumeration_is_complete(gad: GAD) -> None:
    # cross-check the regex against brute force over all binary strings up to length 6
    for k in range(7):
        for bits in itertools.product("01", repeat=k):
            s = "".join(bits)
            assert gad.constraint.dfa.matches(s.encode()) == (s in gad.target)
