"""Memory of large analyses: what the system can give, and how NumPy asks for it.

NumPy asks the kernel for transparent huge pages (``madvise(MADV_HUGEPAGE)``) on every large
array. Where the kernel compacts memory on the spot to serve such a request (``defrag`` set
to ``always``, ``madvise`` or ``defer+madvise``), first touching a fresh gigabyte took 1.8 s
instead of 0.4 s on the 2-core VM this was measured on (``bench/RESULTS.md``). A fold of a
large run fills a few gigabytes of fresh arrays, so it turns the request off there (the
documented ``NUMPY_MADVISE_HUGEPAGE=0`` does the same for a whole process).
"""

from __future__ import annotations

import contextlib
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
