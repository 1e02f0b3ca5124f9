"""Metrics, tables and plots for JSONSchemaBench runs (``constrain bench report RUN_DIR...``).

Definitions (the harness's, over the schemas of one subset):

* **declared coverage**: share of schemas the engine compiled (no refusal, error or timeout);
* **empirical coverage**: share of *all* schemas whose output parses as JSON and validates;
* **compliance**: empirical coverage among the schemas that compiled;
* each with a 95% percentile bootstrap interval (1,000 resamples of the schemas, fixed seed);
* **GCT** compile time, **TTFT** time to first token (compile + prefill), **TPOT** time per
  output token after the first, as mean / p50 / p90 / p99 over schemas; **output tokens** over
  valid outputs (as the harness counts them);
* **TPOT overhead**: per schema, the engine's TPOT minus the unconstrained run's (label ``none``)
  on the same schema, averaged over the schemas both have; only when a ``none`` run is given.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from .jsonschemabench import CONFIG_FILE, ENGINES, RESULTS_FILE, SUBSETS, BenchDataError, _read_results

__all__ = ["Run", "load_runs", "bootstrap_ci", "subset_metrics", "format_report", "format_summary",
           "metrics_json", "plot_runs", "ALL"]

ALL = "all"


@dataclass
class Run:
    """The records of one engine (label) over one or more run directories."""

    label: str
    records: list[dict[str, Any]]
    config: dict[str, Any] = field(default_factory=dict)
    dirs: list[str] = field(default_factory=list)


def load_runs(dirs: Sequence[str | Path]) -> list[Run]:
    """Runs from directories; directories with the same label are merged (later ones win per schema)."""
    by_label: dict[str, Run] = {}
    for d in dirs:
        d = Path(d)
        results = d / RESULTS_FILE
        if not results.is_file():
            raise BenchDataError(f"{d} is not a run directory (no {RESULTS_FILE})")
        config: dict[str, Any] = {}
        label = None
        if (d / CONFIG_FILE).is_file():
            try:
                meta = json.loads((d / CONFIG_FILE).read_text(encoding="utf-8"))
                config = meta.get("config", {})
                label = meta.get("label")
            except ValueError:
                pass
        records, _ = _read_results(results)
        if label is None:
            label = records[0]["engine"] if records else d.name
        run = by_label.setdefault(label, Run(label, [], config, []))
        merged = {r["key"]: r for r in run.records}
        merged.update({r["key"]: r for r in records})
        run.records = list(merged.values())
        run.dirs.append(str(d))
    order = {e: i for i, e in enumerate(ENGINES)}
    def engine_of(label: str) -> str:
        return label.split("/")[0].split("+")[0]

    return sorted(by_label.values(), key=lambda r: (order.get(engine_of(r.label), len(order)), r.label))


# ---------------------------------------------------------------------------------------------
# Statistics


def bootstrap_ci(values: Sequence[float], *, n_boot: int = 1000, seed: int = 0, level: float = 0.95
                 ) -> tuple[float, float, float]:
    """(mean, low, high): the mean and its percentile bootstrap interval (NaNs when empty)."""
    import numpy as np

    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return math.nan, math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    a = (1.0 - level) / 2.0
    return float(x.mean()), float(np.quantile(means, a)), float(np.quantile(means, 1.0 - a))


def _dist(values: Iterable[float | None]) -> dict[str, float]:
    import numpy as np

    x = np.asarray([v for v in values if v is not None], dtype=np.float64)
    if x.size == 0:
        return {"n": 0, "mean": math.nan, "p50": math.nan, "p90": math.nan, "p99": math.nan}
    return {"n": int(x.size), "mean": float(x.mean()), "p50": float(np.quantile(x, 0.5)),
            "p90": float(np.quantile(x, 0.9)), "p99": float(np.quantile(x, 0.99))}


def subset_metrics(records: Sequence[dict[str, Any]], baseline: dict[str, dict[str, Any]] | None = None
                   ) -> dict[str, Any]:
    """The metrics of one engine over ``records`` (one subset, or all); ``baseline``: key -> none-run record."""
    compiled = [bool(r.get("compiled")) for r in records]
    valid = [bool(r.get("valid")) for r in records]
    comp_valid = [v for v, c in zip(valid, compiled) if c]
    out: dict[str, Any] = {
        "n": len(records),
        "declared": bootstrap_ci([float(c) for c in compiled]),
        "empirical": bootstrap_ci([float(v) for v in valid]),
        "compliance": bootstrap_ci([float(v) for v in comp_valid]),
        "gct_ms": _dist((r["gct_s"] * 1000.0 if r.get("gct_s") is not None else None) for r in records),
        "ttft_s": _dist(r.get("ttft_s") for r in records),
        "tpot_ms": _dist(r.get("tpot_ms") for r in records),
        "output_tokens": _dist(r.get("output_tokens") for r in records if r.get("valid")),
        "peak_rss_mb": max((r.get("peak_rss_mb") or 0.0 for r in records), default=0.0),
        "compile_status": dict(Counter(r.get("compile_status") for r in records)),
        "stop_reason": dict(Counter(r.get("stop_reason") for r in records if r.get("stop_reason"))),
    }
    if baseline is not None:
        diffs = [r["tpot_ms"] - baseline[r["key"]]["tpot_ms"] for r in records
                 if r.get("tpot_ms") is not None and r["key"] in baseline
                 and baseline[r["key"]].get("tpot_ms") is not None]
        out["tpot_overhead_ms"] = {"n": len(diffs), "mean": (sum(diffs) / len(diffs)) if diffs else math.nan}
    return out


def _subsets_of(runs: Sequence[Run]) -> list[str]:
    present = {r["subset"] for run in runs for r in run.records}
    return [s for s in SUBSETS if s in present] + sorted(present - set(SUBSETS))


def metrics_json(runs: Sequence[Run]) -> dict[str, Any]:
    """label -> subset (and ``"all"``) -> metrics."""
    base_run = next((r for r in runs if r.label == "none"), None)
    baseline = {r["key"]: r for r in base_run.records} if base_run is not None else None
    out: dict[str, Any] = {}
    for run in runs:
        by_subset: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in run.records:
            by_subset[r["subset"]].append(r)
        b = baseline if run is not base_run else None
        out[run.label] = {s: subset_metrics(by_subset[s], b) for s in _subsets_of([run])}
        out[run.label][ALL] = subset_metrics(run.records, b)
    return out


# ---------------------------------------------------------------------------------------------
# Tables


def _pct(x: float) -> str:
    return "-" if math.isnan(x) else f"{100 * x:.0f}%"


def _ci(m: tuple[float, float, float]) -> str:
    mean, lo, hi = m
    if math.isnan(mean):
        return "-"
    return f"{100 * mean:.0f}% [{100 * lo:.0f}, {100 * hi:.0f}]"


def _num(x: float, digits: int = 1) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def format_report(runs: Sequence[Run]) -> str:
    """Markdown: coverage (engines x subsets), per-subset details, latency and memory, failure reasons."""
    if not runs:
        return "(no runs)"
    m = metrics_json(runs)
    subsets = _subsets_of(runs) + [ALL]
    labels = [r.label for r in runs]
    parts = []

    rows = []
    for s in subsets:
        row = [s, str(max(m[lab].get(s, {}).get("n", 0) for lab in labels))]
        for lab in labels:
            cell = m[lab].get(s)
            row.append("-" if not cell or not cell["n"] else
                       f"{_pct(cell['empirical'][0])} ({_pct(cell['declared'][0])})")
        rows.append(row)
    parts.append("Empirical coverage (declared coverage), by subset and engine:\n\n"
                 + _table(["subset", "schemas"] + labels, rows))

    rows = []
    has_overhead = any("tpot_overhead_ms" in m[lab][ALL] for lab in labels)
    for s in subsets:
        for lab in labels:
            c = m[lab].get(s)
            if not c or not c["n"]:
                continue
            row = [s, lab, str(c["n"]), _ci(c["declared"]), _ci(c["empirical"]), _ci(c["compliance"]),
                   _num(c["gct_ms"]["p50"], 2), _num(c["ttft_s"]["p50"], 2),
                   f"{_num(c['tpot_ms']['mean'])} / {_num(c['tpot_ms']['p50'])} / {_num(c['tpot_ms']['p90'])}"]
            if has_overhead:
                row.append(_num(c.get("tpot_overhead_ms", {}).get("mean", math.nan), 2))
            row.append(_num(c["output_tokens"]["mean"], 0))
            rows.append(row)
    header = ["subset", "engine", "n", "declared [95% CI]", "empirical [95% CI]", "compliance [95% CI]",
              "GCT p50 ms", "TTFT p50 s", "TPOT mean / p50 / p90 ms"]
    if has_overhead:
        header.append("TPOT overhead ms")
    header.append("output tokens")
    parts.append("Per subset:\n\n" + _table(header, rows))

    rows = []
    for lab in labels:
        c = m[lab][ALL]
        g, t, p = c["gct_ms"], c["ttft_s"], c["tpot_ms"]
        rows.append([lab, str(c["n"]), f"{_num(g['mean'], 2)} / {_num(g['p50'], 2)} / {_num(g['p99'], 2)}",
                     f"{_num(t['mean'], 2)} / {_num(t['p50'], 2)} / {_num(t['p99'], 2)}",
                     f"{_num(p['mean'])} / {_num(p['p50'])} / {_num(p['p99'])}",
                     _num(c.get("tpot_overhead_ms", {}).get("mean", math.nan), 2), _num(c["peak_rss_mb"], 0)])
    parts.append("All subsets (mean / p50 / p99):\n\n" + _table(
        ["engine", "schemas", "GCT ms", "TTFT s", "TPOT ms", "TPOT overhead ms", "peak RSS MB"], rows))

    rows = []
    for lab in labels:
        c = m[lab][ALL]
        cs = ", ".join(f"{k} {v}" for k, v in sorted(c["compile_status"].items(), key=lambda kv: -kv[1]))
        sr = ", ".join(f"{k} {v}" for k, v in sorted(c["stop_reason"].items(), key=lambda kv: -kv[1]))
        rows.append([lab, cs or "-", sr or "-"])
    parts.append("Outcomes:\n\n" + _table(["engine", "compile", "generation stop"], rows))
    return "\n\n".join(parts)


def format_summary(records: Sequence[dict[str, Any]], label: str) -> str:
    """The report of one run (what ``constrain bench jsonschemabench`` prints at the end)."""
    if not records:
        return "(no results)"
    return format_report([Run(label, list(records))])


# ---------------------------------------------------------------------------------------------
# Plots


def plot_runs(runs: Sequence[Run], out_dir: str | Path, *, prefix: str = "jsb_") -> list[Path]:
    """``<prefix>coverage.png`` (coverage bars with 95% intervals, declared coverage as outlines),
    ``<prefix>tpot.png`` (TPOT per schema, by engine) and ``<prefix>gct.png`` (compile time)."""
    try:
        import matplotlib
    except ImportError as exc:
        raise BenchDataError(f"plots need matplotlib: pip install 'constrain[bench]' ({exc})") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    m = metrics_json(runs)
    labels = [r.label for r in runs]
    subsets = _subsets_of(runs) + [ALL]
    colors = {lab: plt.cm.tab10(i % 10) for i, lab in enumerate(labels)}
    paths = []

    fig, ax = plt.subplots(figsize=(max(8.0, 1.1 * len(subsets) * max(1, len(labels)) / 3 + 3), 4.8))
    width = 0.8 / max(1, len(labels))
    x = np.arange(len(subsets))
    for i, lab in enumerate(labels):
        emp = [m[lab].get(s, {}).get("empirical", (math.nan,) * 3) for s in subsets]
        dec = [m[lab].get(s, {}).get("declared", (math.nan,) * 3)[0] for s in subsets]
        mean = np.array([e[0] for e in emp]) * 100
        err = np.array([[e[0] - e[1], e[2] - e[0]] for e in emp]).T * 100
        pos = x - 0.4 + width * (i + 0.5)
        ax.bar(pos, np.array(dec) * 100, width, fill=False, edgecolor=colors[lab], linewidth=1.0, linestyle="--")
        ax.bar(pos, mean, width, color=colors[lab], label=lab, yerr=err, capsize=2, error_kw={"linewidth": 0.8})
    ax.set_xticks(x)
    ax.set_xticklabels(subsets, rotation=30, ha="right")
    ax.set_ylabel("coverage (%)")
    ax.set_ylim(0, 102)
    n = max((m[lab][ALL]["n"] for lab in labels), default=0)
    ax.set_title(f"JSONSchemaBench ({n} schemas): empirical coverage (filled, 95% bootstrap CI)\n"
                 "and declared coverage (dashed outline) per subset", fontsize=10)
    ax.legend(fontsize=8, ncol=min(6, len(labels)), loc="upper center", bbox_to_anchor=(0.5, -0.22), frameon=False)
    fig.tight_layout()
    p = out / f"{prefix}coverage.png"
    fig.savefig(p, dpi=120)
    plt.close(fig)
    paths.append(p)

    for metric, unit, fname, log in (("tpot_ms", "ms", "tpot", False), ("gct_s", "ms", "gct", True)):
        data, names = [], []
        for run in runs:
            vals = [r[metric] for r in run.records if r.get(metric) is not None]
            if metric == "gct_s":
                vals = [v * 1000.0 for v in vals]
            if vals:
                data.append(vals)
                names.append(run.label)
        if not data:
            continue
        fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(names) + 2), 4.2))
        ax.boxplot(data, showfliers=False)
        ax.set_xticks(range(1, len(names) + 1))
        ax.set_xticklabels(names)
        rng = np.random.default_rng(0)
        for i, vals in enumerate(data, start=1):
            ax.scatter(i + rng.uniform(-0.15, 0.15, len(vals)), vals, s=8, alpha=0.5, color=colors[names[i - 1]])
        if log:
            ax.set_yscale("log")
        title = {"tpot": "time per output token (per schema)", "gct": "grammar compilation time (per schema)"}[fname]
        ax.set_ylabel(f"{fname.upper()} ({unit})")
        ax.set_title(f"JSONSchemaBench: {title}")
        fig.tight_layout()
        p = out / f"{prefix}{fname}.png"
        fig.savefig(p, dpi=120)
        plt.close(fig)
        paths.append(p)
    return paths
