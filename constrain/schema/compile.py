"""``compile_json_schema``: a JSON Schema -> a token-level constraint.

Two back ends share one schema compiler (:mod:`.to_regex`):

* the **DFA path**: when the schema is not recursive, every unconstrained
  value is bounded and the automaton stays small, the whole language is one
  regex -> one minimal byte DFA -> memoised per-state masks (microseconds);
* the **grammar path**: otherwise the compiler writes regular right-hand
  sides with ``(?&name)`` holes (recursive ``$ref`` targets, unconstrained
  values of any depth, repeated container items), which become a CFG over big
  regex terminals for the Earley engine of :mod:`constrain.grammar`.

The choice is invisible to users: both are exact for the options chosen.
``strict=False`` trades exactness for coverage one keyword at a time, and
reports each keyword it relaxed with its JSON pointer.
"""

from __future__ import annotations

import copy
import json
import os
import threading
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import urldefrag

from ..errors import ConstraintError, SchemaError, UnsupportedError
from ..regex.to_dfa import TooManyStates, regex_to_dfa
from ..tokens.base import Constraint
from ..tokens.dfa_constraint import DFAConstraint
from .to_regex import _WHITESPACE_CLASS, _Compiler, _Recursion, _ptr

__all__ = ["compile_json_schema", "JSONSchemaConstraint", "Approximation", "load_schema"]

#: DFA states beyond which the grammar path is cheaper to build and as exact.
DFA_STATE_BUDGET = 30_000
#: Thompson states of the one-DFA attempt (beyond them it would take seconds to build and fail anyway).
DFA_NFA_BUDGET = 600_000
#: Regexes longer than this go straight to the grammar path (their NFA alone would be slow to build).
DFA_REGEX_CHARS = 200_000
_MAX_RELAXATIONS = 200
_MAX_REMOTE = 64

Resolver = Mapping[str, Any] | Callable[[str], Any]


@dataclass(frozen=True)
class Approximation:
    """A keyword ``strict=False`` did not enforce exactly (the output may violate it)."""

    pointer: str
    message: str

    def __str__(self) -> str:
        return f"{self.pointer or '/'}: {self.message}"


class JSONSchemaConstraint(Constraint):
    """A compiled JSON Schema: the schema, its options, and the automaton behind it.

    ``engine`` is ``"dfa"`` or ``"grammar"``; ``approximations`` is empty in
    strict mode. Matchers come from the underlying DFA or grammar constraint.
    """

    def __init__(self, inner: Constraint, schema: Any, engine: str, options: dict,
                 approximations: tuple[Approximation, ...]) -> None:
        self.inner = inner
        self.vocab = inner.vocab
        self.schema = schema
        self.engine = engine
        self.options = options
        self.approximations = approximations

    def matcher(self):
        return self.inner.matcher()

    @property
    def exact(self) -> bool:
        return not self.approximations

    def __repr__(self) -> str:
        extra = f" approximations={len(self.approximations)}" if self.approximations else ""
        return f"<JSONSchemaConstraint engine={self.engine} inner={self.inner!r}{extra}>"


# ---------------------------------------------------------------------------------------------
# Loading


