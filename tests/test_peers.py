"""Peer adapters (constrain.evaluation.peers): every installed engine agrees with constrain.

Peers that are not installed are skipped; the qwen3 tokenizer comes from the
shared data (skipped when absent).
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from constrain.evaluation import peers
from constrain.evaluation.peers import (
    CompileOptions,
    PeerConstraint,
    PeerNotInstalledError,
    PeerTokenizer,
    force_tokens,
    installed_engines,
    make_adapter,
)
from constrain.tokens.bitmask import ids_from_mask, is_allowed

from .conftest import tokenizer_path

# Keywords every engine enforces (outlines-core ignores numeric bounds, so none here).
SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 12},
        "kind": {"enum": ["cat", "dog"]},
        "ok": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "integer"}},
    },
    "required": ["name", "kind"],
    "additionalProperties": False,
}
VALID = [
    {"name": "Ada", "kind": "cat"},
    {"name": "José Martí", "kind": "dog", "ok": True, "tags": [1, -20, 300]},
    {"name": "", "kind": "cat", "tags": []},
]
INVALID = [
    {"name": "Ada"},
    {"name": "Ada", "kind": "cow"},
    {"name": "a very long name indeed", "kind": "cat"},
    {"name": "Ada", "kind": "cat", "tags": [1.5]},
    {"name": "Ada", "kind": "cat", "extra": 1},
]

ENGINES = list(peers.ENGINES)


@pytest.fixture(scope="module")
def tok() -> PeerTokenizer:
    return PeerTokenizer.load(tokenizer_path("qwen3"))


@pytest.fixture(scope="module")
def adapters(tok):
    return {}


def _adapter(adapters, engine, tok):
    if engine not in installed_engines():
        pytest.skip(f"{engine} is not installed")
    if engine not in adapters:
        adapters[engine] = make_adapter(engine, tok)
    return adapters[engine]


def _complete(adapter, compiled, tok, text: str) -> bool:
    buf = np.zeros(tok.words, dtype=np.uint32)
    m = adapter.matcher(compiled)
    ok, _ = force_tokens(m, tok.tokenize(text), buf)
    if not ok:
        return False
    m.fill(buf)
    return m.is_accepting() and is_allowed(buf, tok.eos_id)


@pytest.mark.parametrize("engine", ENGINES)
def test_engine_agrees_with_constrain_on_schema(engine, tok, adapters):
    a = _adapter(adapters, engine, tok)
    c = a.compile(schema=SCHEMA)
    for inst in VALID:
        text = json.dumps(inst, separators=(",", ":"), ensure_ascii=False)
        assert _complete(a, c, tok, text), f"{engine} refused valid {text}"
    for inst in INVALID:
        text = json.dumps(inst, separators=(",", ":"), ensure_ascii=False)
        assert not _complete(a, c, tok, text), f"{engine} accepted invalid {text}"


@pytest.mark.parametrize("engine", ENGINES[1:])
def test_peer_masks_within_constrain_masks(engine, tok, adapters):
    """Along a valid instance, a peer never allows a text token constrain forbids (both are exact here).

    Two known, deliberate differences are left out: tokens constrain's
    vocabulary never emits as text (control/added tokens such as Qwen3's
    ``<think>``, which xgrammar treats as text), and raw control characters
    (< 0x20) inside strings, which JSON forbids and xgrammar allows.
    """
    ref_a = _adapter(adapters, "constrain", tok)
    a = _adapter(adapters, engine, tok)
    ref_c, c = ref_a.compile(schema=SCHEMA), a.compile(schema=SCHEMA)
    text = json.dumps(VALID[1], separators=(",", ":"), ensure_ascii=False)
    rm, pm = ref_a.matcher(ref_c), a.matcher(c)
    rbuf, pbuf = np.zeros(tok.words, np.uint32), np.zeros(tok.words, np.uint32)
    eos = np.array(sorted(tok.vocab.eos_ids))
    for t in tok.tokenize(text):
        rm.fill(rbuf)
        pm.fill(pbuf)
        extra = np.setdiff1d(ids_from_mask(pbuf, tok.size), ids_from_mask(rbuf, tok.size))
        extra = [i for i in np.setdiff1d(extra, eos).tolist()
                 if tok.vocab.token_bytes[i] is not None and min(tok.vocab.token_bytes[i]) >= 0x20]
        assert not extra, f"{engine} allows {[tok.vocab.token_bytes[i] for i in extra[:5]]}"
        assert rm.accept(t) and pm.accept(t)


@pytest.mark.parametrize("engine", ENGINES)
def test_regex_through_adapter(engine, tok, adapters):
    a = _adapter(adapters, engine, tok)
    c = a.compile(regex=r"[0-9]{4}-(0[1-9]|1[0-2])")
    assert _complete(a, c, tok, "2024-02")
    assert not _complete(a, c, tok, "2024-13")


@pytest.mark.parametrize("engine", ENGINES)
def test_peer_constraint_matcher_contract(engine, tok, adapters):
    """PeerConstraint gives constrain's Matcher behaviour: EOS only when complete, rollback, copy."""
    a = _adapter(adapters, engine, tok)
    pc = PeerConstraint(a, a.compile(regex=r"(yes|no)!"))
    m = pc.matcher()
    eos = tok.eos_id
    ids = tok.tokenize("yes!")
    assert not m.accept_token(eos)
    assert m.accept_tokens(ids) == len(ids)
    allowed = m.allowed_token_ids()
    assert eos in set(allowed.tolist())
    assert all(tok.vocab.token_bytes[i] is None for i in allowed)  # only EOS ids remain
    fork = m.copy()
    assert m.accept_token(eos) and m.is_finished() and not m.allowed_token_ids().size
    assert not fork.is_finished() and fork.is_accepting()
    m.rollback(1)
    assert not m.is_finished() and m.is_accepting()
    m.rollback(len(ids))
    assert not m.is_accepting()
    assert m.accept_bytes(b"no!") and m.is_accepting()
    special = next(i for i in sorted(tok.vocab.special_ids) if i not in tok.vocab.eos_ids)
    assert not m.accept_token(special)


def test_options_are_validated():
    with pytest.raises(ValueError, match="whitespace"):
        CompileOptions(whitespace="pretty")


def test_unknown_engine(tok):
    with pytest.raises(ValueError, match="unknown engine"):
        make_adapter("guidance2", tok)


def test_missing_peer_names_the_bench_extra(monkeypatch, tok):
    import importlib

    real = importlib.import_module

    def fake(name, *args, **kwargs):
        if name == "xgrammar":
            raise ImportError("No module named 'xgrammar'")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(importlib, "import_module", fake)
    with pytest.raises(PeerNotInstalledError, match=r"constrain\[bench\]"):
        make_adapter("xgrammar", tok)


def test_module_imports_no_peer():
    code = ("import sys, constrain.evaluation.peers as p; "
            "print(sorted(m for m in ('llguidance','xgrammar','outlines_core') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
