#!/usr/bin/env python
"""Constraint checks per token and wall time: AWRS vs full masking (LCD).

LCD computes the whole vocabulary's mask at every step (``n_checks`` counts ``vocab.size`` per
step); AWRS (adaptive weighted rejection sampling, ``constrain.samplers.awrs_sample``) tests
tokens one at a time in Gumbel order and counts one check per ``accept_token`` test, including
the second round that gives its unbiased weight. Both draw from the same constrained next-token
distribution, so the comparison is cost only.

Tasks, each with a chat prompt for the default model (SmolLM2-135M-Instruct, float32, CPU, one
torch thread):

* JSON Schema: the repository's ``schemas/*.json`` and the first ``--jsb-per-subset`` schema(s)
  of each ``--jsb-subsets`` subset of JSONSchemaBench (``val`` split) that
  ``constrain.compile_json_schema`` compiles and whose text is at most ``--max-schema-chars``;
* regex pattern matching: the first ``--n-patterns`` patterns of genlm-eval's ``patterns.csv``
  that ``constrain.compile_regex`` compiles (the others use backreferences, lookaround, Unicode
  properties... that no DFA expresses).

For every task and method, ``--n`` samples in one batch (same seed), at most ``--max-tokens``
tokens (``--max-tokens-json`` for schemas). Measured per sample, then summarised over samples
(mean, p50, p99): constraint checks per generated token (the EOS step included) from
``SampleResult.n_checks``; constraint time per token (wall time inside the matcher's
``fill_mask``/``accept_token``/``rollback``/``copy``, timed through a thin proxy; it includes the
cold mask computations of a freshly compiled constraint) and whole-call wall time per token (LM
forward passes included). Each method gets its own freshly compiled constraint (masks are
memoised per compiled constraint) and an emptied LM prefix cache.

Example (the documented run)::

    python bench/awrs_checks.py --json bench/results/awrs_checks.json --plot docs/img/awrs_checks.png
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse
import csv
import json
import platform
import resource
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import constrain  # noqa: E402
from constrain.errors import ConstrainError  # noqa: E402
from constrain.lm import HFLM  # noqa: E402
from constrain.samplers import awrs_sample, lcd_sample  # noqa: E402

SHARED = Path(os.environ.get("CONSTRAIN_SHARED_DATA", ROOT.parent / "shared" / "data"))
PATTERNS_CSV = SHARED / "genlm-eval" / "assets" / "pattern_matching" / "patterns.csv"
DEFAULT_SUBSETS = ["Glaiveai2K", "Github_easy", "Kubernetes", "Snowplow", "WashingtonPost", "JsonSchemaStore"]


class Clock:
    def __init__(self) -> None:
        self.seconds = 0.0


class TimedMatcher:
    """Delegates to a matcher, adding the wall time of its calls to a shared clock."""

    _TIMED = ("fill_mask", "accept_token", "rollback", "copy", "allowed_token_ids", "is_finished", "is_accepting")

    def __init__(self, inner: Any, clock: Clock) -> None:
        self._inner = inner
        self._clock = clock

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name not in self._TIMED:
            return attr
        clock = self._clock

        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                out = attr(*args, **kwargs)
            finally:
                clock.seconds += time.perf_counter() - t0
            return TimedMatcher(out, clock) if name == "copy" else out

        return timed


class TimedConstraint:
    """A compiled constraint whose matchers are timed (everything else delegates)."""

    def __init__(self, inner: Any, clock: Clock) -> None:
        self._inner = inner
        self._clock = clock
        self.vocab = inner.vocab

    def matcher(self) -> TimedMatcher:
        t0 = time.perf_counter()
        m = self._inner.matcher()
        self._clock.seconds += time.perf_counter() - t0
        return TimedMatcher(m, self._clock)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


# ---------------------------------------------------------------------------------------------
# tasks


def json_tasks(args, vocab: Any) -> list[dict]:
    from constrain.schema import compile_json_schema

    paths = sorted((ROOT / "schemas").glob("*.json"))
    for subset in args.jsb_subsets:
        folder = SHARED / "jsonschemabench" / subset / "val"
        if not folder.is_dir():
            print(f"skipping {subset}: {folder} not found", file=sys.stderr)
            continue
        taken = 0
        for p in sorted(folder.glob("*.json")):
            if taken >= args.jsb_per_subset:
                break
            try:
                text = p.read_text(encoding="utf-8")
                if len(text) > args.max_schema_chars:
                    continue
                compile_json_schema(json.loads(text), vocab)
            except (ConstrainError, ValueError, RecursionError):
                continue
            paths.append(p)
            taken += 1
    tasks = []
    for p in paths:
        schema = json.loads(p.read_text(encoding="utf-8"))
        name = p.stem if p.parent.name == "schemas" else f"{p.parent.parent.name}/{p.stem}"

        def compile_fn(vocab: Any, schema: dict = schema) -> Any:
            return compile_json_schema(schema, vocab)

        prompt = (
            "Generate a JSON object with realistic values that follows this JSON schema. Output only the JSON.\n"
            "Schema: " + json.dumps(schema, separators=(",", ":"))
        )
        tasks.append({"kind": "json", "name": name, "prompt": prompt, "compile": compile_fn, "max_tokens": args.max_tokens_json})
    return tasks


def pattern_tasks(args, vocab: Any) -> list[dict]:
    with open(PATTERNS_CSV, newline="", encoding="utf-8") as f:
        patterns = [row["regex"] for row in csv.DictReader(f)]
    tasks = []
    for pat in patterns:
        if len(tasks) >= args.n_patterns:
            break
        try:
            constrain.compile_regex(pat, vocab)
        except ConstrainError:
            continue

        def compile_fn(vocab: Any, pat: str = pat) -> Any:
            return constrain.compile_regex(pat, vocab)

        prompt = f"Write one string that fully matches the regular expression {pat}\nAnswer with the string only."
        tasks.append({"kind": "regex", "name": pat, "prompt": prompt, "compile": compile_fn, "max_tokens": args.max_tokens})
    return tasks



# ---------------------------------------------------------------------------------------------


def summary(values: list[float]) -> dict:
    a = np.asarray(values, dtype=np.float64)
    return {"mean": float(a.mean()), "p50": float(np.percentile(a, 50)), "p99": float(np.percentile(a, 99))}


def run_method(lm: HFLM, task: dict, method: str, args) -> dict:
    clock = Clock()
    t0 = time.perf_counter()
    compiled = task["compile"](lm.vocab)
    compile_s = time.perf_counter() - t0
    constraint = TimedConstraint(compiled, clock)
    lm.clear_cache()
    sampler: Callable = lcd_sample if method == "lcd" else awrs_sample
    t0 = time.perf_counter()
    res = sampler(lm, constraint, args.n, max_tokens=task["max_tokens"], seed=args.seed)
    wall = time.perf_counter() - t0
    tokens = [len(r.token_ids) + int(r.finished) for r in res]
    total = max(1, sum(tokens))
    return {
        "compile_s": compile_s,
        "tokens": sum(tokens),
        "finished": sum(r.finished for r in res),
        "checks_per_token": [r.n_checks / max(1, t) for r, t in zip(res, tokens)],
        "checks_total": sum(r.n_checks for r in res),
        "constraint_s_per_token": clock.seconds / total,
        "wall_s_per_token": wall / total,
        "wall_s": wall,
        "example": res[0].text[:120],
    }


def plot(results: list[dict], path: str, vocab_size: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, max(3.5, 0.32 * len(results) + 1.5)))
    names = [f"{r['kind']}: {r['name'][:38]}" for r in results]
    y = np.arange(len(results))
    ax = axes[0]
    aw = [np.mean(r["awrs"]["checks_per_token"]) for r in results]
    ax.barh(y, aw, color="tab:blue", label="AWRS")
    ax.axvline(vocab_size, color="tab:red", ls="--", label=f"LCD ({vocab_size:,} = vocab size)")
    ax.set_xscale("log")
    ax.set_yticks(y)
    ax.set_yticklabels(names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("constraint checks per token (log scale)")
    ax.legend(fontsize=7, loc="lower right")
    ax = axes[1]
    h = 0.38
    ax.barh(y - h / 2, [1e3 * r["lcd"]["constraint_s_per_token"] for r in results], h, color="tab:red", label="LCD constraint")
    ax.barh(y + h / 2, [1e3 * r["awrs"]["constraint_s_per_token"] for r in results], h, color="tab:blue", label="AWRS constraint")
    ax.scatter([1e3 * r["lcd"]["wall_s_per_token"] for r in results], y - h / 2, color="darkred", marker="|", s=80, label="LCD total")
    ax.scatter([1e3 * r["awrs"]["wall_s_per_token"] for r in results], y + h / 2, color="navy", marker="|", s=80, label="AWRS total")
    ax.set_xscale("log")
    ax.set_yticks(y)
    ax.set_yticklabels([])
    ax.invert_yaxis()
    ax.set_xlabel("ms per token (log); bars: constraint, ticks: whole step")
    ax.legend(fontsize=7, loc="lower right")
    fig.suptitle("AWRS vs masking (SmolLM2-135M-Instruct, CPU, one thread)", fontsize=10)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    from tqdm import tqdm

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=4, help="samples per task and method (one batch)")
    ap.add_argument("--max-tokens", type=int, default=32, help="token cap for the regex tasks")
    ap.add_argument("--max-tokens-json", type=int, default=96, help="token cap for the JSON Schema tasks")
    ap.add_argument("--n-patterns", type=int, default=10)
    ap.add_argument("--jsb-subsets", nargs="*", default=DEFAULT_SUBSETS)
    ap.add_argument("--jsb-per-subset", type=int, default=1)
    ap.add_argument("--max-schema-chars", type=int, default=1500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--plot", help="write a PNG plot here")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = constrain.load_model("default")
    tasks = json_tasks(args, model.vocab) + pattern_tasks(args, model.vocab)
    results = []
    t_all = time.perf_counter()
    for task in tqdm(tasks, desc="tasks", unit="task", file=sys.stderr):
        lm = HFLM.from_prompt(model, task["prompt"])
        row = {"kind": task["kind"], "name": task["name"], "prompt_tokens": len(lm.prompt_ids)}
        for method in ("lcd", "awrs"):
            row[method] = run_method(lm, task, method, args)
        results.append(row)
        a, b = row["lcd"], row["awrs"]
        print(
            f"{task['kind']:5s} {task['name'][:50]:50s} checks/token lcd {np.mean(a['checks_per_token']):8.0f} "
            f"awrs {np.mean(b['checks_per_token']):7.1f} | constraint ms/token lcd {1e3 * a['constraint_s_per_token']:7.3f} "
            f"awrs {1e3 * b['constraint_s_per_token']:7.3f} | total ms/token lcd {1e3 * a['wall_s_per_token']:6.0f} "
            f"awrs {1e3 * b['wall_s_per_token']:6.0f}",
            flush=True,
        )
    overall = {}
    for kind in ("json", "regex", "all"):
        rows = [r for r in results if kind == "all" or r["kind"] == kind]
        if not rows:
            continue
        overall[kind] = {}
        for m in ("lcd", "awrs"):
            per_sample = [c for r in rows for c in r[m]["checks_per_token"]]
            toks = sum(r[m]["tokens"] for r in rows)
            overall[kind][m] = {
                "tasks": len(rows),
                "samples": len(per_sample),
                "tokens": toks,
                "checks_per_token": summary(per_sample),
                "checks_per_token_pooled": sum(r[m]["checks_total"] for r in rows) / max(1, toks),
                "constraint_ms_per_token": summary([1e3 * r[m]["constraint_s_per_token"] for r in rows]),
                "wall_ms_per_token": summary([1e3 * r[m]["wall_s_per_token"] for r in rows]),
                "finished": sum(r[m]["finished"] for r in rows),
            }
    meta = {
        "command": " ".join([Path(sys.argv[0]).as_posix()] + (argv if argv is not None else sys.argv[1:])),
        "model": "SmolLM2-135M-Instruct (float32, CPU)",
        "vocab_size": model.vocab.size,
        "n": args.n,
        "max_tokens": args.max_tokens,
        "max_tokens_json": args.max_tokens_json,
        "seed": args.seed,
        "threads": args.threads,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "total_wall_s": time.perf_counter() - t_all,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3,
    }
    for kind, d in overall.items():
        lcd, awrs = d["lcd"], d["awrs"]
        print(
            f"[{kind}] {lcd['tasks']} tasks, {awrs['tokens']} AWRS tokens: checks/token AWRS mean "
            f"{awrs['checks_per_token']['mean']:.1f} p50 {awrs['checks_per_token']['p50']:.1f} p99 "
            f"{awrs['checks_per_token']['p99']:.1f} (LCD {lcd['checks_per_token']['mean']:.0f}); constraint ms/token "
            f"LCD {lcd['constraint_ms_per_token']['mean']:.3f} AWRS {awrs['constraint_ms_per_token']['mean']:.3f}; total "
            f"ms/token LCD {lcd['wall_ms_per_token']['mean']:.0f} AWRS {awrs['wall_ms_per_token']['mean']:.0f}"
        )
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"meta": meta, "overall": overall, "tasks": results}, indent=1))
    if args.plot:
        plot(results, args.plot, model.vocab.size)
    print(f"total {meta['total_wall_s']:.0f} s, peak RSS {meta['peak_rss_mb']:.0f} MB", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
