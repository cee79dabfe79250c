"""Run an iterator in a background thread, a bounded number of items ahead of its reader.

The streamed training epoch reads Parquet, encodes and copies rows to the device while the solver
computes on the previous chunk: Arrow's reading and numpy's arithmetic release the GIL, so the two
overlap even in one process. The queue is bounded, so memory holds at most ``depth`` chunks ahead.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")
POLL_SECONDS = 0.1  # how often a blocked producer looks whether its reader has gone


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


_DONE = object()


def prefetched(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """``items``, produced by a daemon thread up to ``depth`` ahead; an error in it is raised here.

    A reader that stops early (the solver ends mid-epoch) stops the producer at its next item.
    """
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item) or stop.is_set():
                    return
            put(_DONE)
        except BaseException as error:  # handed to the reader, which raises it where it would have arisen
            put(_Failed(error))

    thread = threading.Thread(target=produce, name="glselect-reader", daemon=True)
    thread.start()
    try:
        while True:
            item = ready.get()
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue, then let it finish its item
            with contextlib.suppress(queue.Empty):
                ready.get(timeout=POLL_SECONDS)
        thread.join()
