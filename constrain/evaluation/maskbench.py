"""``constrain maskbench``: JSON Schema token masks on MaskBench, every engine side by side.

MaskBench (guidance-ai/jsonschemabench, ``maskbench/``) pairs each schema with
valid and invalid instances. For every file and every engine this runner

1. **compiles** the schema (cold: constrain's caches cleared, xgrammar's cache
   off) in a worker process, with a hard limit (default 10 s): a compile that
   has not finished by then is killed and counted as a timeout, so one hang
   cannot stop the run;
2. **forces each valid instance token by token**: the instance is written as
   compact JSON (raw UTF-8) with keys in schema order (see
   :mod:`.instances`), tokenised canonically by the Hugging Face tokenizer;
   at every step only the mask call is timed, the next token must be in the
   mask and accepted, and after the last token the text must be complete and
   EOS allowed. If the schema-order text is refused and the instance's own key
   order differs, that text is tried too (reported separately). With
   ``--whitespace flexible`` the pretty-printed form is also forced;
3. **checks that invalid instances are rejected**: refused at some token, or
   not complete at the end.

Each engine runs in its own worker process (one at a time: the engines never
compete for the CPU), so its peak RSS is its own. Invalid instances that
constrain accepted only because of keywords it declared approximate
(``strict=False``) are counted apart: the instance must validate with
jsonschema against the schema minus those keywords.

Example::

    constrain maskbench --tokenizer qwen3 --schemas ../shared/data/jsonschemabench/maskbench \\
        --limit 200 --json maskbench.json
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing as mp
import os
import platform
import resource
import sys
import time
import traceback
from array import array
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .instances import make_validator, relax, serialisations, validates

__all__ = ["main", "run_maskbench", "list_files", "format_table"]

DEFAULT_COMPILE_LIMIT_S = 10.0
DEFAULT_TEST_LIMIT_S = 120.0
#: wall-clock backstop of the CPU-time limits (a worker starved to 1/WALL_FACTOR of a core still finishes)
WALL_FACTOR = 8.0
_MAX_EXAMPLES = 40

#: Warm-up before any timing, the same for every engine: a flat and a recursive schema (the
#: two code paths of engines that have both), a one-regex schema and one with formats, each
#: driven some way into an instance, so that JIT compiling or loading (a kernel met first on
#: a measured step costs 3-20 ms from numba's cache, seconds without it) and per-vocabulary
#: tables are not charged to whichever schema of the sample first needs them.
_WARMUP = [
    ({"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}}, '{"a":"warm'),
    ({"$defs": {"n": {"type": "object", "properties": {"a": {"type": "string"},
                                                       "k": {"type": "array", "items": {"$ref": "#/$defs/n"}}}}},
      "$ref": "#/$defs/n"}, '{"a":"warm'),
    # the one-DFA engine (its kernels are separate dispatchers from the grammar's)
    ({"type": "string", "pattern": "^[a-f0-9]{8}$"}, '"abc12'),
    # formats, numbers, enums and arrays: enough lexer configurations to grow (rehash) the table.
    # Only formats every peer compiles quickly: with "uri", outlines-core spent minutes (6 GB)
    # compiling this schema on every worker (re)start.
    ({"type": "object", "properties": {
        "u": {"type": "string", "maxLength": 40}, "n": {"type": "number", "minimum": 0},
        "t": {"enum": ["x", "y", 1, None]}, "a": {"type": "array", "items": {"type": "integer"}},
        "d": {"type": "string", "format": "date-time"}, "e": {"type": "string", "format": "email"},
        "b": {"type": "boolean"}}},
     '{"u":"http://a.b/c?d=e#f","n":1500.25,"t":"y","a":[1,-2,30],"d":"2020-01-01T00:00:00Z","e":"a@b.co","b":true}'),
]


# --------------------------------------------------------------------------------------------
# Files


def list_files(root: Path, limit: int | None = None) -> list[Path]:
    """Every ``*.json`` under ``root`` in a fixed shuffled order; ``limit`` keeps the first N.

    The order is a seeded shuffle of the sorted paths, so any prefix (a
    ``--limit`` run, or a long run cut short and resumed from its checkpoint)
    is a uniform sample of all subsets, and ``--limit 500`` is a prefix of the
    full run.
    """
    import random

    root = Path(root)
    if root.is_file():
        return [root]
    files = sorted(p for p in root.rglob("*.json") if p.is_file())
    random.Random(0).shuffle(files)
    if limit is not None and 0 < limit < len(files):
        files = files[:limit]
    return files


def _stats(values: Sequence[float] | np.ndarray) -> dict[str, float]:
    a = np.asarray(values, dtype=np.float64)
    if a.size == 0:
        return {"n": 0, "mean": float("nan"), "p50": float("nan"), "p99": float("nan"), "max": float("nan")}
    return {"n": int(a.size), "mean": float(a.mean()), "p50": float(np.percentile(a, 50)),
            "p99": float(np.percentile(a, 99)), "max": float(a.max())}


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def warm_up(adapter: Any, tok: Any, opts: Any) -> list[tuple[Any, bool]]:
    """Force every :data:`_WARMUP` text through ``adapter``, before anything is timed.

    Returns each warm-up's compiled object and whether its text was forced to the end: a
    text refused half-way leaves the kernels past that point cold, to be charged to a
    measured step (the tests check that none is).
    """
    from ..tokens.bitmask import is_allowed

    buf = np.zeros(tok.words, dtype=np.uint32)
    done = []
    for schema, text in _WARMUP:
        compiled = adapter.compile(schema=schema, options=opts)
        m = adapter.matcher(compiled)
        m.fill(buf)
        forced = True
        for t in tok.tokenize(text):
            if not is_allowed(buf, t) or not m.accept(t):
                forced = False
                break
            m.fill(buf)
        done.append((compiled, forced))
    return done


# --------------------------------------------------------------------------------------------
# Worker process (one per engine)


def _worker_main(conn: Any, engine: str, tokenizer: str, options: dict) -> None:
    """Prepare ``engine`` for ``tokenizer`` and serve compile+force tasks until told to stop.

    Single-threaded, like the other benchmarks: every engine's thread pool is
    pinned to one thread before it is imported.
    """
    for var in ("RAYON_NUM_THREADS", "OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    if not options.pop("_verbose", False):
        # unknown-format warnings (constrain) and C++ log lines (xgrammar) would drown the progress bar
        import warnings

        warnings.simplefilter("ignore")
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
    from ..tokens.bitmask import is_allowed
    from .peers import CompileOptions, PeerTokenizer, make_adapter

    try:
        t0 = time.perf_counter()
        tok = PeerTokenizer.load(tokenizer)
        adapter = make_adapter(engine, tok)
        opts = CompileOptions(**options)
        warm_up(adapter, tok, opts)  # JIT loading, lazy imports, vocabulary tables
        buf = np.zeros(tok.words, dtype=np.uint32)
        if "torch" in sys.modules:  # only xgrammar pulls torch in; importing it elsewhere would inflate RSS
            sys.modules["torch"].set_num_threads(1)
        conn.send(("ready", {"prep_s": time.perf_counter() - t0, "version": adapter.version()}))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        conn.send(("fatal", f"{type(exc).__name__}: {exc}"))
        return
    eos = tok.eos_id
    perf = time.perf_counter_ns
    cpu = time.process_time_ns
    overhead_us = _cpu_clock_overhead_us()
    clear = getattr(adapter, "clear_caches", None)
    while True:
        try:
            task = conn.recv()
        except EOFError:
            return
        if task is None:
            return
        if clear is not None:
            clear()
        gc.collect()
        c0 = cpu()
        t0 = perf()
        try:
            compiled = adapter.compile(schema=task["schema"], options=opts)
            err = None
        except BaseException as exc:  # noqa: BLE001 - every engine's error is a result
            compiled = None
            err = (type(exc).__name__, str(exc)[:500])
        compile_ms = (perf() - t0) / 1e6
        compile_cpu_ms = (cpu() - c0) / 1e6
        conn.send(("compiled", {"ms": compile_ms, "cpu_ms": compile_cpu_ms, "error": err,
                                "approximations": list(compiled.approximations) if compiled is not None else []}))
        if compiled is None:
            continue
        times = array("d")
        results = []
        gc.disable()
        try:
            for inst in task["instances"]:
                res = {"accepted": None, "refused_at": None, "n_tokens": None, "inconsistent": 0}
                for label, ids in inst["attempts"]:
                    m = adapter.matcher(compiled)
                    k = 0
                    ok = True
                    for k, t in enumerate(ids):
                        c = cpu()
                        s = perf()
                        m.fill(buf)
                        e = perf()
                        times.append((cpu() - c) / 1e3 - overhead_us)
                        times.append((e - s) / 1e3)
                        if not is_allowed(buf, t):
                            ok = False
                            break
                        if not m.accept(t):
                            res["inconsistent"] += 1  # the mask allowed it, the engine refused it
                            ok = False
                            break
                    if ok:
                        c = cpu()
                        s = perf()
                        m.fill(buf)
                        e = perf()
                        times.append((cpu() - c) / 1e3 - overhead_us)
                        times.append((e - s) / 1e3)
                        eos_ok = is_allowed(buf, eos)
                        accepting = m.is_accepting()
                        if eos_ok != accepting:
                            res["inconsistent"] += 1
                        ok = eos_ok and accepting
                        k = len(ids)
                    if res["refused_at"] is None:
                        res["refused_at"] = None if ok else k
                        res["n_tokens"] = len(ids)
                    if ok:
                        res["accepted"] = label
                        break
                    if not inst["valid"]:
                        break  # invalid instances: the schema-order text only
                results.append(res)
        except BaseException as exc:  # noqa: BLE001 - an engine crash while matching
            conn.send(("done", {"error": f"{type(exc).__name__}: {exc}"[:500], "trace": traceback.format_exc()[-800:],
                                "results": results, "times": times.tobytes(), "rss": _peak_rss_mib()}))
            continue
        finally:
            gc.enable()
        del compiled
        conn.send(("done", {"error": None, "results": results, "times": times.tobytes(), "rss": _peak_rss_mib()}))


def _cpu_clock_overhead_us() -> float:
    """What a ``process_time_ns`` bracket (with the two ``perf_counter_ns`` inside) costs with nothing timed.

    Subtracted from every per-mask CPU time so the figure is the mask call's own cost.
    """
    cpu, perf = time.process_time_ns, time.perf_counter_ns
    samples = []
    for _ in range(5000):
        c = cpu()
        perf()
        perf()
        samples.append(cpu() - c)
    return float(np.median(samples)) / 1e3


def _proc_cpu_s(pid: int) -> float | None:
    """CPU seconds (user + system) used so far by process ``pid`` (Linux /proc), or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


