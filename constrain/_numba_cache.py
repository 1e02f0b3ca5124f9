"""Numba's on-disk cache, made to notice changes in the kernels a kernel calls.

numba keys a cached kernel on its own source file only. A kernel in
``grammar/_kernels.py`` that calls one in ``tokens/_kernels.py`` has the
callee compiled into its machine code, so after an edit of the callee alone
numba loads the stale code (and with it the old behaviour) until someone
deletes ``__pycache__/*.nb?``. Every kernel of this package therefore gets a
cache stamp that also covers the contents of every ``_kernels.py`` in the
package: editing any of them recompiles all kernels once, which is the price
of never running stale code.

Importing this module registers the locator; each ``_kernels.py`` imports it
before its first ``@njit(cache=True)`` (numba picks the locator when the
decorator runs). Users who choose locators themselves
(``NUMBA_CACHE_LOCATOR_CLASSES``) keep their choice.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from numba.core import caching

PACKAGE = Path(__file__).resolve().parent


@lru_cache(maxsize=None)
def kernel_sources_stamp(root: Path = PACKAGE) -> str:
    """Hash of the names and contents of every ``_kernels.py`` under ``root``."""
    h = hashlib.sha256()
    for path in sorted(root.rglob("_kernels.py")):
        h.update(path.relative_to(root).as_posix().encode())
        h.update(b"\0")
        h.update(path.read_bytes())
        h.update(b"\0")
    return h.hexdigest()


_Base = getattr(caching, "_CacheLocator")
_Impl = getattr(caching, "CacheImpl", None) or getattr(caching, "_CacheImpl")


class PackageKernelsLocator(_Base):
    """Wraps the locator numba would pick for a kernel of this package (same
    folder, same file names) and adds :func:`kernel_sources_stamp` to its
    source stamp."""

    def __init__(self, inner: _Base, py_file: str, root: Path) -> None:
        self._inner = inner
        self._py_file = py_file  # numba's warnings read it
        self._root = root

    def ensure_cache_path(self) -> None:
        self._inner.ensure_cache_path()

    def get_cache_path(self) -> str:
        return self._inner.get_cache_path()

    def get_source_stamp(self):
        return (self._inner.get_source_stamp(), kernel_sources_stamp(self._root))

    def get_disambiguator(self) -> str:
        return self._inner.get_disambiguator()

    @classmethod
    def from_function(cls, py_func, py_file: str, root: Path = PACKAGE):
        try:
            Path(py_file).resolve().relative_to(root)
        except (OSError, ValueError):
            return None  # not ours: numba's own locators decide
        for other in _Impl._locator_classes:
            if issubclass(other, PackageKernelsLocator):  # never wrap a wrapper
                continue
            inner = other.from_function(py_func, py_file)
            if inner is not None:
                return cls(inner, py_file, root)
        return None


if PackageKernelsLocator not in _Impl._locator_classes:
    _Impl._locator_classes.insert(0, PackageKernelsLocator)
