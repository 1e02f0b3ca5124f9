"""``constrain conformance``: the official JSON Schema Test Suite, checked on constrain's automata.

For every test case (one schema and its instances) of a draft's keyword files
(``tests/<draft>/*.json``), the schema is compiled with
``compile_json_schema`` (compact whitespace, JSON Schema semantics for absent
``additionalProperties``, strict: unsupported keywords raise) for a byte-level
vocabulary (one token per byte, so no tokenizer is needed) and each instance is
forced as bytes: ``accept_bytes(text)`` then ``is_accepting()``.

A case **passes** when the schema compiles and every valid instance is accepted
and every invalid one rejected. Valid instances are written as compact JSON
with keys in schema order, or in their own order if that one is accepted
instead (see :mod:`.instances`); an invalid instance must be rejected in every
key order. A schema that compiles to the empty language (``SchemaError``)
passes only when every instance is invalid. With ``--tokenizer`` each text is
also forced token by token through the masks of a real vocabulary (canonical
tokenisation), and a disagreement with the byte-level verdict fails the case.

Remote ``$ref`` (``http://localhost:1234/...``) are served from the suite's
``remotes/`` folder through the ``resolver`` argument, and metaschema URIs from
``jsonschema_specifications``; ``optional/`` files are skipped unless
``--optional``.

``python -m constrain.evaluation.conformance --write-xfail tests/schema_suite_xfail.py``
regenerates the expected-failure list used by ``tests/test_json_schema_suite.py``.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
import warnings
from collections import Counter
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator, Sequence

from .instances import serialisations

__all__ = [
    "DRAFTS",
    "CaseResult",
    "iter_cases",
    "run_case",
    "run_conformance",
    "case_id",
    "byte_vocabulary",
    "suite_resolver",
    "main",
]

#: ``--draft`` value -> (tests folder name, ``$schema`` injected when a schema has none)
DRAFTS: dict[str, tuple[str, str]] = {
    "2020-12": ("draft2020-12", "https://json-schema.org/draft/2020-12/schema"),
    "2019-09": ("draft2019-09", "https://json-schema.org/draft/2019-09/schema"),
    "7": ("draft7", "http://json-schema.org/draft-07/schema#"),
    "6": ("draft6", "http://json-schema.org/draft-06/schema#"),
    "4": ("draft4", "http://json-schema.org/draft-04/schema#"),
}

REMOTE_BASE = "http://localhost:1234/"
DEFAULT_TIME_LIMIT_S = 10.0


@dataclass
class CaseResult:
    """The outcome of one test case: ``passed``, ``failed``, ``unsupported`` or ``timeout``."""

    id: str
    description: str
    status: str
    problems: list[str] = field(default_factory=list)
    engine: str = ""
    compile_ms: float = 0.0

    @property
    def reason(self) -> str:
        """One line for an expected-failure list."""
        return self.problems[0] if self.problems else self.status


def case_id(folder: str, rel_file: str, index: int) -> str:
    """``draft2020-12/ref/3``: the folder, the file without ``.json``, the case index."""
    stem = rel_file[:-5] if rel_file.endswith(".json") else rel_file
    return f"{folder}/{stem}/{index}"


def iter_cases(suite: Path, draft: str, *, optional: bool = False) -> Iterator[tuple[str, str, int, dict]]:
    """``(draft folder, file relative to it, index, case)`` for every case of ``draft``, in file order."""
    if draft not in DRAFTS:
        raise ValueError(f"unknown draft {draft!r}; choose from {', '.join(DRAFTS)}")
    folder = DRAFTS[draft][0]
    root = Path(suite) / "tests" / folder
    if not root.is_dir():
        raise FileNotFoundError(f"{root} does not exist (is --suite the JSON-Schema-Test-Suite checkout?)")
    files = sorted(root.glob("*.json"))
    if optional:
        files += sorted(p for p in (root / "optional").rglob("*.json"))
    for path in files:
        rel = path.relative_to(root).as_posix()
        cases = json.loads(path.read_text(encoding="utf-8"))
        for i, case in enumerate(cases):
            yield folder, rel, i, case


def byte_vocabulary() -> Any:
    """One token per byte value plus an EOS token: token-free byte-level matching."""
    return _byte_vocab()


@lru_cache(maxsize=1)
def _byte_vocab() -> Any:
    from ..vocabulary import Vocabulary

    return Vocabulary([bytes([i]) for i in range(256)] + [None], eos_ids=[256], name="bytes")


def suite_resolver(suite: Path) -> Any:
    """A ``resolver`` callable: ``http://localhost:1234/x`` -> ``remotes/x``; metaschemas from jsonschema."""
    remotes = Path(suite) / "remotes"

    def resolve(url: str) -> Any:
        if url.startswith(REMOTE_BASE):
            path = remotes / url[len(REMOTE_BASE):]
            if path.is_file():
                return json.loads(path.read_text(encoding="utf-8"))
            return None
        try:
            from jsonschema_specifications import REGISTRY

            return REGISTRY.contents(url.rstrip("#") if url.endswith("#") else url)
        except Exception:  # noqa: BLE001 - unknown URI: unresolvable
            try:
                from jsonschema_specifications import REGISTRY

                return REGISTRY.contents(url + ("" if url.endswith("#") else "#"))
            except Exception:  # noqa: BLE001
                return None

    return resolve