class _Worker:
    """A worker process for one engine, restarted after it is killed."""

    def __init__(self, engine: str, tokenizer: str, options: dict) -> None:
        self.engine = engine
        self.tokenizer = tokenizer
        self.options = options
        self.proc: Any = None
        self.conn: Any = None
        self.prep_s: list[float] = []
        self.version = ""
        self.peak_rss = 0.0
        self.restarts = 0
        self.ready = False

    def spawn(self) -> None:
        """Start the process; it prepares the tokenizer in the background until :meth:`wait_ready`."""
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child, self.engine, self.tokenizer, dict(self.options)),
                                daemon=True, name=f"maskbench-{self.engine}")
        self.proc.start()
        child.close()
        self.conn = parent
        self.ready = False

    def wait_ready(self) -> None:
        if self.ready:
            return
        try:
            if not self.conn.poll(600):
                self.kill()
                raise RuntimeError(f"{self.engine} worker did not start within 600 s")
            kind, info = self.conn.recv()
        except (EOFError, OSError):
            code = self.proc.exitcode if self.proc is not None else None
            self.kill()
            raise RuntimeError(f"{self.engine} worker exited during start-up (exit code {code})") from None
        if kind != "ready":
            self.kill()
            raise RuntimeError(f"{self.engine} worker failed to start: {info}")
        self.prep_s.append(info["prep_s"])
        self.version = info["version"]
        self.ready = True

    def start(self) -> None:
        self.spawn()
        self.wait_ready()

    def kill(self, respawn: bool = False) -> None:
        """Kill the process; with ``respawn`` start its replacement at once (it gets ready while others run)."""
        if self.proc is not None and self.proc.pid is not None:
            self.proc.kill()
            self.proc.join(5)
        if self.conn is not None:
            self.conn.close()
        self.proc = self.conn = None
        self.ready = False
        if respawn:
            self.restarts += 1
            self.spawn()

    def stop(self) -> None:
        if self.proc is not None and not self.ready:  # still starting up: nothing to finish
            self.kill()
        if self.proc is not None:
            try:
                self.conn.send(None)
                self.proc.join(10)
            except (OSError, BrokenPipeError):
                pass
            self.kill()

    def _wait(self, limit: float) -> dict | None:
        """Wait for the worker's next message; None when it came, else how much it used when killed.

        The limit is on the worker's CPU time (user + system), so a compile
        starved by other jobs on a shared machine is not cut short; a wall-clock
        backstop of ``WALL_FACTOR * limit`` catches a worker that sleeps or
        deadlocks. Without /proc the limit is on wall-clock time.
        """
        pid = self.proc.pid
        cpu0 = _proc_cpu_s(pid)
        t0 = time.monotonic()
        if cpu0 is None:
            return None if self.conn.poll(limit) else {"wall_s": limit}
        while not self.conn.poll(0.1):
            wall = time.monotonic() - t0
            cpu = _proc_cpu_s(pid)
            used = None if cpu is None else cpu - cpu0
            if (used is not None and used > limit) or wall > WALL_FACTOR * limit:
                if self.conn.poll(0):
                    return None
                return {"cpu_s": used, "wall_s": wall}
        return None

    def run(self, task: dict, compile_limit: float, test_limit: float) -> dict:
        if self.proc is None:
            self.spawn()
        elif self.ready and not self.proc.is_alive():
            self.kill(respawn=True)
        self.wait_ready()
        try:
            self.conn.send(task)
            used = self._wait(compile_limit)
            if used is not None:
                self.kill(respawn=True)
                return {"status": "timeout", "compile_ms": None, "killed_after": used}
            kind, info = self.conn.recv()
        except (EOFError, OSError):
            self.kill(respawn=True)
            return {"status": "crash", "compile_ms": None, "error": ("WorkerCrash", "worker died while compiling")}
        out: dict[str, Any] = {"compile_ms": info["ms"], "compile_cpu_ms": info["cpu_ms"],
                               "approximations": info["approximations"]}
        if info["error"] is not None:
            out.update(status="error", error=tuple(info["error"]))
            return out
        try:
            used = self._wait(test_limit)
            if used is not None:
                self.kill(respawn=True)
                out.update(status="test_timeout", killed_after=used)
                return out
            kind, info = self.conn.recv()
        except (EOFError, OSError):
            self.kill(respawn=True)
            out.update(status="crash", error=("WorkerCrash", "worker died while matching"))
            return out
        self.peak_rss = max(self.peak_rss, info["rss"])
        out["rss"] = info["rss"]
        out.update(status="compiled" if info["error"] is None else "match_error", results=info["results"],
                   times=np.frombuffer(info["times"], dtype=np.float64).reshape(-1, 2))  # [cpu µs, wall µs]
        if info["error"] is not None:
            out["error"] = ("MatchError", info["error"])
        return out


