"""Memory allocators for the command line's own process.

A streamed fit decodes row groups in a reader thread and frees them on the main thread, over and
over. With glibc's default of one malloc arena per thread, and Arrow's own mimalloc pool beside
it, the freed memory stays mapped: a 300,000-row streamed fit held about 140 MB more at its peak
than with one arena and Arrow on the system allocator (benchmarks/streaming.py), at no measured
cost in speed. Both settings are process-wide, so only the command line, which owns its
process, makes them; a library user's process keeps its own.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys

M_ARENA_MAX = -8  # mallopt's parameter number in glibc's malloc.h


def use_lean_allocators() -> None:
    """One glibc malloc arena (before the reader and worker threads exist) and Arrow on the
    system allocator (read by Arrow when it first allocates, so pyarrow need not be imported
    here; a user's own ``ARROW_DEFAULT_MEMORY_POOL`` wins). Where glibc is not the C library,
    only the Arrow setting applies."""
    if sys.platform.startswith("linux"):
        # musl and others have no mallopt: nothing to set there
        with contextlib.suppress(OSError, AttributeError):
            # the process's own symbols include the C library's: no search for libc (ctypes.util
            # would add 11 ms to every command's start-up, --version included)
            ctypes.CDLL(None).mallopt(M_ARENA_MAX, 1)
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
