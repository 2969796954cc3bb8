"""The one place that sets drgkit's numba policy.

Every kernel is compiled with ``cache=True`` (the on-disk cache lives where ``NUMBA_CACHE_DIR``
points, or next to the package, or in the user cache when that is read-only) and ``nogil``.
Arrays taken from Arrow without copying are read-only; kernels never write to their inputs.

Parallel kernels may be called from several threads at once (a Dask worker with threads, an
application's thread pool). Numba's ``workqueue`` threading layer, its fallback where neither
TBB nor OpenMP is available, aborts the whole process when that happens; :class:`Dual` lets at
most one thread at a time run a parallel kernel under that layer (the others run the serial
twin, which gives the same result), and until the layer is known, the same.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import numba
import numpy as np

__all__ = [
    "PARALLEL_MIN_ROWS",
    "Dual",
    "dual",
    "get_threads",
    "jit",
    "pjit",
    "prange",
    "set_threads",
    "threading_layer",
    "threads",
]

#: Below this many rows a kernel runs serially: waking the thread pool costs milliseconds,
#: which matters when one case is grouped while a coder types.
PARALLEL_MIN_ROWS = 4096

prange = numba.prange


def _pure(func, compiled):
    """Under ``NUMBA_DISABLE_JIT=1`` (coverage runs) kernels run as Python over numpy scalars,
    where the hashes' intended uint64 wrap-around would warn on every multiply: the entry
    kernels run with overflow warnings off (inlined helpers inherit it)."""
    if not numba.config.DISABLE_JIT:
        return compiled

    @functools.wraps(func)
    def run(*args, **kwargs):
        with np.errstate(over="ignore"):
            return compiled(*args, **kwargs)

    return run


def jit(func=None, **kwargs):
    """Serial kernel (or helper inlined into one)."""
    options = {"cache": True, "nogil": True, "error_model": "numpy"}
    options.update(kwargs)
    helper = "inline" in kwargs
    if func is None:
        return lambda f: numba.njit(**options)(f) if helper else _pure(f, numba.njit(**options)(f))
    return numba.njit(**options)(func) if helper else _pure(func, numba.njit(**options)(func))


def pjit(func):
    """Parallel kernel: ``prange`` over cases in the outer loop only."""
    return _pure(func, numba.njit(cache=True, nogil=True, parallel=True, error_model="numpy")(func))


class Dual:
    """A kernel compiled twice from one source: parallel for large inputs, serial for small.

    Call it with the number of rows as the first argument: ``kernel(n, *args)``.
    """

    def __init__(self, func) -> None:
        import types

        self.parallel = pjit(func)
        # a clone with its own name, so numba's on-disk cache keeps the two apart
        clone = types.FunctionType(
            func.__code__,
            func.__globals__,
            func.__name__ + "_serial",
            func.__defaults__,
            func.__closure__,
        )
        clone.__qualname__ = func.__qualname__ + "_serial"
        clone.__module__ = func.__module__
        self.serial = jit(clone)
        self.__doc__ = func.__doc__
        self.__name__ = func.__name__

    def __call__(self, n: int, *args):
        if n < PARALLEL_MIN_ROWS or numba.get_num_threads() <= 1:
            return self.serial(*args)
        if _threadsafe_layer():
            return self.parallel(*args)
        # workqueue (or not known yet): one parallel launch at a time in the process; a
        # thread that finds another one running goes serial rather than wait for it
        if not _PARALLEL_LOCK.acquire(blocking=False):
            return self.serial(*args)
        try:
            return self.parallel(*args)
        finally:
            _PARALLEL_LOCK.release()


#: held while a parallel kernel runs, when the threading layer is not known to be threadsafe
_PARALLEL_LOCK = threading.Lock()
_LAYER: list[str] = []  # the active threading layer, once numba has chosen one


def threading_layer() -> str | None:
    """The threading layer numba runs parallel kernels on (``tbb``, ``omp`` or
    ``workqueue``); None before the first parallel kernel has run (numba picks it then)."""
    if not _LAYER:
        try:
            _LAYER.append(numba.threading_layer())
        except ValueError:  # no parallel kernel has run yet
            return None
    return _LAYER[0]


def _threadsafe_layer() -> bool:
    """True when parallel kernels may be launched from several threads at once."""
    if numba.config.THREADING_LAYER == "workqueue":
        return False
    layer = threading_layer()
    return layer is not None and layer != "workqueue"


def dual(func) -> Dual:
    return Dual(func)


def set_threads(n: int | None) -> int:
    """Limit the threads parallel kernels use (``None``: all cores). Returns the previous value."""
    previous = numba.get_num_threads()
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS if n is None else max(1, int(n)))
    return previous


def get_threads() -> int:
    return numba.get_num_threads()


@contextmanager
def threads(n: int | None) -> Iterator[None]:
    """Run the block with parallel kernels limited to ``n`` threads (None: leave as is)."""
    if not n:
        yield
        return
    previous = set_threads(n)
    try:
        yield
    finally:
        set_threads(previous)
