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

from .conftest import tokenizer_path

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
        assert dump(inst) == text  # compact, keys in order


@pytest.mark.parametrize("schema", [TREE, LINKED, DRAFT7_REC], ids=["tree", "linked", "draft7"])
def test_hypothesis_instances_accepted(qwen, schema):
    """Completeness: instances drawn from the schema (keys in schema order) are accepted."""
    from hypothesis_jsonschema import from_schema

    c = compile_json_schema(schema, qwen)

    def reorder(inst, sch):
        # the language lists properties in schema order; reorder like a generator would
        if isinstance(inst, dict):
            order = ["value", "children", "x", "next"]
            return {k: reorder(inst[k], sch) for k in sorted(inst, key=lambda k: order.index(k) if k in order else 99)}
        if isinstance(inst, list):
            return [reorder(x, sch) for x in inst]
        return inst

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        strategy = from_schema(schema)

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(strategy)
    def check(inst):
        text = dump(reorder(inst, schema))
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
