"""Serialising test instances the way a schema-constrained generator writes them.

Engines that compile JSON Schema to a grammar (constrain with
``key_order="schema"``, llguidance, xgrammar) emit object keys in the order of
the schema's ``properties`` (optional ones may be skipped), undeclared keys
after them. Test instances (MaskBench, the JSON Schema Test Suite) list keys in
whatever order their author chose, so forcing them verbatim would count a
correct engine as refusing a valid instance. :func:`schema_order` rewrites an
instance with its keys in schema order; runners try that text first and the
instance's own order second, and report which one was accepted.

:func:`validates` and :func:`relax` support the "explained by an
approximation" classification: an invalid instance that an approximate
compile accepted is excused only if it validates against the schema with the
approximated keywords removed.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any, Iterable
from urllib.parse import unquote

__all__ = ["compact", "pretty", "schema_order", "serialisations", "validates", "relax", "make_validator"]

_MAX_DEPTH = 64


def compact(value: Any) -> str:
    """JSON with no whitespace outside strings and raw UTF-8 (what a compact engine emits)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def pretty(value: Any) -> str:
    """Indented JSON (two spaces), for engines run with flexible whitespace."""
    return json.dumps(value, indent=2, ensure_ascii=False, allow_nan=False)


def make_validator(schema: Any, *, formats: bool = True) -> Any:
    """A jsonschema validator for ``schema`` (its ``$schema`` picks the draft; 2020-12 by default).

    Returns None when jsonschema cannot build one (malformed schema).
    """
    try:
        import jsonschema
        from jsonschema.validators import validator_for

        cls = validator_for(schema, default=jsonschema.Draft202012Validator)
        kwargs = {"format_checker": cls.FORMAT_CHECKER} if formats else {}
        return cls(schema, **kwargs)
    except Exception:  # noqa: BLE001 - a schema jsonschema cannot handle
        return None


def validates(validator: Any, value: Any, schema: Any = None) -> bool | None:
    """``value`` validates against ``schema`` (default: the validator's root), None if unknown."""
    if validator is None:
        return None
    try:
        v = validator if schema is None else validator.evolve(schema=schema)
        return bool(v.is_valid(value))
    except Exception:  # noqa: BLE001 - unresolvable $ref, recursion, bad regex ...
        return None


def _resolve(schema: Any, root: Any, seen: int = 0) -> Any:
    """Follow local ``$ref`` pointers (``#/...``); anything else is returned as is."""
    while isinstance(schema, dict) and isinstance(schema.get("$ref"), str) and seen < _MAX_DEPTH:
        ref = schema["$ref"]
        if not ref.startswith("#"):
            return schema
        node: Any = root
        for tok in [t for t in ref[1:].split("/") if t != ""]:
            tok = unquote(tok.replace("~1", "/").replace("~0", "~"))
            if isinstance(node, dict) and tok in node:
                node = node[tok]
            elif isinstance(node, list) and tok.isdigit() and int(tok) < len(node):
                node = node[int(tok)]
            else:
                return schema
        # keep the referencing schema's other keywords (2019-09+ semantics: $ref is one more keyword)
        rest = {k: v for k, v in schema.items() if k != "$ref"}
        schema = {"allOf": [node, rest]} if rest else node
        seen += 1
    return schema


def _collect(value: dict, schema: Any, root: Any, validator: Any, order: list[str], subs: dict[str, list],
             depth: int, extras: list | None = None, pending: list | None = None) -> None:
    """Declared keys into ``order`` and ``subs`` (key -> its schemas); the
    schemas of undeclared keys into ``extras`` as ``(pattern or None, schema)``
    (``patternProperties``, then ``additionalProperties``).

    As the compiler orders them: a schema's own and its ``allOf`` branches'
    properties first, then those of the ``anyOf``/``oneOf`` branch the value
    validates against, ``then``/``else`` and ``dependentSchemas``."""
    top = pending is None
    if top:
        pending = []
    schema = _resolve(schema, root)
    if not isinstance(schema, dict) or depth > _MAX_DEPTH:
        return
    for k, v in (schema.get("properties") or {}).items() if isinstance(schema.get("properties"), dict) else ():
        if k not in order:
            order.append(k)
        subs.setdefault(k, []).append(v)
    if extras is not None:
        pp = schema.get("patternProperties")
        for pat, sub in pp.items() if isinstance(pp, dict) else ():
            extras.append((pat, sub))
        if isinstance(schema.get("additionalProperties"), dict):
            extras.append((None, schema["additionalProperties"]))
    for branch in schema.get("allOf") or () if isinstance(schema.get("allOf"), list) else ():
        _collect(value, branch, root, validator, order, subs, depth + 1, extras, pending)
    for kw in ("anyOf", "oneOf"):
        branches = schema.get(kw)
        if isinstance(branches, list) and branches:
            chosen = next((b for b in branches if validates(validator, value, b)), None)
            if chosen is None:  # no validator verdict: the branch declaring most of the keys
                chosen = max(branches, key=lambda b: len(set(_declared(b, root)) & set(value)))
            pending.append((chosen, depth + 1))
    if "if" in schema:
        branch = schema.get("then") if validates(validator, value, schema["if"]) else schema.get("else")
        if branch is not None:
            pending.append((branch, depth + 1))
    for kw in ("dependentSchemas", "dependencies"):
        deps = schema.get(kw)
        if isinstance(deps, dict):
            for key, dep in deps.items():
                if key in value and isinstance(dep, (dict, bool)):
                    pending.append((dep, depth + 1))
    if top:
        for branch, d in pending:
            _collect(value, branch, root, validator, order, subs, d, extras)


