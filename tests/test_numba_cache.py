"""numba's cache must not hand back a kernel compiled against an older version
of a kernel it calls (see constrain/_numba_cache.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numba

from constrain import _numba_cache as nc
from constrain.grammar import _kernels as GK
from constrain.regex import _kernels as RK
from constrain.tokens import _kernels as TK


def test_every_package_kernel_uses_the_package_locator():
    cached = [f for mod in (GK, RK, TK) for f in vars(mod).values()
              if isinstance(f, numba.core.registry.CPUDispatcher) and f._cache is not None
              and type(f._cache).__name__ != "NullCache"]
    assert len(cached) > 20
    for f in cached:
        loc = f._cache._impl.locator
        assert isinstance(loc, nc.PackageKernelsLocator), f
        assert loc.get_source_stamp()[1] == nc.kernel_sources_stamp()


def test_stamp_covers_every_kernels_file(tmp_path: Path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "_kernels.py").write_text(f"X = {name!r}\n")

    def f():
        pass

    loc = nc.PackageKernelsLocator.from_function(f, str(tmp_path / "a" / "_kernels.py"), root=tmp_path)
    assert loc is not None and loc.get_cache_path() == str(tmp_path / "a" / "__pycache__")
    before = loc.get_source_stamp()
    (tmp_path / "b" / "_kernels.py").write_text("X = 'changed'\n")
    nc.kernel_sources_stamp.cache_clear()
    after = loc.get_source_stamp()
    assert before[0] == after[0]  # numba's own stamp of a/_kernels.py did not change...
    assert before != after  # ...but ours did
    # files outside the root keep numba's locators
    assert nc.PackageKernelsLocator.from_function(f, str(Path(numba.__file__)), root=tmp_path) is None


_CALLEE = "from numba import njit\n\n@njit(cache=True)\ndef value():\n    return {v}\n"
_CALLER = "from numba import njit\nfrom ..b._kernels import value\n\n@njit(cache=True)\ndef twice():\n    return 2 * value()\n"
_RUN = textwrap.dedent("""
    import sys
    from pathlib import Path
    from numba.core import caching
    from constrain import _numba_cache as nc
    root = Path(sys.argv[1]) / "pkg"

    class Here(nc.PackageKernelsLocator):
        @classmethod
        def from_function(cls, py_func, py_file):
            return super().from_function(py_func, py_file, root=root)

    nc._Impl._locator_classes.insert(0, Here)
    sys.path.insert(0, sys.argv[1])
    from pkg.a._kernels import twice
    print(twice())
""")


def test_editing_a_callee_recompiles_its_callers(tmp_path: Path):
    """End to end, in fresh processes: with numba's own locator the second run
    would print the stale 2 (the caller's file did not change)."""
    pkg = tmp_path / "pkg"
    for sub in ("", "a", "b"):
        (pkg / sub).mkdir(parents=True, exist_ok=True)
        (pkg / sub / "__init__.py").write_text("")
    (pkg / "a" / "_kernels.py").write_text(_CALLER)
    script = tmp_path / "run.py"
    script.write_text(_RUN)
    env = dict(os.environ, NUMBA_DISABLE_JIT="0")
    env.pop("NUMBA_CACHE_DIR", None)
    outs = []
    for v in (1, 5):
        (pkg / "b" / "_kernels.py").write_text(_CALLEE.format(v=v))
        run = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, env=env,
                             timeout=300)
        assert run.returncode == 0, run.stderr
        outs.append(run.stdout.strip())
    assert list((pkg / "a" / "__pycache__").glob("*.nbi")), "the caller was not cached at all"
    assert outs == ["2", "10"]
