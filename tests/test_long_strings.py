"""Long counted repetition: ``maxLength`` in the tens of thousands stays exact.

A one-DFA encoding of ``X{0,32767}`` needs 32,767 times the states of ``X``;
the schema grammar path instead counts chunks of ``X`` with nonterminals, and
each chunk's DFA is built straight from ``X``'s (``repeat_dfa``). These tests
check both against the plain Thompson construction and against ``jsonschema``.
"""

from __future__ import annotations

import json
import random

import jsonschema
import pytest

from constrain import Vocabulary, allocate_mask, compile_json_schema
from constrain.regex.parser import parse_regex
from constrain.regex.to_dfa import _NFA, ast_to_dfa, nfa_size, nfa_to_dfa, repeat_dfa
from constrain.tokens.bitmask import ids_from_mask

from .conftest import tokenizer_path

UNITS = [
    r'(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})',  # a JSON string character: prefix-free
    r"[a-zé]",
    r"(?:ab|c)",
    r"(?:é|\\n)",
    r"(?:a|ab)",  # not prefix-free: repeat_dfa declines, the Thompson path is used
]
ALPHABET = ["a", "b", "c", "é", "\\", "n", "\\n", '"', "u", "0", "1", "ab", "z", "\\u00e9"]


def _thompson(node):
    nfa = _NFA()
    s, e = nfa.build(node)
    return nfa_to_dfa(nfa, s, e)


def _accepts(dfa, data: bytes) -> bool:
    s = dfa.step(dfa.start, data)
    return s >= 0 and bool(dfa.accepting[s])


@pytest.mark.parametrize("unit", UNITS)
@pytest.mark.parametrize("lo,hi", [(0, 2), (3, 40), (0, 300), (299, 301)])
def test_repeat_dfa_matches_thompson(unit: str, lo: int, hi: int) -> None:
    node = parse_regex(f"{unit}{{{lo},{hi}}}")
    want = _thompson(node)
    got = repeat_dfa(ast_to_dfa(node[1]), lo, hi)
    if unit == "(?:a|ab)":
        assert got is None
        return
    assert got is not None and got.num_states == want.num_states  # already minimal
    fast = ast_to_dfa(node)
    rng = random.Random(f"{unit}{lo}{hi}")
    for _ in range(600):
        n = rng.choice([lo - 1, lo, hi - 1, hi, hi + 1, rng.randint(0, hi + 2)])
        text = "".join(rng.choice(ALPHABET) for _ in range(max(n, 0)))
        data = text.encode()
        assert _accepts(got, data) == _accepts(want, data) == _accepts(fast, data), (unit, lo, hi, text)


@pytest.mark.parametrize("rx", [r"a{3,7}", r"(?:[a-c]|é){2,}", r"x(?:ab|c)?y{0,4}|[^a]", r"\u00e9{5}|z*"])
def test_nfa_size_counts_what_build_makes(rx: str) -> None:
    node = parse_regex(rx)
    nfa = _NFA()
    nfa.build(node)
    assert nfa_size(node) == len(nfa.eps)


@pytest.fixture(scope="module")
def gpt2() -> Vocabulary:
    return Vocabulary.from_file(tokenizer_path("gpt2"))


LONG = {
    "type": "object",
    "properties": {"s": {"type": "string", "minLength": 300, "maxLength": 32767}, "n": {"type": "integer"}},
    "required": ["s", "n"],
    "additionalProperties": False,
}


def _text(k: int, rng: random.Random) -> str:
    """A string of ``k`` code points with escapes and multi-byte characters."""
    return "".join(rng.choice(["a", "é", "\n", '"', "日", "😀", " "]) for _ in range(k))


def test_long_max_length_is_exact(gpt2) -> None:
    c = compile_json_schema(LONG, gpt2)
    assert c.engine == "grammar" and c.exact and not c.approximations
    rng = random.Random(5)
    for k in (0, 299, 300, 301, 511, 512, 513, 5000, 32766, 32767, 32768, 40000):
        inst = {"s": _text(k, rng), "n": 7}
        text = json.dumps(inst, separators=(",", ":"), ensure_ascii=rng.random() < 0.3)
        m = c.matcher()
        got = m.accept_bytes(text.encode()) and m.is_accepting()
        want = jsonschema.Draft202012Validator(LONG).is_valid(inst)
        assert got == want == (300 <= k <= 32767), k


