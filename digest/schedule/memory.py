"""Handing the memory a job freed back to the system, so a daemon that runs for months
stays the size of one job, not of every job it ever ran.

What a job frees, Python and SQLite hand back to the C allocator, not to the system. glibc's
malloc keeps it: the main heap only shrinks from its top, and the heaps of other threads'
arenas (the scheduler's worker, the event loop's default executor, the SMTP connections'
threads) only when their last chunk is free. Each job (premailer and lxml building and
dropping whole documents, the ranking's dicts, the SMTP threads' message bytes) leaves the
free space fragmented a little differently, so the daemon's RSS crept up by tens of MB an
hour while its Python objects and SQLite's heap stayed flat (issue 22, ``bench/soak.py``).
``malloc_trim(0)`` returns the free pages of every arena at once, a few milliseconds after
a job that took seconds. Elsewhere (musl, macOS, Windows) it is a no-op: their allocators
return memory on their own terms.
"""

from __future__ import annotations

import ctypes
import functools
import gc
import logging
import platform
from collections.abc import Callable
from typing import ParamSpec, TypeVar

log = logging.getLogger("digest.schedule")

P = ParamSpec("P")
R = TypeVar("R")


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library is not glibc."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return None
    trim = getattr(libc, "malloc_trim", None)
    if trim is None:
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def release_memory() -> bool:
    """Collect unreachable cycles (an lxml tree in one holds its C document), then hand
    the allocator's free pages back to the system. True when anything could be returned
    (glibc), False where there is nothing to call."""
    gc.collect()
    trim = _malloc_trim()
    if trim is None:
        return False
    try:
        trim(0)
    except Exception:  # never let housekeeping fail a job that went well
        log.debug("malloc_trim failed", exc_info=True)
        return False
    return True


def releasing(job: Callable[P, R]) -> Callable[P, R]:
    """``job``, followed by ``release_memory()`` however it ends: how the daemon runs
    every scheduled job."""

    @functools.wraps(job)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return job(*args, **kwargs)
        finally:
            release_memory()

    return run
