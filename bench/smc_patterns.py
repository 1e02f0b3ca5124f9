#!/usr/bin/env python
"""SMC vs LCD on regex pattern matching, at equal compute (a budget of model forward tokens).

The task is genlm-eval's pattern matching (Lipkin et al. 2025; ``patterns.csv``, 454 patterns):
write a string that fully matches a regex. Most of the patterns use features that no finite
automaton expresses (backreferences, lookaround, recursion, atomic groups...), so the token
constraint is only a *regular relaxation* and the pattern itself is checked by a Python
potential, exactly the situation SMC's critic is for:

* constraint (both methods): ``[ -~]{1,K}\\n`` - one line of at most ``K`` printable ASCII
  characters, then a newline and EOS (genlm-eval's pattern potential also works over
  printable characters). The newline tells the critic that the answer is complete.
* critic (SMC only), ``critic_mode="prefix"``: with the ``regex`` module, a prefix gets log-weight
  0 if it can still be extended to a full match (``regex.fullmatch(p, s, partial=True)``) and
  -inf otherwise; a complete line gets 0 if it fully matches, -inf otherwise. Dead particles are
  replaced at resampling. ``regex`` calls time out after 50 ms (a prefix is then kept, a
  complete answer counts as no match, for every method alike).

Equal compute: each method gets a budget of ``--budget`` model forward tokens per pattern
(``HFLM.n_forward_tokens``: next-token distributions computed, after the prefix cache; the
prompt's own pass is shared and not counted). A method keeps trying while it has budget left and
no valid answer; a try that starts under the budget may end above it (reported).

Methods, per pattern, with the default model (SmolLM2-135M-Instruct, raw few-shot prompt, CPU):

* ``smc``: ``constrain.samplers.smc`` with ``--particles`` particles (AWRS proposals, systematic
  resampling at ESS < N/2). A run answers with one draw from its weighted particles (the
  posterior); a run whose particles all die (``ParticlesDeadError``) gives no answer, and SMC
  restarts with a new seed while budget remains, at most ``--max-runs`` runs (a run whose
  particles all die at the first token costs no forward token: the first step reads the
  prompt's cached distribution, and only the critic runs). Success: an answer fully matches.
* ``lcd``: masking with the same constraint and no critic, batches of ``--lcd-batch`` samples
  while budget remains. Reported: ``lcd@1`` (its first sample matches: what one LCD call
  returns) and ``lcd+filter`` (some LCD sample within the budget matches: LCD with the pattern as
  a post-hoc filter, i.e. rejection sampling).
* ``lcd-dfa`` (only for the patterns ``constrain.compile_regex`` compiles): masking with the
  pattern's own DFA (first sample). Every finished output matches by construction; shown as the
  reference for what an exact constraint gives.

Patterns: the first ``--n-patterns`` patterns of the file (in file order, after skipping the
first ``--offset``) for which a bounded search finds a printable-ASCII match of at most ``K``
characters (patterns that need other characters, e.g. ``\\p{Greek}``, cannot be answered in this
alphabet by any method).

Example (the documented run)::

    python bench/smc_patterns.py --json bench/results/smc_patterns.json --plot docs/img/smc_patterns.png
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse
import csv
import json
import math
import platform
import resource
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import regex
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import constrain  # noqa: E402
from constrain.errors import ConstrainError  # noqa: E402
from constrain.lm import HFLM  # noqa: E402
from constrain.samplers import ParticlesDeadError, lcd_sample, smc  # noqa: E402

SHARED = Path(os.environ.get("CONSTRAIN_SHARED_DATA", ROOT.parent / "shared" / "data"))
PATTERNS_CSV = SHARED / "genlm-eval" / "assets" / "pattern_matching" / "patterns.csv"
PRINTABLE = "".join(chr(c) for c in range(0x20, 0x7F))
TIMEOUT = 0.05


def full_match(pattern: Any, text: str) -> bool:
    try:
        return pattern.fullmatch(text, timeout=TIMEOUT) is not None
    except TimeoutError:
        return False


def can_extend(pattern: Any, text: str) -> bool:
    try:
        return pattern.fullmatch(text, partial=True, timeout=TIMEOUT) is not None
    except TimeoutError:
        return True


def find_witness(pattern: Any, max_chars: int, budget: int = 20_000) -> str | None:
    """A printable-ASCII full match of at most ``max_chars`` characters (depth-first search pruned by
    partial matching, at most ``budget`` regex calls), or None."""
    calls = 0
    stack = [""]
    while stack:
        s = stack.pop()
        calls += 1
        if calls > budget:
            return None
        if s and full_match(pattern, s):
            return s
        if len(s) >= max_chars:
            continue
        for ch in reversed(PRINTABLE):
            t = s + ch
            calls += 1
            if calls > budget:
                return None
            if can_extend(pattern, t):
                stack.append(t)
    return None


def make_critic(pattern: Any) -> Callable[[str], float]:
    def critic(text: str) -> float:
        text = text[1:]  # the space after "String:"
        if text.endswith("\n"):
            return 0.0 if full_match(pattern, text[:-1]) else -math.inf
        return 0.0 if can_extend(pattern, text) else -math.inf

    return critic


def answer_ok(pattern: Any, text: str) -> bool:
    return text.startswith(" ") and text.endswith("\n") and full_match(pattern, text[1:-1])


def select_patterns(args) -> list[dict]:
    with open(PATTERNS_CSV, newline="", encoding="utf-8") as f:
        rows = [row["regex"] for row in csv.DictReader(f)]
    out = []
    for i, src in enumerate(rows[args.offset :], start=args.offset):
        if len(out) >= args.n_patterns:
            break
        try:
            pat = regex.compile(src)
        except regex.error:
            continue
        witness = find_witness(pat, args.max_chars)
        if witness is None:
            continue
        out.append({"index": i, "pattern": src, "compiled": pat, "witness": witness})
    return out


FEW_SHOT = (
    "Write a string that fully matches each regular expression.\n\n"
    "Regex: ^\\d{3}-\\d{4}$\nString: 555-0142\n\n"
    "Regex: ^(?:ab)+c$\nString: ababc\n\n"
    "Regex: ^[A-Z][a-z]+ [A-Z][a-z]+$\nString: Ada Lovelace\n\n"
)


def prompt_for(pattern: str) -> str:
    """A raw few-shot completion prompt: the answer follows ``String:`` after one space."""
    return f"{FEW_SHOT}Regex: {pattern}\nString:"


def run_pattern(model, item: dict, relaxed: Any, args, rng_seed: int) -> dict:
    pat = item["compiled"]
    lm = HFLM.from_prompt(model, prompt_for(item["pattern"]), chat=False)
    lm.next_logprobs([()])  # the prompt's forward pass is shared by both methods; not counted
    row: dict[str, Any] = {"index": item["index"], "pattern": item["pattern"], "witness": item["witness"]}

    # SMC with the regex critic, restarted while it has budget and no answer
    f0 = lm.n_forward_tokens
    t0 = time.perf_counter()
    smc_row: dict[str, Any] = {"ok": False, "answer": None, "runs": 0, "dead_runs": 0}
    while lm.n_forward_tokens - f0 < args.budget and not smc_row["ok"] and smc_row["runs"] < args.max_runs:
        seed = rng_seed * 100 + smc_row["runs"]
        smc_row["runs"] += 1
        try:
            out = smc(
                lm, relaxed, args.particles, critic=make_critic(pat), critic_mode="prefix",
                max_tokens=args.max_tokens, seed=seed,
            )
        except ParticlesDeadError:
            smc_row["dead_runs"] += 1
            continue
        answer = out.sample(1, seed=seed)[0].text
        smc_row.update(
            ok=answer_ok(pat, answer), answer=answer, alive=int(np.sum(out.weights > 0)),
            resamples=out.n_resamples, distinct=len(out.posterior), log_ml=out.log_ml,
        )
    smc_row["forward_tokens"] = lm.n_forward_tokens - f0
    smc_row["wall_s"] = time.perf_counter() - t0
    row["smc"] = smc_row

    # LCD with the same relaxation and no critic, batches while it has budget and no valid sample
    lm.clear_cache()
    f0 = lm.n_forward_tokens
    t0 = time.perf_counter()
    texts: list[str] = []
    b = 0
    while lm.n_forward_tokens - f0 < args.budget and not any(answer_ok(pat, t) for t in texts):
        res = lcd_sample(lm, relaxed, args.lcd_batch, max_tokens=args.max_tokens, seed=rng_seed * 1000 + b)
        texts += [r.text if r.finished else "" for r in res]
        b += 1
    oks = [answer_ok(pat, t) for t in texts]
    row["lcd"] = {
        "ok_first": oks[0], "ok_any": any(oks), "samples": len(oks), "valid_rate": float(np.mean(oks)),
        "first": texts[0], "forward_tokens": lm.n_forward_tokens - f0, "wall_s": time.perf_counter() - t0,
    }

    # the pattern's own DFA, where it compiles
    try:
        exact = constrain.compile_regex(item["pattern"], model.vocab)
    except ConstrainError:
        exact = None
    if exact is not None:
        lm.clear_cache()
        r = lcd_sample(lm, exact, 1, max_tokens=args.max_tokens, seed=rng_seed)[0]  # no leading space here
        row["lcd_dfa"] = {"ok": r.finished and full_match(pat, r.text), "answer": r.text}
    return row


def wilson(p: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion ``p`` observed over ``n`` trials."""
    if n == 0:
        return 0.0, 1.0
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return max(0.0, c - h), min(1.0, c + h)


