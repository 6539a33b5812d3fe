"""Memory of large analyses: what the system can give, and how NumPy asks for it.

A fold and the exact percentiles make arrays of a few megabytes per batch or block, by the
thousand. glibc serves each from a fresh memory map and gives it back when freed, so every
one is faulted in page by page again: on the 2-core VM, 830,000 page faults and 3.3 s of
system time for one million requests. :func:`keep_freed_memory` has such arrays served from
the heap and freed memory kept for the next (1 s less wall time there).

NumPy asks the kernel for transparent huge pages (``madvise(MADV_HUGEPAGE)``) on every large
array. Where the kernel compacts memory on the spot to serve such a request (``defrag`` set
to ``always``, ``madvise`` or ``defer+madvise``), first touching a fresh gigabyte took 1.8 s
instead of 0.4 s on the 2-core VM this was measured on (``bench/RESULTS.md``). A fold of a
large run fills a few gigabytes of fresh arrays, so it turns the request off there (the
documented ``NUMPY_MADVISE_HUGEPAGE=0`` does the same for a whole process).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
from pathlib import Path

_DEFRAG = Path("/sys/kernel/mm/transparent_hugepage/defrag")


def available_memory() -> int | None:
    """Bytes the system can give without swapping (Linux ``MemAvailable``), or None."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return None


def compaction_stalls() -> bool:
    """Whether the kernel compacts memory on the spot for a huge-page request."""
    with contextlib.suppress(OSError):
        text = _DEFRAG.read_text()
        chosen = text[text.index("[") + 1 : text.index("]")]
        return chosen in ("always", "madvise", "defer+madvise")
    return False


def avoid_stalling_huge_pages() -> None:
    """Stop NumPy asking for huge pages where the request stalls on compaction."""
    if not compaction_stalls():
        return
    import numpy as np

    for module in ("numpy._core.multiarray", "numpy.core.multiarray"):
        with contextlib.suppress(ImportError, AttributeError):
            setter = __import__(module, fromlist=["_"])._set_madvise_hugepage
            setter(False)
            return
    del np


#: glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: Arrays up to this are served from the heap (glibc's largest allowed on 64-bit).
_MMAP_THRESHOLD = 32 << 20
#: Freed heap memory kept for reuse, up to this.
_TRIM_THRESHOLD = 256 << 20


@functools.cache
def keep_freed_memory() -> None:
    """Serve arrays of up to 32 MiB from the heap and keep up to 256 MiB of freed memory
    for reuse (glibc only; elsewhere nothing changes). Once a process: the settings last,
    a forked child inherits them, and finding libc runs ``ldconfig``."""
    with contextlib.suppress(OSError, AttributeError, TypeError):
        name = ctypes.util.find_library("c")
        if not name or "libc" not in name:
            return
        libc = ctypes.CDLL(name)
        libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)
        libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD)