# --------------------------------------------------------------------------------------------
# Aggregation


@dataclass
class _Agg:
    files: int = 0
    with_tests: int = 0
    compiled: int = 0
    compiled_approx: int = 0
    passing: int = 0
    errors: Counter = field(default_factory=Counter)
    timeouts: int = 0
    test_timeouts: int = 0
    crashes: int = 0
    valid_tested: int = 0
    valid_accepted: int = 0
    valid_accepted_instance_order: int = 0
    valid_refused_disputed: int = 0  # refused, and jsonschema also says invalid
    pretty_tested: int = 0
    pretty_accepted: int = 0
    invalid_tested: int = 0
    invalid_rejected: int = 0
    invalid_accepted: int = 0
    invalid_accepted_approx: int = 0  # explained by declared approximations
    invalid_accepted_disputed: int = 0  # jsonschema says the instance is valid after all
    inconsistent: int = 0
    peak_rss: float = 0.0
    wall_s: float = 0.0
    version: str = ""
    compile_ms: list = field(default_factory=list)
    compile_cpu_ms: list = field(default_factory=list)
    mask_us: list = field(default_factory=list)
    examples: dict = field(default_factory=lambda: {"error": [], "timeout": [], "valid_refused": [],
                                                    "invalid_accepted": [], "invalid_accepted_approx": []})

    def example(self, kind: str, item: dict) -> None:
        if len(self.examples[kind]) < _MAX_EXAMPLES:
            self.examples[kind].append(item)


