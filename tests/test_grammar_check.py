"""check_grammar: the report behind ``constrain grammar check FILE``."""

from __future__ import annotations

from pathlib import Path

import pytest

from constrain.grammar.check import check_grammar

GRAMMARS = Path(__file__).resolve().parent.parent / "grammars"


@pytest.mark.parametrize("name", ["json", "arithmetic", "sql", "python_like", "smiles"])
def test_shipped_grammars_check_clean(name: str) -> None:
    r = check_grammar(GRAMMARS / f"{name}.lark")
    assert r.ok, r.format()
    assert not r.unreachable and not r.unproductive
    assert r.stats["rules"] > 3
    # No ignored terminal that can end early (the all-lexings trap).
    assert not [w for w in r.warnings if w.startswith("ignored terminal")], r.format()


def test_syntax_error_is_reported_with_location() -> None:
    r = check_grammar('start: "a"\n  foo bar ::= x\n')
    assert not r.ok and r.error_locations == [(2, 7)]
    assert "line 2, column 7" in r.format()


def test_gbnf_error_and_detection(tmp_path: Path) -> None:
    p = tmp_path / "g.gbnf"
    p.write_text('root ::= "a" b\n')
    r = check_grammar(p)
    assert r.syntax == "gbnf" and not r.ok and "undefined rule 'b'" in r.errors[0]
    assert r.error_locations == [(1, 14)]


def test_empty_language_is_an_error() -> None:
    r = check_grammar('start: x\nx: "a" x\n')
    assert not r.ok and "empty language" in r.errors[0]


def test_unreachable_unproductive_and_warnings() -> None:
    text = '''
start: e | loop
loop: "(" loop ")"
e: e "+" e | NAME | KW
NAME: /[a-z]+/
KW: "if"
unused: NAME
COMMENT: /#[^\\n]*/
LAZY: /x+?/
lazy_user: LAZY
%ignore COMMENT
%ignore " "
'''
    r = check_grammar(text)
    assert r.ok, r.format()
    assert r.unproductive == ["loop"]
    assert "unused" in r.unreachable and "lazy_user" in r.unreachable
    text_w = "\n".join(r.warnings)
    assert "terminal collision: NAME" in text_w and "'if'" in text_w
    assert "ignored terminal COMMENT" in text_w
    assert "left- and right-recursive" in text_w


def test_lazy_quantifier_and_empty_terminal_warnings() -> None:
    r = check_grammar('start: A B\nA: /a+?/\nB: /b*/\n')
    w = "\n".join(r.warnings)
    assert "lazy quantifier" in w and "matches the empty string" in w


def test_gbnf_unreachable_rules() -> None:
    r = check_grammar('root ::= "a" x\nx ::= "b"\ny ::= "c"\n', syntax="gbnf")
    assert r.ok and r.unreachable == ["y"]