class _Timeout(Exception):
    pass


@contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Raise _Timeout after ``seconds`` (SIGALRM; a no-op off the main thread or without SIGALRM)."""
    if seconds <= 0 or not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise _Timeout()

    old = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _with_draft(schema: Any, draft: str) -> Any:
    if isinstance(schema, dict) and "$schema" not in schema:
        return {"$schema": DRAFTS[draft][1], **schema}
    return schema


def _short(value: Any, n: int = 80) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= n else text[: n - 3] + "..."


def _accepts_bytes(constraint: Any, text: str) -> bool:
    m = constraint.matcher()
    return bool(m.accept_bytes(text.encode("utf-8")) and m.is_accepting())


def _accepts_tokens(constraint: Any, tok: Any, text: str) -> bool:
    """Force the canonical tokens through the masks; complete and EOS allowed at the end."""
    import numpy as np

    from ..tokens.bitmask import is_allowed

    m = constraint.matcher()
    buf = np.zeros((tok.size + 31) // 32, dtype=np.uint32)
    for t in tok.tokenize(text):
        m.fill_mask(buf)
        if not is_allowed(buf, t) or not m.accept_token(t):
            return False
    m.fill_mask(buf)
    return bool(m.is_accepting() and is_allowed(buf, tok.eos_id))


def run_case(case: dict, draft: str, *, suite: Path | None = None, cid: str = "", tokenizer: Any = None,
             time_limit: float = DEFAULT_TIME_LIMIT_S) -> CaseResult:
    """Compile one test case's schema and check every instance (see the module docstring)."""
    from ..errors import SchemaError, UnsupportedError
    from ..schema import compile_json_schema

    schema = _with_draft(case["schema"], draft)
    tests = case.get("tests") or []
    res = CaseResult(cid, case.get("description", ""), "passed")
    resolver = suite_resolver(suite) if suite is not None else None
    vocabs = [("bytes", _byte_vocab())]
    if tokenizer is not None:
        vocabs.append(("tokens", tokenizer.vocab))
    compiled: dict[str, Any] = {}
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings(), _time_limit(time_limit):
            warnings.simplefilter("ignore")
            for label, vocab in vocabs:
                compiled[label] = compile_json_schema(schema, vocab, additional_properties=True, resolver=resolver)
    except _Timeout:
        res.status = "timeout"
        res.problems.append(f"compile took more than {time_limit:g} s")
        return res
    except UnsupportedError as exc:
        res.status = "unsupported"
        res.problems.append(f"unsupported: {str(exc).splitlines()[0]}")
        return res
    except SchemaError as exc:
        res.compile_ms = (time.perf_counter() - t0) * 1e3
        if any(t["valid"] for t in tests):
            res.status = "failed"
            res.problems.append(f"SchemaError on a schema with valid instances: {str(exc).splitlines()[0]}")
        else:
            res.engine = "empty"
        return res
    except RecursionError as exc:  # a compiler bug, not an expected outcome
        res.status = "failed"
        res.problems.append(f"RecursionError while compiling: {exc}")
        return res
    except Exception as exc:  # noqa: BLE001 - any other exception is a compiler bug worth listing
        res.status = "failed"
        res.problems.append(f"crash while compiling: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        return res
    res.compile_ms = (time.perf_counter() - t0) * 1e3
    res.engine = getattr(compiled["bytes"], "engine", "")
    for t in tests:
        try:
            forms = [text for label, text in serialisations(t["data"], case["schema"]) if label != "pretty"]
        except ValueError:
            continue  # not representable as JSON text (NaN): nothing to check
        try:
            with _time_limit(time_limit):
                verdicts = [_accepts_bytes(compiled["bytes"], text) for text in forms]
                token_verdicts = ([_accepts_tokens(compiled["tokens"], tokenizer, text) for text in forms]
                                  if tokenizer is not None else verdicts)
        except _Timeout:
            res.status = "failed"
            res.problems.append(f"matching {t['description']!r} took more than {time_limit:g} s")
            continue
        except Exception as exc:  # noqa: BLE001 - a matcher crash is a failure of the case
            res.status = "failed"
            res.problems.append(f"crash while matching {t['description']!r}: {type(exc).__name__}: {exc}")
            continue
        if verdicts != token_verdicts:
            res.status = "failed"
            res.problems.append(f"token-level and byte-level verdicts differ on {t['description']!r} {_short(t['data'])}")
        if t["valid"] and not any(verdicts):
            res.status = "failed"
            res.problems.append(f"valid instance refused: {t['description']!r} {_short(t['data'])}")
        elif not t["valid"] and any(verdicts):
            res.status = "failed"
            res.problems.append(f"invalid instance accepted: {t['description']!r} {_short(t['data'])}")
    return res


def run_conformance(suite: Path, drafts: Sequence[str], *, optional: bool = False, tokenizer: Any = None,
                    time_limit: float = DEFAULT_TIME_LIMIT_S, progress: bool = True) -> dict:
    """Every case of ``drafts``; returns ``{"drafts": {draft: {"files": {file: counts}, "cases": [...]}}}``."""
    from tqdm import tqdm

    out: dict[str, Any] = {"suite": str(suite), "drafts": {}}
    todo = [(d, c) for d in drafts for c in iter_cases(suite, d, optional=optional)]
    bar = tqdm(todo, unit="case", dynamic_ncols=True, mininterval=1.0, disable=not progress)
    started = time.time()
    for draft, (folder, rel, i, case) in bar:
        cid = case_id(folder, rel, i)
        bar.set_description(cid[:40])
        r = run_case(case, draft, suite=suite, cid=cid, tokenizer=tokenizer, time_limit=time_limit)
        d = out["drafts"].setdefault(draft, {"files": {}, "cases": []})
        counts = d["files"].setdefault(rel[:-5], {"passed": 0, "failed": 0, "unsupported": 0, "timeout": 0})
        counts[r.status] += 1
        d["cases"].append(asdict(r))
    bar.close()
    for d in out["drafts"].values():
        tot = Counter()
        for c in d["files"].values():
            tot.update(c)
        d["total"] = {k: tot.get(k, 0) for k in ("passed", "failed", "unsupported", "timeout")}
        d["total"]["cases"] = sum(d["total"].values())
    out["wall_s"] = time.time() - started
    return out


def format_table(result: dict) -> str:
    lines = []
    for draft, d in result["drafts"].items():
        lines.append(f"### draft {draft}\n")
        lines.append("| file | passed | failed | unsupported | timeout |")
        lines.append("|---|---|---|---|---|")
        for f, c in d["files"].items():
            lines.append(f"| {f} | {c['passed']} | {c['failed']} | {c['unsupported']} | {c['timeout']} |")
        t = d["total"]
        pct = 100.0 * t["passed"] / t["cases"] if t["cases"] else 0.0
        lines.append(f"| **total** | **{t['passed']} / {t['cases']} ({pct:.1f}%)** | {t['failed']} | "
                     f"{t['unsupported']} | {t['timeout']} |")
        lines.append("")
    return "\n".join(lines)


def write_xfail(result: dict, path: Path, command: str) -> int:
    """Write the ``{case id: reason}`` dict of every case that did not pass; returns how many."""
    entries = []
    for d in result["drafts"].values():
        for c in d["cases"]:
            if c["status"] != "passed":
                reason = c["problems"][0] if c["problems"] else c["status"]
                if len(c["problems"]) > 1:
                    reason += f" (+{len(c['problems']) - 1} more)"
                entries.append((c["id"], reason[:300]))
    body = "".join(f"    {cid!r}: {reason!r},\n" for cid, reason in entries)
    text = (
        '"""Expected failures of tests/test_json_schema_suite.py: {case id: reason}.\n\n'
        "Generated; do not edit by hand. After improving the compiler, regenerate with\n\n"
        f"    {command}\n\n"
        "Every case listed here is a strict xfail: a listed case that starts passing fails the\n"
        "test run until this file is regenerated.\n"
        '"""\n\n'
        "XFAIL: dict[str, str] = {\n" + body + "}\n"
    )
    path.write_text(text, encoding="utf-8")
    return len(entries)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--suite", required=True, type=Path, metavar="DIR",
                   help="JSON-Schema-Test-Suite checkout (holding tests/ and remotes/)")
    p.add_argument("--draft", action="append", choices=list(DRAFTS), default=None,
                   help="draft to run (repeatable; default 2020-12)")
    p.add_argument("--json", type=Path, default=None, metavar="FILE", help="write all case outcomes here")
    p.add_argument("--optional", action="store_true", help="also run the optional/ files (formats, bignum ...)")
    p.add_argument("--tokenizer", default=None, metavar="PATH|NAME",
                   help="also force every text token by token through this vocabulary's masks")
    p.add_argument("--time-limit", type=float, default=DEFAULT_TIME_LIMIT_S, metavar="S",
                   help="per case, for compiling and for each instance")
    p.add_argument("--write-xfail", type=Path, default=None, metavar="FILE",
                   help="write the {case id: reason} dict of the cases that did not pass (tests/schema_suite_xfail.py)")
    p.add_argument("--failures", action="store_true", help="print every failing case with its problems")
    p.add_argument("--no-progress", action="store_true")


