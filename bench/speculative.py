#!/usr/bin/env python
"""Speculative constrained decoding on CPU: plain decoding vs each draft kind.

JSON Schemas from JSONSchemaBench (``../shared/data/jsonschemabench/<Subset>/val``) that
``constrain.schema.schema_to_regex`` supports (others are skipped) and that have required
top-level properties become prompts ("Generate a JSON object that follows this schema: ...").
For each schema every method generates greedily (temperature 0) from the default model
(SmolLM2-135M-Instruct, float32, one torch thread); the methods run interleaved per schema and
each is timed ``--repeat`` times (the minimum counts: the machine is shared). Greedy outputs of
every verified method must equal plain decoding's token for token; the table says so.

Measured per method: tokens/s (generated tokens / wall time of the whole call, prompt
processing included), speedup over plain (ratio of total times), acceptance rate (accepted /
drafted tokens), mean accepted length (accepted draft tokens per round that had a draft),
target forward passes per output token (plain: 1), and how often the emitted token sequence
differs from the model tokenizer's own tokenisation of the output text.

A row "forced insertion (unverified)" is the SGLang-style jump-forward without verification:
forced bytes are appended as canonical tokens with no model check. It is not exact (outputs
change) and is shown only to compare output tokenisation.

Example::

    python bench/speculative.py --n-schemas 6 --repeat 2 \\
        --json bench/results/speculative.json --plot bench/results/speculative.png
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import constrain  # noqa: E402
from constrain.generation import generate, get_constraint  # noqa: E402
from constrain.schema import schema_to_regex  # noqa: E402
from constrain.speculative import (  # noqa: E402
    EarlyExitDraft,
    JumpForwardDraft,
    PromptLookupDraft,
    speculative_generate,
)

SHARED = Path(os.environ.get("CONSTRAIN_SHARED_DATA", ROOT.parent / "shared" / "data"))


def pick_schemas(subsets: list[str], n: int, max_chars: int) -> list[tuple[str, dict, str]]:
    """Round-robin over the subsets; one schema per family (file stem before the last ``_``)."""
    candidates = {}
    for subset in subsets:
        folder = SHARED / "jsonschemabench" / subset / "val"
        if not folder.is_dir():
            print(f"skipping subset {subset}: {folder} not found", file=sys.stderr)
            continue
        candidates[subset] = sorted(folder.glob("*.json"))
    out: list[tuple[str, dict, str]] = []
    seen: set[str] = set()
    iters = {k: iter(v) for k, v in candidates.items()}
    while len(out) < n and iters:
        for subset in list(iters):
            for path in iters[subset]:
                family = path.stem.rsplit("_", 1)[0]
                if (subset, family) in seen:
                    continue
                try:
                    schema = json.loads(path.read_text())
                    if not isinstance(schema, dict) or len(schema.get("required", [])) < 2:
                        continue
                    text = json.dumps(schema, separators=(",", ":"))
                    if len(text) > max_chars:
                        continue
                    regex = schema_to_regex(schema)
                except Exception:  # unsupported keyword, recursion, bad file: skip it
                    continue
                seen.add((subset, family))
                out.append((f"{subset}/{path.stem}", schema, regex))
                break
            else:
                del iters[subset]
            if len(out) >= n:
                break
    return out


def prompt_for(schema: dict) -> str:
    return (
        "Generate a JSON object with realistic values that follows this JSON schema. "
        "Output only the JSON.\nSchema: " + json.dumps(schema, separators=(",", ":"))
    )


def forced_insertion_generate(model, prompt: str, constraint, max_tokens: int) -> list[int]:
    """Greedy constrained decoding that appends forced bytes as canonical tokens, unverified."""
    from constrain.lm import encode_prompt

    vocab = model.vocab
    ids = encode_prompt(model, prompt)
    m = constraint.matcher()
    words = constrain.allocate_mask(vocab.size)
    out: list[int] = []
    cache = None
    pending = list(ids)
    with torch.inference_mode():
        while len(out) < max_tokens and not m.is_finished():
            forced = m.forced_bytes()
            if forced:
                toks = vocab.encode(forced)[: max_tokens - len(out)]
                for t in toks:
                    assert m.accept_token(t)
                out += toks
                pending += toks
                continue
            m.fill_mask(words)
            allowed = np.unpackbits(words.view(np.uint8), bitorder="little")[: vocab.size].astype(bool)
            if not (allowed & ~np.isin(np.arange(vocab.size), list(vocab.eos_ids))).any():
                break
            o = model.hf(input_ids=torch.tensor([pending]), past_key_values=cache, use_cache=True, logits_to_keep=1)
            cache = o.past_key_values
            lg = o.logits[0, -1, : vocab.size].masked_fill(~torch.from_numpy(allowed), float("-inf"))
            t = int(lg.argmax())
            assert m.accept_token(t)
            if t in vocab.eos_ids:
                break
            out.append(t)
            pending = [t]
    return out


def jump_forward_drafts(drafts: dict) -> list:
    out = []
    for d in drafts.values():
        for x in d if isinstance(d, list) else [d]:
            if isinstance(x, JumpForwardDraft):
                out.append(x)
    return out


def canonical_differs(model, token_ids: list[int]) -> bool:
    text = model.vocab.decode(token_ids)
    return model.vocab.encode(text) != list(token_ids)


def make_methods(layers: int):
    """name -> draft factory (None = plain). One draft object per method, reused across schemas
    (a server would keep it), so jump-forward's learnt tokenisations carry over."""
    return {
        "plain": None,
        "jump-forward (canonical only)": lambda: JumpForwardDraft(learn=False),
        "jump-forward": lambda: JumpForwardDraft(),
        "prompt-lookup": lambda: PromptLookupDraft(),
        f"early-exit (L={layers})": lambda: EarlyExitDraft(layers=layers),
        "jump-forward + prompt-lookup": lambda: [JumpForwardDraft(), PromptLookupDraft()],
        f"jump-forward + early-exit (L={layers})": lambda: [JumpForwardDraft(), EarlyExitDraft(layers=layers)],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--subsets", default="Glaiveai2K,Github_easy")
    ap.add_argument("--n-schemas", type=int, default=6)
    ap.add_argument("--max-chars", type=int, default=900, help="skip schemas longer than this (compact JSON)")
    ap.add_argument("--max-tokens", type=int, default=160)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--layers", type=int, default=8, help="early-exit depth")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--methods", default="", help="comma-separated subset of method names (default: all)")
    ap.add_argument("--json", default=str(ROOT / "bench" / "results" / "speculative.json"))
    ap.add_argument("--plot", default=str(ROOT / "bench" / "results" / "speculative.png"))
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    model = constrain.load_model("default", device="cpu")
    schemas = pick_schemas(args.subsets.split(","), args.n_schemas, args.max_chars)
    if not schemas:
        sys.exit("no usable schema found")
    methods = make_methods(args.layers)
    if args.methods:
        keep = [m.strip() for m in args.methods.split(",")]
        methods = {k: v for k, v in methods.items() if k in keep or k == "plain"}
    drafts = {name: (make() if make else None) for name, make in methods.items()}

    per: dict[str, list[dict]] = {name: [] for name in methods}
    unverified: list[dict] = []
    for si, (name, schema, regex) in enumerate(schemas):
        prompt = prompt_for(schema)
        constraint = get_constraint(model.vocab, regex=regex)
        best: dict[str, dict] = {}
        # Jump-forward memories carry over from earlier schemas, but every repeat of this schema
        # starts from the same memory (no learning from an earlier repeat of the same prompt).
        snapshot = {id(j): dict(j._learned) for j in jump_forward_drafts(drafts)}
        for rep in range(args.repeat):
            for j in jump_forward_drafts(drafts):
                j._learned = dict(snapshot[id(j)])
            for mname, draft in drafts.items():
                t0 = time.perf_counter()
                if draft is None:
                    r = generate(model, prompt, constraint=constraint, max_tokens=args.max_tokens, temperature=0.0)
                    stats = {}
                else:
                    r = speculative_generate(
                        model, prompt, constraint=constraint, draft=draft, max_tokens=args.max_tokens, temperature=0.0
                    )
                    stats = r.stats
                dt = time.perf_counter() - t0
                row = {
                    "schema": name, "seconds": dt, "tokens": len(r.token_ids), "token_ids": r.token_ids,
                    "finished": r.finished, "stats": {k: v for k, v in stats.items() if k != "draft"}, "repeat": rep,
                }
                if mname not in best or dt < best[mname]["seconds"]:
                    best[mname] = row
        plain_ids = best["plain"]["token_ids"]
        for mname, row in best.items():
            row["identical_to_plain"] = row["token_ids"] == plain_ids
            row["noncanonical"] = canonical_differs(model, row["token_ids"])
            per[mname].append(row)
        t0 = time.perf_counter()
        ids = forced_insertion_generate(model, prompt, constraint, args.max_tokens)
        unverified.append({
            "schema": name, "seconds": time.perf_counter() - t0, "tokens": len(ids),
            "identical_to_plain": ids == plain_ids, "noncanonical": canonical_differs(model, ids),
            "same_text_as_plain": model.vocab.decode(ids) == model.vocab.decode(plain_ids),
        })
        line = ", ".join(f"{m}: {best[m]['seconds']:.1f}s" for m in best)
        print(f"[{si + 1}/{len(schemas)}] {name} ({best['plain']['tokens']} tokens) {line}", file=sys.stderr, flush=True)

    plain_time = sum(r["seconds"] for r in per["plain"])
    summary = []
    for mname, rows in per.items():
        tok = sum(r["tokens"] for r in rows)
        secs = sum(r["seconds"] for r in rows)
        drafted = sum(r["stats"].get("drafted", 0) for r in rows)
        accepted = sum(r["stats"].get("accepted", 0) for r in rows)
        draft_rounds = sum(r["stats"].get("draft_rounds", 0) for r in rows)
        fwd = sum(r["stats"].get("target_forwards", r["tokens"]) for r in rows)
        summary.append({
            "method": mname,
            "tokens": tok,
            "seconds": secs,
            "tokens_per_s": tok / secs if secs else 0.0,
            "speedup": plain_time / secs if secs else 0.0,
            "median_speedup": float(np.median([p["seconds"] / r["seconds"] for p, r in zip(per["plain"], rows)])),
            "acceptance_rate": accepted / drafted if drafted else None,
            "mean_accepted": accepted / draft_rounds if draft_rounds else None,
            "forwards_per_token": fwd / tok if tok else None,
            "draft_forwards_per_token": (sum(r["stats"].get("draft_forwards", 0) for r in rows) / tok) if tok else None,
            "identical": sum(r["identical_to_plain"] for r in rows),
            "noncanonical": sum(r["noncanonical"] for r in rows),
            "n": len(rows),
        })
    un = {
        "method": "forced insertion (unverified)",
        "tokens": sum(r["tokens"] for r in unverified),
        "seconds": sum(r["seconds"] for r in unverified),
        "identical": sum(r["identical_to_plain"] for r in unverified),
        "same_text": sum(r["same_text_as_plain"] for r in unverified),
        "noncanonical": sum(r["noncanonical"] for r in unverified),
        "n": len(unverified),
    }

    def fmt(x, spec):
        return "-" if x is None else format(x, spec)

    lines = [
        "| method | tokens/s | speedup (total) | median speedup per schema | acceptance | mean accepted | target fwd / token | draft fwd / token | same output as plain | non-canonical outputs |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in summary:
        lines.append(
            f"| {s['method']} | {s['tokens_per_s']:.2f} | {s['speedup']:.2f}x | {s['median_speedup']:.2f}x | {fmt(s['acceptance_rate'], '.2f')} | "
            f"{fmt(s['mean_accepted'], '.2f')} | {fmt(s['forwards_per_token'], '.2f')} | "
            f"{fmt(s['draft_forwards_per_token'], '.2f')} | {s['identical']}/{s['n']} | {s['noncanonical']}/{s['n']} |"
        )
    lines.append(
        f"| {un['method']} | - | - | - | - | - | - | - | {un['identical']}/{un['n']} (same text {un['same_text']}/{un['n']}) | "
        f"{un['noncanonical']}/{un['n']} |"
    )
    table = "\n".join(lines)
    print(table)

    meta = {
        "model": "SmolLM2-135M-Instruct (default, float32, CPU)",
        "torch_threads": args.threads,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "max_tokens": args.max_tokens,
        "repeat": args.repeat,
        "temperature": 0.0,
        "schemas": [s[0] for s in schemas],
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix()] + sys.argv[1:]),
    }
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        slim = {m: [{k: v for k, v in r.items() if k != "token_ids"} for r in rows] for m, rows in per.items()}
        Path(args.json).write_text(json.dumps(
            {"meta": meta, "summary": summary, "unverified_forced_insertion": un, "per_schema": slim,
             "unverified_per_schema": unverified, "table_markdown": table}, indent=1))
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
        names = [s["method"] for s in summary]
        y = np.arange(len(names))
        axes[0].barh(y, [s["speedup"] for s in summary], color=["#888"] + ["#3a7"] * (len(names) - 1))
        axes[0].axvline(1.0, color="k", lw=0.8)
        axes[0].set_yticks(y, names)
        axes[0].invert_yaxis()
        axes[0].set_xlabel("speedup over plain constrained decoding (wall time)")
        for i, s in enumerate(summary):
            axes[0].text(s["speedup"], i, f" {s['speedup']:.2f}x ({s['tokens_per_s']:.1f} tok/s)", va="center", fontsize=8)
        axes[1].barh(y, [s["forwards_per_token"] or 0 for s in summary], color="#47a")
        axes[1].set_yticks(y, [""] * len(names))
        axes[1].invert_yaxis()
        axes[1].set_xlabel("target forward passes per output token")
        fig.suptitle(f"Speculative constrained decoding, SmolLM2-135M CPU, {len(schemas)} JSONSchemaBench schemas, greedy")
        fig.tight_layout()
        Path(args.plot).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.plot, dpi=110)


if __name__ == "__main__":
    main()
