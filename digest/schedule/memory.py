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
a job that took seconds. The daemon also caps glibc at two arenas (``cap_arenas``): by default
every thread that starts while the others are busy gets an arena of its own (up to eight per
core), each keeping its own free space; the daemon's work is one job at a time and holds the
GIL, so more arenas buy it nothing. In 8-minute soaks (bench/README.md, issue 22) the RSS
between jobs settled lowest with both. Elsewhere (musl, macOS, Windows) both are no-ops: their
allocators return memory on their own terms.
"""

from __future__ import annotations

import ctypes
import functools
import gc
import logging
import os
import platform

log = logging.getLogger("digest.schedule")


M_ARENA_MAX = -8  # mallopt's parameter (malloc.h)
ARENAS = 2


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc (it has ``malloc_trim`` and ``mallopt``), else None."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return None
    if not hasattr(libc, "malloc_trim") or not hasattr(libc, "mallopt"):
        return None
    libc.malloc_trim.argtypes = [ctypes.c_size_t]
    libc.malloc_trim.restype = ctypes.c_int
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.mallopt.restype = ctypes.c_int
    return libc


def cap_arenas(arenas: int = ARENAS) -> bool:
    """Let glibc make at most ``arenas`` malloc arenas from now on (the daemon calls it
    before its threads start). An admin's own ``MALLOC_ARENA_MAX`` wins. True if set."""
    libc = _glibc()
    if libc is None or "MALLOC_ARENA_MAX" in os.environ:
        return False
    return bool(libc.mallopt(M_ARENA_MAX, arenas))


def release_memory() -> bool:
    """Collect unreachable cycles (an lxml tree in one holds its C document), then hand
    the allocator's free pages back to the system. True when anything could be returned
    (glibc), False where there is nothing to call."""
    gc.collect()
    libc = _glibc()
    if libc is None:
        return False
    try:
        libc.malloc_trim(0)
    except Exception:  # never let housekeeping fail a job that went well
        log.debug("malloc_trim failed", exc_info=True)
        return False
    return True