def _extra_schema(key: str, extras: list) -> Any:
    """The schema an undeclared key's value gets: the first pattern it matches, else ``additionalProperties``
    (the value's own objects are then ordered too: the compiler orders an extra key's value by its schema)."""
    for pat, sub in extras:
        if pat is None:
            return sub
        try:
            if re.search(pat, key):
                return sub
        except re.error:
            continue
    return None


def _declared(schema: Any, root: Any) -> list[str]:
    schema = _resolve(schema, root)
    props = schema.get("properties") if isinstance(schema, dict) else None
    return list(props) if isinstance(props, dict) else []


def _item_schemas(schema: Any, root: Any, value: list, validator: Any, depth: int = 0) -> list[Any]:
    n = len(value)
    schema = _resolve(schema, root)
    if not isinstance(schema, dict) or depth > _MAX_DEPTH:
        return [None] * n
    prefix = schema.get("prefixItems")
    items = schema.get("items")
    if isinstance(items, list):  # draft 4-2019 tuple form
        prefix, items = items, schema.get("additionalItems")
    prefix = prefix if isinstance(prefix, list) else []
    out = [prefix[i] if i < len(prefix) else items for i in range(n)]
    if all(s is None for s in out):
        branches = list(schema.get("allOf") or () if isinstance(schema.get("allOf"), list) else ())
        for kw in ("anyOf", "oneOf"):  # the branch the list validates against first
            alts = schema.get(kw)
            if isinstance(alts, list):
                branches += sorted(alts, key=lambda b: not validates(validator, value, b))
        for branch in branches:
            inner = _item_schemas(branch, root, value, validator, depth + 1)
            if any(s is not None for s in inner):
                return inner
    return out


def _literal(value: Any, schema: Any) -> Any:
    """The ``const`` / ``enum`` member equal to ``value`` when it holds objects (its key order wins)."""
    if not isinstance(schema, dict) or not isinstance(value, (dict, list)):
        return None
    if "const" in schema and schema["const"] == value:
        return schema["const"]
    for member in schema.get("enum") or () if isinstance(schema.get("enum"), list) else ():
        if member == value and type(member) is type(value):
            return member
    return None


def _like(value: Any, template: Any) -> Any:
    """``value`` with every object's keys in ``template``'s order (the two are equal as JSON)."""
    if isinstance(value, dict) and isinstance(template, dict):
        return {k: _like(value[k], template[k]) for k in template if k in value}
    if isinstance(value, list) and isinstance(template, list):
        return [_like(v, t) for v, t in zip(value, template)]
    return value


def schema_order(value: Any, schema: Any, *, root: Any = None, validator: Any = None, _depth: int = 0) -> Any:
    """``value`` with every object's keys in the order its schema declares them.

    Declared keys come first in ``properties`` order (own properties, then
    ``allOf`` branches, the ``anyOf``/``oneOf`` branch the value validates
    against, ``then``/``else``, ``dependentSchemas``), undeclared keys after in
    their original order. Local ``$ref`` are followed; a schema the walk cannot
    read leaves the value's order unchanged.
    """
    root = schema if root is None else root
    if validator is None and _depth == 0:
        validator = make_validator(root, formats=False)
    if _depth > _MAX_DEPTH:
        return value
    template = _literal(value, _resolve(schema, root))
    if template is not None:
        return _like(value, template)
    if isinstance(value, dict):
        order: list[str] = []
        subs: dict[str, list] = {}
        extras: list = []
        _collect(value, schema, root, validator, order, subs, 0, extras)
        keys = [k for k in order if k in value] + [k for k in value if k not in subs]
        out = {}
        for k in keys:
            cands = subs.get(k) or [_extra_schema(k, extras)]
            sub = next((c for c in cands if c is not None), None)
            out[k] = schema_order(value[k], sub, root=root, validator=validator, _depth=_depth + 1) \
                if sub is not None else value[k]
        return out
    if isinstance(value, list):
        subs_l = _item_schemas(schema, root, value, validator)
        return [schema_order(v, s, root=root, validator=validator, _depth=_depth + 1) if s is not None else v
                for v, s in zip(value, subs_l)]
    return value


def serialisations(value: Any, schema: Any, *, whitespace: str = "compact") -> list[tuple[str, str]]:
    """``[(label, text), ...]`` to try in order: schema key order, then the instance's own order.

    With flexible whitespace the pretty-printed schema-order text is added
    (label ``"pretty"``). Duplicates are dropped.
    """
    try:
        ordered = schema_order(value, schema)
    except Exception:  # noqa: BLE001 - a schema shape the walk does not expect
        ordered = value
    out = [("schema_order", compact(ordered))]
    own = compact(value)
    if own != out[0][1]:
        out.append(("instance_order", own))
    if whitespace == "flexible":
        out.append(("pretty", pretty(ordered)))
    return out


def relax(schema: Any, pointers: Iterable[str]) -> Any:
    """``schema`` with the approximations at ``pointers`` applied, in the order
    ``compile_json_schema(strict=False)`` reported them (each pointer refers to
    the schema as the ones before it left it, e.g. inside the ``anyOf`` a
    ``oneOf`` became), with the compiler's own relaxation: an instance accepted
    only because of them can be told apart from a real error."""
    from ..schema.compile import _relax

    for pointer in pointers:
        got = _relax(schema, pointer, "") if isinstance(pointer, str) and pointer.startswith("/") else None
        if got is not None:
            schema = got[0]
    return copy.deepcopy(schema)
