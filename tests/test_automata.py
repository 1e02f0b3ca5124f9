"""Automaton kernels (trim, minimise) against their Python twins on random DFAs."""

from __future__ import annotations

import numpy as np
import pytest

from constrain.automata import _kernels
from constrain.automata.dfa import trim_and_minimize


def random_dfa(rng: np.random.Generator, n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    table = rng.integers(-1, n, size=(n, k)).astype(np.int32)
    table[rng.random((n, k)) < 0.3] = -1
    accepting = rng.random(n) < 0.2
    return table, accepting


def language(table: np.ndarray, accepting: np.ndarray, start: int, depth: int) -> set[tuple[int, ...]]:
    """All accepted strings up to ``depth`` symbols (class ids)."""
    out: set[tuple[int, ...]] = set()
    frontier = [((), start)]
    for _ in range(depth + 1):
        nxt = []
        for word, s in frontier:
            if accepting[s]:
                out.add(word)
            for c in range(table.shape[1]):
                d = int(table[s, c])
                if d >= 0:
                    nxt.append((word + (c,), d))
        frontier = nxt
    return out


@pytest.mark.parametrize("seed", range(20))
def test_kernels_match_twins(seed: int) -> None:
    rng = np.random.default_rng(seed)
    table, accepting = random_dfa(rng, int(rng.integers(2, 40)), int(rng.integers(1, 5)))
    np.testing.assert_array_equal(_kernels.coreachable(table, accepting), _kernels.coreachable_py(table, accepting))
    np.testing.assert_array_equal(_kernels.reachable(table, 0), _kernels.reachable_py(table, 0))
    block0 = accepting.astype(np.int64)
    (b1, n1), (b2, n2) = _kernels.refine_partition(table, block0), _kernels.refine_partition_py(table, block0)
    assert n1 == n2
    # Same partition up to renaming.
    assert len(set(zip(b1.tolist(), b2.tolist()))) == n1


def _same_partition(b1, n1, b2, n2) -> None:
    assert n1 == n2
    assert len(set(zip(b1.tolist(), b2.tolist()))) == n1  # same partition up to renaming


@pytest.mark.parametrize("seed", range(30))
def test_refine_partition_matches_twin_on_larger_dfas(seed: int) -> None:
    """Hopcroft (kernel) against Moore rounds (twin): random tables, arbitrary initial
    partitions with unused ids, and counting chains that need one Moore round per link."""
    rng = np.random.default_rng(1000 + seed)
    n, k = int(rng.integers(1, 300)), int(rng.integers(1, 12))
    table, _ = random_dfa(rng, n, k)
    if seed % 3 == 0:  # a chain with optional exits, as `.{1,n}` builds
        table = np.full((n, k), -1, np.int32)
        table[np.arange(n - 1), 0] = np.arange(1, n)
        table[rng.random(n) < 0.2, k - 1] = n - 1
    block0 = rng.integers(0, 4, size=n).astype(np.int64) * 2  # ids 0, 2, 4, 6 (odd ones unused)
    _same_partition(*_kernels.refine_partition(table, block0), *_kernels.refine_partition_py(table, block0))


@pytest.mark.parametrize("seed", range(20))
def test_minimised_dfa_has_the_same_language(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    table, accepting = random_dfa(rng, int(rng.integers(2, 30)), 3)
    qt, qacc, qs = trim_and_minimize(table, accepting, 0)
    want = language(table, accepting, 0, 6)
    if qs < 0:
        assert not want
        return
    assert language(qt, qacc, qs, 6) == want
    assert qt.shape[0] <= table.shape[0]
    # Trimmed: every kept state can still accept.
    assert _kernels.coreachable(qt, qacc).all()
