"""``constrain bench jsonschemabench``: end-to-end JSONSchemaBench runs, one engine per run.

For every schema of the chosen subsets the runner

1. builds the benchmark's prompt (:mod:`.jsonschemabench_prompts`: system line, two examples of
   the subset's family, the schema) through the model's chat template;
2. starts the clock, **compiles** the schema with the engine (constrain, llguidance, xgrammar or
   outlines-core via :mod:`.peers`; ``none`` compiles nothing: the unconstrained baseline),
   interrupted after ``compile_timeout`` seconds;
3. **generates** with constrain's own decoding loop (``constrain.generate`` with
   ``constraint=``; ``--method awrs|smc|asap`` uses ``constrain.sample``) so every engine drives
   the same model, prompt and loop; stopped after ``generation_timeout`` seconds;
4. **validates** the output: ``json.loads`` of the whole text, then jsonschema with the schema's
   draft (Draft 2020-12 when it declares none) and format checking.

Timings follow the harness: GCT = compile end - start, TTFT = first token - start (compile and
prefill included), TPOT = (end - first token) / (output tokens - 1). Every schema gives one JSON
line in ``OUT/results.jsonl`` (written as soon as it is done), so ``--resume`` skips finished
schemas after an interruption; a schema that cannot be read, compiled or generated is recorded
with its reason and never stops the run. ``--ray ADDRESS`` shards the schemas over a Ray cluster
(:mod:`.jsonschemabench_ray`). ``constrain bench report`` aggregates runs
(:mod:`.jsonschemabench_report`).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import sys
import threading
import time
import zlib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from ..errors import ConstrainError, ConstraintError, DeadEndError, ModelError, SchemaError, UnsupportedError
from .jsonschemabench_prompts import build_messages, prompt_version

__all__ = [
    "SUBSETS",
    "ENGINES",
    "METHODS",
    "BenchConfig",
    "SchemaItem",
    "BenchRunner",
    "BenchDataError",
    "discover",
    "default_data_dir",
    "validate_output",
    "schema_seed",
    "load_bench_model",
    "tiny_random_model",
    "run_benchmark",
    "add_bench_parsers",
]

#: The ten subsets, in the order tables list them.
SUBSETS: tuple[str, ...] = (
    "Github_trivial",
    "Github_easy",
    "Github_medium",
    "Github_hard",
    "Github_ultra",
    "Glaiveai2K",
    "Kubernetes",
    "Snowplow",
    "WashingtonPost",
    "JsonSchemaStore",
)
#: ``none`` is the unconstrained baseline
ENGINES: tuple[str, ...] = ("none", "constrain", "llguidance", "xgrammar", "outlines")
METHODS: tuple[str, ...] = ("lcd", "awrs", "smc", "asap")

RESULTS_FILE = "results.jsonl"
CONFIG_FILE = "run.json"


class BenchDataError(ConstrainError, ValueError):
    """The benchmark data folder, a subset name or a run directory is unusable."""


class _CompileTimeout(Exception):
    pass


class _GenerationTimeout(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# Data


@dataclass(frozen=True)
class SchemaItem:
    """One schema to run: where it came from and its text (sent along to remote workers)."""

    subset: str
    split: str
    schema_id: str
    text: str

    @property
    def key(self) -> str:
        return f"{self.subset}/{self.schema_id}"


def default_data_dir() -> Path:
    """``$CONSTRAIN_SHARED_DATA/jsonschemabench`` or ``../shared/data/jsonschemabench`` beside the checkout."""
    env = os.environ.get("CONSTRAIN_SHARED_DATA")
    base = Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared" / "data"
    return base / "jsonschemabench"


def _resolve_subsets(names: Sequence[str] | None, available: Iterable[str]) -> list[str]:
    avail = list(available)
    if not names:
        known = [s for s in SUBSETS if s in avail]
        return known + sorted(s for s in avail if s not in SUBSETS)
    out = []
    lower = {s.lower(): s for s in avail}
    for n in names:
        s = lower.get(n.lower())
        if s is None:
            raise BenchDataError(f"unknown subset {n!r}; this data folder has: {', '.join(sorted(avail)) or 'none'}")
        if s not in out:
            out.append(s)
    return out


def discover(data_dir: str | os.PathLike | None = None, subsets: Sequence[str] | None = None, split: str = "val",
             limit: int | None = None) -> list[SchemaItem]:
    """The schemas to run, subset by subset in :data:`SUBSETS` order, files sorted by name.

    Two layouts are accepted: ``<Subset>/<split>/*.json`` (../shared/data/jsonschemabench) and
    the JSONSchemaBench repository's ``data/<Subset>/*.json`` (``data_dir`` may be the
    repository or its ``data`` folder; it has no splits, so every file is taken and recorded
    with split ``"all"``). ``limit`` keeps the first N files of each subset.
    """
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    if not root.is_dir():
        raise BenchDataError(f"benchmark data folder not found: {root}")
    if (root / "data").is_dir() and not any((root / s).is_dir() for s in SUBSETS):
        root = root / "data"
    available = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))
                       and p.name != "maskbench")
    chosen = _resolve_subsets(subsets, available)
    if limit is not None and limit < 0:
        raise BenchDataError("--limit must be >= 0")
    items: list[SchemaItem] = []
    missing = []
    for subset in chosen:
        folder = root / subset
        if (folder / split).is_dir():
            files, used_split = sorted((folder / split).glob("*.json")), split
        elif any(p.is_dir() for p in folder.iterdir()):
            missing.append(subset)  # split layout, but not this split
            continue
        else:
            files, used_split = sorted(folder.glob("*.json")), "all"
        if limit is not None:
            files = files[:limit]
        for f in files:
            try:
                text = f.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                text = f"\x00unreadable: {exc}"  # recorded as a bad schema, not fatal
            items.append(SchemaItem(subset, used_split, f.stem, text))
    if missing:
        if subsets:
            raise BenchDataError(f"no {split!r} split for {', '.join(missing)} in {root}")
        print(f"constrain: note: no {split!r} split for {', '.join(missing)}; skipped", file=sys.stderr)
    if not items:
        raise BenchDataError(f"no schemas found in {root} (split {split!r}, subsets {', '.join(chosen) or 'none'})")
    return items


def schema_seed(base_seed: int, key: str) -> int:
    """The per-schema seed: a function of the run seed and the schema only (not of the order or shard)."""
    return zlib.crc32(f"{base_seed}:{key}".encode()) & 0x7FFFFFFF


# ---------------------------------------------------------------------------------------------
# Validation


def _format_checker() -> Any:
    """jsonschema's checker for every format it knows, plus ipv4/ipv6/uuid as the harness adds them."""
    import ipaddress
    import uuid

    from jsonschema import FormatChecker

    checker = FormatChecker()
    checker.checks("ipv4", raises=ValueError)(lambda v: not isinstance(v, str) or bool(ipaddress.IPv4Address(v)))
    checker.checks("ipv6", raises=ValueError)(lambda v: not isinstance(v, str) or bool(ipaddress.IPv6Address(v)))
    checker.checks("uuid", raises=ValueError)(lambda v: not isinstance(v, str) or bool(uuid.UUID(v)))
    return checker


_CHECKER: Any = None


def validate_output(text: str, schema: Any) -> tuple[bool, bool, str | None, str]:
    """``(parses as JSON, valid, error message or None, validator name)`` for one output.

    The whole output must be one JSON text (leading/trailing whitespace allowed, as
    ``json.loads`` does); the validator is the schema's draft (``$schema``), Draft 2020-12 when
    it names none. A schema that is not valid under its own metaschema, or whose validation
    raises (e.g. an unresolvable remote ``$ref``), makes the output invalid, as in the harness.
    """
    global _CHECKER
    from jsonschema import Draft202012Validator
    from jsonschema.validators import validator_for

    try:
        instance = json.loads(text)
    except (ValueError, RecursionError) as exc:
        return False, False, f"not JSON: {exc}"[:300], ""
    if not isinstance(schema, (dict, bool)):
        return True, False, "the schema is not a JSON object", ""
    try:
        cls = validator_for(schema, default=Draft202012Validator)
    except Exception:  # noqa: BLE001 - an unknown $schema: the default draft
        cls = Draft202012Validator
    name = cls.__name__
    try:
        cls.check_schema(schema)
    except Exception as exc:  # noqa: BLE001
        return True, False, f"schema invalid under its metaschema: {getattr(exc, 'message', exc)}"[:300], name
    if _CHECKER is None:
        _CHECKER = _format_checker()
    try:
        error = next(iter(cls(schema, format_checker=_CHECKER).iter_errors(instance)), None)
    except Exception as exc:  # noqa: BLE001 - validator extensions, unresolvable refs, recursion
        return True, False, f"validation raised {type(exc).__name__}: {exc}"[:300], name
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path)
        return True, False, f"{error.message} (at /{where})"[:300], name
    return True, True, None, name


# ---------------------------------------------------------------------------------------------
# Configuration and models


@dataclass
class BenchConfig:
    """Everything that determines a run's results (stored in ``OUT/run.json``)."""

    engine: str = "constrain"
    method: str = "lcd"
    model: str = "default"
    split: str = "val"
    max_tokens: int = 512
    temperature: float | None = None  # None: greedy for lcd, the sampler's default otherwise
    particles: int = 4  # smc only
    compile_timeout: float = 10.0
    generation_timeout: float = 60.0
    seed: int = 0
    whitespace: str = "compact"
    strict: bool = True
    additional_properties: bool = True
    device: str = "cpu"
    threads: int | None = None
    prompt: str = field(default_factory=prompt_version)

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ConstraintError(f"unknown engine {self.engine!r}; choose from {', '.join(ENGINES)}")
        if self.method not in METHODS:
            raise ConstraintError(f"unknown method {self.method!r}; choose from {', '.join(METHODS)}")
        if self.max_tokens < 1:
            raise ConstraintError("--max-tokens must be >= 1")
        if self.compile_timeout <= 0 or self.generation_timeout <= 0:
            raise ConstraintError("timeouts must be > 0 seconds")
        if self.temperature is not None and self.temperature < 0:
            raise ConstraintError("--temperature must be >= 0")
        if self.particles < 1:
            raise ConstraintError("--particles must be >= 1")

    @property
    def label(self) -> str:
        """How tables name this run: the engine, ``/method`` unless plain LCD, ``+option`` for
        each non-default compile option (so runs that differ only in options stay apart)."""
        label = self.engine if self.method == "lcd" else f"{self.engine}/{self.method}"
        if self.engine != "none":
            if self.whitespace != "compact":
                label += f"+{self.whitespace}"
            if not self.strict:
                label += "+lenient"
            if not self.additional_properties:
                label += "+closed"
        return label

    # fields that may differ between a run and its resumption
    _VOLATILE = ("device", "threads")

    def identity(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k not in self._VOLATILE}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "BenchConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def tiny_random_model(tokenizer: str | os.PathLike | None = None, *, seed: int = 0) -> Any:
    """A 1-layer, 32-wide Llama with random weights (fixed by ``seed``) and a real tokenizer.

    For smoke tests of the harness (and of Ray sharding) where the outputs only need to be
    deterministic, not sensible. ``tokenizer`` is a folder with tokenizer files; by default the
    default model's (SmolLM2), so prompts go through the same chat template.
    """
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from ..model import Model, _converted_default

    folder = Path(tokenizer) if tokenizer is not None else _converted_default()
    try:
        tok = AutoTokenizer.from_pretrained(str(folder))
    except Exception as exc:
        raise ModelError(f"could not load a tokenizer from {folder}: {exc}") from exc
    if tok.pad_token_id is None and tok.eos_token_id is not None:
        tok.pad_token = tok.eos_token
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=16384,
                      tie_word_embeddings=True, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        hf = LlamaForCausalLM(cfg)
    return Model(hf, tok, name="tiny-random", device="cpu")


def load_bench_model(spec: str, device: str = "cpu") -> Any:
    """``default``, a hub name or folder (``constrain.load_model``), or ``tiny-random[:TOKENIZER_DIR]``."""
    if spec == "tiny-random" or spec.startswith("tiny-random:"):
        return tiny_random_model(spec.split(":", 1)[1] if ":" in spec else None)
    from ..model import load_model

    return load_model(spec, device=device)


def _max_positions(model: Any) -> int | None:
    cfg = getattr(getattr(model, "hf", None), "config", None)
    n = getattr(cfg, "max_position_embeddings", None)
    return int(n) if isinstance(n, int) and n > 0 else None


# ---------------------------------------------------------------------------------------------
# Constraint wrappers: timing, deadlines, the unconstrained baseline


class _Clock:
    """Shared by every matcher of one generation: first-token time, deadline, last tokens."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.first: float | None = None
        self.tokens: list[int] = []

    def check(self) -> None:
        if time.perf_counter() > self.deadline:
            raise _GenerationTimeout()


class _TimedConstraint:
    """Wraps a compiled constraint: records when the first token is accepted, enforces a deadline.

    Costs one Python call per matcher method; it wraps every engine (and the baseline) alike.
    Anything else is delegated to the wrapped constraint.
    """

    def __init__(self, inner: Any, clock: _Clock) -> None:
        self.inner = inner
        self.clock = clock
        self.vocab = inner.vocab

    def matcher(self) -> "_TimedMatcher":
        return _TimedMatcher(self.inner.matcher(), self.clock)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class _TimedMatcher:
    def __init__(self, inner: Any, clock: _Clock, tokens: list[int] | None = None) -> None:
        self.inner = inner
        self.clock = clock
        self.tokens = list(tokens or [])

    @property
    def vocab(self) -> Any:
        return self.inner.vocab

    def fill_mask(self, out: Any) -> None:
        self.clock.check()
        self.inner.fill_mask(out)

    def accept_token(self, token_id: int) -> bool:
        ok = self.inner.accept_token(token_id)
        if ok:
            if self.clock.first is None:
                self.clock.first = time.perf_counter()
            self.tokens.append(int(token_id))
            self.clock.tokens = self.tokens
            self.clock.check()
        return ok

    def rollback(self, n: int = 1) -> None:
        self.inner.rollback(n)
        if n:
            del self.tokens[-n:]

    def copy(self) -> "_TimedMatcher":
        return _TimedMatcher(self.inner.copy(), self.clock, self.tokens)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class _FreeConstraint:
    """The unconstrained baseline: every text token and EOS, always (control tokens excluded)."""

    def __init__(self, vocab: Any) -> None:
        import numpy as np

        from ..tokens.bitmask import allocate_mask

        self.vocab = vocab
        words = allocate_mask(vocab.size)
        ids = [i for i, b in enumerate(vocab.token_bytes) if b is not None] + sorted(vocab.eos_ids)
        idx = np.asarray(ids, dtype=np.int64)
        np.bitwise_or.at(words, idx >> 5, (np.uint32(1) << (idx & 31).astype(np.uint32)))
        self.words = words

    def matcher(self) -> "_FreeMatcher":
        return _FreeMatcher(self)


class _FreeMatcher:
    def __init__(self, constraint: _FreeConstraint, n: int = 0, finished: bool = False) -> None:
        self.constraint = constraint
        self.vocab = constraint.vocab
        self.n = n
        self.finished = finished

    def fill_mask(self, out: Any) -> None:
        from ..tokens.bitmask import as_uint32_words

        words = as_uint32_words(out)
        if self.finished:
            words[...] = 0
        else:
            words[...] = self.constraint.words

    def accept_token(self, token_id: int) -> bool:
        t = int(token_id)
        if self.finished or not 0 <= t < self.vocab.size:
            return False
        if t in self.vocab.eos_ids:
            self.finished = True
        elif self.vocab.token_bytes[t] is None:
            return False
        self.n += 1
        return True

    def accept_bytes(self, data: bytes) -> bool:
        if self.finished:
            return False
        self.n += 1
        return True

    def is_accepting(self) -> bool:
        return True

    def is_finished(self) -> bool:
        return self.finished

    def is_dead(self) -> bool:
        return False

    def rollback(self, n: int = 1) -> None:
        if n > self.n:
            raise ConstraintError(f"cannot roll back {n} steps, only {self.n} taken")
        self.n -= n
        if n:
            self.finished = False

    def copy(self) -> "_FreeMatcher":
        return _FreeMatcher(self.constraint, self.n, self.finished)

    def forced_bytes(self) -> bytes:
        return b""


# ---------------------------------------------------------------------------------------------
# Timeouts for compilation


class _Alarm:
    """SIGALRM-based interruption of a compile in the main thread (elsewhere: measured only).

    Native code (a peer's Rust/C++ compiler, a numba kernel) is interrupted when it returns to
    Python; the elapsed time is checked afterwards as well, so a compile that overran is always
    recorded as a timeout.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.armed = False
        self.previous: Any = None

    def _fire(self, signum: int, frame: Any) -> None:
        raise _CompileTimeout()

    def __enter__(self) -> "_Alarm":
        if threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer"):
            try:
                self.previous = signal.signal(signal.SIGALRM, self._fire)
                signal.setitimer(signal.ITIMER_REAL, self.seconds)
                self.armed = True
            except (ValueError, OSError):
                self.armed = False
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.armed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.previous if self.previous is not None else signal.SIG_DFL)


# ---------------------------------------------------------------------------------------------
# The runner


def _peak_rss_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024, 1)


def _short(exc: BaseException, limit: int = 300) -> str:
    text = str(exc).strip().splitlines()
    msg = text[0] if text else ""
    return f"{type(exc).__name__}: {msg}"[:limit]


class BenchRunner:
    """Runs one engine on schemas with one loaded model; :meth:`run` never raises for a bad schema.

    The engine's tokenizer-level preparation (constrain's token trie, llguidance's tokenizer,
    xgrammar's compiler, outlines-core's vocabulary) happens once here, outside every timing,
    followed by one warm-up compile and generation (first-call JIT and allocator effects).
    """

    def __init__(self, config: BenchConfig, model: Any = None, *, warm_up: bool = True) -> None:
        self.config = config
        if config.threads:
            import torch

            torch.set_num_threads(config.threads)
        self.model = model if model is not None else load_bench_model(config.model, device=config.device)
        self.vocab = self.model.vocab
        self.adapter: Any = None
        self._peer_template: Any = None
        self._options: Any = None
        self._free: _FreeConstraint | None = None
        if config.engine == "none":
            self._free = _FreeConstraint(self.vocab)
        else:
            from .peers import CompileOptions, PeerTokenizer, make_adapter

            self._options = CompileOptions(whitespace=config.whitespace, strict=config.strict,
                                           additional_properties=config.additional_properties)
            tok = PeerTokenizer(self.vocab, hf=self.model.tokenizer, name=getattr(self.model, "name", None))
            self.adapter = make_adapter(config.engine, tok)
        self.max_positions = _max_positions(self.model)
        if warm_up:
            self._warm_up()

    # -- engine-specific pieces ---------------------------------------------------------------
    def _compile(self, schema: Any) -> tuple[Any, int]:
        """The compiled constraint for ``schema`` (as ``generate(constraint=)`` takes it) and the
        number of keywords the engine declared approximate."""
        if self._free is not None:
            return self._free, 0
        compiled = self.adapter.compile(schema=schema, options=self._options)
        if self.config.engine == "constrain":
            return compiled.native, len(compiled.approximations)
        return self._peer_constraint(compiled), len(compiled.approximations)

    def _peer_constraint(self, compiled: Any) -> Any:
        """A PeerConstraint for ``compiled``, reusing the vocabulary-level masks of the first one.

        Building a PeerConstraint scans the vocabulary (milliseconds); that is adapter overhead,
        not the engine's compile time, so it is done once and shared.
        """
        from .peers import PeerConstraint

        if self._peer_template is None:
            self._peer_template = PeerConstraint(self.adapter, compiled)
            return self._peer_template
        pc = object.__new__(PeerConstraint)
        pc.__dict__.update(self._peer_template.__dict__)
        pc.compiled = compiled
        pc.approximations = list(compiled.approximations)
        return pc

    def _warm_up(self) -> None:
        schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
        constraint, _ = self._compile(schema)
        from ..generation import generate

        generate(self.model, [{"role": "user", "content": "{}"}], constraint=constraint, max_tokens=2)

    # -- one schema ---------------------------------------------------------------------------
    def run(self, item: SchemaItem) -> dict[str, Any]:
        """The result record of one schema (see the module docstring for the fields' meaning)."""
        cfg = self.config
        rec: dict[str, Any] = {
            "key": item.key, "subset": item.subset, "split": item.split, "schema_id": item.schema_id,
            "engine": cfg.engine, "method": cfg.method, "model": cfg.model,
            "compiled": False, "compile_status": None, "error": None, "approximations": 0,
            "stop_reason": None, "output": "", "json_ok": False, "valid": False, "validation_error": None,
            "validator": None, "output_tokens": 0, "prompt_tokens": None,
            "gct_s": None, "ttft_s": None, "tpot_ms": None, "tgt_s": None,
            "seed": schema_seed(cfg.seed, item.key), "peak_rss_mb": None,
        }
        try:
            schema = json.loads(item.text)
        except (ValueError, RecursionError) as exc:
            rec["compile_status"] = "bad_schema"
            rec["error"] = f"the schema file is not JSON: {exc}"[:300]
            rec["peak_rss_mb"] = _peak_rss_mb()
            return rec
        messages = build_messages(item.subset, schema)
        try:
            prompt_text = self.model.apply_chat_template(messages)
            n_prompt = len(self.model.tokenizer(prompt_text, add_special_tokens=False)["input_ids"])
        except Exception as exc:  # noqa: BLE001 - a tokenizer/template failure is this schema's error
            rec["compile_status"] = "not_run"
            rec["stop_reason"] = "model_error"
            rec["error"] = f"prompt: {_short(exc)}"
            rec["peak_rss_mb"] = _peak_rss_mb()
            return rec
        rec["prompt_tokens"] = n_prompt

        # compile (timed from here on, as the harness does)
        start = time.perf_counter()
        constraint = None
        try:
            with _Alarm(cfg.compile_timeout):
                constraint, rec["approximations"] = self._compile(schema)
            gct = time.perf_counter() - start
            if gct > cfg.compile_timeout:
                raise _CompileTimeout()
            rec["compiled"] = True
            rec["compile_status"] = "ok"
            if cfg.engine != "none":
                rec["gct_s"] = gct
        except _CompileTimeout:
            rec["compile_status"] = "compile_timeout"
            rec["error"] = f"compilation took more than {cfg.compile_timeout:g} s"
        except UnsupportedError as exc:
            rec["compile_status"] = "unsupported"
            rec["error"] = _short(exc)
        except SchemaError as exc:
            rec["compile_status"] = "schema_error"
            rec["error"] = _short(exc)
        except (KeyboardInterrupt, MemoryError):
            raise
        except Exception as exc:  # noqa: BLE001 - a peer's own exception type: its refusal
            from .peers import PeerCompileError

            rec["compile_status"] = "unsupported" if isinstance(exc, PeerCompileError) else "compile_error"
            rec["error"] = _short(exc)
        if constraint is None:
            rec["peak_rss_mb"] = _peak_rss_mb()
            return rec

        if self.max_positions is not None and n_prompt + cfg.max_tokens > self.max_positions:
            rec["stop_reason"] = "prompt_too_long"
            rec["error"] = (f"prompt of {n_prompt} tokens + {cfg.max_tokens} output tokens exceeds the model's "
                            f"{self.max_positions} positions")
            rec["peak_rss_mb"] = _peak_rss_mb()
            return rec

        clock = _Clock(time.perf_counter() + cfg.generation_timeout)
        timed = _TimedConstraint(constraint, clock)
        token_ids: list[int] = []
        try:
            text, token_ids, stop = self._generate(messages, timed, rec["seed"])
            rec["stop_reason"] = stop
        except _GenerationTimeout:
            token_ids = list(clock.tokens)
            text = self._decode(token_ids)
            rec["stop_reason"] = "generation_timeout"
            rec["error"] = f"generation took more than {cfg.generation_timeout:g} s"
        except DeadEndError as exc:
            token_ids = list(clock.tokens)
            text = self._decode(token_ids)
            rec["stop_reason"] = "dead_end"
            rec["error"] = _short(exc)
        except (KeyboardInterrupt, MemoryError):
            raise
        except Exception as exc:  # noqa: BLE001 - the model or sampler failed on this schema
            token_ids = list(clock.tokens)
            text = self._decode(token_ids)
            rec["stop_reason"] = "model_error"
            rec["error"] = _short(exc)
        end = time.perf_counter()
        eos = self.vocab.eos_ids
        n_out = sum(1 for t in token_ids if t not in eos)
        rec["output"] = text
        rec["output_tokens"] = n_out
        rec["tgt_s"] = end - start
        if clock.first is not None:
            rec["ttft_s"] = clock.first - start
            if n_out >= 2:
                rec["tpot_ms"] = (end - clock.first) / (n_out - 1) * 1000.0
        if rec["stop_reason"] == "max_tokens" and rec["error"] is None:
            rec["error"] = f"stopped at the {cfg.max_tokens}-token limit"
        rec["json_ok"], rec["valid"], rec["validation_error"], rec["validator"] = validate_output(text, schema)
        rec["peak_rss_mb"] = _peak_rss_mb()
        return rec

    def _decode(self, ids: list[int]) -> str:
        eos = self.vocab.eos_ids
        return self.vocab.decode([t for t in ids if t not in eos]).decode("utf-8", errors="replace")

    def _generate(self, messages: list[dict], constraint: Any, seed: int) -> tuple[str, list[int], str]:
        cfg = self.config
        if cfg.method == "lcd":
            from ..generation import generate

            r = generate(self.model, messages, constraint=constraint, max_tokens=cfg.max_tokens,
                         temperature=cfg.temperature or 0.0, seed=seed)
            return r.text, list(r.token_ids), r.stop_reason
        from ..samplers import sample

        opts: dict[str, Any] = {"max_tokens": cfg.max_tokens, "seed": seed}
        if cfg.temperature is not None and cfg.method in ("awrs", "smc"):
            opts["temperature"] = cfg.temperature
        n = cfg.particles if cfg.method == "smc" else 1
        out = sample(self.model, messages, constraint, method=cfg.method, n=n, **opts)
        if cfg.method == "smc":
            best = max(range(len(out.particles)), key=lambda i: float(out.weights[i]))
            res = out.particles[best]
        else:
            res = out[0]
        return res.text, list(res.token_ids), "eos" if res.finished else "max_tokens"


# ---------------------------------------------------------------------------------------------
# Run directories, resuming, the driver


def _read_results(path: Path) -> tuple[list[dict[str, Any]], int]:
    """Records of a results file and how many damaged lines (a line cut by an interruption) it had."""
    records, bad = [], 0
    if not path.exists():
        return records, bad
    with path.open(encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                bad += 1
                continue
            if isinstance(rec, dict) and "key" in rec:
                records.append(rec)
            else:
                bad += 1
    return records, bad


def _git_revision() -> str | None:
    """The checkout's commit (``+dirty`` with uncommitted changes), when run from a git checkout."""
    import subprocess

    root = Path(__file__).resolve().parents[2]
    try:
        rev = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=10).stdout.strip()
        if not rev:
            return None
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def prepare_run_dir(out: Path, config: BenchConfig, resume: bool) -> list[dict[str, Any]]:
    """Create or reopen ``out``; the records already done (only with ``resume``)."""
    results = out / RESULTS_FILE
    conf = out / CONFIG_FILE
    if results.exists() and results.stat().st_size > 0 and not resume:
        raise BenchDataError(f"{results} already has results; pass --resume to continue that run, "
                             f"or choose another --out")
    done: list[dict[str, Any]] = []
    if resume and conf.exists():
        try:
            old = json.loads(conf.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise BenchDataError(f"{conf} is damaged: {exc}") from None
        old_id = BenchConfig.from_dict(old.get("config", {})).identity()
        new_id = config.identity()
        diff = sorted(k for k in set(old_id) | set(new_id) if old_id.get(k) != new_id.get(k))
        if diff:
            detail = ", ".join(f"{k}: {old_id.get(k)!r} -> {new_id.get(k)!r}" for k in diff)
            raise BenchDataError(f"cannot resume {out}: the run was made with other settings ({detail})")
    if resume:
        done, bad = _read_results(results)
        if bad:  # rewrite without the damaged lines so appending stays line-aligned
            tmp = results.with_suffix(".jsonl.tmp")
            with tmp.open("w", encoding="utf-8") as f:
                for rec in done:
                    f.write(json.dumps(rec) + "\n")
            os.replace(tmp, results)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"config": asdict(config), "label": config.label, "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "python": sys.version.split()[0], "argv": sys.argv[1:]}
    try:
        from .peers import _pkg_version

        meta["versions"] = {d: _pkg_version(d) for d in ("torch", "transformers", "llguidance", "xgrammar",
                                                          "outlines-core", "jsonschema")}
    except Exception:  # noqa: BLE001 - versions are informative only
        pass
    meta["git"] = _git_revision()
    # which formats are checked depends on the optional packages jsonschema finds
    meta["formats_checked"] = sorted(_format_checker().checkers)
    conf.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return done


def run_benchmark(
    items: Sequence[SchemaItem],
    config: BenchConfig,
    out: str | os.PathLike,
    *,
    resume: bool = False,
    ray_address: str | None = None,
    ray_workers: int | None = None,
    model: Any = None,
    progress: bool = True,
    on_record: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Run ``items`` with ``config`` into ``out``; every record of the run (resumed ones included).

    Locally the model is ``model`` or loaded once from ``config.model``; with ``ray_address``
    each Ray worker loads its own. Records are appended to ``out/results.jsonl`` as they finish.
    """
    out = Path(out)
    done = prepare_run_dir(out, config, resume)
    done_keys = {r["key"] for r in done}
    todo = [it for it in items if it.key not in done_keys]
    wanted = {it.key for it in items}
    records = [r for r in done if r["key"] in wanted]
    stats = {"n": len(records), "valid": sum(1 for r in records if r.get("valid"))}

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(items), initial=len(items) - len(todo), desc=f"jsonschemabench {config.label}",
                   unit="schema", dynamic_ncols=True, file=sys.stderr)

    with (out / RESULTS_FILE).open("a", encoding="utf-8") as f:
        def emit(rec: dict[str, Any]) -> None:
            f.write(json.dumps(rec) + "\n")
            f.flush()
            records.append(rec)
            stats["n"] += 1
            stats["valid"] += bool(rec.get("valid"))
            if bar is not None:
                bar.update(1)
                bar.set_postfix_str(f"{rec['subset']} coverage {stats['valid'] / stats['n']:.0%}", refresh=False)
            if on_record is not None:
                on_record(rec)

        try:
            if not todo:
                pass
            elif ray_address is not None:
                from .jsonschemabench_ray import run_on_ray

                run_on_ray(todo, config, ray_address, emit, workers=ray_workers)
            else:
                runner = BenchRunner(config, model=model)
                for item in todo:
                    emit(runner.run(item))
        finally:
            if bar is not None:
                bar.close()
    return records


# ---------------------------------------------------------------------------------------------
# CLI


def add_bench_parsers(sub: Any) -> None:
    """Add ``jsonschemabench`` and ``report`` to the ``constrain bench`` subparsers."""
    jsb = sub.add_parser("jsonschemabench", help="run one engine on JSONSchemaBench schemas",
                         description=__doc__.split("\n\n")[0])
    jsb.add_argument("--data", metavar="DIR", default=None,
                     help="<Subset>/<split>/*.json or the repository's data/<Subset>/*.json "
                          "(default: ../shared/data/jsonschemabench)")
    jsb.add_argument("--subset", nargs="+", metavar="NAME", default=None, help="subsets to run (default: all)")
    jsb.add_argument("--split", default="val", help="split folder (default: val; ignored for the repository layout)")
    jsb.add_argument("--limit", type=int, default=None, metavar="N", help="first N schemas of each subset")
    jsb.add_argument("--model", default="default", help="'default' (SmolLM2-135M-Instruct), a hub name or a folder")
    jsb.add_argument("--engine", choices=ENGINES, default="constrain", help="'none' = unconstrained baseline")
    jsb.add_argument("--method", choices=METHODS, default="lcd", help="sampler (default lcd: masked greedy decoding)")
    jsb.add_argument("--max-tokens", type=int, default=512, metavar="N")
    jsb.add_argument("--temperature", type=float, default=None, metavar="T",
                     help="default: greedy for lcd, the sampler's default otherwise")
    jsb.add_argument("--particles", type=int, default=4, metavar="N", help="SMC particles (--method smc)")
    jsb.add_argument("--compile-timeout", type=float, default=10.0, metavar="S")
    jsb.add_argument("--generation-timeout", type=float, default=60.0, metavar="S")
    jsb.add_argument("--seed", type=int, default=0, help="run seed; each schema's seed derives from it and its id")
    jsb.add_argument("--whitespace", choices=["compact", "flexible"], default="compact",
                     help="JSON whitespace every engine enforces (default compact)")
    jsb.add_argument("--lenient", action="store_true",
                     help="let engines approximate keywords they cannot enforce instead of refusing the schema")
    jsb.add_argument("--closed-objects", action="store_true",
                     help="no undeclared properties where a schema leaves additionalProperties open")
    jsb.add_argument("--device", default="cpu", help="cpu (default), cuda, auto ...")
    jsb.add_argument("--threads", type=int, default=None, metavar="N", help="torch threads (default: torch's)")
    jsb.add_argument("--out", metavar="DIR", default=None,
                     help="run directory (default bench/results/jsonschemabench/<split>-<engine>[-<method>])")
    jsb.add_argument("--resume", action="store_true", help="continue the run in --out, skipping finished schemas")
    jsb.add_argument("--ray", metavar="ADDRESS", default=None,
                     help="shard schemas over a Ray cluster: an address, 'auto', or 'local' (start one here)")
    jsb.add_argument("--ray-workers", type=int, default=None, metavar="N",
                     help="Ray actors (default: one per CPU of the cluster)")
    jsb.add_argument("--no-progress", action="store_true")
    jsb.set_defaults(bench_run=_cmd_jsonschemabench)

    rep = sub.add_parser("report", help="compare JSONSchemaBench runs: table and plots")
    rep.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories (each with results.jsonl)")
    rep.add_argument("--plots", metavar="DIR", default=None, help="write PNG plots here (default: no plots)")
    rep.add_argument("--prefix", default="jsb_", help="plot file name prefix (default jsb_)")
    rep.add_argument("--json", metavar="FILE", default=None, help="also write the metrics as JSON")
    rep.set_defaults(bench_run=_cmd_report)


def _cmd_jsonschemabench(args: argparse.Namespace) -> int:
    from .jsonschemabench_report import format_summary

    config = BenchConfig(
        engine=args.engine, method=args.method, model=args.model, split=args.split, max_tokens=args.max_tokens,
        temperature=args.temperature, particles=args.particles, compile_timeout=args.compile_timeout,
        generation_timeout=args.generation_timeout, seed=args.seed, whitespace=args.whitespace,
        strict=not args.lenient, additional_properties=not args.closed_objects, device=args.device,
        threads=args.threads,
    )
    items = discover(args.data, args.subset, args.split, args.limit)
    out = Path(args.out) if args.out else Path("bench/results/jsonschemabench") / (
        f"{args.split}-{args.engine}" + ("" if args.method == "lcd" else f"-{args.method}"))
    records = run_benchmark(items, config, out, resume=args.resume, ray_address=args.ray,
                            ray_workers=args.ray_workers, progress=not args.no_progress)
    print(format_summary(records, config.label))
    print(f"results: {out / RESULTS_FILE}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from .jsonschemabench_report import format_report, load_runs, metrics_json, plot_runs

    runs = load_runs(args.runs)
    print(format_report(runs))
    if args.json:
        Path(args.json).write_text(json.dumps(metrics_json(runs), indent=2) + "\n", encoding="utf-8")
    if args.plots:
        for p in plot_runs(runs, args.plots, prefix=args.prefix):
            print(f"plot: {p}")
    return 0
