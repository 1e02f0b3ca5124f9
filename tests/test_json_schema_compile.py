"""compile_json_schema: DFA and grammar back ends, options, errors, differential checks.

Byte-level checks force whole texts through the matcher; token-level checks
force the Hugging Face tokenisation on real tokenizers. Soundness: random
sentences of the compiled language must validate with ``jsonschema``;
completeness: instances drawn by hypothesis-jsonschema must be accepted.
"""

from __future__ import annotations

import json
import random
import warnings

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from constrain import Vocabulary, allocate_mask, compile_json_schema
from constrain.errors import ConstraintError, SchemaError, UnsupportedError
from constrain.schema import JSONSchemaConstraint
from constrain.tokens.bitmask import is_allowed

from .conftest import shared_data, tokenizer_path

TREE = {
    "$defs": {
        "node": {
            "type": "object",
            "properties": {
                "value": {"type": "integer", "minimum": 0},
                "children": {"type": "array", "items": {"$ref": "#/$defs/node"}, "maxItems": 3},
            },
            "required": ["value", "children"],
            "additionalProperties": False,
        }
    },
    "$ref": "#/$defs/node",
}
LINKED = {
    "type": "object",
    "properties": {"x": {"type": "string", "maxLength": 3}, "next": {"anyOf": [{"$ref": "#"}, {"type": "null"}]}},
    "required": ["x", "next"],
}
ANY_VALUE = {"type": "object", "properties": {"payload": {}}, "required": ["payload"]}
DRAFT7_REC = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "definitions": {"expr": {"oneOf": [
        {"type": "integer"},
        {"type": "array", "items": {"$ref": "#/definitions/expr"}, "minItems": 1},
    ]}},
    "$ref": "#/definitions/expr",
}


@pytest.fixture(scope="module")
def qwen() -> Vocabulary:
    return Vocabulary.from_file(tokenizer_path("qwen3"))


@pytest.fixture(scope="module")
def llama() -> Vocabulary:
    return Vocabulary.from_file(tokenizer_path("llama3"))


def dump(v) -> str:
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)


def accepts(c, text: str) -> bool:
    m = c.matcher()
    return m.accept_bytes(text.encode("utf-8")) and m.is_accepting()


def accepts_tokens(c, vocab: Vocabulary, text: str) -> bool:
    """Force the HF tokenisation: each token must be in the mask and accepted; EOS allowed at the end."""
    m = c.matcher()
    words = allocate_mask(vocab.size)
    for t in vocab.encode(text):
        m.fill_mask(words)
        if not is_allowed(words, t) or not m.accept_token(t):
            return False
    m.fill_mask(words)
    return m.is_accepting() and any(is_allowed(words, e) for e in vocab.eos_ids if e < vocab.size)


# ---------------------------------------------------------------------------------------------
# back-end choice and exactness


def test_engine_choice(qwen):
    assert compile_json_schema({"type": "boolean"}, qwen).engine == "dfa"
    for schema in (TREE, LINKED, ANY_VALUE, DRAFT7_REC):
        c = compile_json_schema(schema, qwen)
        assert isinstance(c, JSONSchemaConstraint) and c.engine == "grammar" and c.exact