def test_long_string_masks_equal_copy_and_accept(gpt2) -> None:
    """Masks where the count crosses a chunk boundary and where it meets maxLength."""
    schema = {"type": "string", "maxLength": 20_000}
    c = compile_json_schema(schema, gpt2)
    assert c.engine == "grammar"
    buf = allocate_mask(gpt2.size)
    for k in (250, 255, 256, 257, 19_990, 19_999, 20_000):
        m = c.matcher()
        assert m.accept_bytes(b'"' + b"a" * k)
        m.fill_mask(buf)
        allowed = set(ids_from_mask(buf, gpt2.size).tolist())
        brute = {t for t in range(gpt2.size) if m.copy().accept_token(t)}
        assert allowed == brute, (k, sorted(allowed ^ brute)[:10])
        if k == 20_000:  # only the closing quote, and nothing may follow the value
            assert allowed == {t for t in range(gpt2.size) if gpt2.token_bytes[t] == b'"'}


@pytest.mark.parametrize("schema", [{"type": "string"}, {"type": "string", "maxLength": 1},
                                    {"type": "string", "minLength": 2}, {"type": "string", "maxLength": 3000}])
def test_escaped_astral_characters_count_once(gpt2, schema) -> None:
    """``\\ud83d\\ude00`` is one code point to jsonschema; a lone surrogate is none and is refused."""
    v = jsonschema.Draft202012Validator(schema)
    c = compile_json_schema(schema, gpt2)
    for text in ['"\\ud83d\\ude00"', '"\\ud83d\\ude00x"', '"\\ud83d"', '"\\ude00"', '"a\\uD83D\\uDE00"']:
        m = c.matcher()
        got = m.accept_bytes(text.encode()) and m.is_accepting()
        lone = text.count("\\u") == 1
        assert got == (v.is_valid(json.loads(text)) and not lone), (schema, text)


def test_pattern_region_keeps_a_pattern_no_name_matches(gpt2) -> None:
    """A pattern's key region minus declared names that it does not match is the pattern itself,
    not a regex rewritten by state elimination (which gave up on BCP 47 language tags)."""
    from constrain.schema import string_sets as ss
    from constrain.schema.strings import exclude_strings, parse_pattern

    from .conftest import shared_data

    pattern = parse_pattern("^[a-z]{2,8}(-[a-zA-Z0-9]{1,8})*$")
    got = ss.regions([pattern], [exclude_strings(["Name", "_id"])])
    assert got[frozenset({0})] is pattern
    path = shared_data("jsonschemabench", "maskbench", "Github_trivial", "train", "o88608.json")
    doc = json.loads(path.read_text())
    c = compile_json_schema(doc["schema"], gpt2, strict=False, additional_properties=True)
    for case in doc["tests"]:
        m = c.matcher()
        text = json.dumps(case["data"], separators=(",", ":"), ensure_ascii=False)
        assert (m.accept_bytes(text.encode()) and m.is_accepting()) == case["valid"]


def _assert_no_terminal_ends_after(grammar, chars: str) -> None:
    """No terminal of ``grammar`` accepts right after one of ``chars``: a lexeme
    boundary inside plain text keeps masks off the plain-text slice."""
    for name, term in grammar.terminals.items():
        dfa = term.dfa
        for s in range(dfa.num_states):
            for ch in chars:
                t = int(dfa.table[s, dfa.byte_class[ord(ch)]])
                assert t < 0 or not dfa.accepting[t], (name, term.pattern, ch)


def test_split_alternation_keeps_its_closing_quote(monkeypatch) -> None:
    """A hole-free run too big for one terminal is split; the closing quote after
    a split-off alternation (a key that may be any string but the declared names,
    too big for one terminal on MaskBench's Snowplow schemas) goes into each
    branch and into the last copy of an optional key, so no terminal accepts
    right after a letter (a lexeme boundary inside plain text keeps masks off
    the plain-text slice). The language is unchanged."""
    from constrain.grammar.earley import CompiledGrammar
    from constrain.schema import grammar as sg

    body = r'\{(?:"(?:abc|abd[a-z]*|x[a-z]{0,3})?":(?&v))?\}'
    bodies = {"obj": body, "v": r"[0-9]+|\[(?:(?&obj)(?:,(?&obj))*)?\]"}
    whole = sg.bodies_to_grammar("obj", bodies)
    monkeypatch.setattr(sg, "TERMINAL_NFA_BUDGET", 24)
    split = sg.bodies_to_grammar("obj", bodies)
    one, many = CompiledGrammar(whole), CompiledGrammar(split)
    assert len(split.terminals) > len(whole.terminals) + 3, "the key alternation was not split"
    _assert_no_terminal_ends_after(split, "abcdxyz")
    rng = random.Random(3)
    keys = ["", "abc", "abd", "abdzz", "x", "xyz", "xyzw", "ab", "abcd", "y", "xa1"]
    for _ in range(300):
        depth = rng.randrange(3)
        text = "{}"
        for _d in range(depth):
            text = '{"%s":[%s]}' % (rng.choice(keys), text) if rng.random() < 0.7 else '{"%s":%d}' % (
                rng.choice(keys), rng.randrange(100))
        assert many.recognize(text.encode()) == one.recognize(text.encode()), text
    assert many.recognize(b'{"abdq":[{"xy":7}]}') and not many.recognize(b'{"ab":1}')