def load_schema(schema: Any) -> Any:
    """A JSON Schema given as an object, a JSON string, a file path or a Pydantic model class."""
    if isinstance(schema, (dict, bool)):
        return schema
    if isinstance(schema, type) and callable(getattr(schema, "model_json_schema", None)):
        return schema.model_json_schema()  # pydantic v2 model class
    if isinstance(schema, os.PathLike):
        return _read_schema_file(Path(schema))
    if isinstance(schema, (bytes, bytearray)):
        schema = schema.decode("utf-8")
    if isinstance(schema, str):
        text = schema.strip()
        if text[:1] in ("{", "[") or text in ("true", "false"):
            try:
                return json.loads(text)
            except json.JSONDecodeError as exc:
                raise SchemaError(f"schema is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
        path = Path(text).expanduser()
        if path.is_file():
            return _read_schema_file(path)
        raise SchemaError(f"schema is neither JSON text nor an existing file: {text[:80]!r}")
    raise SchemaError(
        f"schema must be a dict, a JSON string, a file path or a Pydantic model class, not {type(schema).__name__}"
    )


def _read_schema_file(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SchemaError(f"cannot read schema file {path}: {exc.strerror or exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SchemaError(f"schema file {path} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None


# ---------------------------------------------------------------------------------------------
# Byte level (vocabulary independent, cached)


@dataclass(frozen=True)
class _ByteLevel:
    engine: str
    artefact: Any  # ByteDFA or CompiledGrammar
    source: str
    approximations: tuple[Approximation, ...]


def _fetch(resolver: Resolver | None, url: str) -> Any:
    if resolver is None:
        return None
    try:
        doc = resolver(url) if callable(resolver) else resolver.get(url)
    except Exception as exc:  # noqa: BLE001 - a user callback
        raise SchemaError(f"resolver failed for {url!r}: {exc}") from exc
    if doc is None:
        return None
    return load_schema(doc)


def _embed(root: Any, url: str, doc: Any, draft_hint: Any) -> Any:
    """``root`` with ``doc`` stored inside it under ``$id: url`` so local resolution finds it."""
    if not isinstance(root, dict):
        return root
    root = dict(root)
    legacy = isinstance(draft_hint, str) and ("draft-04" in draft_hint or "draft-06" in draft_hint or "draft-07" in draft_hint)
    key = "definitions" if legacy else "$defs"
    defs = dict(root.get(key) or {})
    if isinstance(doc, dict):
        doc = dict(doc)
        doc["id" if isinstance(draft_hint, str) and "draft-04" in draft_hint else "$id"] = url
    else:  # a boolean document
        doc = {"allOf": [doc], "$id": url}
    defs[f"__remote_{len(defs)}"] = doc
    root[key] = defs
    return root


#: Keywords whose value is a map of names to subschemas, or a list of subschemas.
_MAP_KEYWORDS = frozenset({"properties", "patternProperties", "$defs", "definitions", "dependentSchemas", "dependencies"})
_LIST_KEYWORDS = frozenset({"allOf", "anyOf", "oneOf", "prefixItems", "items", "additionalItems"})


def _monotone_anchor(root: Any, tokens: list[str]) -> list[str]:
    """The keyword to relax so that the schema only gets looser.

    Dropping a keyword loosens the subschema that holds it, and the whole
    schema with it only where every enclosing keyword is monotone. Under
    ``not`` it tightens; an ``if`` is used both ways; a ``oneOf`` branch is
    also negated (exactly one branch); a looser ``contains`` counts more items
    against ``maxContains``. So the outermost such keyword on the way is
    relaxed instead (``not`` and ``if`` are dropped, ``oneOf`` becomes
    ``anyOf``, ``maxContains`` is dropped).
    """
    node: Any = root
    i = 0
    while i < len(tokens) and isinstance(node, dict):
        kw = tokens[i]
        if kw not in node:
            break
        if kw in ("not", "if", "oneOf") and i + 1 < len(tokens):
            return tokens[: i + 1]
        if kw == "contains" and "maxContains" in node and i + 1 < len(tokens):
            return tokens[:i] + ["maxContains"]
        child = node[kw]
        if (kw in _MAP_KEYWORDS and isinstance(child, dict)) or (kw in _LIST_KEYWORDS and isinstance(child, list)):
            i += 1
            if i >= len(tokens):
                break
            t = tokens[i]
            if isinstance(child, dict):
                child = child.get(t)
            else:
                child = child[int(t)] if t.isdigit() and int(t) < len(child) else None
        node = child
        i += 1
    return tokens


def _relax(root: Any, pointer: str, message: str) -> tuple[Any, Approximation] | None:
    """``root`` without the keyword at ``pointer`` (oneOf becomes anyOf), or None;
    where that would tighten the schema, the enclosing keyword of :func:`_monotone_anchor`."""
    if not pointer:
        return None
    tokens = [t.replace("~1", "/").replace("~0", "~") for t in pointer.split("/")[1:]]
    anchor = _monotone_anchor(root, tokens)
    if anchor != tokens:
        tokens = anchor
        pointer = _ptr("", *tokens)
        message = f"enclosing {tokens[-1]!r} relaxed, as dropping what is inside it would tighten the schema: {message}"
    root = copy.deepcopy(root)
    node = root
    for t in tokens[:-1]:
        if isinstance(node, dict) and t in node:
            node = node[t]
        elif isinstance(node, list) and t.isdigit() and int(t) < len(node):
            node = node[int(t)]
        else:
            return None
    kw = tokens[-1]
    if not isinstance(node, dict) or kw not in node or kw in ("properties", "items", "prefixItems", "$defs", "definitions"):
        return None
    if kw == "if":
        for k in ("if", "then", "else"):
            node.pop(k, None)
        return root, Approximation(pointer, f"if/then/else not enforced ({message})")
    if kw == "oneOf":
        branches = node.pop("oneOf")
        if "anyOf" in node:
            node.setdefault("allOf", []).append({"anyOf": branches})
        else:
            node["anyOf"] = branches
        return root, Approximation(pointer, f"oneOf treated as anyOf ({message})")
    del node[kw]
    return root, Approximation(pointer, f"keyword not enforced ({message})")


def _compile_bytes(schema: Any, ws: str, ap: bool, strict: bool, resolver: Resolver | None) -> _ByteLevel:
    approximations: list[Approximation] = []
    remote: set[str] = set()
    draft_hint = schema.get("$schema") if isinstance(schema, dict) else None
    failures: set = set()  # patternProperties regions left out (shared by every retry)
    for _ in range(_MAX_RELAXATIONS + _MAX_REMOTE):
        try:
            engine, artefact, source = _compile_exact(schema, ws, ap, failures, relax_regions=not strict)
            return _ByteLevel(engine, artefact, source, tuple(approximations))
        except UnsupportedError as exc:
            url = _remote_url(exc)
            if url is not None and url not in remote and len(remote) < _MAX_REMOTE:
                doc = _fetch(resolver, url)
                if doc is not None:
                    remote.add(url)
                    schema = _embed(schema, url, doc, draft_hint)
                    continue
            pointer = getattr(exc, "relax_pointer", None) or exc.pointer
            if strict or pointer is None or len(approximations) >= _MAX_RELAXATIONS:
                raise
            got = _relax(schema, pointer, str(exc.args[0]) if exc.args else str(exc))
            if got is None:
                region = getattr(exc, "region_key", None)
                if region is None or region in failures:
                    raise
                # a region whose value no relaxation compiles: left out, a smaller language, reported
                failures.add(region)
                warnings.warn(exc.region_message, stacklevel=3)
                approximations.append(Approximation(exc.region_pointer, exc.region_message))
                continue
            schema, approx = got
            approximations.append(approx)
    raise UnsupportedError("too many approximations or remote documents", pointer="")


def _remote_url(exc: UnsupportedError) -> str | None:
    url = getattr(exc, "remote_url", None)
    return urldefrag(url)[0] if isinstance(url, str) else None


def _compile_exact(schema: Any, ws: str, ap: bool, failures: set,
                   relax_regions: bool) -> tuple[str, Any, str]:
    comp = _Compiler(schema, ws, ap, region_failures=failures, relax_regions=relax_regions)
    try:
        rx = comp.compile()
        if not comp.bounded_any and len(rx) <= DFA_REGEX_CHARS:
            return "dfa", regex_to_dfa(rx, max_states=DFA_STATE_BUDGET, max_nfa=DFA_NFA_BUDGET), rx
    except (_Recursion, TooManyStates):
        pass
    except UnsupportedError as exc:
        if not getattr(exc, "too_large", False):
            raise
    from .grammar import bodies_to_grammar

    nonterminals: set[str] = set()
    while True:
        comp = _Compiler(schema, ws, ap, nonterminals=frozenset(nonterminals), region_failures=failures,
                         relax_regions=relax_regions)
        try:
            start, bodies = comp.compile_bodies()
            break
        except _Recursion as exc:
            if exc.target in nonterminals:  # pragma: no cover - the compiler reports each cycle once
                raise UnsupportedError(str(exc.args[0]), pointer=exc.pointer) from None
            nonterminals.add(exc.target)
    from ..grammar import CompiledGrammar

    grammar = bodies_to_grammar(start, bodies)
    text = "\n".join(f"{k} ::= {v}" for k, v in bodies.items())
    return "grammar", CompiledGrammar(grammar), text


_byte_cache: "OrderedDict[tuple, _ByteLevel]" = OrderedDict()
_byte_lock = threading.Lock()
_BYTE_CACHE_SIZE = 128


def compile_json_schema(
    schema: Any,
    vocab: Any,
    *,
    whitespace: str = "compact",
    max_whitespace: int = 16,
    key_order: str = "schema",
    strict: bool = True,
    additional_properties: bool = False,
    resolver: Resolver | None = None,
) -> JSONSchemaConstraint:
    """Compile ``schema`` (dict, JSON text, file path or Pydantic model class) for ``vocab``.

    The language is the set of JSON texts that validate against the schema,
    serialised the way generation should produce them:

    * ``whitespace="compact"``: no whitespace outside strings; ``"flexible"``:
      JSON whitespace around structural characters, at most ``max_whitespace``
      characters per gap (unbounded runs let a model loop on newlines).
    * ``key_order="schema"``: declared properties in ``properties`` order
      (optional ones may be skipped), extra properties after them.
    * ``additional_properties``: whether an object schema without
      ``additionalProperties`` may get undeclared keys. JSON Schema (and
      JSONSchemaBench) allow them; generation usually wants only the declared
      ones, so the default is False (a subset of the valid instances).
    * ``strict=True``: a keyword that cannot be enforced exactly raises
      UnsupportedError with its JSON pointer. ``strict=False`` relaxes such
      keywords one at a time (``oneOf`` -> ``anyOf``, others dropped) and lists
      them in ``.approximations``.
    * ``resolver``: remote ``$ref`` documents, a mapping or callable from URI to
      schema.

    Raises SchemaError (invalid schema, unresolvable ``$ref``, empty language;
    with the JSON pointer) and UnsupportedError.
    """
    if whitespace not in ("compact", "flexible"):
        raise ConstraintError(f"whitespace must be 'compact' or 'flexible', not {whitespace!r}")
    if key_order != "schema":
        if key_order == "any":
            raise UnsupportedError("key_order='any' is not implemented yet; use key_order='schema'")
        raise ConstraintError(f"key_order must be 'schema' or 'any', not {key_order!r}")
    if not isinstance(max_whitespace, int) or max_whitespace < 1:
        raise ConstraintError(f"max_whitespace must be a positive int, not {max_whitespace!r}")
    obj = load_schema(schema)
    ws = "" if whitespace == "compact" else f"{_WHITESPACE_CLASS}{{0,{max_whitespace}}}"
    options = {"whitespace": whitespace, "max_whitespace": max_whitespace, "key_order": key_order,
               "strict": strict, "additional_properties": bool(additional_properties)}
    cacheable = resolver is None or isinstance(resolver, Mapping)
    key = None
    if cacheable:
        extra = json.dumps(resolver, sort_keys=True, default=str) if resolver else ""
        key = (json.dumps(obj, sort_keys=True), ws, bool(additional_properties), strict, extra)
        with _byte_lock:
            hit = _byte_cache.get(key)
            if hit is not None:
                _byte_cache.move_to_end(key)
    else:
        hit = None
    if hit is None:
        hit = _compile_bytes(obj, ws, bool(additional_properties), strict, resolver)
        if key is not None:
            with _byte_lock:
                _byte_cache[key] = hit
                while len(_byte_cache) > _BYTE_CACHE_SIZE:
                    _byte_cache.popitem(last=False)
    if hit.engine == "dfa":
        inner: Constraint = DFAConstraint(hit.artefact, vocab, source=hit.source)
    else:
        from ..grammar import GrammarConstraint

        inner = GrammarConstraint(hit.artefact, vocab, source="JSON Schema")
    return JSONSchemaConstraint(inner, obj, hit.engine, options, hit.approximations)
