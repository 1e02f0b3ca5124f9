"""``--ray``: schemas sharded over a local Ray instance give the same records as a local run.

Skipped when ray is not installed (it comes with the ``[bench]`` extra, not the ``[test]`` one:
its wheel is ~80 MB and a local instance takes ~10-20 s to start, too much for every CI run).
Uses ``tiny-random`` (random weights fixed by a seed), so each worker builds the same model fast.
"""

from __future__ import annotations

import json

import pytest

ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'constrain[bench]'); --ray is untested here")

from constrain.evaluation.jsonschemabench import BenchConfig, discover, run_benchmark  # noqa: E402

SCHEMAS = {
    "a": {"type": "object", "properties": {"a": {"enum": ["x", "y"]}}, "required": ["a"], "additionalProperties": False},
    "b": {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]},
    "c": {"type": "object", "properties": {"ok": {"type": "boolean"}, "tag": {"type": "string"}}},
    "d": "{broken",
}
TIMING = ("gct_s", "ttft_s", "tpot_ms", "tgt_s", "peak_rss_mb")


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


def test_ray_sharding_equals_local_run(tiny, tmp_path):
    for subset in ("Glaiveai2K", "Snowplow"):
        folder = tmp_path / "data" / subset / "val"
        folder.mkdir(parents=True)
        for name, s in SCHEMAS.items():
            (folder / f"{name}.json").write_text(s if isinstance(s, str) else json.dumps(s))
    items = discover(tmp_path / "data")
    cfg = BenchConfig(engine="constrain", model="tiny-random", max_tokens=12, threads=1)
    local = run_benchmark(items, cfg, tmp_path / "local", model=tiny, progress=False)

    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    except Exception as exc:  # noqa: BLE001
        if "timed out during startup" not in str(exc):
            raise
        # Ray's raylet gives its agents a fixed 15 s to start (ray-project/ray#65983): an
        # overloaded machine cannot start a local node at all. Nothing of ours has run yet.
        pytest.skip(f"Ray could not start a local node on this (overloaded?) machine: {exc}")
    try:
        remote = run_benchmark(items, cfg, tmp_path / "ray", ray_address="local", ray_workers=2, progress=False)
    finally:
        ray.shutdown()

    def strip(records):
        return sorted(({k: v for k, v in r.items() if k not in TIMING} for r in records), key=lambda r: r["key"])

    assert len(remote) == len(items) == 8
    assert strip(remote) == strip(local)
    assert sum(r["valid"] for r in remote) >= 2  # the enum schemas at least
    lines = (tmp_path / "ray" / "results.jsonl").read_text().splitlines()
    assert sorted(json.loads(x)["key"] for x in lines) == sorted(it.key for it in items)