def _label(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _encode_res(res: dict) -> dict:
    import base64

    out = {k: v for k, v in res.items() if k != "times"}
    if "times" in res:
        out["times"] = base64.b64encode(np.asarray(res["times"], dtype=np.float32).tobytes()).decode("ascii")
    if out.get("error") is not None:
        out["error"] = list(out["error"])
    return out


def _decode_res(rec: dict) -> dict:
    import base64

    res = dict(rec)
    if "times" in res:
        res["times"] = np.frombuffer(base64.b64decode(res["times"]), dtype=np.float32).astype(np.float64).reshape(-1, 2)
    if res.get("error") is not None:
        res["error"] = tuple(res["error"])
    return res


def _load_checkpoint(path: Path | None, key: dict) -> dict[tuple[str, str], dict]:
    """Per (file, engine) results of an earlier run with the same settings (``key``)."""
    done: dict[tuple[str, str], dict] = {}
    if path is None or not path.exists():
        return done
    with path.open(encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a kill
            if "settings" in rec:
                if rec["settings"] != key:
                    raise ValueError(f"checkpoint {path} was written with other settings: {rec['settings']} != {key}")
                continue
            done[(rec["file"], rec["engine"])] = rec["res"]
    return done


def _prepare(path: Path, tok: Any, whitespace: str, tokenize: bool = True) -> dict | None:
    doc = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(doc, dict) or "schema" not in doc:
        return None
    schema = doc["schema"]
    instances = []
    for test in doc.get("tests") or ():
        if not isinstance(test, dict) or "data" not in test:
            continue
        valid = bool(test.get("valid"))
        try:
            forms = serialisations(test["data"], schema, whitespace=whitespace)
        except (ValueError, TypeError):  # NaN or other non-JSON data
            continue
        pretty = [(label, text) for label, text in forms if label == "pretty"]
        forms = [(label, text) for label, text in forms if label != "pretty"]
        if not valid:
            forms = forms[:1]
        instances.append({"valid": valid, "data": test["data"], "pretty": False,
                          "attempts": [(label, tok.tokenize(text) if tokenize else []) for label, text in forms],
                          "texts": [text for _, text in forms]})
        if valid and pretty:
            instances.append({"valid": True, "data": test["data"], "pretty": True,
                              "attempts": [(label, tok.tokenize(text) if tokenize else []) for label, text in pretty],
                              "texts": [text for _, text in pretty]})
    return {"schema": schema, "instances": instances}


def _account(agg: _Agg, name: str, res: dict, prepared: dict, validator_cache: dict) -> None:
    agg.files += 1
    agg.wall_s += res.get("wall_s", 0.0)
    agg.peak_rss = max(agg.peak_rss, res.get("rss") or 0.0)
    agg.version = agg.version or res.get("version", "")
    instances = prepared["instances"]
    has_tests = bool(instances)
    agg.with_tests += has_tests
    status = res["status"]
    if status == "timeout":
        agg.timeouts += 1
        agg.example("timeout", {"file": name})
        return
    if status == "crash" and res.get("compile_ms") is None:
        agg.crashes += 1
        agg.errors["WorkerCrash"] += 1
        agg.example("error", {"file": name, "error": "worker crashed while compiling"})
        return
    if status == "error":
        etype, msg = res["error"]
        agg.errors[etype] += 1
        agg.example("error", {"file": name, "type": etype, "message": msg[:300]})
        return
    agg.compiled += 1
    agg.compile_ms.append(res["compile_ms"])
    agg.compile_cpu_ms.append(res.get("compile_cpu_ms", res["compile_ms"]))
    approx = res.get("approximations") or []
    if approx:
        agg.compiled_approx += 1
    if status == "test_timeout":
        agg.test_timeouts += 1
        return
    if status == "crash":
        agg.crashes += 1
        return
    if "times" in res:
        agg.mask_us.append(res["times"])
    if status == "match_error":
        agg.errors["MatchError"] += 1
        agg.example("error", {"file": name, "type": "MatchError", "message": res["error"][1][:300]})
    results = res.get("results") or []
    all_ok = len(results) == len(instances)
    schema = prepared["schema"]

    def verdict(data: Any, relaxed: Any = None) -> bool | None:
        key = "relaxed" if relaxed is not None else "schema"
        if key not in validator_cache:
            validator_cache[key] = make_validator(relaxed if relaxed is not None else schema)
        return validates(validator_cache[key], data)

    for inst, r in zip(instances, results):
        agg.inconsistent += r["inconsistent"]
        text = inst["texts"][0]
        if inst["pretty"]:
            agg.pretty_tested += 1
            if r["accepted"] is not None:
                agg.pretty_accepted += 1
            else:
                all_ok = False
                agg.example("valid_refused", {"file": name, "text": text[:400], "refused_at_token": r["refused_at"],
                                              "n_tokens": r["n_tokens"], "pretty": True})
        elif inst["valid"]:
            agg.valid_tested += 1
            ok = r["accepted"] is not None
            if ok:
                agg.valid_accepted += 1
                if r["accepted"] == "instance_order":
                    agg.valid_accepted_instance_order += 1
            else:
                all_ok = False
                disputed = verdict(inst["data"]) is False
                agg.valid_refused_disputed += disputed
                agg.example("valid_refused", {"file": name, "text": text[:400], "refused_at_token": r["refused_at"],
                                              "n_tokens": r["n_tokens"], "jsonschema_says_invalid": disputed})
        else:
            agg.invalid_tested += 1
            if r["accepted"] is None:
                agg.invalid_rejected += 1
                continue
            agg.invalid_accepted += 1
            all_ok = False
            if verdict(inst["data"]) is True:
                agg.invalid_accepted_disputed += 1
            if approx:
                relaxed = relax(schema, [p for p, _ in approx])
                if verdict(inst["data"], relaxed) is True:
                    agg.invalid_accepted_approx += 1
                    agg.example("invalid_accepted_approx", {"file": name, "text": text[:400],
                                                            "approximations": approx[:5]})
                    continue
            agg.example("invalid_accepted", {"file": name, "text": text[:400]})
    if has_tests and all_ok:
        agg.passing += 1


def _summary(agg: _Agg, worker: _Worker | None) -> dict:
    masks = np.concatenate(agg.mask_us) if agg.mask_us else np.zeros((0, 2))
    return {
        "version": agg.version or (worker.version if worker else ""),
        "files": agg.files,
        "files_with_tests": agg.with_tests,
        "compiled": agg.compiled,
        "compiled_with_approximations": agg.compiled_approx,
        "compile_errors": dict(agg.errors),
        "compile_timeouts": agg.timeouts,
        "test_timeouts": agg.test_timeouts,
        "worker_crashes": agg.crashes,
        "schemas_passing": agg.passing,
        "valid_tested": agg.valid_tested,
        "valid_accepted": agg.valid_accepted,
        "valid_accepted_only_in_instance_key_order": agg.valid_accepted_instance_order,
        "valid_refused_that_jsonschema_rejects": agg.valid_refused_disputed,
        "pretty_tested": agg.pretty_tested,
        "pretty_accepted": agg.pretty_accepted,
        "invalid_tested": agg.invalid_tested,
        "invalid_rejected": agg.invalid_rejected,
        "invalid_accepted": agg.invalid_accepted,
        "invalid_accepted_explained_by_approximations": agg.invalid_accepted_approx,
        "invalid_accepted_that_jsonschema_accepts": agg.invalid_accepted_disputed,
        "mask_engine_inconsistencies": agg.inconsistent,
        "compile_ms": _stats(agg.compile_cpu_ms),
        "compile_wall_ms": _stats(agg.compile_ms),
        "mask_us": _stats(masks[:, 0]),
        "mask_wall_us": _stats(masks[:, 1]),
        "prep_s": worker.prep_s[0] if worker and worker.prep_s else float("nan"),
        "worker_restarts": worker.restarts if worker else 0,
        "peak_rss_mib": agg.peak_rss,
        "wall_s": agg.wall_s,
        "examples": agg.examples,
    }


# --------------------------------------------------------------------------------------------
# Run


def run_maskbench(
    tokenizer: str,
    schemas: Path,
    *,
    engines: Sequence[str] = ("constrain",),
    limit: int | None = None,
    whitespace: str = "compact",
    strict: bool = False,
    compile_limit: float = DEFAULT_COMPILE_LIMIT_S,
    test_limit: float = DEFAULT_TEST_LIMIT_S,
    progress: bool = True,
    per_file: bool = False,
    checkpoint: Path | None = None,
    verbose: bool = False,
) -> dict:
    """Run MaskBench and return the summary (what ``--json`` writes).

    ``checkpoint``: a JSONL file that gets every (file, engine) result as soon
    as it is known; a later run with the same settings skips what it holds
    (so a long run can be stopped and resumed).
    """
    from tqdm import tqdm

    from ..errors import ConstraintError
    from .peers import ENGINES, PeerTokenizer, installed_engines

    unknown = [e for e in engines if e not in ENGINES]
    if unknown:
        raise ConstraintError(f"unknown engine(s) {unknown}; choose from {', '.join(ENGINES)}")
    missing = [e for e in engines if e not in installed_engines()]
    if missing:
        from .peers import PeerNotInstalledError

        raise PeerNotInstalledError(f"not installed: {', '.join(missing)} (pip install 'constrain[bench]')")
    root = Path(schemas)
    if not root.exists():
        raise ConstraintError(f"--schemas {root} does not exist")
    files = list_files(root, limit)
    if not files:
        raise ConstraintError(f"no .json files under {root}")
    tok = PeerTokenizer.load(tokenizer)
    tok_arg = str(tok.path) if tok.path is not None else tokenizer
    load0 = os.getloadavg()
    started = time.time()
    base = {"whitespace": whitespace, "additional_properties": True, "_verbose": verbose}
    workers = {e: _Worker(e, tok_arg, dict(base, strict=strict if e == "constrain" else True)) for e in engines}
    aggs = {e: _Agg() for e in engines}
    per_file_out: dict[str, dict] = {}
    settings = {"tokenizer": tok.name, "vocab_size": tok.size, "whitespace": whitespace, "constrain_strict": strict,
                "compile_limit_s": compile_limit}
    done = _load_checkpoint(checkpoint, settings)
    ck = None
    if checkpoint is not None:
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        fresh = not checkpoint.exists() or checkpoint.stat().st_size == 0
        ck = checkpoint.open("a", encoding="utf-8")
        if fresh:
            ck.write(json.dumps({"settings": settings}) + "\n")
    resumed = 0
    try:
        names = [_label(p, root) for p in files]
        for e, w in workers.items():  # start-up (imports, tokenizer prep) is not part of any file's wall time
            if any((n, e) not in done for n in names):
                w.spawn()
        for w in workers.values():
            if w.proc is not None:
                w.wait_ready()
        bar = tqdm(files, unit="schema", dynamic_ncols=True, mininterval=2.0, disable=not progress)
        for path in bar:
            name = _label(path, root)
            todo = [e for e in engines if (name, e) not in done]
            try:
                prepared = _prepare(path, tok, whitespace, tokenize=bool(todo))
            except (OSError, json.JSONDecodeError) as exc:
                prepared = None
                print(f"skipping {name}: {exc}", file=sys.stderr)
            if prepared is None:
                continue
            task = {"schema": json.dumps(prepared["schema"]),
                    "instances": [{"valid": i["valid"], "attempts": i["attempts"]} for i in prepared["instances"]]}
            validator_cache: dict = {}
            for e, w in workers.items():
                if e in todo:
                    t0 = time.perf_counter()
                    res = w.run(task, compile_limit, test_limit)
                    res["wall_s"] = time.perf_counter() - t0
                    res["version"] = w.version
                    if ck is not None:
                        ck.write(json.dumps({"file": name, "engine": e, "res": _encode_res(res)}, default=str) + "\n")
                        ck.flush()
                else:
                    res = _decode_res(done[(name, e)])
                    resumed += 1
                _account(aggs[e], name, res, prepared, validator_cache)
                if per_file:
                    per_file_out.setdefault(name, {})[e] = _file_record(res)
            bar.set_postfix_str(" ".join(f"{e[:4]}:{a.passing}/{a.with_tests}" for e, a in aggs.items()), refresh=False)
        bar.close()
    finally:
        for w in workers.values():
            w.stop()
        if ck is not None:
            ck.close()
    out = {
        "meta": {
            "tokenizer": tokenizer,
            "tokenizer_file": tok_arg,
            "vocab_size": tok.size,
            "schemas": str(root),
            "files": len(files),
            "limit": limit,
            "whitespace": whitespace,
            "constrain_strict": strict,
            "additional_properties": "allowed when absent (JSON Schema semantics) for every engine",
            "compile_limit_s": compile_limit,
            "test_limit_s": test_limit,
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpu_count": os.cpu_count(),
            "loadavg_start": " ".join(f"{x:.2f}" for x in load0),
            "loadavg_end": " ".join(f"{x:.2f}" for x in os.getloadavg()),
            "wall_s": time.time() - started,
            "results_from_checkpoint": resumed,
            "notes": ("compile is cold and in a worker process per engine, killed after compile_limit_s of CPU "
                      f"time (wall-clock backstop {WALL_FACTOR:g}x); compile_ms and mask_us are the worker's CPU "
                      "time (process_time, so contention from other jobs on a shared machine does not count; "
                      "the clock-read overhead is calibrated and subtracted), *_wall_* the wall-clock figures; "
                      "mask times cover only the mask call, at every forced step including the final EOS step, "
                      "for valid and invalid instances; valid instances are forced with keys in schema order, "
                      "then in their own order if that differs; peak RSS is each engine worker's ru_maxrss "
                      "(tokenizer, engine and imports included)."),
        },
        "engines": {e: _summary(aggs[e], workers[e]) for e in engines},
    }
    if per_file:
        out["per_file"] = per_file_out
    return out


def _file_record(res: dict) -> dict:
    rec: dict[str, Any] = {"status": res["status"]}
    if res.get("compile_ms") is not None:
        rec["compile_ms"] = round(res["compile_ms"], 3)
    if res.get("error"):
        rec["error"] = f"{res['error'][0]}: {res['error'][1][:200]}"
    if res.get("approximations"):
        rec["approximations"] = [f"{p}: {m}" for p, m in res["approximations"]][:10]
    if res.get("results") is not None:
        rec["tests"] = "".join("a" if r["accepted"] else "r" for r in res["results"])
    return rec


# --------------------------------------------------------------------------------------------
# Output


def _f(x: float, nd: int = 1) -> str:
    if x != x:
        return "-"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.{nd}f}"


def _pct(a: int, b: int) -> str:
    return f"{a:,} / {b:,} ({100.0 * a / b:.1f}%)" if b else f"{a} / 0"


def format_table(summary: dict) -> str:
    """A markdown table: one column per engine, one row per measure."""
    engines = list(summary["engines"])
    s = summary["engines"]
    rows: list[tuple[str, list[str]]] = []

    def row(label: str, fn: Any) -> None:
        rows.append((label, [fn(s[e]) for e in engines]))

    row("version", lambda r: r["version"] or "-")
    row("compiled / files", lambda r: _pct(r["compiled"], r["files"]))
    row("... with declared approximations", lambda r: f"{r['compiled_with_approximations']:,}")
    row("timeouts compile / matching, errors",
        lambda r: f"{r['compile_timeouts']} / {r['test_timeouts']}, {sum(r['compile_errors'].values())}")
    row("schemas passing / with tests", lambda r: _pct(r["schemas_passing"], r["files_with_tests"]))
    row("valid accepted / tested", lambda r: _pct(r["valid_accepted"], r["valid_tested"]))
    row("... only in instance key order", lambda r: f"{r['valid_accepted_only_in_instance_key_order']:,}")
    row("... refused, jsonschema also rejects", lambda r: f"{r['valid_refused_that_jsonschema_rejects']:,}")
    if any(s[e]["pretty_tested"] for e in engines):
        row("pretty-printed valid accepted", lambda r: _pct(r["pretty_accepted"], r["pretty_tested"]))
    row("invalid rejected / tested", lambda r: _pct(r["invalid_rejected"], r["invalid_tested"]))
    row("invalid accepted", lambda r: f"{r['invalid_accepted']:,}")
    row("... explained by approximations", lambda r: f"{r['invalid_accepted_explained_by_approximations']:,}")
    row("... jsonschema accepts them", lambda r: f"{r['invalid_accepted_that_jsonschema_accepts']:,}")
    row("compile CPU ms mean / p50 / p99 / max",
        lambda r: " / ".join(_f(r["compile_ms"][k], 2) for k in ("mean", "p50", "p99", "max")))
    row("compile wall ms mean / p50 / p99",
        lambda r: " / ".join(_f(r["compile_wall_ms"][k], 2) for k in ("mean", "p50", "p99")))
    row("mask CPU µs mean / p50 / p99 / max",
        lambda r: " / ".join(_f(r["mask_us"][k]) for k in ("mean", "p50", "p99", "max")))
    row("mask wall µs mean / p50 / p99",
        lambda r: " / ".join(_f(r["mask_wall_us"][k]) for k in ("mean", "p50", "p99")))
    row("mask steps", lambda r: f"{r['mask_us']['n']:,}")
    row("peak RSS MiB (worker)", lambda r: _f(r["peak_rss_mib"], 0))
    row("tokenizer prep s", lambda r: _f(r["prep_s"], 2))
    row("engine wall s", lambda r: _f(r["wall_s"], 0))
    lines = ["| | " + " | ".join(engines) + " |", "|---|" + "---|" * len(engines)]
    lines += [f"| {label} | " + " | ".join(cells) + " |" for label, cells in rows]
    return "\n".join(lines)


def plot(summary: dict, path: Path) -> None:
    """Three panels per engine: coverage and correctness rates, compile CPU ms, mask CPU µs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    engines = list(summary["engines"])
    s = summary["engines"]
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    rates = [
        ("compiled", lambda r: r["compiled"] / max(1, r["files"])),
        ("schemas passing", lambda r: r["schemas_passing"] / max(1, r["files_with_tests"])),
        ("valid accepted", lambda r: r["valid_accepted"] / max(1, r["valid_tested"])),
        ("invalid rejected", lambda r: r["invalid_rejected"] / max(1, r["invalid_tested"])),
    ]
    colors = plt.get_cmap("tab10").colors
    width = 0.8 / len(rates)
    for j, (label, fn) in enumerate(rates):
        xs = [i + (j - (len(rates) - 1) / 2) * width for i in range(len(engines))]
        vals = [100 * fn(s[e]) for e in engines]
        bars = axes[0].bar(xs, vals, width, label=label, color=colors[j])
        for b, v in zip(bars, vals):
            axes[0].annotate(f"{v:.0f}", (b.get_x() + b.get_width() / 2, v), ha="center", va="bottom", fontsize=6)
    axes[0].set_ylim(0, 112)
    axes[0].set_ylabel("%")
    axes[0].set_title("coverage and correctness")
    axes[0].legend(fontsize=7, loc="lower left")
    for ax, key, title in ((axes[1], "compile_ms", "compile, CPU ms"), (axes[2], "mask_us", "per-token mask, CPU µs")):
        stats = ("mean", "p50", "p99")
        for j, st in enumerate(stats):
            xs = [i + (j - 1) * 0.26 for i in range(len(engines))]
            vals = [max(s[e][key][st], 1e-3) if s[e][key][st] == s[e][key][st] else 0 for e in engines]
            bars = ax.bar(xs, vals, 0.26, label=st, color=colors[j + 4])
            for b, v in zip(bars, vals):
                ax.annotate(f"{v:.3g}", (b.get_x() + b.get_width() / 2, v), ha="center", va="bottom", fontsize=6)
        ax.set_yscale("log")
        tops = [s[e][key]["p99"] for e in engines if s[e][key]["p99"] == s[e][key]["p99"]]
        if tops:
            ax.set_ylim(top=max(tops) * 5)  # room for the labels
        ax.set_title(title)
        ax.legend(fontsize=7)
        ax.grid(axis="y", which="both", alpha=0.3)
    for ax in axes:
        ax.set_xticks(range(len(engines)))
        ax.set_xticklabels(engines)
    m = summary["meta"]
    fig.suptitle(f"MaskBench, {m['files']} files, tokenizer {m['tokenizer']}, whitespace {m['whitespace']}", fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tokenizer", required=True, metavar="PATH|NAME",
                   help="tokenizer.json, a folder holding one, a name under ../shared/data/tokenizers, or a hub name")
    p.add_argument("--schemas", required=True, type=Path, metavar="DIR", help="MaskBench folder (searched recursively)")
    p.add_argument("--limit", type=int, default=None, metavar="N",
                   help="the first N files of a fixed shuffled order (a uniform sample; default: all)")
    p.add_argument("--engines", default=None, metavar="LIST",
                   help="comma-separated, from constrain,llguidance,xgrammar,outlines (default: every installed one)")
    p.add_argument("--json", type=Path, default=None, metavar="FILE", help="write the summary here")
    p.add_argument("--whitespace", choices=["compact", "flexible"], default="compact")
    p.add_argument("--strict", action="store_true",
                   help="constrain raises on keywords it cannot enforce exactly (default: approximate and report)")
    p.add_argument("--compile-limit", type=float, default=DEFAULT_COMPILE_LIMIT_S, metavar="S")
    p.add_argument("--test-limit", type=float, default=DEFAULT_TEST_LIMIT_S, metavar="S",
                   help="limit for forcing all instances of one schema")
    p.add_argument("--per-file", action="store_true", help="include every file's outcome per engine in --json")
    p.add_argument("--checkpoint", type=Path, default=None, metavar="FILE.jsonl",
                   help="append each result here and skip those already in it (stop and resume long runs)")
    p.add_argument("--verbose", action="store_true", help="let the engines' warnings through to stderr")
    p.add_argument("--plot", type=Path, default=None, metavar="FILE.png", help="bar charts of the summary (matplotlib)")
    p.add_argument("--no-progress", action="store_true")


def run_from_args(args: argparse.Namespace) -> int:
    if args.engines is None:
        from .peers import installed_engines

        engines = installed_engines()
    else:
        engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    summary = run_maskbench(args.tokenizer, args.schemas, engines=engines, limit=args.limit,
                            whitespace=args.whitespace, strict=args.strict, compile_limit=args.compile_limit,
                            test_limit=args.test_limit, progress=not args.no_progress, per_file=args.per_file,
                            checkpoint=args.checkpoint, verbose=args.verbose)
    argv = getattr(args, "_argv", None) or sys.argv[1:]
    summary["meta"]["command"] = " ".join(["constrain"] + ([] if argv[:1] == ["maskbench"] else ["maskbench"]) + argv)
    print(format_table(summary))
    m = summary["meta"]
    print(f"\n{m['files']} files, tokenizer {m['tokenizer']}, whitespace {m['whitespace']}; load average "
          f"{m['loadavg_start']} -> {m['loadavg_end']}; wall {m['wall_s']:.0f} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=1, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    if args.plot:
        plot(summary, args.plot)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="constrain maskbench", description=__doc__.split("\n\n")[0])
    add_arguments(p)
    args = p.parse_args(argv)
    args._argv = list(sys.argv[1:] if argv is None else argv)
    return run_from_args(args)


if __name__ == "__main__":
    raise SystemExit(main())
