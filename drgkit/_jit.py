"""The one place that sets drgkit's numba policy.

Every kernel is compiled with ``cache=True`` (the on-disk cache lives where ``NUMBA_CACHE_DIR``
points, or next to the package, or in the user cache when that is read-only) and ``nogil``.
Arrays taken from Arrow without copying are read-only; kernels never write to their inputs.
"""

from __future__ import annotations

import numba

__all__ = ["get_threads", "jit", "pjit", "prange", "set_threads"]

prange = numba.prange


def jit(func=None, **kwargs):
    """Serial kernel (or helper inlined into one)."""
    options = {"cache": True, "nogil": True, "error_model": "numpy"}
    options.update(kwargs)
    if func is None:
        return lambda f: numba.njit(**options)(f)
    return numba.njit(**options)(func)


def pjit(func):
    """Parallel kernel: ``prange`` over cases in the outer loop only."""
    return numba.njit(cache=True, nogil=True, parallel=True, error_model="numpy")(func)


def set_threads(n: int | None) -> int:
    """Limit the threads parallel kernels use (``None``: all cores). Returns the previous value."""
    previous = numba.get_num_threads()
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS if n is None else max(1, int(n)))
    return previous


def get_threads() -> int:
    return numba.get_num_threads()