@pytest.mark.parametrize("schema,good,bad", [
    (TREE,
     [{"value": 1, "children": []},
      {"value": 0, "children": [{"value": 2, "children": [{"value": 3, "children": []}]}, {"value": 4, "children": []}]}],
     [{"value": -1, "children": []}, {"value": 1, "children": [{"value": 1}]},
      {"value": 1, "children": [{"value": 1, "children": []}] * 4}, {"children": [], "value": 1}]),
    (LINKED,
     [{"x": "a", "next": None}, {"x": "abc", "next": {"x": "", "next": {"x": "z", "next": None}}}],
     [{"x": "abcd", "next": None}, {"x": "a", "next": {"x": "a"}}, {"x": "a", "next": 1}]),
    (ANY_VALUE,
     [{"payload": 1}, {"payload": [[[[{"deep": [None, True, {"k": "v"}]}]]]]}, {"payload": {"a": {"b": {"c": {}}}}}],
     [{"payload": [1,]} if False else {"other": 1}, {}]),
    (DRAFT7_REC, [1, [1, [2, [3]]], [[[[-5]]]]], [[], [1, []], "x"]),
])
def test_recursive_and_unbounded_languages(qwen, llama, schema, good, bad):
    v = jsonschema.validators.validator_for(schema)(schema)
    c = compile_json_schema(schema, qwen)
    cl = compile_json_schema(schema, llama)
    for inst in good:
        assert v.is_valid(inst)
        assert accepts(c, dump(inst)), dump(inst)
        assert accepts_tokens(c, qwen, dump(inst)), dump(inst)
        assert accepts_tokens(cl, llama, dump(inst)), dump(inst)
    for inst in bad:
        assert not accepts(c, dump(inst)), dump(inst)


_NODE = {"type": "object", "additionalProperties": False, "required": ["v"], "properties": {
    "v": {"type": "integer"}, "kids": {"type": "array", "items": {"$ref": "#/$defs/node"}}}}
# a recursive nonterminal in a conjunction with sibling keywords: unrolled one level
CONJ_REC = {"$defs": {"node": _NODE}, "type": "object", "additionalProperties": False, "required": ["root"],
            "properties": {"root": {"$ref": "#/$defs/node", "minProperties": 2}}}
# oneOf whose branch is a recursive reference: disjointness is proved on the unrolled target
ONEOF_REC = {"$defs": {"t": {"type": "object", "additionalProperties": False, "properties": {
    "name": {"type": "string"}, "sub": {"oneOf": [{"$ref": "#/$defs/t"}, {"type": "string"}]}}}},
    "$ref": "#/$defs/t"}


@pytest.mark.parametrize("schema,instances", [
    (CONJ_REC, [{"root": {"v": 1, "kids": []}}, {"root": {"v": 1, "kids": [{"v": 2}, {"v": 3, "kids": [{"v": 4}]}]}},
                {"root": {"v": 1}}, {"root": {"kids": []}}, {"root": {"v": 1, "kids": [{"kids": []}]}}]),
    (ONEOF_REC, [{}, {"name": "a"}, {"sub": "x"}, {"sub": {"sub": {"name": "q"}}}, {"sub": 1},
                 {"name": "a", "sub": {"x": 1}}, {"sub": {"sub": 2}}]),
], ids=["conjunction", "oneof"])
def test_recursive_refs_beside_other_keywords(qwen, schema, instances):
    c = compile_json_schema(schema, qwen)
    assert c.engine == "grammar" and c.exact
    v = jsonschema.Draft202012Validator(schema)
    verdicts = {True: 0, False: 0}
    for inst in instances:
        ok = v.is_valid(inst)
        verdicts[ok] += 1
        assert accepts(c, dump(inst)) == ok, dump(inst)
    assert verdicts[True] and verdicts[False]


def test_deep_nesting_beyond_regex_bound(qwen):
    c = compile_json_schema({"type": "array"}, qwen)
    deep = "[" * 40 + "]" * 40
    assert accepts(c, deep)
    assert not accepts(c, "[" * 40 + "]" * 39)


def _grammar_samples(c: JSONSchemaConstraint, n: int, seed: int) -> list[str]:
    from constrain.grammar.sampler import GrammarSampler

    s = GrammarSampler(c.inner.grammar)
    rng = random.Random(seed)
    return [s.sample(rng, max_depth=8).decode("utf-8") for _ in range(n)]