def test_count_just_over_one_terminal_is_two_chunks_not_a_chain_of_copies(monkeypatch) -> None:
    """``X{0,hi}"`` whose count alone fits one terminal but not with its closing
    quote (``maxLength: 5000`` on a JSON string character is exactly 100,000
    states) is split into two chunks of ``hi // 2``, not into ``hi`` optional
    single copies: those put a lexeme boundary after every character, and masks
    on MaskBench's o82710 took 200 ms each. The language is unchanged."""
    from constrain.grammar.earley import CompiledGrammar
    from constrain.schema import grammar as sg

    unit = UNITS[0]
    states = sg._Converter(set())._unit(parse_regex(unit))
    monkeypatch.setattr(sg, "TERMINAL_DFA_BUDGET", 40 * states)
    hi = 40
    g = sg.bodies_to_grammar("s", {"s": f'"{unit}{{0,{hi}}}"'})
    assert len(g.rules) < 8, f"{len(g.rules)} rules: a chain of copies"
    cg = CompiledGrammar(g)
    rng = random.Random(11)
    for k in (0, 1, 19, 20, 21, 39, 40, 41, 60):
        text = json.dumps("".join(rng.choice(["a", "é", "\n", '"', "😀"]) for _ in range(k)), ensure_ascii=False)
        assert cg.recognize(text.encode()) == (k <= hi), k


def test_short_prefix_goes_into_each_branch_of_a_split_alternation(monkeypatch) -> None:
    """Any key but a hundred declared names sharing prefixes comes out of state
    elimination as nested optionals, ``v(?:p(?:x(?:...)?)?)?``. When such a key
    is too big for one terminal, the prefix before each optional or alternation
    is distributed into its branches instead of becoming a terminal of its own:
    a terminal ``v`` accepts inside the key, and that boundary kept every mask
    inside the key off the plain-text slice (MaskBench o30769: 559 whole-trie
    walks of 1-5 ms). The language is unchanged."""
    from constrain.grammar.earley import CompiledGrammar
    from constrain.schema import grammar as sg

    key = r'"(?:v(?:p(?:x(?:[0-9][a-z]{0,6}|a[^"\\]*)?|[^x"\\][^"\\]*)?|[^p"\\][^"\\]*)?|[^v"\\][^"\\]*)?"'
    bodies = {"obj": r"\{(?:" + key + r":(?&v)(?:," + key + r":(?&v))*)?\}",
              "v": r"7|(?&obj)"}
    whole = sg.bodies_to_grammar("obj", bodies)
    monkeypatch.setattr(sg, "TERMINAL_NFA_BUDGET", 60)
    split = sg.bodies_to_grammar("obj", bodies)
    one, many = CompiledGrammar(whole), CompiledGrammar(split)
    assert len(split.terminals) > len(whole.terminals), "the key was not split"
    _assert_no_terminal_ends_after(split, "vpxa0z")
    rng = random.Random(5)
    keys = ["", "v", "vp", "vpx", "vpx1", "vpx1abcdef", "vpx1abcdefg", "vpxa", "vpxa\\\\", "vq", "w", "vpq"]
    for _ in range(300):
        text = "{}"
        for _d in range(rng.randrange(3)):
            text = '{"%s":%s}' % (rng.choice(keys), text) if rng.random() < 0.6 else '{"%s":%d,"%s":7}' % (
                rng.choice(keys), rng.choice([7, 7, 8]), rng.choice(keys))
        assert many.recognize(text.encode()) == one.recognize(text.encode()), text
    assert many.recognize(b'{"vpx1abc":{"v":7}}') and not many.recognize(b'{"vpx1abcdefg":7}')
