"""A MaskBench sample on the Qwen3 and Llama-3 tokenizers, forced token by token.

25 MaskBench files, chosen deterministically: the first ones in the fixed
shuffled order of ``constrain maskbench`` (a uniform sample of all subsets)
that have test instances and a schema of at most 2,500 characters (to keep the
compile part of this test short). Each is compiled with JSONSchemaBench
semantics (undeclared properties allowed, ``strict=False``); every valid
instance, written as compact JSON with keys in schema order (or its own order),
must be accepted token by token through the masks with EOS allowed at the end,
and every invalid instance must be rejected unless it validates against the
schema without the keywords the compiler declared approximate.
"""

from __future__ import annotations

import json
import random
import warnings

import numpy as np
import pytest

from constrain import Vocabulary
from constrain.errors import UnsupportedError
from constrain.evaluation.instances import make_validator, relax, serialisations, validates
from constrain.evaluation.maskbench import list_files
from constrain.tokens.bitmask import is_allowed

from .conftest import SHARED_DATA, tokenizer_path

MASKBENCH = SHARED_DATA / "jsonschemabench" / "maskbench"
N_FILES = 25
MAX_SCHEMA_CHARS = 2500

#: files of the sample that are known to fail today: {relative path: reason} (strict xfail)
KNOWN_FAILURES: dict[str, str] = {}


def _sample() -> list[str]:
    if not MASKBENCH.is_dir():
        return []
    out = []
    for path in list_files(MASKBENCH):
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc.get("tests") and len(json.dumps(doc["schema"])) <= MAX_SCHEMA_CHARS:
            out.append(path.relative_to(MASKBENCH).as_posix())
            if len(out) == N_FILES:
                break
    return out


def _params() -> list:
    files = _sample()
    if not files:
        return [pytest.param(None, None, marks=pytest.mark.skip(reason=f"shared data not found: {MASKBENCH}"))]
    params = []
    for tok in ("qwen3", "llama3"):
        for f in files:
            marks = [pytest.mark.xfail(strict=True, reason=KNOWN_FAILURES[f])] if f in KNOWN_FAILURES else []
            params.append(pytest.param(tok, f, marks=marks, id=f"{tok}-{f}"))
    return params


_VOCABS: dict[str, Vocabulary] = {}


def _vocab(name: str) -> Vocabulary:
    if name not in _VOCABS:
        _VOCABS[name] = Vocabulary.from_file(tokenizer_path(name))
    return _VOCABS[name]


