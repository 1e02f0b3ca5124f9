#!/usr/bin/env python
"""Grammar-aligned sampling (ASAp) vs locally constrained decoding (LCD) on GAD's SyGuS tasks.

Reproduces the evaluation of Park et al. (NeurIPS 2024, "Grammar-Aligned Decoding") at a small
scale on CPU with the default model (SmolLM2-135M-Instruct, float32, one torch thread). For each
task (a few-shot SyGuS prompt and its grammar from ``../shared/data/gad/research_gd``) both
methods draw ``--n`` samples at temperature 1 (no top-k/top-p) with at most ``--max-tokens``
tokens:

* LCD: token masking (``constrain.samplers.lcd_sample``), i.i.d., batched ``--lcd-batch`` at a
  time;
* ASAp: one ``constrain.samplers.ASAp`` trie per task, one sample after the other.

The target, as in the paper, is the set of distinct complete outputs seen by either method,
each weighted by its LM probability and renormalised: ``Q(x) = P_LM(x) / sum_y P_LM(y)``.
Outputs are token sequences (two tokenisations of one text are two outputs of the LM).
Reported per sample index ``i``:

* ``KL(empirical_i || Q)``, the empirical distribution of the complete outputs among the first
  ``i`` samples (and over a sliding window of the last ``--window`` samples);
* the running mean of ``log P_LM(x)`` over those outputs, against ``E_Q[log P_LM]``;
* a reference curve: the mean KL that an *exact* sampler of ``Q`` would show with ``i`` samples
  (Monte Carlo), i.e. the finite-sample floor, which is far from 0 with a few hundred samples.

Samples cut at ``--max-tokens`` are not in the language; they are counted and left out of the
empirical distributions.

End of an output: the prompts are raw few-shot completions (``...Solution:\n``), after which the
model continues with a newline and the next ``Question:``; SmolLM2 gives EOS right after a
complete program a log-probability of about -7.4 (the program itself: -3). Requiring EOS would
put most of every output's likelihood in that one forced token, and ASAp, whose unexplored
branches start at the over-approximation 1, would keep exploring until every branch has shown
the same e^-7 factor. By default the end of the line ends the output, as a stop sequence would
(``StopAtNewline``: the probability of every token that starts with ``\n`` moves to EOS, so
``P(end | w)`` is the probability of stopping by EOS or newline). ``--eos-only`` keeps the model's
EOS tokens as the only end.

The grammar's fixed header ``(define-fun f (...) T`` is moved into the prompt (its canonical
tokenisation), and the grammar keeps ``" " Start ")"``: without this, masking allows every
tokenisation of the header and ASAp spends trie nodes exploring them. ``--header-in-grammar``
keeps the grammar as published.

Example (the documented run, about 20 minutes on a shared 2-core machine)::

    python bench/gad_asap.py --n 100 --json bench/results/gad_asap.json --plot docs/img/gad_asap.png
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse
import json
import math
import platform
import re
import sys
import resource
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import constrain  # noqa: E402
from constrain.grammar import compile_grammar  # noqa: E402
from constrain.lm import HFLM, LanguageModel, encode_prompt  # noqa: E402
from constrain.samplers import ASAp, lcd_sample  # noqa: E402

SHARED = Path(os.environ.get("CONSTRAIN_SHARED_DATA", ROOT.parent / "shared" / "data"))
GAD = SHARED / "gad" / "research_gd"
DEFAULT_SLIA = ["lastname", "name-combine-2_short"]
DEFAULT_BV4 = ["find_inv_eq_bvnot_4bit", "find_inv_bvule_bvlshr1_4bit"]
_HEADER = re.compile(r'^root ::= "(\(define-fun [^"]*?) " Start "\)"[ \t]*\n')


def load_task(category: str, name: str, header_in_grammar: bool) -> tuple[str, str, str]:
    """(prompt text, grammar text, header moved into the prompt or "")."""
    cat = {"slia": "SLIA", "bv4": "bv4"}[category.lower()]
    prompt_path = GAD / "prompts" / cat / f"{name}.txt"
    grammar_path = GAD / "examples" / "sygus" / cat / f"{name}.ebnf"
    for p in (prompt_path, grammar_path):
        if not p.is_file():
            raise SystemExit(f"missing {p} (set CONSTRAIN_SHARED_DATA to the shared data folder)")
    prompt = prompt_path.read_text(encoding="utf-8")
    grammar = grammar_path.read_text(encoding="utf-8")
    if header_in_grammar:
        return prompt, grammar, ""
    m = _HEADER.match(grammar)
    if m is None:
        raise SystemExit(f"{grammar_path}: unexpected root rule; use --header-in-grammar")
    return prompt + m.group(1), 'root ::= " " Start ")"\n' + grammar[m.end():], m.group(1)


class StopAtNewline(LanguageModel):
    """``inner`` where a newline ends the output, as a stop sequence would.

    Every token whose bytes start with ``\\n`` is a stop token: its probability moves to the
    end-of-sequence id ``end_id`` (the smallest EOS id; the other EOS ids and the newline tokens
    get probability 0), so ``P(end | w)`` is the probability of stopping by any of them and each
    output's likelihood counts its end once. Same vocabulary, so constraints compiled for the
    model's vocabulary work unchanged (none of these grammars allows a newline in the text).
    """

    def __init__(self, inner: LanguageModel) -> None:
        v = inner.vocab
        newline = {i for i, b in enumerate(v.token_bytes) if b is not None and b.startswith(b"\n")}
        stop = sorted(set(v.eos_ids) | newline)
        self.inner = inner
        self.vocab = v
        self.end_id = min(v.eos_ids)
        self.n_stop_tokens = len(stop)
        self._stop = torch.tensor(stop, dtype=torch.long, device=inner.device)
        self._silenced = torch.tensor([i for i in stop if i != self.end_id], dtype=torch.long, device=inner.device)

    @property
    def device(self) -> torch.device:
        return self.inner.device

    def next_logprobs(self, contexts):
        lp = self.inner.next_logprobs(contexts).clone()
        end = torch.logsumexp(lp[:, self._stop], dim=1)
        lp[:, self._silenced] = float("-inf")
        lp[:, self.end_id] = end
        return lp

    def cache_key(self) -> str | None:
        key = self.inner.cache_key()
        return None if key is None else key + ":stop-at-newline"


# ---------------------------------------------------------------------------------------------
# metrics


def kl_curves(keys: list, target: dict, window: int) -> tuple[list[float], list[float]]:
    """KL(empirical of the first i || Q) and over the last ``window`` samples, per index (NaN before
    the first complete output). ``keys[i]`` is None for a sample that did not finish."""
    cum: list[float] = []
    win: list[float] = []
    counts: dict = {}
    total = 0
    for i, k in enumerate(keys):
        if k is not None:
            counts[k] = counts.get(k, 0) + 1
            total += 1
        cum.append(_kl(counts, total, target))
        lo = max(0, i + 1 - window)
        wc: dict = {}
        for kk in keys[lo : i + 1]:
            if kk is not None:
                wc[kk] = wc.get(kk, 0) + 1
        win.append(_kl(wc, sum(wc.values()), target))
    return cum, win


def _kl(counts: dict, total: int, target: dict) -> float:
    if total == 0:
        return math.nan
    return float(sum((c / total) * math.log((c / total) / target[k]) for k, c in counts.items()))


def exact_sampler_kl(q: np.ndarray, n: int, reps: int, rng: np.random.Generator) -> tuple[list[float], list[float]]:
    """Mean and 90% upper quantile of KL(empirical_i || q) for i = 1..n i.i.d. draws from q itself."""
    draws = rng.choice(len(q), size=(reps, n), p=q)
    out = np.zeros((reps, n))
    logq = np.log(q)
    for r in range(reps):
        counts = np.zeros(len(q))
        for i in range(n):
            counts[draws[r, i]] += 1
            nz = counts > 0
            p = counts[nz] / (i + 1)
            out[r, i] = float(np.sum(p * (np.log(p) - logq[nz])))
    return out.mean(0).tolist(), np.quantile(out, 0.9, axis=0).tolist()


def running_mean(keys: list, logp: dict) -> list[float]:
    out, s, c = [], 0.0, 0
    for k in keys:
        if k is not None:
            s += logp[k]
            c += 1
        out.append(s / c if c else math.nan)
    return out


# ---------------------------------------------------------------------------------------------


def run_task(model, category: str, name: str, args, rng: np.random.Generator) -> dict:
    from tqdm import tqdm

    prompt, grammar, header = load_task(category, name, args.header_in_grammar)
    ids = encode_prompt(model, prompt, chat=False)
    hflm = HFLM(model, ids)
    lm = hflm if args.eos_only else StopAtNewline(hflm)
    t0 = time.perf_counter()
    constraint = compile_grammar(grammar, lm.vocab)
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    hflm.next_logprobs([()])
    prefill_s = time.perf_counter() - t0
    task = f"{category.upper()}/{name}"
    runs: dict[str, dict] = {}

    # LCD: i.i.d. batches
    hflm.clear_cache()
    f0 = hflm.n_forward_tokens
    samples = []
    t0 = time.perf_counter()
    with tqdm(total=args.n, desc=f"{task} lcd", unit="sample", file=sys.stderr) as bar:
        b = 0
        while len(samples) < args.n:
            k = min(args.lcd_batch, args.n - len(samples))
            samples += lcd_sample(lm, constraint, k, max_tokens=args.max_tokens, seed=args.seed * 1000 + b)
            b += 1
            bar.update(k)
    runs["lcd"] = {"samples": samples, "wall_s": time.perf_counter() - t0, "forward_tokens": hflm.n_forward_tokens - f0}

    # ASAp: one trie, sequential
    hflm.clear_cache()
    f0 = hflm.n_forward_tokens
    state = ASAp(lm, constraint, seed=args.seed)
    samples, efg, nodes = [], [], []
    t0 = time.perf_counter()
    for _ in tqdm(range(args.n), desc=f"{task} asap", unit="sample", file=sys.stderr):
        samples += state.sample(1, max_tokens=args.max_tokens)
        efg.append(state.efg_root)
        nodes.append(state.num_nodes)
    runs["asap"] = {
        "samples": samples, "wall_s": time.perf_counter() - t0, "forward_tokens": hflm.n_forward_tokens - f0,
        "efg_root": efg, "trie_nodes": nodes, "trie_bytes": state.approx_bytes,
    }
    hflm.clear_cache()

    # target over the distinct complete outputs of both methods
    logp: dict[tuple, float] = {}
    text_of: dict[tuple, str] = {}
    for run in runs.values():
        for r in run["samples"]:
            if r.finished:
                k = tuple(r.token_ids)
                logp.setdefault(k, r.logprob)  # batched and unbatched passes differ by ~1e-5
                text_of.setdefault(k, r.text)
    support = list(logp)
    lp = np.array([logp[k] for k in support])
    q = np.exp(lp - lp.max())
    q /= q.sum()
    target = dict(zip(support, q.tolist()))
    expected_logp = float(np.dot(q, lp))
    floor_mean, floor_q90 = exact_sampler_kl(q, args.n, args.reference_reps, rng)

    out_methods = {}
    for method, run in runs.items():
        keys = [tuple(r.token_ids) if r.finished else None for r in run["samples"]]
        cum, win = kl_curves(keys, target, args.window)
        done = [k for k in keys if k is not None]
        n_tok = sum(len(r.token_ids) + int(r.finished) for r in run["samples"])
        counts: dict = {}
        for k in done:
            counts[k] = counts.get(k, 0) + 1
        top = sorted(counts.items(), key=lambda kv: -kv[1])[:5]
        entry = {
            "wall_s": run["wall_s"],
            "s_per_sample": run["wall_s"] / args.n,
            "forward_tokens": run["forward_tokens"],
            "tokens": n_tok,
            "complete": len(done),
            "cut_at_max_tokens": len(keys) - len(done),
            "distinct_outputs": len(counts),
            "kl_cumulative": cum,
            "kl_window": win,
            "mean_logp_running": running_mean(keys, logp),
            "final_kl": cum[-1],
            "final_window_kl": win[-1],
            "final_mean_logp": running_mean(keys, logp)[-1],
            "most_frequent": [
                {"text": text_of[k], "count": c, "logp": logp[k], "target": target[k]} for k, c in top
            ],
        }
        for extra in ("efg_root", "trie_nodes", "trie_bytes"):
            if extra in run:
                entry[extra] = run[extra]
        out_methods[method] = entry
    return {
        "task": task,
        "prompt_tokens": len(ids),
        "header_in_prompt": header,
        "compile_s": compile_s,
        "prefill_s": prefill_s,
        "support": len(support),
        "target_expected_logp": expected_logp,
        "target_top": sorted(
            ({"text": text_of[k], "target": target[k], "logp": logp[k]} for k in support), key=lambda d: -d["target"]
        )[:5],
        "exact_sampler_kl_mean": floor_mean,
        "exact_sampler_kl_q90": floor_q90,
        "methods": out_methods,
    }


def plot(results: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = len(results)
    fig, axes = plt.subplots(2, cols, figsize=(max(4.2 * cols, 6.5), 7), squeeze=False)
    colors = {"lcd": "tab:red", "asap": "tab:blue"}
    for j, res in enumerate(results):
        ax = axes[0, j]
        x = np.arange(1, len(res["exact_sampler_kl_mean"]) + 1)
        for m, d in res["methods"].items():
            ax.plot(x, d["kl_cumulative"], color=colors[m], label=m.upper())
            ax.plot(x, d["kl_window"], color=colors[m], ls=":", lw=1, label=f"{m.upper()} (last {WINDOW[0]})")
        ax.plot(x, res["exact_sampler_kl_mean"], color="gray", ls="--", label="exact sampler (mean)")
        ax.fill_between(x, 0, res["exact_sampler_kl_q90"], color="gray", alpha=0.15, label="exact sampler (90%)")
        ax.set_title(f"{res['task']}\n{res['support']} distinct outputs", fontsize=9)
        ax.set_xlabel("sample index")
        if j == 0:
            ax.set_ylabel("KL(empirical || target)")
            ax.legend(fontsize=7)
        ax = axes[1, j]
        for m, d in res["methods"].items():
            ax.plot(x, d["mean_logp_running"], color=colors[m], label=m.upper())
        ax.axhline(res["target_expected_logp"], color="black", ls="--", lw=1, label="target E[log P]")
        ax.set_xlabel("sample index")
        if j == 0:
            ax.set_ylabel("running mean log P_LM(x)")
            ax.legend(fontsize=7)
    fig.suptitle("ASAp vs LCD on GAD SyGuS tasks (SmolLM2-135M-Instruct, CPU)", fontsize=10)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


WINDOW = [50]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--slia", nargs="*", default=DEFAULT_SLIA, help="SLIA task names (file stems)")
    ap.add_argument("--bv4", nargs="*", default=DEFAULT_BV4, help="BV4 task names (file stems)")
    ap.add_argument("--n", type=int, default=100, help="samples per method and task")
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--lcd-batch", type=int, default=20)
    ap.add_argument("--window", type=int, default=50, help="sliding window for the windowed KL")
    ap.add_argument("--reference-reps", type=int, default=200, help="Monte Carlo runs for the exact-sampler curve")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--header-in-grammar", action="store_true", help="keep the define-fun header in the grammar")
    ap.add_argument("--eos-only", action="store_true", help="end outputs with the model's EOS only (not at a newline)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--plot", help="write a PNG plot here")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    WINDOW[0] = args.window
    tasks = [("slia", t) for t in args.slia] + [("bv4", t) for t in args.bv4]
    if not tasks:
        ap.error("no tasks")
    model = constrain.load_model("default")
    rng = np.random.default_rng(args.seed)
    results = []
    t_all = time.perf_counter()
    for cat, name in tasks:
        res = run_task(model, cat, name, args, rng)
        results.append(res)
        line = [f"{res['task']}: {res['support']} outputs, prompt {res['prompt_tokens']} tokens"]
        for m, d in res["methods"].items():
            line.append(
                f"  {m:5s} KL {d['final_kl']:.3f} (last {args.window}: {d['final_window_kl']:.3f})  mean logP "
                f"{d['final_mean_logp']:.2f}  distinct {d['distinct_outputs']}  cut {d['cut_at_max_tokens']}  "
                f"{d['s_per_sample']:.2f} s/sample"
            )
        line.append(
            f"  exact sampler KL at n={args.n}: {res['exact_sampler_kl_mean'][-1]:.3f}; "
            f"target E[logP] {res['target_expected_logp']:.2f}"
        )
        print("\n".join(line), flush=True)
    meta = {
        "command": " ".join([Path(sys.argv[0]).as_posix()] + (argv if argv is not None else sys.argv[1:])),
        "model": "SmolLM2-135M-Instruct (float32, CPU)",
        "n": args.n,
        "max_tokens": args.max_tokens,
        "lcd_batch": args.lcd_batch,
        "window": args.window,
        "seed": args.seed,
        "header_in_grammar": args.header_in_grammar,
        "end": "eos" if args.eos_only else "eos or newline",
        "threads": args.threads,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "total_wall_s": time.perf_counter() - t_all,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3,
    }
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"meta": meta, "tasks": results}, indent=1))
    if args.plot:
        plot(results, args.plot)
    print(f"total {meta['total_wall_s']:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
