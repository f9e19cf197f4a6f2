"""Returning freed heap memory to the operating system.

A mapping node allocates and frees large arrays all the time (the whole map's mesh and semantic
cloud on every publish, each a little larger as the map grows), from several executor threads.
glibc keeps freed blocks in per-thread arenas and returns the top of a heap only, so a
long-running process's resident size creeps up although it holds no more live data.
``malloc_trim(0)`` hands every free page back. Elsewhere (not glibc) this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools


@functools.cache
def _malloc_trim():
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        return ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None


def release_freed_memory() -> bool:
    """Hand freed heap pages back to the OS (glibc ``malloc_trim(0)``, which ctypes runs with
    the GIL released). Returns whether any memory was released; False where it is not
    available."""
    trim = _malloc_trim()
    return bool(trim(0)) if trim is not None else False
