"""SyGuS grammars (SLIA strings, BV4 bit-vectors) from the Grammar-Aligned
Decoding benchmark, in GBNF.

They live in the shared data directory (``gad/research_gd/examples/sygus``),
found through ``$CONSTRAIN_SHARED_DATA`` or ``../shared/data`` beside the
checkout; pass ``data_dir`` to point elsewhere. Each file defines
``root ::= "(define-fun f (...) T " Start ")"`` and the SyGuS grammar below it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .ir import Grammar

CATEGORIES = {"slia": "SLIA", "bv4": "bv4", "bv": "bv4"}


def sygus_dir(category: str = "SLIA", data_dir: str | Path | None = None) -> Path:
    cat = CATEGORIES.get(category.lower())
    if cat is None:
        raise ValueError(f"unknown SyGuS category {category!r}; expected SLIA or BV4")
    if data_dir is None:
        env = os.environ.get("CONSTRAIN_SHARED_DATA")
        data_dir = Path(env) if env else Path(__file__).resolve().parents[3] / "shared" / "data"
    path = Path(data_dir) / "gad" / "research_gd" / "examples" / "sygus" / cat
    if not path.is_dir():
        raise FileNotFoundError(f"SyGuS grammars not found at {path} (set CONSTRAIN_SHARED_DATA)")
    return path


def sygus_grammar_names(category: str = "SLIA", data_dir: str | Path | None = None) -> list[str]:
    """Names of the available grammars of a category (file stems, sorted)."""
    return sorted(p.stem for p in sygus_dir(category, data_dir).glob("*.ebnf"))


def load_sygus_grammar(name: str, category: str = "SLIA", data_dir: str | Path | None = None) -> Grammar:
    """The IR of one SyGuS grammar (GBNF, start rule ``root``)."""
    from .gbnf import gbnf_to_ir

    path = sygus_dir(category, data_dir) / f"{name}.ebnf"
    if not path.is_file():
        raise FileNotFoundError(f"no SyGuS {category} grammar named {name!r} at {path}")
    return gbnf_to_ir(path.read_text(encoding="utf-8"), start="root", source=str(path))


def compile_sygus_grammar(name: str, vocab: Any, category: str = "SLIA", data_dir: str | Path | None = None):
    """A :class:`GrammarConstraint` for one SyGuS grammar."""
    from .matcher import GrammarConstraint

    return GrammarConstraint(load_sygus_grammar(name, category, data_dir), vocab, source=f"sygus:{category}/{name}")