def plot(rows: list[dict], summary: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), gridspec_kw={"width_ratios": [1, 1.6]})
    ax = axes[0]
    names = ["LCD@1", "LCD+filter\n(within budget)", "SMC + critic\n(within budget)"]
    vals = [summary["lcd_at_1"], summary["lcd_filter"], summary["smc"]]
    n = summary["patterns"]
    lo_hi = [wilson(v, n) for v in vals]
    errs = [[v - lo for v, (lo, _) in zip(vals, lo_hi)], [hi - v for v, (_, hi) in zip(vals, lo_hi)]]
    ax.bar(names, vals, yerr=errs, color=["tab:red", "salmon", "tab:blue"], capsize=4)
    for i, v in enumerate(vals):
        ax.text(i, v + 0.02, f"{v:.0%}", ha="center", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel(f"success rate over {n} patterns (95% CI)")
    ax.tick_params(axis="x", labelsize=8)
    ax = axes[1]
    x = np.arange(len(rows))
    ax.bar(x - 0.2, [r["smc"]["forward_tokens"] for r in rows], 0.4, color="tab:blue", label="SMC")
    ax.bar(x + 0.2, [r["lcd"]["forward_tokens"] for r in rows], 0.4, color="tab:red", label="LCD")
    ax.axhline(summary["budget"], color="gray", ls="--", lw=1, label="budget")
    for i, r in enumerate(rows):
        mark = ("S" if r["smc"]["ok"] else "") + ("L" if r["lcd"]["ok_any"] else "")
        ax.text(i, max(r["smc"]["forward_tokens"], r["lcd"]["forward_tokens"]) + 5, mark or "-", ha="center", fontsize=6)
    ax.set_xticks(x)
    ax.set_xticklabels([str(r["index"]) for r in rows], fontsize=6, rotation=90)
    ax.set_xlabel("pattern (row in patterns.csv); S/L: SMC / LCD+filter succeeded")
    ax.set_ylabel("model forward tokens used")
    ax.legend(fontsize=7)
    fig.suptitle("SMC (AWRS proposals + regex critic) vs LCD, SmolLM2-135M-Instruct", fontsize=10)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    from tqdm import tqdm

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n-patterns", type=int, default=24)
    ap.add_argument("--offset", type=int, default=0, help="skip this many rows of patterns.csv first")
    ap.add_argument("--particles", type=int, default=16)
    ap.add_argument("--lcd-batch", type=int, default=4)
    ap.add_argument("--budget", type=int, default=256, help="model forward tokens per pattern and method")
    ap.add_argument("--max-runs", type=int, default=20, help="SMC restarts per pattern (runs dying at the first token cost no forward token)")
    ap.add_argument("--max-chars", type=int, default=24, help="K: longest answer line")
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--plot", help="write a PNG plot here")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = constrain.load_model("default")
    relaxed = constrain.compile_regex(f" [ -~]{{1,{args.max_chars}}}\n", model.vocab)
    t0 = time.perf_counter()
    items = select_patterns(args)
    select_s = time.perf_counter() - t0
    rows = []
    t_all = time.perf_counter()
    for k, item in enumerate(tqdm(items, desc="patterns", unit="pattern", file=sys.stderr)):
        row = run_pattern(model, item, relaxed, args, args.seed * 10_000 + k)
        rows.append(row)
        s, lc = row["smc"], row["lcd"]
        print(
            f"[{row['index']:3d}] {row['pattern'][:44]:44s} smc {'OK ' if s['ok'] else 'no '} "
            f"({s['forward_tokens']:4d} fwd, {s['runs']} runs, {s['dead_runs']} dead)  lcd@1 {'OK ' if lc['ok_first'] else 'no '} "
            f"lcd+filter {'OK ' if lc['ok_any'] else 'no '} ({lc['samples']} samples, {lc['forward_tokens']} fwd, "
            f"valid {lc['valid_rate']:.0%})" + (f"  dfa {'OK' if row['lcd_dfa']['ok'] else 'no'}" if "lcd_dfa" in row else ""),
            flush=True,
        )
    n = len(rows)
    dfa_rows = [r for r in rows if "lcd_dfa" in r]
    summary = {
        "patterns": n,
        "budget": args.budget,
        "smc": sum(r["smc"]["ok"] for r in rows) / n,
        "lcd_at_1": sum(r["lcd"]["ok_first"] for r in rows) / n,
        "lcd_filter": sum(r["lcd"]["ok_any"] for r in rows) / n,
        "wilson95": {},
        "lcd_sample_valid_rate": float(np.mean([r["lcd"]["valid_rate"] for r in rows])),
        "smc_forward_tokens": summary_stats([r["smc"]["forward_tokens"] for r in rows]),
        "lcd_forward_tokens": summary_stats([r["lcd"]["forward_tokens"] for r in rows]),
        "smc_wall_s": summary_stats([r["smc"]["wall_s"] for r in rows]),
        "lcd_wall_s": summary_stats([r["lcd"]["wall_s"] for r in rows]),
        "dfa_patterns": len(dfa_rows),
        "dfa_ok": sum(r["lcd_dfa"]["ok"] for r in dfa_rows),
        "dfa_smc_ok": sum(r["smc"]["ok"] for r in dfa_rows),
        "dfa_lcd_filter_ok": sum(r["lcd"]["ok_any"] for r in dfa_rows),
    }
    summary["wilson95"] = {k: wilson(summary[k], n) for k in ("smc", "lcd_at_1", "lcd_filter")}
    meta = {
        "command": " ".join([Path(sys.argv[0]).as_posix()] + (argv if argv is not None else sys.argv[1:])),
        "model": "SmolLM2-135M-Instruct (float32, CPU)",
        "particles": args.particles,
        "budget": args.budget,
        "max_runs": args.max_runs,
        "lcd_batch": args.lcd_batch,
        "max_chars": args.max_chars,
        "max_tokens": args.max_tokens,
        "seed": args.seed,
        "offset": args.offset,
        "threads": args.threads,
        "pattern_selection_s": select_s,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "total_wall_s": time.perf_counter() - t_all,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3,
    }
    print(
        f"{n} patterns: success SMC {summary['smc']:.0%}, LCD@1 {summary['lcd_at_1']:.0%}, LCD+filter "
        f"{summary['lcd_filter']:.0%} (per LCD sample {summary['lcd_sample_valid_rate']:.0%}); forward tokens per "
        f"pattern SMC {summary['smc_forward_tokens']['mean']:.0f}, LCD {summary['lcd_forward_tokens']['mean']:.0f}; "
        f"exact DFA (LCD) {summary['dfa_ok']}/{summary['dfa_patterns']}",
        flush=True,
    )
    for r in rows:
        r.pop("compiled", None)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"meta": meta, "summary": summary, "patterns": rows}, indent=1))
    if args.plot:
        plot(rows, summary, args.plot)
    print(f"total {meta['total_wall_s']:.0f} s", flush=True)
    return 0


def summary_stats(values: list[float]) -> dict:
    a = np.asarray(values, dtype=np.float64)
    return {"mean": float(a.mean()), "p50": float(np.percentile(a, 50)), "p99": float(np.percentile(a, 99))}


if __name__ == "__main__":
    sys.exit(main())