def run_from_args(args: argparse.Namespace) -> int:
    drafts = args.draft or ["2020-12"]
    tok = None
    if args.tokenizer:
        from .peers import PeerTokenizer

        tok = PeerTokenizer.load(args.tokenizer)
    result = run_conformance(args.suite, drafts, optional=args.optional, tokenizer=tok, time_limit=args.time_limit,
                             progress=not args.no_progress)
    argv = getattr(args, "_argv", None) or sys.argv[1:]
    result["command"] = " ".join(["constrain"] + ([] if argv[:1] == ["conformance"] else ["conformance"]) + argv)
    print(format_table(result))
    if args.failures:
        for d in result["drafts"].values():
            for c in d["cases"]:
                if c["status"] != "passed":
                    print(f"{c['id']} [{c['status']}] {c['description']}")
                    for p in c["problems"]:
                        print(f"    {p}")
    for draft, d in result["drafts"].items():
        t = d["total"]
        print(f"draft {draft}: {t['passed']} / {t['cases']} cases passed, {t['failed']} failed, "
              f"{t['unsupported']} unsupported, {t['timeout']} timeouts")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    if args.write_xfail:
        cmd = ("python -m constrain.evaluation.conformance --suite ../shared/data/json-schema-test-suite "
               + " ".join(f"--draft {d}" for d in drafts) + f" --write-xfail {args.write_xfail}")
        n = write_xfail(result, args.write_xfail, cmd)
        print(f"wrote {n} expected failures to {args.write_xfail}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="constrain conformance", description=__doc__.split("\n\n")[0])
    add_arguments(p)
    args = p.parse_args(argv)
    args._argv = list(sys.argv[1:] if argv is None else argv)
    return run_from_args(args)


if __name__ == "__main__":
    raise SystemExit(main())
