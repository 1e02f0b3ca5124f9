"""``--ray ADDRESS``: shard JSONSchemaBench schemas over a Ray cluster.

One actor per worker slot loads the model and prepares the engine once (a
:class:`~.jsonschemabench.BenchRunner`), then runs schemas as the driver hands them out (an
``ActorPool``: a free actor gets the next schema, so slow schemas do not hold up a shard).
Schemas travel with their text, so workers need no shared filesystem, but they do need
``constrain`` (and the engine's package) installed. Every schema's seed depends only on the run
seed and the schema's id, so outputs equal a local run's; the timings are the workers'.

``ADDRESS`` is a cluster address (``ray://host:10001``, ``host:6379``), ``auto`` (the cluster
this machine belongs to) or ``local`` (start a private instance here). If Ray is already
initialised in this process, that instance is used as it is.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Callable, Sequence

from ..errors import ConstrainError, ModelError
from .jsonschemabench import BenchConfig, BenchRunner, SchemaItem

__all__ = ["run_on_ray", "RayNotInstalledError", "RayStartError"]


class RayNotInstalledError(ConstrainError, ImportError):
    """``--ray`` needs the ``ray`` package (``pip install 'constrain[bench]'``)."""


class RayStartError(ConstrainError):
    """Ray could not connect to the cluster or start a local instance."""


class _Worker:
    """The actor body: a BenchRunner built from a config dict (the model is loaded here, once)."""

    def __init__(self, config: dict[str, Any]) -> None:
        import os

        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS", "NUMBA_NUM_THREADS"):
            os.environ.setdefault(var, "1")
        cfg = BenchConfig.from_dict(config)
        if not cfg.threads:
            cfg.threads = 1  # one CPU per actor
        self.runner = BenchRunner(cfg)

    def run(self, item: dict[str, Any]) -> dict[str, Any]:
        return self.runner.run(SchemaItem(**item))


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise RayNotInstalledError(
            f"--ray needs the 'ray' package, which is not installed: pip install 'constrain[bench]' ({exc})"
        ) from exc
    return ray


def run_on_ray(items: Sequence[SchemaItem], config: BenchConfig, address: str,
               emit: Callable[[dict[str, Any]], None], *, workers: int | None = None) -> None:
    """Run ``items`` on Ray actors; ``emit`` each record (on the driver) as it arrives."""
    ray = _import_ray()
    from ray.util import ActorPool

    started = False
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        try:
            ray.init(address=None if address == "local" else address, **kwargs)
        except Exception as exc:  # noqa: BLE001 - Ray raises plain Exception/ConnectionError here
            raise RayStartError(f"could not start or reach Ray at {address!r}: {exc}") from exc
        started = True
    actors: list[Any] = []
    try:
        cpus = int(ray.cluster_resources().get("CPU", 1)) or 1
        n = max(1, min(workers or cpus, len(items)))
        Worker = ray.remote(num_cpus=1)(_Worker)
        conf = asdict(config)
        actors = [Worker.remote(conf) for _ in range(n)]
        pool = ActorPool(actors)
        payload = [asdict(it) for it in items]
        try:
            for rec in pool.map_unordered(lambda a, it: a.run.remote(it), payload):
                emit(rec)
        except ray.exceptions.RayActorError as exc:
            raise ModelError(f"a Ray worker failed to start or died: {exc}") from exc
    finally:
        for a in actors:
            try:
                ray.kill(a)
            except Exception:  # noqa: BLE001 - best effort
                pass
        if started:
            ray.shutdown()
