"""JSON Schema -> regular expression (the non-recursive fast path).

The regex's language is a set of *compact* JSON texts (no whitespace outside
strings unless ``whitespace="flexible"``) of instances that validate against the
schema, with object keys in the schema's ``properties`` order.  It is the exact
set of such serialisations where that is expressible, and otherwise a subset:

- optional properties may be skipped, but never reordered; extra properties
  are generated only where ``additionalProperties`` says so explicitly (or with
  ``additional_properties_default=True``), always after the declared ones and
  never under a declared name;
- an unconstrained value (``true``, ``{}``, an array without ``items``) nests at
  most :data:`ANY_DEPTH` containers deep (arbitrary nesting is not regular);
- bounded non-integers have no exponent and at most 15 significant digits;
- formats are exact or a practical subset (see :mod:`.formats`);
- strings use one JSON encoding per character where a ``pattern`` or ``format``
  applies.

A keyword that cannot be enforced exactly (or by such a subset) raises
:class:`~constrain.errors.UnsupportedError` naming it, never a looser regex.
A schema whose language is empty raises :class:`~constrain.errors.SchemaError`.

How it works: every (sub)schema is *collected* into a conjunction of parts
(``allOf`` and ``$ref`` are inlined), disjunctions (``anyOf``, ``oneOf``,
``if``/``then``/``else``, negations) are expanded into alternatives, each
alternative is merged into one :class:`_Node` and compiled per JSON type.
Whenever a node's values are finite (``enum``, ``const``, ``null``,
``boolean``) they are simply filtered with :mod:`jsonschema`, which makes any
other keyword at that node exact.  ``oneOf`` branches must be provably
disjoint from each other, or their negation must be expressible.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import warnings
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any
from urllib.parse import quote, unquote, urldefrag, urljoin

from jsonschema import (
    Draft4Validator,
    Draft6Validator,
    Draft7Validator,
    Draft201909Validator,
    Draft202012Validator,
)
from jsonschema import exceptions as _js_exc
from jsonschema import validators as _js_validators

from ..errors import ConstraintError, SchemaError, UnsupportedError
from . import numbers as _num
from . import string_sets as _ss
from . import strings as _st
from .formats import UNSUPPORTED_FORMATS, format_pattern

__all__ = ["schema_to_regex", "EmptyLanguageError", "MAX_REGEX_CHARS", "ANY_DEPTH"]

#: Upper bound on the size of a produced regex (characters).
MAX_REGEX_CHARS = 1_000_000
#: Grammar path: container values whose regex is longer than this become their own nonterminal.
SPLIT_CHARS = 2_000
#: Upper bound on the alternatives one (sub)schema expands into.
MAX_ALTERNATIVES = 256
#: Container nesting allowed inside an unconstrained value.
ANY_DEPTH = 2
#: Finite languages (enum, uniqueItems over a finite alphabet) larger than this are refused.
MAX_ENUMERATION = 512

_WHITESPACE_CLASS = "[ \\t\\n\\r]"
_WHITESPACE = {"compact": "", "flexible": _WHITESPACE_CLASS + "*"}

_ALL = frozenset({"null", "boolean", "integer", "fraction", "string", "array", "object"})
_TYPE_CATS = {
    "null": {"null"},
    "boolean": {"boolean"},
    "integer": {"integer"},
    "number": {"integer", "fraction"},
    "string": {"string"},
    "array": {"array"},
    "object": {"object"},
}
_DRAFT = {
    Draft4Validator: 4,
    Draft6Validator: 6,
    Draft7Validator: 7,
    Draft201909Validator: 2019,
    Draft202012Validator: 2020,
}
class EmptyLanguageError(SchemaError):
    """The schema (or a part that must be generated) admits no instance."""


class _Recursion(UnsupportedError):
    """A ``$ref`` cycle through ``target`` (the grammar path makes it a nonterminal)."""

    def __init__(self, message: str, *, pointer: str, target: str) -> None:
        super().__init__(message, pointer=pointer)
        self.target = target


#: Keywords that never constrain an instance: a schema with ``$ref`` and only these is the ref's target.
_ANNOTATIONS = frozenset({
    "title", "description", "$comment", "examples", "default", "deprecated", "readOnly", "writeOnly",
    "$defs", "definitions", "$schema", "$anchor",
})
ANY_NONTERMINAL = "any"
#: Keywords already expanded by collection (a part holding only these adds no constraint itself).
_STRUCTURAL = frozenset({"$ref", "allOf", "anyOf", "oneOf", "$id", "id", "$dynamicAnchor", "$recursiveAnchor"})


class _CannotNegate(Exception):
    def __init__(self, pointer: str, what: str) -> None:
        super().__init__(what)
        self.pointer = pointer
        self.what = what


def _esc(token: str) -> str:
    return str(token).replace("~", "~0").replace("/", "~1")


def _ptr(base: str, *tokens: Any) -> str:
    return base + "".join("/" + _esc(t) for t in tokens)


def _cat_of(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "integer" if v.is_integer() else "fraction"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    raise TypeError(type(v))


def _json_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def _dump(v: Any) -> str:
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _literal_rx(v: Any, fraction_ok: bool = True) -> str:
    """Regex of the JSON texts of one ``enum``/``const`` value: its compact
    dump, except that a number matches every text equal to it that the number
    languages spell (JSON Schema compares numbers by value: ``2`` is a member of
    ``[2.0]``, and ``2.0`` of ``[2]``), as ``I`` or ``I.0...`` for an integral value
    and with trailing zeros for a decimal one. ``fraction_ok`` False (type
    ``integer``, which draft 4 does not let ``2.0`` satisfy): integral values as
    integers only."""
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return _st.escape_literal(_dump(v))
    if isinstance(v, (int, float)):
        if isinstance(v, float) and not v.is_integer():
            text = _dump(v)
            if "e" in text or "E" in text:
                return _st.escape_literal(text)
            return _st.escape_literal(text) + "(?:0{1,14})?"
        if abs(v) >= 1e16:  # a float's integer digits past its precision: its own dump only
            return _st.escape_literal(_dump(v))
        i = int(v)
        return ("-?" if i == 0 else "") + _st.escape_literal(str(i)) + ("(?:\\.0{1,14})?" if fraction_ok else "")
    if isinstance(v, list):
        return "\\[" + ",".join(_literal_rx(x) for x in v) + "\\]"
    if isinstance(v, dict):
        return "\\{" + ",".join(_st.escape_literal(_dump(k)) + ":" + _literal_rx(x) for k, x in v.items()) + "\\}"
    raise TypeError(type(v))


def _group(s: str) -> str:
    return _st.atom(s)


def _alt(parts: list[str]) -> str:
    out: list[str] = []
    for p in parts:
        if p not in out:
            out.append(p)
    if len(out) == 1:
        return out[0]
    return "(?:" + "|".join(out) + ")"


# ---------------------------------------------------------------------------
# internal structures


@dataclass(frozen=True)
class _Loc:
    """A subschema at a JSON pointer of the root document; ``base`` is its base URI."""

    schema: Any
    ptr: str
    base: str
    path: frozenset = field(default=frozenset(), compare=False, hash=False)


@dataclass(frozen=True)
class _Neg:
    loc: _Loc


@dataclass
class _Part:
    schema: dict
    ptr: str
    base: str = ""
    depth: int = 0
    synthetic: bool = False
    path: frozenset = frozenset()


@dataclass
class _Choice:
    kind: str  # anyOf | oneOf | if | not
    branches: list  # list of item lists
    ptr: str
    path: frozenset
    locs: list = field(default_factory=list)  # oneOf: the branch locations


@dataclass
class _Alt:
    parts: list
    obligations: list = field(default_factory=list)  # (choice, branch index)
    done: frozenset = frozenset()

    def plus(self, other: _Alt) -> _Alt:
        return _Alt(self.parts + other.parts, self.obligations + other.obligations, self.done | other.done)


@dataclass
class _Gen:
    """A compiled language plus what disjointness proofs need to know about it."""

    regex: str
    types: frozenset
    finite: list | None = None
    keys_always: frozenset = frozenset()
    keys_possible: frozenset | None = frozenset()  # None: arbitrary extra keys
    props: dict = field(default_factory=dict)
    int_range: tuple | None = None
    components: list | None = None
    string_ast: Any = None  # strings: the decoded language, for key algebra (propertyNames)

    def leaves(self) -> list[_Gen]:
        if self.components is None:
            return [self]
        out = []
        for c in self.components:
            out.extend(c.leaves())
        return out


def _union(gens: list[_Gen]) -> _Gen:
    if len(gens) == 1:
        return gens[0]
    types = frozenset().union(*(g.types for g in gens))
    finite = None
    if all(g.finite is not None for g in gens):
        finite = [v for g in gens for v in g.finite]
    return _Gen(_alt([g.regex for g in gens]), types, finite=finite, components=gens)


@dataclass
class _Node:
    parts: list
    types: set = field(default_factory=lambda: set(_ALL))
    type_ptr: str | None = None
    finite: list | None = None
    finite_ptr: str | None = None
    notin: list = field(default_factory=list)
    notin_ptr: str | None = None
    lower: list = field(default_factory=list)  # (raw, excl, ptr)
    upper: list = field(default_factory=list)
    multiple_of: list = field(default_factory=list)  # (raw, ptr)
    min_len: int = 0
    min_len_ptr: str | None = None
    max_len: int | None = None
    max_len_ptr: str | None = None
    patterns: list = field(default_factory=list)  # (pattern, ptr)
    not_patterns: list = field(default_factory=list)  # (pattern, ptr) no string may match (from 'not')
    formats: list = field(default_factory=list)  # (name, ptr)
    props: dict = field(default_factory=dict)  # name -> [items]
    required: dict = field(default_factory=dict)  # name -> ptr
    ap_parts: list = field(default_factory=list)  # (declared names, patterns, loc, ptr)
    pattern_props: list = field(default_factory=list)  # (pattern, loc, ptr)
    property_names: list = field(default_factory=list)  # loc
    min_props: int = 0
    min_props_ptr: str | None = None
    max_props: int | None = None
    max_props_ptr: str | None = None
    deps: list = field(default_factory=list)  # (trigger, list | loc, ptr)
    forbid: dict = field(default_factory=dict)  # name -> ptr
    uneval_props: _Loc | None = None
    arrays: list = field(default_factory=list)  # (prefix locs, tail loc | None | False, ptr)
    uneval_items: _Loc | None = None
    min_items: int = 0
    min_items_ptr: str | None = None
    max_items: int | None = None
    max_items_ptr: str | None = None
    unique_ptr: str | None = None
    contains: list = field(default_factory=list)  # (loc, minContains, maxContains, ptr)
    opaque: list = field(default_factory=list)  # (description, ptr)


# ---------------------------------------------------------------------------


def schema_to_regex(
    schema: dict | bool,
    *,
    whitespace: str = "compact",
    additional_properties_default: bool = False,
) -> str:
    """Compile a non-recursive JSON Schema to a regex over JSON texts.

    ``whitespace``: ``"compact"`` (none outside strings) or ``"flexible"``
    (optional JSON whitespace around structural characters).
    ``additional_properties_default``: whether an object without
    ``additionalProperties`` may be generated with extra keys (JSON Schema
    allows them; by default we only generate declared properties, a subset).

    Raises SchemaError (invalid schema or empty language, with the JSON
    pointer) or UnsupportedError (a keyword that cannot be enforced exactly).
    """
    if whitespace not in _WHITESPACE:
        raise ConstraintError(f"whitespace must be one of {sorted(_WHITESPACE)}, not {whitespace!r}")
    if not isinstance(schema, (dict, bool)):
        raise SchemaError(f"a JSON Schema must be an object or a boolean, not {type(schema).__name__}", pointer="")
    compiler = _Compiler(schema, _WHITESPACE[whitespace], additional_properties_default)
    return compiler.compile()


class _Compiler:
    def __init__(self, root: Any, ws: str, ap_default: bool, *, nonterminals: frozenset = frozenset(),
                 region_failures: set | None = None, relax_regions: bool = False) -> None:
        self.root = root
        self.ws = ws
        self.ap_default = ap_default
        # Grammar mode (``nonterminals`` given, possibly empty set via compile_bodies): these pointers
        # become nonterminals referenced as ``(?&name)`` holes, and an unconstrained value is the
        # unbounded ``any`` nonterminal instead of a depth-bounded regex.
        self.grammar_mode = False
        self.nt_ptrs = nonterminals
        self.bodies: dict[str, str] = {}
        self.nt_names: dict[str, str] = {}
        self.nt_gens: dict[str, _Gen] = {}
        self.bounded_any = False  # the regex contains a depth-bounded unconstrained value (a subset)
        self.item_ptrs: set[str] = set()  # subschemas compiled on their own (possible nonterminals)
        self.cls = self._check_metaschema(root)
        self.draft = _DRAFT[self.cls]
        self.keywords = frozenset(self.cls.VALIDATORS)
        self.id_key = "id" if self.draft == 4 else "$id"
        self.resources: dict[str, str] = {}
        self.anchors: dict[tuple[str, str], str] = {}
        root_base = ""
        if isinstance(root, dict) and isinstance(root.get(self.id_key), str):
            root_base = urldefrag(root[self.id_key])[0]
        self.root_base = root_base
        self.resources[""] = ""
        self.resources[root_base] = ""
        self._index(root, "", root_base)
        self._validators: dict[str, Any] = {}
        self._root_validator = None
        self._cache: dict = {}
        # patternProperties regions whose values failed to compile (shared by grammar-mode retries)
        self._region_failures: set = set() if region_failures is None else region_failures
        # strict=False: a region's UnsupportedError goes up to be relaxed at its keyword, tagged with
        # the region (``region_key``) so that the caller can leave the region out if it cannot relax it
        self._relax_regions = relax_regions
        self._format_rx: dict[str, Any] = {}

    # -- setup -----------------------------------------------------------
    def _check_metaschema(self, root: Any):
        if isinstance(root, bool):
            return Draft202012Validator
        if "$schema" in root:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                cls = _js_validators.validator_for(root, default=None)
            if cls is None:
                raise UnsupportedError(f"unknown $schema {root['$schema']!r}", pointer="/$schema")
            if cls not in _DRAFT:
                raise UnsupportedError(f"$schema {root['$schema']!r} is not supported (draft 4 or later)", pointer="/$schema")
            candidates = [cls]
        else:
            candidates = [Draft202012Validator, Draft201909Validator, Draft7Validator, Draft6Validator, Draft4Validator]
        first_error = None
        for cls in candidates:
            try:
                cls.check_schema(root)
                return cls
            except _js_exc.SchemaError as e:
                if first_error is None:
                    first_error = e
            except Exception as e:  # noqa: BLE001 - e.g. unresolvable metaschema references
                if first_error is None:
                    first_error = e
        e = first_error
        if isinstance(e, _js_exc.SchemaError):
            best = e  # check_schema already raised the best match
            pointer = "".join("/" + _esc(t) for t in best.absolute_path)
            raise SchemaError(f"invalid JSON Schema: {best.message}", pointer=pointer)
        raise SchemaError(f"invalid JSON Schema: {e}", pointer="")

    def _index(self, node: Any, ptr: str, base: str) -> None:
        if isinstance(node, dict):
            nid = node.get(self.id_key)
            if isinstance(nid, str) and ptr:
                url, frag = urldefrag(urljoin(base, nid) if base else nid)
                if url and url != base:
                    base = url
                    self.resources.setdefault(url, ptr)
                if frag and not frag.startswith("/"):
                    self.anchors[(base, frag)] = ptr
            anchor = node.get("$anchor")
            if isinstance(anchor, str) and self.draft >= 2019:
                self.anchors[(base, anchor)] = ptr
            for k, v in node.items():
                if k in ("enum", "const", "default", "examples"):
                    continue
                if isinstance(v, (dict, list)):
                    self._index(v, _ptr(ptr, k), base)
        elif isinstance(node, list):
            for i, v in enumerate(node):
                if isinstance(v, (dict, list)):
                    self._index(v, _ptr(ptr, i), base)

    def _lookup(self, ptr: str, err_ptr: str) -> Any:
        node = self.root
        if ptr == "":
            return node
        for raw in ptr.split("/")[1:]:
            tok = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and tok in node:
                node = node[tok]
            elif isinstance(node, list) and tok.isdigit() and int(tok) < len(node):
                node = node[int(tok)]
            else:
                raise SchemaError(f"$ref target {'#' + ptr!r} does not exist", pointer=err_ptr)
        return node

    def _base_at(self, ptr: str) -> str:
        node = self.root
        base = self.root_base
        if ptr == "":
            return base
        for raw in ptr.split("/")[1:]:
            tok = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict):
                node = node.get(tok)
            elif isinstance(node, list) and tok.isdigit() and int(tok) < len(node):
                node = node[int(tok)]
            else:
                break
            if isinstance(node, dict) and isinstance(node.get(self.id_key), str):
                url = urldefrag(urljoin(base, node[self.id_key]) if base else node[self.id_key])[0]
                if url:
                    base = url
        return base

    def _resolve(self, ref: str, base: str, ref_ptr: str) -> _Loc:
        if not isinstance(ref, str):
            raise SchemaError("$ref must be a string", pointer=ref_ptr)
        full = urljoin(base, ref) if base else ref
        url, frag = urldefrag(full)
        if url not in self.resources:
            err = UnsupportedError(
                f"$ref {ref!r} points outside this document (pass resolver= to supply remote documents)",
                pointer=ref_ptr)
            err.remote_url = url
            raise err
        res_ptr = self.resources[url]
        frag = unquote(frag)
        if frag == "":
            target = res_ptr
        elif frag.startswith("/"):
            target = res_ptr + frag
        elif (url, frag) in self.anchors:
            target = self.anchors[(url, frag)]
        else:
            raise SchemaError(f"$ref {ref!r}: no anchor {frag!r}", pointer=ref_ptr)
        return _Loc(self._lookup(target, ref_ptr), target, self._base_at(target))

    # -- entry -----------------------------------------------------------
    def compile(self) -> str:
        loc = _Loc(self.root, "", self.root_base)
        gen = self._compile_items([loc], frozenset({""}), ANY_DEPTH)
        return gen.regex

    def compile_bodies(self) -> tuple[str, dict[str, str]]:
        """Grammar mode: (start nonterminal, nonterminal -> regex with ``(?&name)`` holes)."""
        self.grammar_mode = True
        self._nonterminal(_Loc(self.root, "", self.root_base))
        return self.nt_names[""], self.bodies

    def _pure_ref_target(self, loc: _Loc) -> _Loc | None:
        """The target when ``loc`` is a ``$ref`` with nothing else that constrains."""
        s = loc.schema
        if not isinstance(s, dict) or "$ref" not in s:
            return None
        if self.draft >= 2019 and any(k not in _ANNOTATIONS and k != "$ref" for k in s):
            return None
        if self.id_key in s:
            return None
        return self._resolve(s["$ref"], loc.base, _ptr(loc.ptr, "$ref"))

    def _nonterminal(self, loc: _Loc) -> str:
        """The hole ``(?&name)`` standing for ``loc``'s language (compiled once)."""
        name = self.nt_names.get(loc.ptr)
        if name is None:
            name = self.nt_names[loc.ptr] = f"s{len(self.nt_names)}"
            gen = self._compile_items([loc], frozenset({loc.ptr}), ANY_DEPTH, inline=True)
            self.bodies[name] = gen.regex
            self.nt_gens[name] = gen
        return f"(?&{name})"

    def _shared(self, gen: _Gen) -> _Gen:
        """``gen`` as an anonymous nonterminal (deduplicated by its regex)."""
        name = self.nt_names.get("regex:" + gen.regex)
        if name is None:
            name = self.nt_names["regex:" + gen.regex] = f"s{len(self.nt_names)}"
            self.bodies[name] = gen.regex
        return dataclasses.replace(gen, regex=f"(?&{name})")

    def _hole_gen(self, loc: _Loc) -> _Gen:
        hole = self._nonterminal(loc)
        done = self.nt_gens.get(self.nt_names[loc.ptr])
        if done is None:  # recursive use while its body compiles: assume nothing
            return _Gen(hole, _ALL, keys_possible=None)
        return _Gen(hole, done.types, finite=done.finite, keys_always=done.keys_always,
                    keys_possible=done.keys_possible, props=done.props, int_range=done.int_range,
                    components=done.leaves() if done.components is not None else None)

    def _check_size(self, rx: str, ptr: str) -> str:
        if len(rx) > MAX_REGEX_CHARS:
            err = UnsupportedError(
                f"the regex for this schema exceeds {MAX_REGEX_CHARS} characters; use the grammar engine",
                pointer=ptr,
            )
            err.too_large = True
            raise err
        return rx

    # -- collection and expansion -----------------------------------------
    def _collect(self, loc: _Loc, path: frozenset, depth: int, parts: list, choices: list) -> None:
        s = loc.schema
        if s is True:
            return
        if s is False:
            parts.append(_Part({"__false__": True}, loc.ptr, loc.base, depth, synthetic=True))
            return
        if not isinstance(s, dict):
            raise SchemaError("a schema must be an object or a boolean", pointer=loc.ptr)
        if self.grammar_mode:
            target = self._pure_ref_target(loc)
            if target is not None and target.ptr in self.nt_ptrs:
                parts.append(_Part({"__hole__": target}, loc.ptr, loc.base, depth, synthetic=True))
                return
        base = loc.base
        if isinstance(s.get(self.id_key), str) and loc.ptr:
            url = urldefrag(urljoin(base, s[self.id_key]) if base else s[self.id_key])[0]
            if url:
                base = url
        for kw in ("$recursiveRef", "$dynamicRef"):
            if kw in s and kw in self.keywords:
                raise UnsupportedError(f"{kw} (dynamic/recursive references need the grammar engine)", pointer=_ptr(loc.ptr, kw))
        if "$ref" in s and self.draft <= 7:
            target = self._resolve(s["$ref"], base, _ptr(loc.ptr, "$ref"))
            self._check_recursion(target, path, _ptr(loc.ptr, "$ref"))
            self._collect(target, path | {target.ptr}, depth + 1, parts, choices)
            return
        parts.append(_Part(s, loc.ptr, base, depth, path=path))
        if "$ref" in s:
            target = self._resolve(s["$ref"], base, _ptr(loc.ptr, "$ref"))
            self._check_recursion(target, path, _ptr(loc.ptr, "$ref"))
            self._collect(target, path | {target.ptr}, depth + 1, parts, choices)
        if "allOf" in s:
            for i, sub in enumerate(s["allOf"]):
                p = _ptr(loc.ptr, "allOf", i)
                self._collect(_Loc(sub, p, base, path | {p}), path | {p}, depth + 1, parts, choices)
        for kw in ("anyOf", "oneOf"):
            if kw in s:
                branches = []
                locs = []
                for i, sub in enumerate(s[kw]):
                    p = _ptr(loc.ptr, kw, i)
                    bl = _Loc(sub, p, base, path | {p})
                    locs.append(bl)
                    branches.append([bl])
                choices.append(_Choice(kw, branches, _ptr(loc.ptr, kw), path, locs))
        if "not" in s:
            p = _ptr(loc.ptr, "not")
            choices.append(_Choice("not", [[_Neg(_Loc(s["not"], p, base, path | {p}))]], p, path))
        if "if" in s and "if" in self.keywords and ("then" in s or "else" in s):
            ip = _ptr(loc.ptr, "if")
            iloc = _Loc(s["if"], ip, base, path | {ip})
            b1 = [iloc]
            b2 = [_Neg(iloc)]
            if "then" in s:
                b1.append(_Loc(s["then"], _ptr(loc.ptr, "then"), base, path | {_ptr(loc.ptr, "then")}))
            if "else" in s:
                b2.append(_Loc(s["else"], _ptr(loc.ptr, "else"), base, path | {_ptr(loc.ptr, "else")}))
            choices.append(_Choice("if", [b1, b2], ip, path))

    def _check_recursion(self, target: _Loc, path: frozenset, ref_ptr: str) -> None:
        if target.ptr in path:
            if target.ptr in self.nt_ptrs:
                raise self._cycle_error(target.ptr, ref_ptr, path)
            raise _Recursion(
                f"recursive schema ($ref to {'#' + target.ptr!r} inside itself) needs the grammar engine",
                pointer=ref_ptr, target=target.ptr,
            )

    def _expand(self, items: list, path: frozenset) -> tuple[list[_Alt], EmptyLanguageError | None]:
        """Alternatives (conjunctions of parts) whose union is the conjunction of ``items``."""
        alts = [_Alt([])]
        empty: EmptyLanguageError | None = None
        for item in items:
            if isinstance(item, _Part):
                alts = [a.plus(_Alt([item])) for a in alts]
                continue
            if isinstance(item, _Neg):
                choice = _Choice("not", [[item]], item.loc.ptr, path)
                alts, empty = self._product_choice(alts, choice, path, empty)
                continue
            parts: list = []
            choices: list = []
            self._collect(item, (item.path or path) | {item.ptr}, 0, parts, choices)
            alts = [a.plus(_Alt(parts)) for a in alts]
            alts, e = self._prune(alts)
            empty = empty or e
            for ch in choices:
                alts, empty = self._product_choice(alts, ch, ch.path | {item.ptr}, empty)
        return alts, empty

    def _product_choice(self, alts, ch: _Choice, path, empty):
        sub: list[_Alt] = []
        if ch.kind == "not":
            (neg,) = ch.branches[0]
            try:
                neg_alts = self._negate(neg.loc, path)
            except _CannotNegate as e:
                err = UnsupportedError(f"cannot enforce 'not' exactly: {e.what}", pointer=e.pointer)
                err.relax_pointer = ch.ptr
                raise err from None
            except UnsupportedError as e:
                e.relax_pointer = ch.ptr  # the outermost negation: dropping a keyword under it tightens
                raise
            if not neg_alts:
                empty = empty or EmptyLanguageError("'not' of a schema that accepts everything: empty language", pointer=ch.ptr)
            for branch in neg_alts:
                got, e = self._expand(branch, path)
                empty = empty or e
                sub.extend(got)
        else:
            for bi, branch in enumerate(ch.branches):
                try:
                    got, e = self._expand(branch, path)
                except _CannotNegate as e2:  # pragma: no cover - _expand converts these
                    raise UnsupportedError(e2.what, pointer=e2.pointer) from None
                except UnsupportedError as e2:
                    if ch.kind in ("oneOf", "if"):  # branches that are also negated (see compile._monotone_anchor)
                        e2.relax_pointer = ch.ptr
                    raise
                empty = empty or e
                if ch.kind == "oneOf":
                    got = [_Alt(g.parts, g.obligations + [(ch, bi)], g.done) for g in got]
                sub.extend(got)
            if not sub and empty is None:
                empty = EmptyLanguageError(f"no {ch.kind} branch admits a value: empty language", pointer=ch.ptr)
        out = [a.plus(b) for a in alts for b in sub]
        out, e = self._prune(out)
        empty = empty or e
        if len(out) > MAX_ALTERNATIVES:
            raise UnsupportedError(
                f"{ch.kind} expands into more than {MAX_ALTERNATIVES} alternatives", pointer=ch.ptr
            )
        return out, empty

    def _prune(self, alts: list[_Alt]) -> tuple[list[_Alt], EmptyLanguageError | None]:
        """Drop alternatives whose ``type`` keywords (or ``false`` parts) already contradict."""
        out = []
        empty = None
        for a in alts:
            types = set(_ALL)
            bad = None
            for p in a.parts:
                s = p.schema
                if "__false__" in s:
                    bad = EmptyLanguageError("the schema is false here: empty language", pointer=p.ptr)
                    break
                t = s.get("type") if not p.synthetic else None
                if p.synthetic and "__types__" in s:
                    types &= set(s["__types__"])
                elif isinstance(t, (str, list)) and "type" in self.keywords:
                    types &= self._cats(t)
                if not types:
                    bad = EmptyLanguageError("contradictory 'type' keywords: empty language", pointer=_ptr(p.ptr, "type"))
                    break
            if bad is None and types <= {"object"}:
                bad = self._prune_props(a)
            if bad is None:
                out.append(a)
            elif empty is None:
                empty = bad
        return out, empty

    def _prune_props(self, a: _Alt) -> EmptyLanguageError | None:
        """A required property whose const/enum values are all excluded (typical of
        chains of if/then on a discriminator) makes the alternative empty."""
        finite: dict = {}
        excluded: dict = {}
        required: dict = {}
        for p in a.parts:
            s = p.schema
            req = s.get("required")
            if isinstance(req, list):
                for k in req:
                    if isinstance(k, str):
                        required.setdefault(k, _ptr(p.ptr, "required"))
            if p.synthetic:
                for k, items in s.get("__propitems__", {}).items():
                    for it in items:
                        if isinstance(it, _Neg) and isinstance(it.loc.schema, dict):
                            excluded.setdefault(k, []).extend(self._direct_values(it.loc.schema) or [])
                continue
            props = s.get("properties")
            if not isinstance(props, dict):
                continue
            for k, sub in props.items():
                if isinstance(sub, dict):
                    vals = self._direct_values(sub)
                    if vals is not None:
                        prev = finite.get(k)
                        finite[k] = vals if prev is None else [v for v in prev if any(_json_equal(v, w) for w in vals)]
        for k, ptr in required.items():
            if k in finite:
                left = [v for v in finite[k] if not any(_json_equal(v, x) for x in excluded.get(k, []))]
                if not left:
                    return EmptyLanguageError(f"no value is left for required property {k!r}: empty language",
                                              pointer=ptr)
        return None

    def _direct_values(self, sub: dict) -> list | None:
        if "$ref" in sub and self.draft <= 7:
            return None
        vals = None
        if "const" in sub and "const" in self.keywords:
            vals = [sub["const"]]
        if isinstance(sub.get("enum"), list):
            e = sub["enum"]
            vals = e if vals is None else [v for v in vals if any(_json_equal(v, w) for w in e)]
        return vals

    @staticmethod
    def _cats(t: Any) -> set:
        names = [t] if isinstance(t, str) else list(t)
        out: set = set()
        for n in names:
            out |= _TYPE_CATS.get(n, set())
        return out

    # -- negation ----------------------------------------------------------
    def _negate(self, loc: _Loc, path: frozenset) -> list[list]:
        """Alternatives (item lists) whose union is the complement of ``loc``."""
        s = loc.schema
        if s is True:
            return []
        if s is False:
            return [[]]
        if not isinstance(s, dict):
            raise SchemaError("a schema must be an object or a boolean", pointer=loc.ptr)
        base = loc.base
        if "$ref" in s and self.draft <= 7:
            target = self._resolve(s["$ref"], base, _ptr(loc.ptr, "$ref"))
            self._check_recursion(target, path, _ptr(loc.ptr, "$ref"))
            return self._negate(target, path | {target.ptr})

        def synth(d: dict, kw: str) -> _Part:
            return _Part(d, _ptr(loc.ptr, kw), base, 0, synthetic=True)

        alts: list[list] = []
        num = {"integer", "fraction"}
        for kw, val in s.items():
            if kw not in self.keywords:
                continue
            kp = _ptr(loc.ptr, kw)
            if kw == "type":
                cats = set(_ALL) - self._cats(val)
                if "fraction" in cats and "integer" not in cats:
                    raise _CannotNegate(kp, "'not' of 'integer' leaves non-integral numbers only")
                alts.append([synth({"__types__": cats}, kw)])
            elif kw == "enum":
                alts.append([synth({"__notin__": list(val)}, kw)])
            elif kw == "pattern" and isinstance(val, str):
                alts.append([synth({"__types__": {"string"}, "__notpattern__": [(val, kp)]}, kw)])
            elif kw == "const":
                alts.append([synth({"__notin__": [val]}, kw)])
            elif kw == "required":
                for r in val:
                    alts.append([synth({"__types__": {"object"}, "__forbid__": [r]}, kw)])
            elif kw == "properties":
                for k, sub in val.items():
                    neg = _Neg(_Loc(sub, _ptr(kp, k), base, path | {_ptr(kp, k)}))
                    alts.append([synth({"__types__": {"object"}, "required": [k], "__propitems__": {k: [neg]}}, kw)])
            elif kw in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
                if isinstance(val, bool):
                    continue  # draft 4 flag, read with minimum/maximum
                if kw == "minimum":
                    excl = self.draft == 4 and s.get("exclusiveMinimum") is True
                    alts.append([synth({"__types__": num, "__upper__": (val, not excl)}, kw)])
                elif kw == "maximum":
                    excl = self.draft == 4 and s.get("exclusiveMaximum") is True
                    alts.append([synth({"__types__": num, "__lower__": (val, not excl)}, kw)])
                elif kw == "exclusiveMinimum":
                    alts.append([synth({"__types__": num, "__upper__": (val, False)}, kw)])
                else:
                    alts.append([synth({"__types__": num, "__lower__": (val, False)}, kw)])
            elif kw in ("minLength", "minItems", "minProperties"):
                if val > 0:
                    t = {"minLength": "string", "minItems": "array", "minProperties": "object"}[kw]
                    alts.append([synth({"__types__": {t}, "max" + kw[3:]: val - 1}, kw)])
            elif kw in ("maxLength", "maxItems", "maxProperties"):
                t = {"maxLength": "string", "maxItems": "array", "maxProperties": "object"}[kw]
                alts.append([synth({"__types__": {t}, "min" + kw[3:]: val + 1}, kw)])
            elif kw == "allOf":
                for i, sub in enumerate(val):
                    p = _ptr(kp, i)
                    alts.extend(self._negate(_Loc(sub, p, base, path | {p}), path | {p}))
            elif kw == "anyOf":
                acc: list[list] = [[]]
                for i, sub in enumerate(val):
                    p = _ptr(kp, i)
                    nb = self._negate(_Loc(sub, p, base, path | {p}), path | {p})
                    acc = [a + b for a in acc for b in nb]
                    if len(acc) > MAX_ALTERNATIVES:
                        raise _CannotNegate(kp, "too many alternatives")
                alts.extend(acc)
            elif kw == "not":
                alts.append([_Loc(val, kp, base, path | {kp})])
            elif kw == "$ref":
                target = self._resolve(val, base, kp)
                self._check_recursion(target, path, kp)
                alts.extend(self._negate(target, path | {target.ptr}))
            elif kw == "format" and not (isinstance(val, str) and (val in UNSUPPORTED_FORMATS or format_pattern(val))):
                continue  # unknown format: an annotation
            elif kw in ("uniqueItems",) and val is False:
                continue
            elif kw in ("additionalProperties", "additionalItems", "items", "unevaluatedProperties",
                        "unevaluatedItems", "propertyNames") and (val is True or val == {}):
                continue  # trivially true: its negation adds nothing
            elif kw == "patternProperties" and all(v is True or v == {} for v in val.values()):
                continue
            elif kw == "items" and isinstance(val, (dict, bool)) and "prefixItems" not in s and "additionalItems" not in s:
                # some item fails ``items``: an array that contains the negation
                neg = _Neg(_Loc(val, kp, base, path | {kp}))
                alts.append([synth({"__types__": {"array"}, "__contains__": neg}, kw)])
            else:
                raise _CannotNegate(kp, f"negating {kw!r}")
            if len(alts) > MAX_ALTERNATIVES:
                raise _CannotNegate(kp, "too many alternatives")
        return alts

    # -- compilation -------------------------------------------------------
    def _compile_items(self, items: list, path: frozenset, depth: int, inline: bool = False) -> _Gen:
        key = None
        if self.grammar_mode and not inline and len(items) == 1 and isinstance(items[0], _Loc):
            loc = items[0]
            self.item_ptrs.add(loc.ptr)
            if loc.ptr in self.nt_ptrs:
                return self._hole_gen(loc)
            target = self._pure_ref_target(loc)
            if target is not None and target.ptr in self.nt_ptrs:
                return self._hole_gen(target)
        if len(items) == 1 and isinstance(items[0], _Loc):
            key = (items[0].ptr, depth)
            if key in self._cache:
                return self._cache[key]
            if items[0].schema is True or items[0].schema == {}:
                gen = self._any(depth)
                self._cache[key] = gen
                return gen
        try:
            alts, empty = self._expand(items, path)
        except _CannotNegate as e:
            raise UnsupportedError(f"cannot enforce exactly: {e.what}", pointer=e.pointer) from None
        gens = []
        for a in alts:
            try:
                gens.append(self._compile_alt(a, path, depth))
            except EmptyLanguageError as e:
                empty = empty or e
        if not gens:
            raise empty or EmptyLanguageError("empty language", pointer=items[0].ptr if items and hasattr(items[0], "ptr") else "")
        gen = _union(gens)
        self._check_size(gen.regex, items[0].ptr if items and isinstance(items[0], _Loc) else "")
        if key is not None:
            self._cache[key] = gen
        return gen

    def _compile_alt(self, alt: _Alt, path: frozenset, depth: int) -> _Gen:
        holes = [p for p in alt.parts if p.synthetic and "__hole__" in p.schema]
        if holes:
            return self._obligations(self._hole_alt(alt, holes, path, depth), alt, path, depth)
        node = self._merge(alt.parts)
        # property dependencies: split on the trigger being present or absent
        for trig, dep, dptr in node.deps:
            tag = ("dep", dptr, trig)
            if tag in alt.done:
                continue
            possible = trig in node.props or trig in node.required
            if not possible or trig in node.forbid:
                continue
            if trig in node.required:
                extra: list = []
                if isinstance(dep, list):
                    extra.append(_Part({"required": list(dep)}, dptr, "", 0, synthetic=True))
                else:
                    extra.append(dep)
                sub_alts, empty = self._expand(extra, path)
                done = alt.done | {tag}
                gens = []
                for sa in sub_alts:
                    try:
                        gens.append(self._compile_alt(_Alt(alt.parts + sa.parts, alt.obligations + sa.obligations, done), path, depth))
                    except EmptyLanguageError as e:
                        empty = empty or e
                if not gens:
                    raise empty or EmptyLanguageError("dependency cannot be satisfied: empty language", pointer=dptr)
                return _union(gens)
            gens = []
            empty = None
            absent = _Part({"__forbid__": [trig]}, dptr, "", 0, synthetic=True)
            present = _Part({"required": [trig]}, dptr, "", 0, synthetic=True)
            for extra in (absent, present):
                try:
                    gens.append(self._compile_alt(_Alt(alt.parts + [extra], alt.obligations, alt.done), path, depth))
                except EmptyLanguageError as e:
                    empty = empty or e
            if not gens:
                raise empty  # type: ignore[misc]
            return _union(gens)
        return self._obligations(self._compile_node(node, alt, path, depth), alt, path, depth)

    def _cycle_error(self, target: str, pointer: str, path: frozenset) -> UnsupportedError:
        """A cycle through a nonterminal used in a conjunction: break it at another
        subschema on the cycle (a retry with that one as a nonterminal too), or give up."""
        candidates = [p for p in path if p in self.item_ptrs and p not in self.nt_ptrs]
        if candidates:
            other = max(candidates, key=lambda p: (len(p), p))
            return _Recursion(f"recursive schema through {'#' + other!r}", pointer=pointer, target=other)
        return UnsupportedError(
            f"recursive $ref to {'#' + target!r} in a conjunction with other constraints inside itself "
            "(not context-free in general)",
            pointer=pointer,
        )

    def _hole_alt(self, alt: _Alt, holes: list, path: frozenset, depth: int) -> _Gen:
        """An alternative that is exactly a nonterminal, or a conjunction that unrolls it once.

        ``A and L(T)`` is not context-free in general, but unrolling ``T`` one
        level (its own keywords inline, its recursive uses still holes) makes
        the conjunction an ordinary merge of parts.
        """
        targets = {h.schema["__hole__"].ptr for h in holes}
        alone = len(targets) == 1 and all(
            p in holes or (not p.synthetic and all(k in _ANNOTATIONS or k in _STRUCTURAL for k in p.schema))
            for p in alt.parts)
        if alone:
            return self._hole_gen(holes[0].schema["__hole__"])
        others = [p for p in alt.parts if p not in holes]
        locs = []
        for h in holes:
            t = h.schema["__hole__"]
            if t.ptr in path:
                raise self._cycle_error(t.ptr, h.ptr, path)
            locs.append(_Loc(t.schema, t.ptr, t.base, path | {t.ptr}))
        sub_alts, empty = self._expand(locs, path | targets)
        gens = []
        for sa in sub_alts:
            try:
                gens.append(self._compile_alt(
                    _Alt(others + sa.parts, alt.obligations + sa.obligations, alt.done), path | targets, depth))
            except EmptyLanguageError as e:
                empty = empty or e
        if not gens:
            raise empty or EmptyLanguageError("empty language", pointer=holes[0].ptr)
        return _union(gens)

    def _obligations(self, gen: _Gen, alt: _Alt, path: frozenset, depth: int) -> _Gen:
        """Enforce oneOf exclusivity for ``alt``'s chosen branches on top of ``gen``."""
        for ch, bi in alt.obligations:
            for bj, branch_loc in enumerate(ch.locs):
                tag = ("oneOf", ch.ptr, bj)
                if bj == bi or tag in alt.done:
                    continue
                if self._disjoint(gen, [branch_loc], ch.path):
                    continue
                # not provably disjoint: generate this branch AND NOT the other one
                overlap = UnsupportedError(f"oneOf branches {bi} and {bj} are not provably disjoint", pointer=ch.ptr)
                try:
                    neg_alts, empty = self._expand([_Neg(branch_loc)], ch.path)
                except (UnsupportedError, _CannotNegate):
                    neg_alts = self._key_escape(gen, branch_loc, ch.path)
                    if not neg_alts:
                        raise overlap from None
                    empty = overlap  # a subset was chosen: its emptiness proves nothing
                gens = []
                for na in neg_alts:
                    try:
                        gens.append(self._compile_alt(
                            _Alt(alt.parts + na.parts, alt.obligations + na.obligations, alt.done | {tag}),
                            path, depth))
                    except EmptyLanguageError as e:
                        empty = empty or e
                if not gens:
                    if empty is overlap:
                        raise overlap
                    raise empty or EmptyLanguageError("oneOf branch overlaps the others entirely", pointer=ch.ptr)
                return _union(gens)
        return gen

    def _key_escape(self, gen: _Gen, loc: _Loc, path: frozenset) -> list[_Alt] | None:
        """When ``loc`` forbids some keys (additionalProperties: false) that ``gen``
        may emit, alternatives requiring one of them: a sub-language of ``gen``
        disjoint from ``loc`` (used when ``not loc`` cannot be expressed)."""
        leaves = gen.leaves()
        if any(g.types != frozenset({"object"}) or g.keys_possible is None for g in leaves):
            return None
        keys = sorted(set().union(*(g.keys_possible for g in leaves)))
        try:
            alts, _e = self._expand([loc], path)
        except (UnsupportedError, SchemaError, _CannotNegate):
            return None
        forbidden = set(keys)
        for a in alts:
            try:
                sem = self._merge(a.parts)
            except EmptyLanguageError:
                continue
            except (UnsupportedError, SchemaError):
                return None
            if "object" not in sem.types:
                continue
            here = set(k for k in keys if k in sem.forbid)
            for declared, pats, aploc, _pp in sem.ap_parts:
                if aploc.schema is False:
                    here |= {k for k in keys if k not in declared and not any(re.search(p, k) for p in pats)}
            forbidden &= here
        if not forbidden:
            return None
        return [_Alt([_Part({"required": [k]}, loc.ptr, "", 0, synthetic=True)]) for k in sorted(forbidden)]

    # -- merging -------------------------------------------------------------
    def _merge(self, parts: list[_Part]) -> _Node:
        node = _Node(parts)
        kw_ok = self.keywords
        for p in parts:
            s = p.schema
            ptr = p.ptr

            def mk(sub: Any, cptr: str, p: _Part = p) -> _Loc:
                return _Loc(sub, cptr, p.base, p.path | {cptr})

            if "__false__" in s:
                raise EmptyLanguageError("the schema is false here: empty language", pointer=ptr)
            if p.synthetic:
                self._merge_synthetic(node, s, ptr, p)
                continue
            for kw, val in s.items():
                if kw not in kw_ok:
                    continue
                kp = _ptr(ptr, kw)
                if kw == "type":
                    cats = self._cats(val)
                    node.types &= cats
                    node.type_ptr = kp
                elif kw == "enum":
                    self._merge_finite(node, list(val), kp)
                elif kw == "const":
                    self._merge_finite(node, [val], kp)
                elif kw == "minimum":
                    excl = self.draft == 4 and s.get("exclusiveMinimum") is True
                    node.lower.append((val, excl, kp))
                elif kw == "maximum":
                    excl = self.draft == 4 and s.get("exclusiveMaximum") is True
                    node.upper.append((val, excl, kp))
                elif kw == "exclusiveMinimum":
                    if not isinstance(val, bool):
                        node.lower.append((val, True, kp))
                elif kw == "exclusiveMaximum":
                    if not isinstance(val, bool):
                        node.upper.append((val, True, kp))
                elif kw == "multipleOf":
                    node.multiple_of.append((val, kp))
                elif kw == "minLength":
                    if val > node.min_len:
                        node.min_len, node.min_len_ptr = val, kp
                elif kw == "maxLength":
                    if node.max_len is None or val < node.max_len:
                        node.max_len, node.max_len_ptr = val, kp
                elif kw == "pattern":
                    node.patterns.append((val, kp))
                elif kw == "format":
                    node.formats.append((val, kp))
                elif kw == "properties":
                    for name, sub in val.items():
                        node.props.setdefault(name, []).append(mk(sub, _ptr(kp, name)))
                elif kw == "required":
                    for name in val:
                        node.required.setdefault(name, kp)
                elif kw == "additionalProperties":
                    node.ap_parts.append(
                        (set(s.get("properties", {})), list(s.get("patternProperties", {})), mk(val, kp), kp)
                    )
                elif kw == "patternProperties":
                    for pat, sub in val.items():
                        node.pattern_props.append((pat, mk(sub, _ptr(kp, pat)), _ptr(kp, pat)))
                elif kw == "propertyNames":
                    node.property_names.append(mk(val, kp))
                elif kw == "minProperties":
                    if val > node.min_props:
                        node.min_props, node.min_props_ptr = val, kp
                elif kw == "maxProperties":
                    if node.max_props is None or val < node.max_props:
                        node.max_props, node.max_props_ptr = val, kp
                elif kw in ("dependencies", "dependentRequired", "dependentSchemas"):
                    for trig, dep in val.items():
                        dp = _ptr(kp, trig)
                        node.deps.append((trig, list(dep) if isinstance(dep, list) else mk(dep, dp), dp))
                elif kw == "unevaluatedProperties":
                    if val is True:
                        continue
                    if p.depth > 0:
                        node.opaque.append(("unevaluatedProperties inside allOf/$ref", kp))
                    else:
                        node.uneval_props = mk(val, kp)
                elif kw == "unevaluatedItems":
                    if val is True:
                        continue
                    if p.depth > 0:
                        node.opaque.append(("unevaluatedItems inside allOf/$ref", kp))
                    else:
                        node.uneval_items = mk(val, kp)
                elif kw == "items":
                    if isinstance(val, list):  # draft <= 2019-09 tuple form
                        prefix = [mk(sub, _ptr(kp, i)) for i, sub in enumerate(val)]
                        tail = None
                        if "additionalItems" in s and "additionalItems" in kw_ok:
                            ai = s["additionalItems"]
                            tail = False if ai is False else mk(ai, _ptr(ptr, "additionalItems"))
                        node.arrays.append((prefix, tail, kp))
                    elif "prefixItems" in s and "prefixItems" in kw_ok:
                        pass  # read with prefixItems
                    else:
                        node.arrays.append(([], False if val is False else mk(val, kp), kp))
                elif kw == "prefixItems":
                    prefix = [mk(sub, _ptr(kp, i)) for i, sub in enumerate(val)]
                    tail = None
                    if "items" in s:
                        tail = False if s["items"] is False else mk(s["items"], _ptr(ptr, "items"))
                    node.arrays.append((prefix, tail, kp))
                elif kw == "minItems":
                    if val > node.min_items:
                        node.min_items, node.min_items_ptr = val, kp
                elif kw == "maxItems":
                    if node.max_items is None or val < node.max_items:
                        node.max_items, node.max_items_ptr = val, kp
                elif kw == "uniqueItems":
                    if val is True:
                        node.unique_ptr = kp
                elif kw in ("contains", "minContains", "maxContains"):
                    if kw == "contains":
                        counts = self.draft >= 2019  # minContains/maxContains are 2019-09 keywords
                        lo_c = s.get("minContains", 1) if counts else 1
                        hi_c = s.get("maxContains") if counts else None
                        node.contains.append((mk(val, kp), lo_c, hi_c, kp))
                elif kw in ("$ref", "allOf", "anyOf", "oneOf", "not", "if", "additionalItems"):
                    pass  # handled during collection / with items
                else:
                    node.opaque.append((kw, kp))
        if not node.types:
            raise EmptyLanguageError("contradictory 'type' keywords: empty language", pointer=node.type_ptr or "")
        return node

    def _merge_finite(self, node: _Node, vals: list, kp: str) -> None:
        if node.finite is None:
            uniq: list = []
            for v in vals:
                if not any(_json_equal(v, u) for u in uniq):
                    uniq.append(v)
            node.finite = uniq
        else:
            node.finite = [v for v in node.finite if any(_json_equal(v, w) for w in vals)]
        node.finite_ptr = kp

    def _merge_synthetic(self, node: _Node, s: dict, ptr: str, p: _Part) -> None:
        for kw, val in s.items():
            if kw == "__types__":
                node.types &= set(val)
                node.type_ptr = ptr
            elif kw == "__notin__":
                node.notin.extend(val)
                node.notin_ptr = node.notin_ptr or ptr
            elif kw == "__notpattern__":
                node.not_patterns.extend(val)
            elif kw == "__forbid__":
                for k in val:
                    node.forbid.setdefault(k, ptr)
            elif kw == "__propitems__":
                for k, items in val.items():
                    node.props.setdefault(k, []).extend(items)
            elif kw == "__lower__":
                node.lower.append((val[0], val[1], ptr))
            elif kw == "__upper__":
                node.upper.append((val[0], val[1], ptr))
            elif kw == "__contains__":
                node.contains.append((val, 1, None, ptr))
            elif kw == "required":
                for k in val:
                    node.required.setdefault(k, ptr)
            elif kw in ("minLength", "minItems", "minProperties"):
                attr = {"minLength": "min_len", "minItems": "min_items", "minProperties": "min_props"}[kw]
                if val > getattr(node, attr):
                    setattr(node, attr, val)
                    setattr(node, attr + "_ptr", ptr)
            elif kw in ("maxLength", "maxItems", "maxProperties"):
                attr = {"maxLength": "max_len", "maxItems": "max_items", "maxProperties": "max_props"}[kw]
                cur = getattr(node, attr)
                if cur is None or val < cur:
                    setattr(node, attr, val)
                    setattr(node, attr + "_ptr", ptr)
            else:  # pragma: no cover
                raise AssertionError(kw)

    # -- validation of finite candidates -----------------------------------
    def _validator_for(self, loc: _Loc):
        v = self._validators.get(loc.ptr)
        if v is None:
            if self._root_validator is None:
                self._root_validator = self.cls(self.root, format_checker=self.cls.FORMAT_CHECKER)
            if loc.base == self.root_base:
                v = self._root_validator.evolve(schema=loc.schema)
            else:  # inside an embedded resource: let the resolver find its base
                ref = "#" + quote(loc.ptr, safe="/~!$&'()*+,;=:@")
                v = self._root_validator.evolve(schema={"$ref": ref})
            self._validators[loc.ptr] = v
        return v

    def _valid_loc(self, value: Any, loc: _Loc) -> bool:
        if loc.schema is True:
            return True
        if loc.schema is False:
            return False
        try:
            ok = self._validator_for(loc).is_valid(value)
        except Exception as e:  # noqa: BLE001
            raise UnsupportedError(f"cannot validate enumerated values here: {e}", pointer=loc.ptr) from None
        if ok and isinstance(value, str) and isinstance(loc.schema, dict):
            ok = self._format_ok(value, loc.schema.get("format"))
        return ok

    def _wide_ast(self, pat: str, pp: str):
        """Strings that ECMA-262 or Python matches with ``pat``: what a negated pattern must exclude,
        since the schema is never made looser where the two readings disagree."""
        try:
            return _st.parse_pattern(pat, wide=True)
        except _st.PatternInvalid as e:
            raise SchemaError(f"invalid pattern {pat!r}: {e}", pointer=pp) from None
        except _st.PatternUnsupported as e:
            raise UnsupportedError(f"cannot negate pattern {pat!r}: {e}", pointer=pp) from None

    def _wide_rx(self, pat: str, pp: str) -> re.Pattern:
        rx = self._format_rx.get(("not", pat))
        if rx is None:
            rx = self._format_rx[("not", pat)] = re.compile(_st.to_python_regex(self._wide_ast(pat, pp)))
        return rx

    def _format_ok(self, value: str, fmt: Any) -> bool:
        if not isinstance(fmt, str) or "format" not in self.keywords:
            return True
        pat = format_pattern(fmt)
        if pat is None:
            return True
        rx = self._format_rx.get(fmt)
        if rx is None:
            rx = re.compile(_st.to_python_regex(_st.parse_pattern(pat)))
            self._format_rx[fmt] = rx
        return rx.fullmatch(value) is not None

    def _valid_parts(self, value: Any, parts: list[_Part]) -> bool:
        for p in parts:
            if p.synthetic:
                if not self._synthetic_ok(value, p.schema):
                    return False
            elif not self._valid_loc(value, _Loc(p.schema, p.ptr, p.base)):
                return False
        return True

    def _synthetic_ok(self, v: Any, s: dict) -> bool:
        for kw, val in s.items():
            if kw == "__false__":
                return False
            if kw == "__types__":
                if _cat_of(v) not in val:
                    return False
            elif kw == "__notin__":
                if any(_json_equal(v, x) for x in val):
                    return False
            elif kw == "__notpattern__":
                if isinstance(v, str) and any(self._wide_rx(pat, pp).fullmatch(v) for pat, pp in val):
                    return False
            elif kw == "__forbid__":
                if isinstance(v, dict) and any(k in v for k in val):
                    return False
            elif kw == "required":
                if isinstance(v, dict) and any(k not in v for k in val):
                    return False
            elif kw == "__propitems__":
                if isinstance(v, dict):
                    for k, items in val.items():
                        if k in v and not all(self._item_ok(v[k], it) for it in items):
                            return False
            elif kw == "__contains__":
                if isinstance(v, list) and not any(self._item_ok(x, val) for x in v):
                    return False
            elif kw in ("__lower__", "__upper__"):
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    b, excl = val
                    if kw == "__lower__" and not (v > b if excl else v >= b):
                        return False
                    if kw == "__upper__" and not (v < b if excl else v <= b):
                        return False
            else:
                size = {"Length": (str, len), "Items": (list, len), "Properties": (dict, len)}[kw[3:]]
                if isinstance(v, size[0]):
                    n = len(v)
                    if kw.startswith("min") and n < val or kw.startswith("max") and n > val:
                        return False
        return True

    def _item_ok(self, v: Any, item: Any) -> bool:
        if isinstance(item, _Neg):
            return not self._valid_loc(v, item.loc)
        if isinstance(item, _Loc):
            return self._valid_loc(v, item)
        return self._synthetic_ok(v, item.schema)

    # -- per-node compilation ----------------------------------------------
    def _compile_node(self, node: _Node, alt: _Alt, path: frozenset, depth: int) -> _Gen:
        cands = node.finite
        if cands is None and node.types <= {"null", "boolean"}:
            cands = [v for v in (None, True, False) if _cat_of(v) in node.types]
        if cands is not None:
            vals = [v for v in cands if _cat_of(v) in node.types and not any(_json_equal(v, x) for x in node.notin)]
            vals = [v for v in vals if self._valid_parts(v, node.parts)]
            if not vals:
                raise EmptyLanguageError(
                    "no value satisfies all constraints: empty language", pointer=node.finite_ptr or node.type_ptr or ""
                )
            return _Gen(_alt([_literal_rx(v, "fraction" in node.types) for v in vals]),
                        frozenset(_cat_of(v) for v in vals), finite=vals)
        if node.opaque:
            what, ptr = node.opaque[0]
            raise UnsupportedError(f"keyword {what!r} cannot be enforced by a regex", pointer=ptr)
        gens: list[_Gen] = []
        empty: EmptyLanguageError | None = None
        order = ["null", "boolean", "integer", "string", "array", "object"]
        for t in order:
            if t == "integer":
                if not node.types & {"integer", "fraction"}:
                    continue
            elif t not in node.types:
                continue
            try:
                if t == "null":
                    gens.append(self._compile_scalar(node, None))
                elif t == "boolean":
                    g = [self._compile_scalar(node, b) for b in (True, False)]
                    gens.extend(x for x in g if x is not None)
                elif t == "integer":
                    gens.append(self._compile_number(node))
                elif t == "string":
                    gens.append(self._compile_string(node))
                elif t == "array":
                    gens.append(self._compile_array(node, path, depth))
                elif t == "object":
                    gens.append(self._compile_object(node, path, depth))
            except EmptyLanguageError as e:
                empty = empty or e
        gens = [g for g in gens if g is not None]
        if not gens:
            raise empty or EmptyLanguageError("empty language", pointer=node.type_ptr or "")
        return _union(gens)

    def _compile_scalar(self, node: _Node, value: Any) -> _Gen | None:
        if any(_json_equal(value, x) for x in node.notin):
            if value is None:
                raise EmptyLanguageError("null excluded: empty language", pointer=node.type_ptr or "")
            return None
        if not self._valid_parts(value, node.parts):
            if value is None:
                raise EmptyLanguageError("null excluded: empty language", pointer=node.type_ptr or "")
            return None
        return _Gen(_dump(value), frozenset({_cat_of(value)}), finite=[value])

    def _check_notin(self, node: _Node, cat: set, ptr: str | None) -> None:
        for x in node.notin:
            if _cat_of(x) in cat:
                raise UnsupportedError(
                    f"excluding the value {_dump(x)} from a non-enumerated {sorted(cat)[0]} language",
                    pointer=node.notin_ptr or ptr or node.type_ptr or "",
                )

    # numbers ---------------------------------------------------------------
    def _compile_number(self, node: _Node) -> _Gen:
        fraction_ok = "fraction" in node.types
        if fraction_ok and "integer" not in node.types:
            raise UnsupportedError("numbers that must not be integers", pointer=node.type_ptr or "")
        excluded = [x for x in node.notin if _cat_of(x) in ("integer", "fraction")]
        mult = []
        for raw, mp in node.multiple_of:
            if isinstance(raw, bool) or not isinstance(raw, (int, float)) or raw <= 0:
                raise SchemaError("multipleOf must be a positive number", pointer=mp)
            if isinstance(raw, float) and not raw.is_integer():
                raise UnsupportedError(
                    f"multipleOf {raw} (validators check it with floating-point division)", pointer=mp
                )
            mult.append((int(raw), mp))
        for raw, _e, bp in node.lower + node.upper:
            if isinstance(raw, float) and math.isnan(raw):
                raise UnsupportedError("NaN bound", pointer=bp)
        if excluded and mult:
            raise UnsupportedError("excluding values together with multipleOf", pointer=node.notin_ptr or "")
        if fraction_ok and not mult:
            return self._compile_decimal(node, excluded)
        lo, hi, lo_ptr, hi_ptr = self._int_bounds(node)
        if lo is not None and hi is not None and lo > hi:
            raise EmptyLanguageError(
                f"no integer between the bounds ({lo} > {hi}): empty language", pointer=lo_ptr or hi_ptr
            )
        if mult:
            k = 1
            for m, _mp in mult:
                k = k * m // math.gcd(k, m)
            rx = self._multiples(k, lo, hi, mult[-1][1])
        elif excluded:
            holes = sorted({int(x) for x in excluded if float(x).is_integer()})
            pieces = []
            start = lo
            for h in holes:
                if (lo is not None and h < lo) or (hi is not None and h > hi):
                    continue
                pieces.append(_num.int_range(start, h - 1))
                start = h + 1
            pieces.append(_num.int_range(start, hi))
            pieces = [x for x in pieces if x is not None]
            rx = _alt(pieces) if pieces else None
        else:
            rx = _num.INTEGER_RX if lo is None and hi is None else _num.int_range(lo, hi)
        if rx is None:
            raise EmptyLanguageError("no integer satisfies the bounds: empty language", pointer=lo_ptr or hi_ptr or "")
        return _Gen(rx, frozenset({"integer"}), int_range=(lo, hi))

    def _int_bounds(self, node: _Node):
        lo = hi = None
        lo_ptr = hi_ptr = None
        for raw, excl, bp in node.lower:
            if isinstance(raw, float) and math.isinf(raw):
                if raw > 0:
                    raise EmptyLanguageError("lower bound +infinity: empty language", pointer=bp)
                continue
            v = Fraction(raw)
            b = math.floor(v) + 1 if excl else math.ceil(v)
            if lo is None or b > lo:
                lo, lo_ptr = b, bp
        for raw, excl, bp in node.upper:
            if isinstance(raw, float) and math.isinf(raw):
                if raw < 0:
                    raise EmptyLanguageError("upper bound -infinity: empty language", pointer=bp)
                continue
            v = Fraction(raw)
            b = math.ceil(v) - 1 if excl else math.floor(v)
            if hi is None or b < hi:
                hi, hi_ptr = b, bp
        return lo, hi, lo_ptr, hi_ptr

    def _multiples(self, k: int, lo: int | None, hi: int | None, ptr: str) -> str | None:
        if k == 1:
            return _num.int_range(lo, hi)
        if lo is not None and hi is not None:
            first = -(-lo // k) * k
            count = (hi - first) // k + 1 if hi >= first else 0
            if count <= 0:
                return None
            if count <= MAX_ENUMERATION:
                return _alt([str(v) for v in range(first, hi + 1, k)])
        k2, twos, fives = k, 0, 0
        while k2 % 2 == 0:
            k2 //= 2
            twos += 1
        while k2 % 5 == 0:
            k2 //= 5
            fives += 1
        neg_all, neg_none = lo is None, lo is not None and lo > -k
        pos_all, pos_none = hi is None, hi is not None and hi < k
        ok = k2 == 1 and (neg_all or neg_none) and (pos_all or pos_none)
        ok = ok and not (lo is not None and lo > k) and not (hi is not None and hi < -k)
        if not ok:
            raise UnsupportedError(
                f"multipleOf {k} combined with these bounds cannot be written as a regex", pointer=ptr
            )
        n = max(twos, fives)
        small = [str(v) for v in range(k, 10**n, k)]
        suffixes = sorted({str(v).rjust(n, "0") for v in range(0, 10**n, k)})
        mag = _alt(small + ["[1-9][0-9]*" + (_alt(suffixes) if n else "")])
        parts = []
        if (lo is None or lo <= 0) and (hi is None or hi >= 0):
            parts.append("0")
        if pos_all:
            parts.append(mag)
        if neg_all:
            parts.append("-" + _group(mag))
        return _alt(parts) if parts else None

    def _compile_decimal(self, node: _Node, excluded: list) -> _Gen:
        if not node.lower and not node.upper and not excluded:
            return _Gen(_num.NUMBER_RX, frozenset({"integer", "fraction"}))
        lo = hi = None
        lo_excl = hi_excl = False
        lo_ptr = hi_ptr = None
        for raw, excl, bp in node.lower:
            if isinstance(raw, float) and math.isinf(raw):
                if raw > 0:
                    raise EmptyLanguageError("lower bound +infinity: empty language", pointer=bp)
                continue
            v = _num.bound_value(raw)
            if lo is None or v > lo or (v == lo and excl):
                lo, lo_excl, lo_ptr = v, excl, bp
        for raw, excl, bp in node.upper:
            if isinstance(raw, float) and math.isinf(raw):
                if raw < 0:
                    raise EmptyLanguageError("upper bound -infinity: empty language", pointer=bp)
                continue
            v = _num.bound_value(raw)
            if hi is None or v < hi or (v == hi and excl):
                hi, hi_excl, hi_ptr = v, excl, bp
        if lo is None and hi is None and not excluded:
            return _Gen(_num.NUMBER_RX, frozenset({"integer", "fraction"}))
        if excluded:
            holes = sorted({_num.bound_value(x) for x in excluded})
            pieces = []
            start, start_excl = lo, lo_excl
            for h in holes:
                if (lo is not None and h < lo) or (hi is not None and h > hi):
                    continue
                pieces.append(_num.decimal_range(start, start_excl, h, True))
                start, start_excl = h, True
            pieces.append(_num.decimal_range(start, start_excl, hi, hi_excl))
            pieces = [x for x in pieces if x is not None]
            rx = _alt(pieces) if pieces else None
        else:
            rx = _num.decimal_range(lo, lo_excl, hi, hi_excl)
        if rx is None:
            raise EmptyLanguageError(
                "no number satisfies the bounds (minimum > maximum): empty language", pointer=lo_ptr or hi_ptr or ""
            )
        return _Gen(rx, frozenset({"integer", "fraction"}))

    # strings ---------------------------------------------------------------
    def _compile_string(self, node: _Node) -> _Gen:
        excluded = [x for x in node.notin if isinstance(x, str)]
        lo, hi = node.min_len, node.max_len
        if hi is not None and lo > hi:
            raise EmptyLanguageError(
                f"minLength {lo} > maxLength {hi}: empty language", pointer=node.min_len_ptr or node.max_len_ptr
            )
        shapes: list[tuple[Any, str]] = []
        for pat, pp in node.patterns:
            try:
                shapes.append((_st.parse_pattern(pat), pp))
            except _st.PatternInvalid as e:
                raise SchemaError(f"invalid pattern {pat!r}: {e}", pointer=pp) from None
            except _st.PatternUnsupported as e:
                raise UnsupportedError(f"pattern {pat!r}: {e}", pointer=pp) from None
        for fmt, fp in node.formats:
            if not isinstance(fmt, str):
                continue
            if fmt in UNSUPPORTED_FORMATS:
                raise UnsupportedError(f"format {fmt!r} cannot be described by a regex", pointer=fp)
            pat = format_pattern(fmt)
            if pat is None:
                warnings.warn(f"unknown format {fmt!r} at {fp!r} is treated as an annotation", stacklevel=4)
                continue
            shapes.append((_st.parse_pattern(pat), fp))
        anything = _st.any_string()
        uniq: list[tuple[Any, str]] = []
        for sh, sp in shapes:
            if sh == anything or any(sh == u for u, _ in uniq):
                continue
            uniq.append((sh, sp))
        if len(uniq) > 1:
            try:
                both = _ss.intersect_all([sh for sh, _sp in uniq])
            except _ss.TooComplex:
                raise UnsupportedError(
                    "several patterns/formats on one string: their intersection is too complex", pointer=uniq[1][1]
                ) from None
            if _st.is_never(both):
                raise EmptyLanguageError("no string matches all the patterns/formats: empty language",
                                         pointer=uniq[1][1])
            uniq = [(both, uniq[0][1])]
        if excluded:
            if uniq:
                literals = [_st.literal(x) for x in excluded]
                try:
                    rest = _ss.difference(uniq[0][0], literals)
                except _ss.TooComplex:
                    raise UnsupportedError(
                        "excluding string values together with a pattern/format: too complex",
                        pointer=node.notin_ptr or uniq[0][1],
                    ) from None
                uniq = [(rest, uniq[0][1])]
            else:
                uniq = [(_st.exclude_strings(excluded), node.type_ptr or "")]
        if node.not_patterns:
            np_ptr = node.not_patterns[0][1]
            minus = [self._wide_ast(pat, pp) for pat, pp in node.not_patterns]
            try:
                rest = _ss.difference(uniq[0][0] if uniq else _st.any_string(), minus)
            except _ss.TooComplex:
                raise UnsupportedError("the strings a negated pattern leaves are too complex", pointer=np_ptr) from None
            if _st.is_never(rest):
                raise EmptyLanguageError("every string matches the negated pattern: empty language", pointer=np_ptr)
            uniq = [(rest, uniq[0][1] if uniq else np_ptr)]
        if uniq:
            shape, sp = uniq[0]
            try:
                ast = _st.restrict_length(shape, lo, hi)
            except _st.CannotRestrict:
                ast = None
            if ast is None:  # exact by automata when the structural rewrite fails
                try:
                    ast = _ss.intersect_all([shape, _st.any_string(lo, hi)])
                except _ss.TooComplex:
                    pass
            if ast is None:  # strict=False drops the length bound, keeping the pattern
                raise UnsupportedError(
                    "minLength/maxLength together with this pattern/format cannot be expressed exactly",
                    pointer=(node.max_len_ptr if hi is not None else node.min_len_ptr) or sp)
            if _st.is_never(ast):
                raise EmptyLanguageError(
                    "no string of the allowed length matches the pattern/format: empty language", pointer=sp
                )
        else:
            ast = _st.any_string(lo, hi)
        try:
            body = _st.render(ast)
        except _st.PatternUnsupported as e:
            raise UnsupportedError(str(e), pointer=node.min_len_ptr or node.max_len_ptr or node.type_ptr or "") from None
        if body is None:
            raise EmptyLanguageError("empty string language", pointer=node.type_ptr or "")
        return _Gen('"' + body + '"', frozenset({"string"}), string_ast=ast)

    # arrays ----------------------------------------------------------------
    def _compile_array(self, node: _Node, path: frozenset, depth: int) -> _Gen:
        self._check_notin(node, {"array"}, node.type_ptr)
        ws = self.ws
        lo, hi = node.min_items, node.max_items
        if hi is not None and lo > hi:
            raise EmptyLanguageError(
                f"minItems {lo} > maxItems {hi}: empty language", pointer=node.min_items_ptr or node.max_items_ptr
            )
        L = max((len(pf) for pf, _t, _p in node.arrays), default=0)
        positions: list[list] = []
        for i in range(L):
            items = []
            for pf, tail, _p in node.arrays:
                if i < len(pf):
                    items.append(pf[i])
                elif tail is False:
                    hi = i if hi is None else min(hi, i)
                elif tail is not None:
                    items.append(tail)
            positions.append(items)
        tail_items: list = []
        tail_false = False
        has_tail = False
        for pf, tail, _p in node.arrays:
            if tail is False:
                tail_false = True
            elif tail is not None:
                tail_items.append(tail)
                has_tail = True
        if tail_false:
            hi = L if hi is None else min(hi, L)
        if not has_tail and node.uneval_items is not None:
            if node.uneval_items.schema is False:
                hi = L if hi is None else min(hi, L)
            else:
                tail_items.append(node.uneval_items)
        if not has_tail and L > 0 and not self.ap_default and lo <= L and node.uneval_items is None:
            hi = L if hi is None else min(hi, L)  # no items beyond the tuple (a subset)
        if hi is not None and lo > hi:
            raise EmptyLanguageError("the array cannot have minItems items: empty language",
                                     pointer=node.min_items_ptr or "")
        def comp(items: list) -> _Gen:
            if not items:
                return self._any(ANY_DEPTH - 1)
            gen = self._compile_items(items, path | {i.ptr for i in items if isinstance(i, _Loc)}, ANY_DEPTH)
            if self.grammar_mode and gen.types & {"array", "object"} and len(gen.regex) > 64:
                gen = self._shared(gen)  # repeated items: one nonterminal, not copies inside one DFA
            return gen

        pos_gens: list[_Gen] = []
        n_pos = L if hi is None else min(L, hi)
        for i in range(n_pos):
            try:
                pos_gens.append(comp(positions[i]))
            except EmptyLanguageError as e:
                if i < lo:
                    raise EmptyLanguageError(
                        f"array item {i} admits no value but minItems requires it: empty language", pointer=e.pointer
                    ) from None
                hi = i
                break
        n_pos = len(pos_gens)
        tail_gen = None
        if hi is None or hi > n_pos:
            if n_pos < L:
                pass
            else:
                try:
                    tail_gen = comp(tail_items)
                except EmptyLanguageError as e:
                    if lo > n_pos:
                        raise EmptyLanguageError(
                            f"items admit no value but minItems is {lo}: empty language", pointer=e.pointer
                        ) from None
                    hi = n_pos
        if tail_gen is None and (hi is None or hi > n_pos):
            hi = n_pos
        if lo > (hi if hi is not None else lo):
            raise EmptyLanguageError("array bounds unsatisfiable: empty language", pointer=node.min_items_ptr or "")

        if node.uneval_items is None:  # minContains 0 is a no-op, unless it evaluates items for unevaluatedItems
            node.contains = [c for c in node.contains if not (c[1] == 0 and c[2] is None)]
        if node.contains:
            return self._contains_array(node, path, tail_items, pos_gens, tail_gen, lo, hi, comp)
        if node.unique_ptr is not None and (hi is None or hi > 1):
            return self._unique_array(node, pos_gens, tail_gen, lo, hi)

        comma = ws + "," + ws
        # tail repetition after the tuple part
        tail_rx = ""
        if tail_gen is not None:
            a = max(0, lo - n_pos)
            b = None if hi is None else hi - n_pos
            t = _group(tail_gen.regex)
            if b is None or b > 0:
                tail_rx = _rep("(?:" + comma + t + ")", a, b, node.min_items_ptr)
        inner = tail_rx
        for i in range(n_pos - 1, 0, -1):
            seg = comma + _group(pos_gens[i].regex) + inner
            inner = ("(?:" + seg + ")") if i < lo else "(?:" + seg + ")?"
        if n_pos > 0:
            first = _group(pos_gens[0].regex) + inner
        elif tail_gen is not None:
            t = _group(tail_gen.regex)
            a = max(0, lo - 1)
            b = None if hi is None else hi - 1
            first = t + _rep("(?:" + comma + t + ")", a, b, node.min_items_ptr)
        else:
            first = None
        if first is None or hi == 0:
            body = ""
        elif lo == 0:
            body = "(?:" + first + ")?"
        else:
            body = first
        rx = "\\[" + ws + body + ws + "\\]"
        return _Gen(rx, frozenset({"array"}))

    def _contains_array(self, node: _Node, path: frozenset, tail_items: list, pos_gens: list, tail_gen,
                        lo: int, hi: int | None, comp) -> _Gen:
        """Arrays with ``contains``: items are hits (``items`` and ``contains``) or
        others, and the hits number between minContains and maxContains.

        Without maxContains an "other" may be any item (a hit among them only
        adds to the count); with it, others must fail ``contains``, which needs
        its negation (exact for the forms ``not`` supports). Written as closed
        forms, so lengths are bounded only by minItems <= minContains, no
        maxItems, and no prefixItems (others: unsupported)."""
        cloc, a, b, cptr = node.contains[0]
        if len(node.contains) == 2 and all(_count(c[1], c[3]) == 1 and c[2] is None for c in node.contains):
            return self._two_contains_array(node, tail_items, pos_gens, tail_gen, lo, hi, comp)
        if len(node.contains) > 1:
            raise UnsupportedError("several 'contains' on one array (beyond two with minContains 1)",
                                   pointer=node.contains[1][3])
        a = _count(a, cptr)
        b = None if b is None else _count(b, cptr)
        if node.uneval_items is not None:  # items that satisfy 'contains' count as evaluated
            raise UnsupportedError("'contains' together with unevaluatedItems", pointer=cptr)
        if b is not None and b < a:
            raise EmptyLanguageError(f"maxContains {b} < minContains {a}: empty language", pointer=cptr)
        if pos_gens or node.unique_ptr is not None or hi is not None or lo > a:
            raise UnsupportedError("'contains' together with prefixItems, uniqueItems, maxItems or a minItems "
                                   "above minContains", pointer=cptr)
        comma = self.ws + "," + self.ws
        try:
            hit = _group(comp(tail_items + [cloc]).regex)
        except EmptyLanguageError:
            if a > 0:
                raise EmptyLanguageError("no item satisfies 'contains': empty language", pointer=cptr) from None
            hit = None
        if b is None:
            other = _group(tail_gen.regex) if tail_gen is not None else None
        else:
            try:
                other = _group(comp(tail_items + [_Neg(cloc)]).regex)
            except EmptyLanguageError:
                other = None
            except _CannotNegate as e:
                raise UnsupportedError(f"maxContains needs the negation of 'contains': {e.what}",
                                       pointer=cptr) from None
        rest = "" if other is None else "(?:" + comma + other + ")*"  # any number of others
        alts = []
        if b is None:  # at least a hits (a >= 1): the first hit, then a-1 more, others anywhere
            head = "" if other is None else "(?:" + other + comma + ")*"
            more = "(?:" + rest + comma + hit + ")"
            alts.append(head + hit + _rep(more, a - 1, a - 1) + rest)
        else:  # between a and b hits, others anywhere
            def hits_after_first(lo_h: int, hi_h: int) -> str:
                return _rep("(?:" + comma + hit + rest + ")", max(lo_h, 0), hi_h) if hi_h > 0 else ""
            if other is not None:  # starts with an other
                alts.append(other + rest + ("" if hit is None else hits_after_first(a, b)))
            if hit is not None and b >= 1:  # starts with a hit
                alts.append(hit + rest + hits_after_first(a - 1, b - 1))
            if not alts and a > 0:
                raise EmptyLanguageError("no array satisfies 'contains': empty language", pointer=cptr)
        body = _alt(alts) if alts else ""
        if a == 0 and body:
            body = "(?:" + body + ")?"
        rx = "\\[" + self.ws + body + self.ws + "\\]"
        return _Gen(rx, frozenset({"array"}))

    def _two_contains_array(self, node: _Node, tail_items: list, pos_gens: list, tail_gen, lo: int,
                            hi: int | None, comp) -> _Gen:
        """Two ``contains`` (from allOf, or a negated ``items`` beside one): one item
        satisfying both, or a hit of each in either order, any items around them."""
        (c1, _a1, _b1, p1), (c2, _a2, _b2, _p2) = node.contains
        if pos_gens or node.unique_ptr is not None or hi is not None or lo > 1 or node.uneval_items is not None:
            raise UnsupportedError("two 'contains' together with prefixItems, uniqueItems, maxItems, "
                                   "minItems above 1 or unevaluatedItems", pointer=p1)
        comma = self.ws + "," + self.ws

        def hit(extra: list) -> str | None:
            try:
                return _group(comp(tail_items + extra).regex)
            except EmptyLanguageError:
                return None

        h1, h2, h12 = hit([c1]), hit([c2]), hit([c1, c2])
        if h1 is None or h2 is None:
            raise EmptyLanguageError("no item satisfies one of the 'contains': empty language", pointer=p1)
        other = _group(tail_gen.regex) if tail_gen is not None else None
        rest = "" if other is None else "(?:" + comma + other + ")*"
        head = "" if other is None else "(?:" + other + comma + ")*"
        mids = [h1 + rest + comma + h2, h2 + rest + comma + h1] + ([h12] if h12 is not None else [])
        rx = "\\[" + self.ws + head + _alt(mids) + rest + self.ws + "\\]"
        return _Gen(rx, frozenset({"array"}))

    def _unique_array(self, node, pos_gens, tail_gen, lo, hi) -> _Gen:
        if pos_gens or tail_gen is None or tail_gen.finite is None:
            raise UnsupportedError(
                "uniqueItems over a non-enumerable item language", pointer=node.unique_ptr
            )
        vals: list = []
        for v in tail_gen.finite:
            if not any(_json_equal(v, u) for u in vals):
                vals.append(v)
        n = len(vals)
        top = n if hi is None else min(hi, n)
        if lo > top:
            raise EmptyLanguageError("uniqueItems with fewer distinct values than minItems: empty language",
                                     pointer=node.unique_ptr)
        total = 0
        for k in range(lo, top + 1):
            total += math.perm(n, k)
        if total > MAX_ENUMERATION:
            raise UnsupportedError("uniqueItems over too many enumerated values", pointer=node.unique_ptr)
        import itertools

        comma = self.ws + "," + self.ws
        seqs = []
        lits = [_st.escape_literal(_dump(v)) for v in vals]
        for k in range(lo, top + 1):
            for perm in itertools.permutations(range(n), k):
                seqs.append("\\[" + self.ws + comma.join(lits[i] for i in perm) + self.ws + "\\]")
        return _Gen(_alt(seqs), frozenset({"array"}))

    # objects ---------------------------------------------------------------
    def _matching_patterns(self, name: str, patterns) -> list:
        out = []
        for pat, loc, pp in patterns:
            try:
                if re.search(pat, name):
                    out.append(loc)
            except re.error:
                raise SchemaError(f"invalid patternProperties regex {pat!r}", pointer=pp) from None
        return out

    def _compile_object(self, node: _Node, path: frozenset, depth: int) -> _Gen:
        self._check_notin(node, {"object"}, node.type_ptr)
        ws = self.ws
        names = list(node.props)
        for r in node.required:
            if r not in node.props:
                names.append(r)
        # AP false anywhere, or a schema
        entries = []  # (name, gen, required)
        for name in names:
            req = name in node.required
            items: list = list(node.props.get(name, []))
            items += self._matching_patterns(name, node.pattern_props)
            for declared, pats, aploc, _app in node.ap_parts:
                if name in declared:
                    continue
                if any(re.search(p, name) for p in pats):
                    continue
                items.append(aploc)
            if node.uneval_props is not None and not node.ap_parts:
                declared_anywhere = name in node.props or self._matching_patterns(name, node.pattern_props)
                if not declared_anywhere:
                    items.append(node.uneval_props)
            forbidden_ptr = node.forbid.get(name)
            if forbidden_ptr is None:
                for pn in node.property_names:
                    if not self._valid_loc(name, pn):
                        forbidden_ptr = pn.ptr
                        break
            if forbidden_ptr is None and any(isinstance(i, _Loc) and i.schema is False for i in items):
                forbidden_ptr = next(i.ptr for i in items if isinstance(i, _Loc) and i.schema is False)
            if forbidden_ptr is not None:
                if req:
                    raise EmptyLanguageError(
                        f"required property {name!r} is forbidden: empty language", pointer=node.required[name]
                    )
                continue
            try:
                if not items:
                    gen = self._any(ANY_DEPTH - 1)
                else:
                    gen = self._compile_items(items, path | {i.ptr for i in items if isinstance(i, _Loc)}, ANY_DEPTH)
                if self.grammar_mode and gen.types & {"array", "object"} and len(gen.regex) > SPLIT_CHARS:
                    gen = self._shared(gen)  # keeps each terminal's DFA small
            except EmptyLanguageError as e:
                if req:
                    raise EmptyLanguageError(
                        f"required property {name!r} admits no value: empty language", pointer=e.pointer
                    ) from None
                continue
            entries.append((name, gen, req))

        # extra properties: never under a declared name, always after the declared ones
        colon = ws + ":" + ws
        comma = ws + "," + ws
        # forbidden names (negated ``required``) must not come back as extra keys either
        taken = names + [k for k in node.forbid if k not in names]
        extra_rx = self._extras(node, taken, path, colon, force=node.min_props > len(entries))
        n_req = sum(1 for _n, _g, r in entries if r)
        n_all = len(entries)
        cmin, cmax = node.min_props, node.max_props
        semantically_closed = not node.pattern_props and any(
            aploc.schema is False for _d, _p, aploc, _pp in node.ap_parts
        )
        if cmax is not None and cmax < n_req:
            raise EmptyLanguageError(
                f"maxProperties {cmax} is below the {n_req} required properties: empty language",
                pointer=node.max_props_ptr,
            )
        if cmin > n_all + (1 if extra_rx is not None else 0):
            if semantically_closed and extra_rx is None:
                raise EmptyLanguageError(
                    f"minProperties {cmin} exceeds the properties allowed: empty language", pointer=node.min_props_ptr
                )
            raise UnsupportedError(
                f"minProperties {cmin} needs properties beyond the {n_all} declared ones "
                "(distinct extra keys cannot be enforced by a regex)",
                pointer=node.min_props_ptr,
            )
        texts = [(_st.escape_literal(_dump(n)) + colon + g.regex, r) for n, g, r in entries]
        inner = self._object_body(texts, cmin, cmax, extra_rx, comma, node)
        if inner is None:
            raise EmptyLanguageError("no combination of properties satisfies the constraints: empty language",
                                     pointer=node.min_props_ptr or node.max_props_ptr or node.type_ptr or "")
        rx = "\\{" + ws + inner + ws + "\\}"
        self._check_size(rx, node.parts[0].ptr if node.parts else "")
        return _Gen(
            rx,
            frozenset({"object"}),
            keys_always=frozenset(n for n, _g, r in entries if r),
            keys_possible=None if extra_rx is not None else frozenset(n for n, _g, _r in entries),
            props={n: g for n, g, _r in entries},
        )

    def _extra_key_regex(self, names: list[str]) -> str:
        if not names:
            return '"' + _st.render(_st.any_string()) + '"'
        # strings (one canonical encoding per character) not equal to any declared name
        return '"' + _st.render(_st.exclude_strings(names)) + '"'

    def _extras(self, node: _Node, names: list, path: frozenset, colon: str, force: bool = False) -> str | None:
        """Regex of one extra member ``"key":value`` or None when none are generated.

        ``force``: minProperties cannot be met with the declared properties, so
        extra ones are generated even where the schema only allows them implicitly."""
        if node.deps:
            return None
        try:
            if node.pattern_props or (node.property_names and names):
                return self._pattern_extras(node, names, path, colon, force)
            explicit = [aploc for _d, _p, aploc, _pp in node.ap_parts]
            if explicit:
                if any(a.schema is False for a in explicit):
                    return None
                items = explicit
            else:
                if not self.ap_default and not force:
                    return None
                items = []
                if node.uneval_props is not None:
                    if node.uneval_props.schema is False:
                        return None
                    items = [node.uneval_props]
            if node.property_names:
                key_rx = self._property_names_gen(node, path).regex
            else:
                key_rx = self._extra_key_regex(names)
            if not items or all(a.schema is True or a.schema == {} for a in items):
                value = self._any(ANY_DEPTH - 1)
            else:
                value = self._compile_items(items, path | {a.ptr for a in items}, ANY_DEPTH)
            return key_rx + colon + value.regex
        except EmptyLanguageError:
            return None

    def _property_names_gen(self, node: _Node, path: frozenset) -> _Gen:
        """The keys ``propertyNames`` allows (strings: a key is one)."""
        return self._compile_items(
            list(node.property_names)
            + [_Part({"__types__": {"string"}}, node.property_names[0].ptr, "", 0, synthetic=True)],
            path, ANY_DEPTH)

    def _key_language(self, node: _Node, path: frozenset):
        """The decoded language ``propertyNames`` allows, or None when it is not a string language."""
        langs = []
        for leaf in self._property_names_gen(node, path).leaves():
            if leaf.string_ast is not None:
                langs.append(leaf.string_ast)
            elif leaf.finite is not None and all(isinstance(v, str) for v in leaf.finite):
                langs.extend(_st.literal(v) for v in leaf.finite)
            else:
                return None
        return _st.alt(langs)

    def _pattern_extras(self, node: _Node, names: list, path: frozenset, colon: str, force: bool) -> str | None:
        """Extra members when ``patternProperties`` apply: one alternative per
        region of the key space (keys matching exactly the patterns of a set S
        and none of the declared names), whose value satisfies those patterns'
        schemas and every ``additionalProperties`` no pattern of its part covers."""
        pats = node.pattern_props
        asts = []
        wides = []
        for pat, _ploc, pp in pats:
            try:
                asts.append(_st.parse_pattern(pat))
            except _st.PatternInvalid:
                raise SchemaError(f"invalid patternProperties regex {pat!r}", pointer=pp) from None
            except _st.PatternUnsupported as e:
                warnings.warn(f"extra properties at {pp!r} are not generated: pattern {pat!r}: {e}", stacklevel=2)
                return None
            try:
                wides.append(_st.parse_pattern(pat, wide=True))
            except _st.PatternUnsupported:
                wides.append(asts[-1])
        within = []
        if names:
            within.append(_st.exclude_strings(names))
        if node.property_names:
            key_lang = self._key_language(node, path)
            if key_lang is None:
                return None
            within.append(key_lang)
        n = len(asts)
        differ = [i for i in range(n) if wides[i] != asts[i]]
        try:
            # a key that one of ECMA-262 and Python matches and the other does not (a digit then a
            # final newline for "[0-9]$") belongs to no region: either reading of its value could be wrong
            regions = _ss.regions(asts + [wides[i] for i in differ], within, skip_complex=True)
        except _ss.TooComplex as e:
            warnings.warn(f"extra properties at {pats[0][2]!r} are not generated: their key regions are too "
                          f"complex ({e})", stacklevel=2)
            return None
        if differ:
            regions = {frozenset(i for i in key if i < n): ast for key, ast in regions.items()
                       if all((i in key) == (n + k in key) for k, i in enumerate(differ))}
        members = []
        for matched, key_ast in sorted(regions.items(), key=lambda kv: sorted(kv[0])):
            if key_ast is None:
                warnings.warn(f"extra properties at {pats[0][2]!r} matching exactly "
                              f"{sorted(pats[i][0] for i in matched) or 'no pattern'} are not generated: "
                              "their key region's regex is too large", stacklevel=2)
                continue
            items: list = [pats[i][1] for i in sorted(matched)]
            for _declared, part_pats, aploc, _app in node.ap_parts:
                if not any(pats[i][0] in part_pats for i in matched):
                    items.append(aploc)
            if not matched and not node.ap_parts:
                if not self.ap_default and not force:
                    continue
                if node.uneval_props is not None:
                    items.append(node.uneval_props)
            if any(isinstance(i, _Loc) and i.schema is False for i in items):
                continue
            fkey = tuple(i.ptr for i in items)
            if fkey in self._region_failures:
                continue
            try:
                if all(isinstance(i, _Loc) and (i.schema is True or i.schema == {}) for i in items):
                    value = self._any(ANY_DEPTH - 1)
                else:
                    value = self._compile_items(items, path | {i.ptr for i in items}, ANY_DEPTH)
            except _Recursion:
                raise  # grammar mode makes the target a nonterminal and compiles again
            except EmptyLanguageError:
                continue
            except UnsupportedError as e:
                # optional extra keys whose value cannot be compiled are left out: a smaller
                # language (never a looser one), said out loud
                what = (f"extra properties matching {sorted({pats[i][0] for i in matched})} at "
                        f"{pats[0][2]!r} are not generated: {e}")
                if self._relax_regions:
                    e.region_key, e.region_message, e.region_pointer = fkey, what, pats[0][2]
                    raise
                self._region_failures.add(fkey)
                warnings.warn(what, stacklevel=2)
                continue
            body = _st.render(key_ast)
            if body is not None:
                members.append('"' + body + '"' + colon + value.regex)
        if not members:
            return None
        return members[0] if len(members) == 1 else "(?:" + "|".join(members) + ")"

    def _object_body(self, texts, cmin, cmax, extra_rx, comma, node) -> str | None:
        n = len(texts)
        n_req = sum(1 for _t, r in texts if r)
        limit_ptr = node.parts[0].ptr if node.parts else ""

        def guard(rx: str) -> str:
            if len(rx) > MAX_REGEX_CHARS:
                err = UnsupportedError(
                    "object with these optional properties is too large for the regex fast path", pointer=limit_ptr
                )
                err.too_large = True
                raise err
            return rx

        def opt_tail(seg: list[str]) -> str:
            return "".join("(?:" + comma + t + ")?" for t in seg)

        def nonempty(seg: list[str]) -> str:
            """Comma-separated non-empty in-order selections of ``seg``: size O(W log n)."""
            if len(seg) == 1:
                return seg[0]
            total = sum(len(t) for t in seg)
            acc, k = 0, 1
            for i, t in enumerate(seg[:-1]):
                acc += len(t)
                k = i + 1
                if acc * 2 >= total:
                    break
            left, right = seg[:k], seg[k:]
            return guard("(?:" + nonempty(left) + opt_tail(right) + "|" + nonempty(right) + ")")

        extra_star = "" if extra_rx is None else "(?:" + comma + extra_rx + ")*"
        if cmax is None and cmin <= max(n_req, 0):
            if n_req:
                # optional properties before the first required one carry a trailing comma
                r0 = next(i for i, (_t, r) in enumerate(texts) if r)
                out = "".join("(?:" + t + comma + ")?" for t, _r in texts[:r0]) + texts[r0][0]
                for t, r in texts[r0 + 1:]:
                    out += (comma + t) if r else "(?:" + comma + t + ")?"
                return guard(out + extra_star)
        if cmax is None and n_req == 0 and cmin <= 1:
            seg = [t for t, _r in texts]
            alts = []
            if seg:
                alts.append(nonempty(seg) + extra_star)
            if extra_rx is not None:
                alts.append(extra_rx + extra_star)
            if not alts:
                return "" if cmin == 0 else None
            ne = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
            return guard(ne if cmin == 1 else "(?:" + ne + ")?")
        # counting: state (i, c) with c the members emitted so far (capped)
        cap = cmax if cmax is not None else cmin
        memo: dict = {}
        size = [0]

        def end(c: int) -> str | None:
            need = max(0, cmin - c)
            room = None if cmax is None else cmax - c
            if extra_rx is None or room == 0:
                return "" if need == 0 else None
            if need > 1:
                return None  # several extra keys could repeat one name
            if c > 0:
                return _rep("(?:" + comma + extra_rx + ")", need, room)
            body = extra_rx + _rep("(?:" + comma + extra_rx + ")", 0, None if room is None else room - 1)
            return body if need else "(?:" + body + ")?"

        def f(i: int, c: int) -> str | None:
            key = (i, c)
            if key in memo:
                return memo[key]
            if i == n:
                res = end(c)
            else:
                text, req = texts[i]
                sep = comma if c > 0 else ""
                nc = min(c + 1, cap) if cmax is None else c + 1
                take = rest = None
                if cmax is None or c + 1 <= cmax:
                    rest = f(i + 1, nc)
                    if rest is not None:
                        take = sep + text + rest
                if req:
                    res = take
                else:
                    skip = f(i + 1, c)
                    if take is None:
                        res = skip
                    elif skip is None:
                        res = take
                    elif nc == c and c > 0:
                        res = "(?:" + sep + text + ")?" + rest
                    else:
                        res = "(?:" + take + "|" + skip + ")" if skip else "(?:" + take + ")?"
            if res is not None:
                size[0] += len(res)
                if size[0] > MAX_REGEX_CHARS:
                    guard("x" * (MAX_REGEX_CHARS + 1))
            memo[key] = res
            return res

        return f(0, 0)

    # unconstrained values --------------------------------------------------
    def _any(self, depth: int) -> _Gen:
        if self.grammar_mode:
            return self._any_nonterminal()
        self.bounded_any = True
        key = ("any", depth)
        if key in self._cache:
            return self._cache[key]
        ws = self.ws
        string = '"' + _st.render(_st.any_string()) + '"'
        scalars = ["null", "true", "false", _num.NUMBER_RX, string]
        if depth > 0:
            child = self._any(depth - 1).regex
            comma = ws + "," + ws
            arr = "\\[" + ws + "(?:" + child + "(?:" + comma + child + ")*)?" + ws + "\\]"
            if self.ap_default:
                member = string + ws + ":" + ws + child
                obj = "\\{" + ws + "(?:" + member + "(?:" + comma + member + ")*)?" + ws + "\\}"
            else:
                obj = "\\{" + ws + "\\}"
            scalars += [arr, obj]
        gen = _Gen(_alt(scalars), _ALL, keys_possible=None)
        self._cache[key] = gen
        return gen

    def _any_nonterminal(self) -> _Gen:
        """Any JSON value, nested to any depth: ``any`` refers to itself."""
        if ANY_NONTERMINAL not in self.bodies:
            ws = self.ws
            child = f"(?&{ANY_NONTERMINAL})"
            string = '"' + _st.render(_st.any_string()) + '"'
            comma = ws + "," + ws
            arr = "\\[" + ws + "(?:" + child + "(?:" + comma + child + ")*)?" + ws + "\\]"
            member = string + ws + ":" + ws + child
            obj = "\\{" + ws + "(?:" + member + "(?:" + comma + member + ")*)?" + ws + "\\}"
            self.bodies[ANY_NONTERMINAL] = _alt(["null", "true", "false", _num.NUMBER_RX, string, arr, obj])
        return _Gen(f"(?&{ANY_NONTERMINAL})", _ALL, keys_possible=None)

    # -- disjointness ------------------------------------------------------------
    def _disjoint(self, gen: _Gen, items: list, path: frozenset) -> bool:
        """True when no text of ``gen`` is valid against the conjunction of ``items``."""
        try:
            alts, _empty = self._expand(items, path)
        except (UnsupportedError, _CannotNegate, SchemaError):
            return False
        for a in alts:
            for parts in self._unrolled(a, path):
                if parts is None:
                    return False
                try:
                    sem = self._merge(parts)
                except EmptyLanguageError:
                    continue
                except (UnsupportedError, SchemaError):
                    return False
                ua = _Alt(parts, a.obligations, a.done)
                for g in gen.leaves():
                    if not self._leaf_disjoint(g, sem, ua, path):
                        return False
        return True

    def _unrolled(self, a: _Alt, path: frozenset) -> list:
        """``a``'s parts with each nonterminal hole replaced by its schema, one level
        deep (one part list per alternative of the unrolled schema); ``None`` in the
        list when a hole cannot be unrolled, so the caller gives up on a proof."""
        holes = [p for p in a.parts if p.synthetic and "__hole__" in p.schema]
        if not holes:
            return [a.parts]
        # one level only, so a target on the current path (a recursive use) is fine:
        # its own keywords are merged, its inner references stay unexpanded items
        targets = [h.schema["__hole__"] for h in holes]
        others = [p for p in a.parts if p not in holes]
        try:
            sub_alts, _empty = self._expand([_Loc(t.schema, t.ptr, t.base, path | {t.ptr}) for t in targets],
                                            path | {t.ptr for t in targets})
        except (UnsupportedError, _CannotNegate, SchemaError, _Recursion):
            return [None]
        out = []
        for sa in sub_alts:
            if any(p.synthetic and "__hole__" in p.schema for p in sa.parts):
                return [None]
            out.append(others + sa.parts)
        return out

    def _leaf_disjoint(self, g: _Gen, sem: _Node, a: _Alt, path: frozenset) -> bool:
        if g.finite is not None:
            try:
                return not any(self._valid_parts(v, a.parts) for v in g.finite)
            except UnsupportedError:
                return False
        overlap = set(g.types) & sem.types
        if not overlap:
            return True
        if sem.finite is not None:
            ok = True
            for v in sem.finite:
                c = _cat_of(v)
                if c not in g.types:
                    continue
                if c in ("string", "boolean", "null", "integer") and not (c == "integer" and "fraction" in g.types) \
                        and "(?&" not in g.regex:  # grammar holes (nonterminals): not a Python regex
                    text = str(int(v)) if isinstance(v, float) else _dump(v)
                    if re.fullmatch(g.regex, text) is not None:
                        return False
                else:
                    ok = False  # not proven disjoint: the caller takes the exact (negation) path
            if ok:
                return True
        for t in overlap:
            if t == "object" and self._object_disjoint(g, sem, path):
                continue
            if t == "integer" and g.int_range is not None and self._range_disjoint(g.int_range, sem):
                continue
            return False
        return True

    def _range_disjoint(self, rng, sem: _Node) -> bool:
        lo, hi = rng
        for raw, excl, _p in sem.lower:
            v = Fraction(raw) if not (isinstance(raw, float) and math.isinf(raw)) else None
            if v is not None and hi is not None and (hi < v or (hi == v and excl)):
                return True
        for raw, excl, _p in sem.upper:
            v = Fraction(raw) if not (isinstance(raw, float) and math.isinf(raw)) else None
            if v is not None and lo is not None and (lo > v or (lo == v and excl)):
                return True
        return False

    def _object_disjoint(self, g: _Gen, sem: _Node, path: frozenset) -> bool:
        if g.keys_possible is not None:
            for r in sem.required:
                if r not in g.keys_possible:
                    return True
            if sem.min_props > len(g.keys_possible):
                return True
        if sem.max_props is not None and len(g.keys_always) > sem.max_props:
            return True
        for k in g.keys_always:
            if k in sem.forbid:
                return True
            for declared, pats, aploc, _pp in sem.ap_parts:
                if aploc.schema is False and k not in declared and not any(re.search(p, k) for p in pats):
                    return True
            if k in sem.props and k in g.props:
                if self._disjoint(g.props[k], sem.props[k], path):
                    return True
        return False


def _count(v: Any, ptr: str) -> int:
    """A non-negative integer keyword value (``2.0`` counts as 2, as JSON Schema says)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 or v != int(v):
        raise SchemaError("minContains/maxContains must be non-negative integers", pointer=ptr)
    return int(v)


def _rep(body: str, a: int, b: int | None, ptr: str | None = None) -> str:
    if b is not None and b <= 0:
        return ""
    if a > _st.MAX_REPEAT:
        raise UnsupportedError(f"repetition count {a} above {_st.MAX_REPEAT}", pointer=ptr)
    if b is not None and b > _st.MAX_REPEAT:
        b = _st.MAX_REPEAT  # a subset
    if (a, b) == (0, None):
        return body + "*"
    if (a, b) == (1, None):
        return body + "+"
    if (a, b) == (0, 1):
        return body + "?"
    if b is None:
        return body + "{%d,}" % a
    if a == b:
        return body if a == 1 else body + "{%d}" % a
    return body + "{%d,%d}" % (a, b)