@pytest.mark.parametrize("schema", [TREE, LINKED, ANY_VALUE, DRAFT7_REC], ids=["tree", "linked", "any", "draft7"])
def test_grammar_sentences_validate(qwen, schema):
    """Soundness of the grammar path: every sentence is JSON valid under the schema."""
    c = compile_json_schema(schema, qwen)
    v = jsonschema.validators.validator_for(schema)(schema)
    for text in _grammar_samples(c, 60, seed=7):
        inst = json.loads(text)
        assert v.is_valid(inst), text[:200]
        # compact (no whitespace between tokens) and declared keys in schema order; the
        # language keeps JSON's freedom elsewhere (`-0`, `1E5`, `\/` escapes), so a
        # re-serialisation need not be byte-identical
        assert _is_compact(text), text[:200]
        assert _keys_in_order(json.loads(text, object_pairs_hook=lambda kv: kv)), text[:200]


_KEY_ORDER = ["value", "children", "x", "next"]


def _is_compact(text: str) -> bool:
    in_str = esc = False
    for ch in text:
        if in_str:
            esc, in_str = (False, True) if esc else (ch == "\\", ch != '"')
        elif ch == '"':
            in_str = True
        elif ch in " \t\n\r":
            return False
    return True


def _in_key_order(inst):
    if isinstance(inst, dict):
        return {k: _in_key_order(inst[k]) for k in sorted(inst, key=lambda k: _KEY_ORDER.index(k))}
    if isinstance(inst, list):
        return [_in_key_order(x) for x in inst]
    return inst


def _keys_in_order(node) -> bool:
    """``node`` from ``object_pairs_hook=lambda kv: kv``: objects are lists of (key, value) tuples."""
    if isinstance(node, list) and all(isinstance(p, tuple) for p in node) and node:
        keys = [k for k, _ in node]
        known = [k for k in keys if k in _KEY_ORDER]
        return known == sorted(known, key=_KEY_ORDER.index) and all(_keys_in_order(v) for _, v in node)
    if isinstance(node, list):
        return all(_keys_in_order(v) for v in node)
    return True


def _tree():
    return st.fixed_dictionaries({"value": st.integers(0, 10**15), "children": st.lists(st.deferred(_tree), max_size=3)})


def _linked():
    return st.fixed_dictionaries({"x": st.text(max_size=3), "next": st.none() | st.deferred(_linked)})


def _expr():
    return st.integers(-(10**15), 10**15) | st.lists(st.deferred(_expr), min_size=1, max_size=4)


# hypothesis-jsonschema cannot draw from recursive schemas (it inlines every $ref), so the
# instances come from hand-written strategies, each checked against the schema first
@pytest.mark.parametrize("schema,strategy", [(TREE, _tree()), (LINKED, _linked()), (DRAFT7_REC, _expr())],
                         ids=["tree", "linked", "draft7"])
def test_recursive_instances_accepted(qwen, schema, strategy):
    """Completeness: random instances of recursive schemas (keys in schema order) are accepted."""
    c = compile_json_schema(schema, qwen)
    v = jsonschema.validators.validator_for(schema)(schema)

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(strategy)
    def check(inst):
        assert v.is_valid(inst)
        text = dump(_in_key_order(inst))
        assert accepts(c, text), text[:200]

    check()


