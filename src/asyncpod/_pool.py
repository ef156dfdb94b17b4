"""A small pool of worker tasks for short jobs (backend calls).

A pod of 10,000 containers makes 40,000 backend calls to come up and go down. A task
each would cost more than the calls themselves on the fake backend (anyio's task
creation, and the cyclic GC walking every live task and coroutine), so the supervisor
hands them to a few long-lived workers instead.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.abc

__all__ = ["MAX_WORKERS", "Pool"]

#: at most this many calls run at once per pool
MAX_WORKERS = 256
#: idle workers :meth:`Pool.trim` keeps
KEEP_IDLE = 4


class Pool:
    """Run submitted jobs in worker tasks of *tg*, in submission order, ``limit`` at once.

    Workers are started on demand, then wait for more work until :meth:`trim` (after a
    burst, such as a pod's bring-up) or :meth:`close` ends them. Cancelling *tg*
    cancels the running jobs and drops the queued ones. A job is a coroutine function and
    its arguments; it must handle its own errors (one escaping fails *tg*). Jobs that wait
    for something other than the backend belong in a task of their own: a job blocks its
    worker until it ends.
    """

    __slots__ = ("_closed", "_excess", "_idle", "_limit", "_queue", "_tg", "_workers")

    def __init__(self, tg: anyio.abc.TaskGroup, limit: int = MAX_WORKERS) -> None:
        self._tg = tg
        self._limit = limit
        self._queue: deque[tuple[Callable[..., Awaitable[Any]], tuple[Any, ...]]] = deque()
        self._idle: deque[anyio.Event] = deque()
        self._workers = 0
        self._closed = False
        self._excess = 0  # idle workers asked to end

    def submit(self, job: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Queue ``job(*args)``."""
        self._queue.append((job, args))
        if self._idle:
            self._idle.popleft().set()
        elif self._workers < self._limit:
            self._workers += 1
            self._tg.start_soon(self._work, name="asyncpod worker")

    def trim(self, keep: int = KEEP_IDLE) -> None:
        """End the idle workers but *keep* of them."""
        while len(self._idle) > keep:
            self._excess += 1
            self._idle.popleft().set()

    def close(self) -> None:
        """No more jobs: each worker ends once the queue is empty (so *tg* can end)."""
        self._closed = True
        while self._idle:
            self._idle.popleft().set()

    async def _work(self) -> None:
        queue = self._queue
        while True:
            while queue:
                job, args = queue.popleft()
                await job(*args)
            if self._closed:
                self._workers -= 1
                return
            wake = anyio.Event()
            self._idle.append(wake)
            await wake.wait()
            if self._excess and not queue:
                self._excess -= 1
                self._workers -= 1
                return
