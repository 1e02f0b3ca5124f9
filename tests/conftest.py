"""Shared test helpers: the one place that finds ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("CONSTRAIN_SHARED_DATA", _REPO.parent / "shared" / "data"))

TOKENIZER_NAMES = ["gpt2", "llama2", "llama3", "mistral", "qwen3", "deepseek_v3"]


def shared_data(*parts: str) -> Path:
    """Path under ../shared/data, or skip the test with a reason when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not found: {path} (set CONSTRAIN_SHARED_DATA or place ../shared beside the checkout)")
    return path


def tokenizer_path(name: str) -> Path:
    return shared_data("tokenizers", name, "tokenizer.json")