def _complete(constraint, vocab: Vocabulary, text: str) -> tuple[bool, int]:
    """(accepted, tokens forced before the refusal); ``vocab.encode`` is the tokenizer's own tokenisation."""
    m = constraint.matcher()
    buf = np.zeros((vocab.size + 31) // 32, dtype=np.uint32)
    ids = vocab.encode(text)
    assert vocab.decode(ids) == text.encode("utf-8")
    eos = min(vocab.eos_ids)
    for k, t in enumerate(ids):
        m.fill_mask(buf)
        if not is_allowed(buf, t):
            return False, k
        assert m.accept_token(t), "the mask allowed a token the matcher refused"
    m.fill_mask(buf)
    assert is_allowed(buf, eos) == m.is_accepting(), "EOS in the mask must match is_accepting()"
    return m.is_accepting(), len(ids)


@pytest.mark.parametrize("tok_name, rel", _params())
def test_maskbench_file(tok_name, rel):
    from constrain.schema import compile_json_schema

    tok = _vocab(tok_name)
    doc = json.loads((MASKBENCH / rel).read_text(encoding="utf-8"))
    schema = doc["schema"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            c = compile_json_schema(schema, tok, additional_properties=True, strict=False)
        except UnsupportedError as exc:
            pytest.fail(f"{rel}: not compiled even with strict=False: {exc}")
    approx = [a.pointer for a in getattr(c, "approximations", ())]
    relaxed_validator = make_validator(relax(schema, approx)) if approx else None
    problems = []
    for test in doc["tests"]:
        forms = [text for label, text in serialisations(test["data"], schema) if label != "pretty"]
        if test["valid"]:
            results = [_complete(c, tok, text) for text in forms]
            if not any(ok for ok, _ in results):
                problems.append(f"valid instance refused at token {results[0][1]}: {forms[0][:200]}")
        else:
            ok, _ = _complete(c, tok, forms[0])
            if ok and validates(relaxed_validator, test["data"]) is not True:
                problems.append(f"invalid instance accepted: {forms[0][:200]}")
    assert not problems, f"{rel} ({tok_name}): " + " | ".join(problems)


# --------------------------------------------------------------------------------------------
# The runner's own pieces


def test_warm_up_texts_are_forced_to_their_end():
    """A warm-up text refused half-way would leave its kernels cold, to be charged to a measured step."""
    from constrain.evaluation.maskbench import _WARMUP, warm_up
    from constrain.evaluation.peers import CompileOptions, PeerTokenizer, make_adapter

    tok = PeerTokenizer.load(str(tokenizer_path("qwen3")))
    done = warm_up(make_adapter("constrain", tok), tok, CompileOptions())
    refused = [text for (_, text), (_, forced) in zip(_WARMUP, done) if not forced]
    assert not refused, f"warm-up refused {refused}"
    assert {compiled.native.engine for compiled, _ in done} == {"dfa", "grammar"}


@pytest.mark.parametrize("engine", ["llguidance", "xgrammar", "outlines"])
def test_every_peer_compiles_the_warm_up(engine):
    """A warm-up schema a peer refuses makes its whole worker fatal (outlines-core has no ``ipv4``)."""
    from constrain.evaluation.maskbench import _WARMUP
    from constrain.evaluation.peers import CompileOptions, PeerNotInstalledError, PeerTokenizer, make_adapter

    tok = PeerTokenizer.load(str(tokenizer_path("qwen3")))
    try:
        adapter = make_adapter(engine, tok)
    except PeerNotInstalledError as exc:
        pytest.skip(f"{engine} is not installed (pip install 'constrain[bench]'): {exc}")
    for schema, _ in _WARMUP:
        assert adapter.compile(schema=schema, options=CompileOptions()) is not None


def test_schema_order_follows_properties_refs_and_const():
    schema = {
        "$defs": {"p": {"type": "object", "properties": {"y": {}, "x": {}}}},
        "type": "object",
        "properties": {"b": {"$ref": "#/$defs/p"}, "a": {"const": {"k": 1, "j": 2}}},
    }
    forms = serialisations({"a": {"j": 2, "k": 1}, "extra": 0, "b": {"x": 1, "y": 2}}, schema)
    assert forms[0] == ("schema_order", '{"b":{"y":2,"x":1},"a":{"k":1,"j":2},"extra":0}')
    assert forms[1] == ("instance_order", '{"a":{"j":2,"k":1},"extra":0,"b":{"x":1,"y":2}}')
    assert serialisations([1, "é"], {}) == [("schema_order", '[1,"é"]')]


def test_schema_order_reaches_the_values_of_undeclared_keys():
    """An undeclared key's value is ordered by its ``patternProperties`` or
    ``additionalProperties`` schema (the compiler orders it so; MaskBench o90913
    was refused as its ``friend`` object kept the instance's order), through a
    ``oneOf`` to the branch the value validates against."""
    ref = {"type": "object", "required": ["@id"], "additionalProperties": False,
           "properties": {"@type": {"type": "string"}, "@id": {"type": "string"}}}
    schema = {"type": "object", "properties": {"@id": {}},
              "patternProperties": {"^x-": {"type": "object", "properties": {"q": {}, "p": {}}}},
              "additionalProperties": {"oneOf": [ref, {"type": ["string", "number"]}]}}
    value = {"friend": {"@id": "1", "@type": "P"}, "x-a": {"p": 1, "q": 2}, "@id": "0", "n": 3}
    forms = serialisations(value, schema)
    assert forms[0] == ("schema_order", '{"@id":"0","friend":{"@type":"P","@id":"1"},"x-a":{"q":2,"p":1},"n":3}')


def test_schema_order_puts_all_of_properties_before_any_of_branches():
    """The compiler orders an object's own and ``allOf`` properties before those
    of an ``anyOf`` branch, wherever the ``anyOf`` sits among the ``allOf``
    branches (MaskBench o60846); the serialisation agrees with the compiled regex."""
    import re

    from constrain.schema.to_regex import schema_to_regex

    n = {"type": "integer"}
    schema = {"type": "object", "allOf": [{"properties": {"m": n}}, {"anyOf": [{"properties": {"d": n}}]},
                                          {"properties": {"p": n}}]}
    forms = serialisations({"d": 1, "p": 2, "m": 3}, schema)
    assert forms[0] == ("schema_order", '{"m":3,"p":2,"d":1}')
    assert re.fullmatch(schema_to_regex(schema), forms[0][1])


def test_relax_removes_only_the_reported_keywords():
    schema = {"properties": {"a": {"oneOf": [{"type": "integer"}, {"minimum": 0}], "maxLength": 3}}}
    relaxed = relax(schema, ["/properties/a/oneOf", "/properties/a/maxLength", "/nowhere/x"])
    assert relaxed == {"properties": {"a": {"anyOf": [{"type": "integer"}, {"minimum": 0}]}}}
    assert schema["properties"]["a"]["maxLength"] == 3  # the input is not modified
    v = make_validator(relaxed)
    assert validates(v, {"a": 5}) is True and validates(make_validator(schema), {"a": 5}) is False


ONEOF_OF_NOTS = {  # _extra/Handwritten/oneofpr2.json of MaskBench
    "type": "object",
    "oneOf": [
        {"allOf": [{"patternProperties": {"a": {"$ref": "#/definitions/inside1"}}},
                   {"not": {"patternProperties": {"a": {"not": {"$ref": "#/definitions/inside1"}}}}}]},
        {"allOf": [{"patternProperties": {"b": {"$ref": "#/definitions/inside2"}}},
                   {"not": {"patternProperties": {"b": {"not": {"$ref": "#/definitions/inside1"}}}}}]}],
    "definitions": {
        "inside1": {"type": "object", "not": {"patternProperties": {"c": {"not": {"type": "string", "pattern": "99"}}}}},
        "inside2": {"type": "object", "patternProperties": {"c": {"type": "string", "pattern": "77"}}}}}


def test_relax_replays_approximations_in_their_order():
    """Each approximation's pointer refers to the schema the earlier ones left
    (here inside the ``anyOf`` that the ``oneOf`` became): replayed out of order,
    the invalid instances the approximations let through looked like errors."""
    from constrain import compile_json_schema

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        c = compile_json_schema(ONEOF_OF_NOTS, Vocabulary.from_file(tokenizer_path("qwen3")), strict=False,
                                additional_properties=True)
    pointers = [a.pointer for a in c.approximations]
    assert pointers[0] == "/oneOf" and any(p.startswith("/anyOf/") for p in pointers), pointers
    relaxed = make_validator(relax(ONEOF_OF_NOTS, pointers))
    strict = make_validator(ONEOF_OF_NOTS)
    for data in ({"a": {"c": "99"}}, {"a": {"c": "101"}}, {"a": {"c": 99}}):
        m = c.matcher()
        text = json.dumps(data, separators=(",", ":")).encode()
        if m.accept_bytes(text) and m.is_accepting() and validates(strict, data) is not True:
            assert validates(relaxed, data) is True, data  # accepted only thanks to an approximation


def test_runner_end_to_end_with_a_compile_timeout(tmp_path):
    """Two files through the worker processes: one passes, one exceeds a 1 s compile limit and is killed."""
    from constrain.evaluation.maskbench import format_table, run_maskbench

    tokenizer = tokenizer_path("gpt2")  # the smallest vocabulary: the quickest worker start-up
    (tmp_path / "ok.json").write_text(json.dumps({
        "schema": {"type": "object", "properties": {"n": {"type": "integer", "minimum": 1}}, "required": ["n"]},
        "tests": [{"valid": True, "data": {"n": 5}}, {"valid": False, "data": {"n": 0}},
                  {"valid": False, "data": {}}]}))
    rng = random.Random(0)
    words = ["".join(rng.choice("abcdefghij") for _ in range(12)) for _ in range(20_000)]
    (tmp_path / "slow.json").write_text(json.dumps({  # an enum of 20,000 strings: minutes for constrain today
        "schema": {"enum": words}, "tests": []}))
    out = run_maskbench(str(tokenizer), tmp_path, engines=["constrain"], compile_limit=1.0, progress=False)
    r = out["engines"]["constrain"]
    assert r["files"] == 2 and r["compile_timeouts"] + sum(r["compile_errors"].values()) == 1
    assert (r["valid_accepted"], r["valid_tested"]) == (1, 1)
    assert (r["invalid_rejected"], r["invalid_tested"]) == (2, 2)
    assert r["mask_us"]["n"] >= 3 and r["peak_rss_mib"] > 0
    assert "valid accepted / tested" in format_table(out)