def test_hypothesis_instances_accepted(qwen):
    """Completeness on a non-recursive schema via hypothesis-jsonschema."""
    from hypothesis_jsonschema import from_schema

    schema = {"type": "object", "properties": {
        "id": {"type": "integer", "minimum": -5, "maximum": 10**6},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 4}, "maxItems": 3},
        "kind": {"enum": ["a", "b", None]},
    }, "required": ["id"], "additionalProperties": False}
    c = compile_json_schema(schema, qwen)
    order = list(schema["properties"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        strategy = from_schema(schema)

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(strategy)
    def check(inst):
        text = dump({k: inst[k] for k in order if k in inst})
        assert accepts(c, text), text[:200]

    check()


@given(st.recursive(st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.text(max_size=5),
                    lambda ch: st.lists(ch, max_size=3) | st.dictionaries(st.text(max_size=3), ch, max_size=3),
                    max_leaves=20))
@settings(max_examples=60, deadline=None, derandomize=True)
def test_any_json_accepted(inst):
    c = _any_constraint()
    assert accepts(c, dump(inst))


_ANY = {}


def _any_constraint():
    if "c" not in _ANY:
        _ANY["c"] = compile_json_schema(True, Vocabulary.from_file(tokenizer_path("qwen3")))
    return _ANY["c"]


def test_mutants_agree_with_jsonschema(qwen):
    """Differential: a text is accepted iff it is compact JSON in key order that validates."""
    c = compile_json_schema(TREE, qwen)
    v = jsonschema.Draft202012Validator(TREE)
    rng = random.Random(3)
    checked = 0
    for text in _grammar_samples(c, 30, seed=11):
        for _ in range(8):
            i = rng.randrange(len(text) + 1)
            mutant = text[:i] + rng.choice(['', '0', '1', '[', ']', '{', '}', ',', '"', '-']) + text[i + 1:]
            try:
                inst = json.loads(mutant)
                expected = v.is_valid(inst) and dump(inst) == mutant
            except json.JSONDecodeError:
                expected = False
            assert accepts(c, mutant) == expected, mutant
            checked += 1
    assert checked == 240


# ---------------------------------------------------------------------------------------------
# options


def test_flexible_whitespace_is_bounded(qwen):
    schema = {"type": "object", "properties": {"a": {"type": "array", "items": {"type": "integer"}}}, "required": ["a"]}
    c = compile_json_schema(schema, qwen, whitespace="flexible", max_whitespace=4)
    assert accepts(c, '{ "a" : [ 1 ,\n 2 ] }')
    assert accepts(c, json.dumps({"a": [1, 2]}, indent=2).replace("  ", " "))
    assert not accepts(c, '{     "a":[1]}')
    assert not accepts(compile_json_schema(schema, qwen), '{ "a":[1]}')
    rec = compile_json_schema(TREE, qwen, whitespace="flexible")
    assert rec.engine == "grammar"
    assert accepts(rec, json.dumps({"value": 1, "children": [{"value": 2, "children": []}]}, indent=2))


def test_additional_properties_option(qwen):
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    strict_subset = compile_json_schema(schema, qwen)
    assert accepts(strict_subset, '{"a":1}') and not accepts(strict_subset, '{"a":1,"b":[{"c":2}]}')
    open_ = compile_json_schema(schema, qwen, additional_properties=True)
    assert accepts(open_, '{"a":1,"b":[{"c":2}]}') and accepts(open_, '{"zz":{"y":{"x":[]}}}')
    assert not accepts(open_, '{"a":"x"}')


def test_strict_false_reports_approximations(qwen):
    schema = {"type": "object", "properties": {
        "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
        "n": {"oneOf": [{"type": "integer"}, {"type": "number", "minimum": 0}]},
    }, "required": ["tags", "n"]}
    with pytest.raises(UnsupportedError) as exc:
        compile_json_schema(schema, qwen)
    assert exc.value.pointer
    c = compile_json_schema(schema, qwen, strict=False)
    pointers = sorted(a.pointer for a in c.approximations)
    assert pointers == ["/properties/n/oneOf", "/properties/tags/uniqueItems"], c.approximations
    assert not c.exact
    assert accepts(c, '{"tags":["a","b"],"n":3}')
    assert not accepts(c, '{"tags":[1],"n":3}')  # the rest stays exact


def test_length_bound_beside_a_pattern_of_variable_parts_is_exact_or_reported(qwen):
    """``maxLength`` over a pattern of repeated variable-length words (MaskBench
    Github_hard o21075): neither a structural rewrite nor the automaton
    intersection manages, and no length budget split between the words would be
    exact (it refused valid strings: one long word). Strict mode refuses with
    the keyword's pointer; strict=False drops the bound and reports it."""
    schema = {"type": "object", "properties": {"s": {
        "type": "string", "pattern": r"^(?:\S+\s+){0,29}\S+$", "maxLength": 300}}, "required": ["s"]}
    with pytest.raises(UnsupportedError) as exc:
        compile_json_schema(schema, qwen)
    assert exc.value.pointer == "/properties/s/maxLength"
    c = compile_json_schema(schema, qwen, strict=False)
    assert [a.pointer for a in c.approximations] == ["/properties/s/maxLength"]
    for words in (["w" * 290], ["ab"] * 30, ["x" * 150, "y" * 140]):
        jsonschema.validate({"s": " ".join(words)}, schema)
        assert accepts(c, json.dumps({"s": " ".join(words)}, separators=(",", ":"))), words
    assert not accepts(c, json.dumps({"s": " ".join(["ab"] * 31)}, separators=(",", ":")))  # the pattern stays


RELAX_UNDER_NEGATION = [
    # (schema, instances jsonschema accepts) where a keyword constrain cannot enforce sits somewhere
    # dropping it would tighten the schema: its approximation must drop the enclosing keyword instead
    ({"allOf": [{"enum": [{"foo": 1}]}, {"not": {"additionalProperties": {"type": "boolean"}}}]}, ['{"foo":1}']),
    ({"$defs": {"d": {"additionalProperties": {"type": "boolean"}}}, "not": {"$ref": "#/$defs/d"}},
     ['{"foo":1}', '{"a":true,"b":2}']),
    ({"not": {"not": {"not": {"additionalProperties": {"type": "boolean"}}}}}, ['{"foo":1}']),
    ({"type": "object", "if": {"additionalProperties": {"type": "boolean"}}, "then": {"required": ["a"]},
      "else": {"required": ["b"]}}, ['{"b":1}', '{"a":true}']),
    ({"type": "object", "oneOf": [{"minProperties": 2}, {"required": ["a"]}]}, ['{"a":1}', '{"x":1,"y":2}']),
    ({"type": "array", "contains": {"type": "array", "uniqueItems": True}, "maxContains": 1},
     ['[[1,1],[1,2]]', '[[2,2],3,[0]]']),
]


@pytest.mark.parametrize("schema,valid", RELAX_UNDER_NEGATION)
def test_approximations_never_tighten_under_negation(qwen, schema, valid):
    """A non-strict approximation drops a keyword; under ``not``, inside an
    ``if``, in a ``oneOf`` branch (negated against the others) or in a
    ``contains`` with ``maxContains``, that makes the schema tighter (it once
    made ``not`` of the rest "accept everything" and the schema empty), so the
    enclosing keyword is relaxed instead."""
    checker = jsonschema.Draft202012Validator(schema)
    assert all(checker.is_valid(json.loads(v)) for v in valid)
    c = compile_json_schema(schema, qwen, strict=False, additional_properties=True)
    assert c.approximations
    for v in valid:
        assert accepts(c, v), (v, c.approximations)


# MaskBench valid instances these keywords used to refuse (Github_medium o60319, o60278 and o71265,
# Github_easy o33940, o51165 and o9814, Github_hard o45586)
@pytest.mark.parametrize("schema,good,bad", [
    ({"type": "string", "format": "uri"},
     ["https://linux-test-project.github.io/", "ecdsa-koblitz-pubkey:14RZvYazz9H2DC2skBfpPVxax54g4y",
      "file:///path/to/file1.js", "https://dcos-master-1.example.com"], ["/articles/1", "a b:c"]),
    ({"type": "string", "format": "uri-reference"}, ["path/to/listener", "/articles/1"], ["a b"]),
    ({"type": "object", "required": ["status"], "oneOf": [
        {"properties": {"status": {"type": "string", "pattern": "^fail$"}}},
        {"properties": {"status": {"type": "string", "pattern": "^error$"}}}]},
     [{"status": "fail"}, {"status": "error"}], [{"status": "ok"}, {"status": "fail", "x": 1}]),
    ({"type": "object", "properties": {k: {"type": "string"} for k in ("id", "createdAt", "updatedAt")},
      "patternProperties": {"^[0-9a-zA-Z_-]{1,255}$": {"type": ["string", "number"]}}},
     [{"id": "a", "createdAt": "b", "key1": "v", "key2": 3}], [{"id": "a", "key 1": "v"}, {"id": 1}]),
])
def test_keywords_that_refused_maskbench_instances(qwen, llama, schema, good, bad):
    for vocab in (qwen, llama):
        c = compile_json_schema(schema, vocab, additional_properties=False)
        for inst in good:
            assert accepts_tokens(c, vocab, dump(inst)), dump(inst)
        for inst in bad:
            assert not accepts(c, dump(inst)), dump(inst)


def test_oneof_disjointness_check_skips_regexes_with_grammar_holes(qwen):
    """MaskBench's Github_medium o58661: proving a recursive oneOf's branches disjoint
    ran Python's ``re`` on a regex holding ``(?&name)`` nonterminal holes and
    crashed with ``re.error``; such a branch now counts as not proven disjoint."""
    doc = json.loads(shared_data("jsonschemabench", "maskbench", "Github_medium", "train", "o58661.json").read_text())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        c = compile_json_schema(doc["schema"], qwen, strict=False, additional_properties=True)
    for test in doc["tests"]:
        assert accepts(c, json.dumps(test["data"], separators=(",", ":"))) == test["valid"]


def test_resolver_and_pydantic(qwen):
    remote = {"type": "object", "properties": {"id": {"type": "integer"}}, "required": ["id"]}
    schema = {"type": "array", "items": {"$ref": "https://example.com/item.json"}, "maxItems": 2}
    with pytest.raises(UnsupportedError, match="resolver"):
        compile_json_schema(schema, qwen)
    c = compile_json_schema(schema, qwen, resolver={"https://example.com/item.json": remote})
    assert accepts(c, '[{"id":1},{"id":2}]') and not accepts(c, '[{"id":"x"}]')
    c2 = compile_json_schema(schema, qwen, resolver=lambda url: remote if url.endswith("item.json") else None)
    assert accepts(c2, '[{"id":1}]')

    pydantic = pytest.importorskip("pydantic")

    class Point(pydantic.BaseModel):
        x: int
        y: int
        label: str | None = None

    c3 = compile_json_schema(Point, qwen)
    assert accepts(c3, '{"x":1,"y":2}') and accepts(c3, '{"x":1,"y":2,"label":null}')
    assert not accepts(c3, '{"x":1}')


def test_input_forms(qwen, tmp_path):
    p = tmp_path / "s.json"
    p.write_text(json.dumps(LINKED))
    for form in (LINKED, json.dumps(LINKED), str(p), p):
        assert accepts(compile_json_schema(form, qwen), '{"x":"a","next":null}')


@pytest.mark.parametrize("schema,kwargs,exc,pointer", [
    ("{not json", {}, SchemaError, None),
    ({"type": "integer", "minimum": 5, "maximum": 1}, {}, SchemaError, "/minimum"),
    ({"type": "nope"}, {}, SchemaError, "/type"),
    ({"$ref": "#/$defs/missing"}, {}, SchemaError, "/$ref"),
    ({"type": "object", "properties": {"a": {"$ref": "#", "minProperties": 2}}}, {}, UnsupportedError, None),
    ({"type": "string"}, {"whitespace": "pretty"}, ConstraintError, None),
    ({"type": "string"}, {"key_order": "random"}, ConstraintError, None),
])
def test_bad_input(qwen, schema, kwargs, exc, pointer):
    with pytest.raises(exc) as got:
        compile_json_schema(schema, qwen, **kwargs)
    if pointer is not None:
        assert got.value.pointer is not None and got.value.pointer.startswith(pointer), got.value.pointer


def test_generation_uses_grammar_path_with_real_model():
    import torch

    from constrain import generate, load_model

    torch.set_num_threads(1)
    model = load_model("default")
    res = generate(model, "A small tree as JSON:", schema=TREE, max_tokens=48)
    if res.finished:
        jsonschema.validate(json.loads(res.text), TREE)
    else:  # hit the limit: the prefix must still be viable
        m = compile_json_schema(TREE, model.vocab).matcher()
        assert m.accept_bytes(res.text.encode("utf-8"))
