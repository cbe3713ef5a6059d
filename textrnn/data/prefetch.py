"""Collate the next batches in a background thread, so that a GPU does not wait for the host.

On CUDA the trainer pads batch k+1 and copies it from pinned memory (non-blocking) while the
GPU runs step k. On a CPU the thread would only take a core from the math, so it is off there.
"""

from __future__ import annotations

import queue
import threading
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
R = TypeVar("R")
_END = object()


def prefetch(items: Iterable[T], fn: Callable[[T], R], depth: int = 2, enabled: bool = True) -> Iterator[R]:
    """fn(item) for each item, in order; with `enabled`, computed up to `depth` items ahead in a thread.

    An exception in fn is raised in the consumer; closing the generator early stops the thread.
    """
    if not enabled:
        yield from (fn(x) for x in items)
        return
    q: queue.Queue = queue.Queue(depth)
    stop = threading.Event()

    def put(v) -> bool:
        while not stop.is_set():
            try:
                q.put(v, timeout=0.05)
                return True
            except queue.Full:
                pass
        return False

    def work() -> None:
        try:
            for x in items:
                if not put((None, fn(x))):
                    return
            put((None, _END))
        except BaseException as e:  # handed to the consumer
            put((e, None))

    thread = threading.Thread(target=work, name="textrnn-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            err, r = q.get()
            if err is not None:
                raise err
            if r is _END:
                return
            yield r
    finally:
        stop.set()
        thread.join()
