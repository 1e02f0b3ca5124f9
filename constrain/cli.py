"""Command line: ``constrain generate (--schema FILE | --regex R | --grammar FILE) --prompt TEXT``.

Exit codes: 0 success; 1 the output is incomplete (max tokens) or fails schema validation;
2 a usage or constrain error (one line on stderr, no traceback).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from .errors import ConstrainError

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="constrain", description="Constrained generation from language models.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    gen = sub.add_parser("generate", help="generate text that matches a regex, JSON Schema or grammar")
    kind = gen.add_mutually_exclusive_group(required=True)
    kind.add_argument("--schema", metavar="FILE", help="JSON Schema file (or inline JSON)")
    kind.add_argument("--regex", metavar="R", help="regular expression the whole output must match")
    kind.add_argument("--grammar", metavar="FILE", help="grammar file")
    gen.add_argument("--prompt", required=True, help="prompt text (use - to read stdin)")
    gen.add_argument("--model", default="default", help="'default' (SmolLM2-135M-Instruct), a hub name or a folder")
    gen.add_argument("--max-tokens", type=int, default=256, metavar="N")
    gen.add_argument("--temperature", type=float, default=0.0, metavar="T", help="0 = greedy (default)")
    gen.add_argument("--top-p", type=float, default=1.0, metavar="P")
    gen.add_argument("--top-k", type=int, default=0, metavar="K")
    gen.add_argument("--seed", type=int, default=None, metavar="S")
    gen.add_argument("--system", default=None, help="system message for the chat template")
    gen.add_argument("--no-chat", action="store_true", help="do not apply the model's chat template")
    gen.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:1 ...")
    gen.add_argument("--stats", action="store_true", help="print timings to stderr")
    gen.add_argument("--speculative", default=None, metavar="DRAFT",
                     help="speculative decoding draft, e.g. jump-forward+prompt-lookup")
    gram = sub.add_parser("grammar", help="grammar tools")
    gsub = gram.add_subparsers(dest="grammar_command", required=True, metavar="ACTION")
    check = gsub.add_parser("check", help="report errors, unreachable rules and ambiguity warnings")
    check.add_argument("file", help="a .lark or GBNF (.gbnf/.ebnf) grammar file")
    check.add_argument("--syntax", choices=["lark", "gbnf"], default=None, help="default: from the file")
    bench = sub.add_parser("bench", help="end-to-end benchmarks: jsonschemabench runs and their report")
    bench_sub = bench.add_subparsers(dest="bench_command", required=True, metavar="BENCHMARK")
    from .evaluation.jsonschemabench import add_bench_parsers

    add_bench_parsers(bench_sub)
    from .evaluation.maskbench import add_arguments as add_maskbench_arguments

    add_maskbench_arguments(sub.add_parser(
        "maskbench", help="JSON Schema token masks on MaskBench files: constrain and peer engines side by side"))
    from .evaluation.conformance import add_arguments as add_conformance_arguments

    add_conformance_arguments(sub.add_parser(
        "conformance", help="JSON Schema Test Suite: cases passed / failed / unsupported per keyword file"))
    return parser


def _grammar_check(args: argparse.Namespace) -> int:
    from .grammar import check_grammar

    report = check_grammar(args.file, syntax=args.syntax)
    print(report.format())
    return 0 if report.ok else 1


def _precheck(kwargs: dict) -> None:
    """Parse the regex / translate the schema early (both cheap and model-independent)."""
    if "regex" in kwargs:
        from .regex import parse_regex

        parse_regex(kwargs["regex"])
    elif "schema" in kwargs:
        from .schema import schema_to_regex

        schema_to_regex(kwargs["schema"])


def _generate(args: argparse.Namespace) -> int:
    from .generation import _load_schema, generate
    from .model import load_model

    prompt = sys.stdin.read() if args.prompt == "-" else args.prompt
    kwargs: dict = {}
    schema_obj = None
    if args.schema is not None:
        schema_obj = _load_schema(args.schema)
        kwargs["schema"] = schema_obj
    elif args.regex is not None:
        kwargs["regex"] = args.regex
    else:
        try:
            kwargs["grammar"] = Path(args.grammar).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConstrainError(f"cannot read grammar file {args.grammar}: {exc.strerror or exc}") from None

    _precheck(kwargs)  # report a bad regex/schema before spending seconds on the model
    model = load_model(args.model, device=args.device)
    result = generate(
        model, prompt, max_tokens=args.max_tokens, temperature=args.temperature, top_p=args.top_p,
        top_k=args.top_k, seed=args.seed, chat=not args.no_chat, system=args.system,
        speculative=args.speculative, **kwargs,
    )
    print(result.text)
    if args.stats:
        t = result.timings
        print(
            f"{len(result.token_ids)} tokens, prefill {t['prefill_s']:.3f}s, decode {t['decode_s']:.3f}s, "
            f"{t['tokens_per_s']:.1f} tokens/s",
            file=sys.stderr,
        )
    status = 0
    if not result.finished:
        print(f"constrain: stopped after {args.max_tokens} tokens; the output is incomplete", file=sys.stderr)
        status = 1
    if schema_obj is not None:
        valid = False
        if result.finished:
            import jsonschema

            try:
                jsonschema.validate(json.loads(result.text), schema_obj)
                valid = True
            except (ValueError, jsonschema.ValidationError) as exc:
                print(f"constrain: {getattr(exc, 'message', exc)}", file=sys.stderr)
        print(f"valid: {valid}")
        if not valid:
            status = 1
    return status


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "generate":
            return _generate(args)
        if args.command == "grammar":
            return _grammar_check(args)
        if args.command == "bench":
            return args.bench_run(args)
        if args.command == "maskbench":
            from .evaluation.maskbench import run_from_args

            return run_from_args(args)
        if args.command == "conformance":
            from .evaluation.conformance import run_from_args as run_conformance_from_args

            return run_conformance_from_args(args)
        parser.error(f"unknown command {args.command!r}")  # pragma: no cover - argparse rejects it first
    except (ConstrainError, ValueError) as exc:
        lines = str(exc).strip().splitlines()
        msg = lines[0].strip() if lines else type(exc).__name__
        print(f"constrain: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("constrain: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
