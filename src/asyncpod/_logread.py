"""Reading one run of a container out of its log, which holds every run.

A container that restarts is started again (not created anew), so its engine's log goes
on across runs. Where a run begins is a :class:`LogMark`: a whole second, and how many lines
logged within that second came before the run (engines tell the time of a line to the
second; Podman up to 5.7 does). The supervisor takes a mark as each run starts; reading a
run is then reading from its mark to the next one's.

:func:`last_lines` is the one place that reads the last lines of a run: for a
:class:`~asyncpod.ContainerFailedError`, and for what the CLI shows of a failure.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import AsyncGenerator

import anyio
import attrs

from ._exceptions import AsyncpodError
from .backends._base import Backend, LogRecord

__all__ = ["LogMark", "RunReader", "last_lines", "mark_now"]

logger = logging.getLogger("asyncpod")

#: how long reading a log for the last lines may take
_READ_LIMIT = 5.0


@attrs.frozen
class LogMark:
    """A place in a container's log: after the first *skip* lines logged within the
    second starting at *since* (seconds since the epoch, whole)."""

    since: float
    skip: int = 0


async def mark_now(backend: Backend, container: str) -> LogMark:
    """The end of *container*'s log now (where a run about to start will begin).

    If the log cannot be read, the mark is the current second: an earlier line logged
    within it would count as the new run's.
    """
    second = float(math.floor(time.time()))
    skip = 0
    try:
        with anyio.move_on_after(_READ_LIMIT):
            async with backend.logs(container, since=second) as records:
                async for _ in records:
                    skip += 1
    except AsyncpodError as exc:
        logger.debug("could not read the log of %s: %s", container, exc)
    return LogMark(second, skip)


class RunReader:
    """Reads a container's log from mark *start* (``None``: its beginning) to mark *end*
    (``None``: its end), keeping track of :attr:`position` to go on from later.

    *since* (seconds since the epoch) drops the lines logged before it as well.
    """

    def __init__(
        self,
        backend: Backend,
        container: str,
        *,
        start: LogMark | None = None,
        end: LogMark | None = None,
        since: float | None = None,
    ) -> None:
        self.backend = backend
        self.container = container
        self.start = start
        self.end = end
        self.since = since
        #: where the lines read so far end
        self.position = start

    async def records(self, *, follow: bool = False) -> AsyncGenerator[LogRecord, None]:
        """The lines, with their timestamps; with *follow*, until the container exits."""
        start, since = self.start, self.since
        skip = 0
        opened_at = since
        if start is not None and (since is None or since <= start.since):
            opened_at, skip = start.since, start.skip
        second: float | None = None if start is None else start.since
        in_second = 0
        async with self.backend.logs(
            self.container, follow=follow, since=opened_at, timestamps=True
        ) as records:
            async for record in records:
                stamp = record.timestamp
                sec = None if stamp is None else float(math.floor(stamp))
                if sec is not None:
                    in_second = in_second + 1 if sec == second else 1
                    second = sec
                    self.position = LogMark(sec, in_second)
                if skip:
                    skip -= 1
                    continue
                end = self.end
                if (
                    end is not None
                    and sec is not None
                    and (sec > end.since or (sec == end.since and in_second > end.skip))
                ):
                    return
                yield record


async def last_lines(
    backend: Backend, container: str, count: int, *, start: LogMark | None = None
) -> tuple[str, ...]:
    """The last *count* lines of *container*'s log from *start* (a run's mark), as text.

    Bounded in time, and never failing: a log that cannot be read gives what was read.
    """
    tail: deque[str] = deque(maxlen=count)
    reader = RunReader(backend, container, start=start)
    try:
        with anyio.move_on_after(_READ_LIMIT):
            async with contextlib.aclosing(reader.records()) as records:
                async for record in records:
                    tail.append(record.text)
    except AsyncpodError as exc:
        logger.debug("could not read the log of %s: %s", container, exc)
    return tuple(tail)
