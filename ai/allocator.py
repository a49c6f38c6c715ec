"""While a model runs, glibc keeps freed tensor memory for reuse instead of returning it to the OS after each op.

A CPU network allocates and frees tens of MB per layer. glibc's malloc returns such blocks to the kernel at once
(mmap'd blocks, or a heap top above the trim threshold), so every new activation page-faults its memory in again:
about a tenth of a CPU inference went to the kernel that way. Inside ``reuse_freed_memory()`` blocks up to 32 MiB
come from the heap and freed memory stays with the process; on leaving, the thresholds are set where glibc's own
sliding ones settle in a process that freed such blocks (its defaults cannot be restored: any setting ends the
sliding) and the kept memory is handed back (``malloc_trim``). The peak is unchanged: the same blocks are live.
Elsewhere than glibc (macOS, Windows, musl) this does nothing. Used where the network runs in worker threads (the
nnU-Net path): their arenas are the ones that give memory back; a single calling thread's heap already keeps it.
"""

from __future__ import annotations

import ctypes
import platform
import threading
from contextlib import contextmanager
from functools import lru_cache

_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3  # mallopt parameter numbers (malloc.h)
_DEFAULT_TOP_PAD = 128 * 1024
_THREAD_HEAP = 64 * 1024 * 1024  # a thread arena's heap (HEAP_MAX_SIZE)
_HEAP_BLOCK_MAX = 32 * 1024 * 1024  # the largest mmap threshold glibc accepts on 64-bit
_SETTLED_TRIM = 2 * _HEAP_BLOCK_MAX  # where glibc's own sliding thresholds settle once such blocks were freed
_KEEP_ALL = 2 ** 31 - 1

_lock = threading.Lock()
_active = 0


@lru_cache(maxsize=1)
def _glibc():
    """The process's C library if it is glibc (with mallopt and malloc_trim), else None."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    libc = ctypes.CDLL(None)
    if not (hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim")):
        return None
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.malloc_trim.argtypes = [ctypes.c_size_t]
    return libc


@contextmanager
def reuse_freed_memory():
    """Within: freed blocks stay with the process for the next allocation. Nests and may be used from several
    threads at once: the settings hold until the last one leaves."""
    global _active
    libc = _glibc()
    if libc is None:
        yield
        return
    with _lock:
        if _active == 0:
            libc.mallopt(_M_MMAP_THRESHOLD, _HEAP_BLOCK_MAX)
            libc.mallopt(_M_TRIM_THRESHOLD, _KEEP_ALL)
            libc.mallopt(_M_TOP_PAD, _THREAD_HEAP)
        _active += 1
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0:
                libc.mallopt(_M_TRIM_THRESHOLD, _SETTLED_TRIM)
                libc.mallopt(_M_TOP_PAD, _DEFAULT_TOP_PAD)
                libc.malloc_trim(0)
