"""The allocator setting a timing depends on: glibc's malloc keeping or returning freed memory.

Fresh multi-MB outputs fault in page by page, and glibc returns or keeps freed memory depending on
history, so the same op can run in a faulting or a non-faulting regime. :func:`keep_freed_memory`
pins the non-faulting one (``prelu bench run --keep-freed-memory``); :func:`allocator_settings`
names the regime in every result. Imports nothing from :mod:`prelu`.

>>> allocator_settings() != ""
True
"""

from __future__ import annotations

import os

ALLOCATOR_VARIABLES: tuple[str, ...] = (
    "LD_PRELOAD",
    "MALLOC_MMAP_THRESHOLD_",
    "MALLOC_TRIM_THRESHOLD_",
    "MALLOC_ARENA_MAX",
    "GLIBC_TUNABLES",
)

_allocator_changes: list[str] = []

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
MMAP_THRESHOLD_MAX = 32 * 1024 * 1024  # the largest glibc accepts on 64-bit


def allocator_settings() -> str:
    """What changes how freed memory is kept (and so page faults): :func:`keep_freed_memory` and
    the allocator environment variables; 'defaults' when nothing does."""
    found = [f"{name}={os.environ[name]}" for name in ALLOCATOR_VARIABLES if os.environ.get(name)]
    return " ".join([*_allocator_changes, *found]) or "defaults"


def keep_freed_memory() -> str:
    """Make glibc's malloc keep freed memory for reuse, so multi-MB outputs stop faulting in fresh
    pages on every call; then the timings show the kernels rather than the allocator's history.

    Sets ``M_MMAP_THRESHOLD`` to 32 MiB (blocks up to that come from the heap, not fresh mmaps)
    and ``M_TRIM_THRESHOLD`` to 1 GiB (the heap is not handed back). Process-wide and for the rest
    of the process. Raises RuntimeError where malloc is not glibc's. Returns what was set.
    """
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError):
        raise RuntimeError("keeping freed memory needs glibc's mallopt, which this process does not have") from None
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    if not (mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX) and mallopt(M_TRIM_THRESHOLD, 1 << 30)):
        raise RuntimeError("glibc's mallopt refused the thresholds")
    setting = "mallopt(M_MMAP_THRESHOLD=32MiB, M_TRIM_THRESHOLD=1GiB)"
    if setting not in _allocator_changes:
        _allocator_changes.append(setting)
    return setting
