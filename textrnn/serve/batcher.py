"""Dynamic batching: requests for one model that arrive together run as one batched call.

Each served model has one Batcher: a queue and a worker task. The worker takes the oldest job,
then gathers queued jobs with the same key (same endpoint and options) until `max_batch` texts
are collected or `max_wait_ms` has passed (waiting only under load, i.e. when the previous call
merged several jobs: a lone request never waits), runs their texts as one call in a thread (the event
loop never blocks), and hands each job its slice of the results. While a call runs, new
requests queue up, so under load the batches fill by themselves. A job that must not be merged
(sampling draws depend on the batch) runs alone. If a merged call fails with a UserError, its
jobs are run one by one so that only the bad one fails. `max_batch=1` turns merging off.
"""

from __future__ import annotations

import asyncio
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Sequence

from textrnn.errors import UserError

Call = Callable[[list], Sequence]  # texts -> one result per text, in order


class Busy(Exception):
    """The model's queue is full: answer 503 with Retry-After."""


@dataclass
class Job:
    key: Hashable
    items: list
    call: Call
    mergeable: bool
    future: asyncio.Future = field(repr=False)


class Batcher:
    """One model's request queue and worker (start() inside the running event loop)."""

    def __init__(self, name: str, max_batch: int = 32, max_wait_ms: float = 5.0, max_queue: int = 256):
        self.name, self.max_batch, self.max_wait, self.max_queue = name, max_batch, max_wait_ms / 1000, max_queue
        self.queue: deque[Job] = deque()
        self.executor = ThreadPoolExecutor(1, thread_name_prefix=f"textrnn-{name}")
        self.calls = 0  # model calls made (a merged batch counts once)
        self.merged = 0  # jobs in the last call: > 1 means requests are arriving together
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._wake = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._work(), name=f"batcher-{self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        for job in self.queue:
            if not job.future.done():
                job.future.set_exception(Busy("the server is shutting down"))
        self.queue.clear()
        self.executor.shutdown(wait=True)

    async def submit(self, key: Hashable, items: list, call: Call, mergeable: bool = True) -> list:
        """The results of `call(items)`, possibly computed in one call together with other jobs of `key`."""
        if not items:
            return []
        if len(self.queue) >= self.max_queue:
            raise Busy(f"model {self.name!r}: {len(self.queue)} requests queued")
        assert self._wake is not None, "Batcher.start() was not called"
        job = Job(key, list(items), call, mergeable, asyncio.get_running_loop().create_future())
        self.queue.append(job)
        self._wake.set()
        return await job.future

    # -- the worker
    async def _work(self) -> None:
        assert self._wake is not None
        while True:
            while not self.queue:
                self._wake.clear()
                await self._wake.wait()
            group = await self._gather(self.queue.popleft())
            group = [j for j in group if not j.future.done()]  # clients that went away
            self.merged = len(group)
            if group:
                await self._run(group)

    async def _gather(self, first: Job) -> list[Job]:
        """`first` and the queued jobs that can share its call, waiting up to max_wait for more."""
        group, n = [first], len(first.items)
        if not first.mergeable or self.max_batch <= 1:
            return group
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.max_wait if self.merged > 1 else 0.0)
        while n < self.max_batch:
            for job in list(self.queue):
                if job.mergeable and job.key == first.key and n + len(job.items) <= self.max_batch:
                    self.queue.remove(job)
                    group.append(job)
                    n += len(job.items)
            left = deadline - loop.time()
            if n >= self.max_batch or left <= 0:
                break
            assert self._wake is not None
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), left)
            except asyncio.TimeoutError:
                pass
        return group

    async def _run(self, group: list[Job]) -> None:
        loop = asyncio.get_running_loop()
        items = [x for j in group for x in j.items]
        try:
            self.calls += 1
            results = await loop.run_in_executor(self.executor, group[0].call, items)
        except UserError as e:
            if len(group) == 1:
                _settle(group[0], error=e)
                return
            for job in group:  # find the bad one: the others still get their answers
                await self._run([job])
            return
        except Exception as e:  # noqa: BLE001 - handed to the request, which answers 500 with the message
            for job in group:
                _settle(job, error=e)
            return
        k = 0
        for job in group:
            _settle(job, list(results[k : k + len(job.items)]))
            k += len(job.items)


def _settle(job: Job, value: Any = None, error: BaseException | None = None) -> None:
    if job.future.done():
        return
    if error is not None:
        job.future.set_exception(error)
    else:
        job.future.set_result(value)
