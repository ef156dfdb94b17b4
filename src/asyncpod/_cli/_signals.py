"""What SIGINT and SIGTERM do while a command runs (the library installs no handlers)."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio

from ._errors import Interrupted, unwrap

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found,unused-ignore]

__all__ = ["Command", "Stop", "run"]


class Stop:
    """What a signal does to the running command.

    By default the first one cancels the whole command, whatever it is doing: setting up
    the backend too, which stops the private Podman service it may have started. A second
    one changes nothing: the clean-up left is short. A command with a graceful stop of its
    own (``up``, ``demo``) sets :attr:`handler` for the part it applies to.
    """

    def __init__(self) -> None:
        self.scope = anyio.CancelScope()
        #: the signals received, first first
        self.signals: list[int] = []
        #: called with (signum, count) instead of cancelling :attr:`scope`
        self.handler: Callable[[int, int], None] | None = None

    def __call__(self, signum: int, count: int) -> None:
        if count == 1:
            self.signals.append(signum)
        if self.handler is not None:
            self.handler(signum, count)
        else:
            self.scope.cancel()

    def interrupted(self) -> Interrupted | None:
        """The exception that ends a command a signal stopped, or ``None``."""
        return Interrupted(self.signals[0]) if self.signals else None


#: a command: its parsed arguments and the signal policy in, an exit code out
Command = Callable[[argparse.Namespace, Stop], Awaitable[int]]


async def run(command: Command, args: argparse.Namespace) -> int:
    """Run *command* with SIGINT and SIGTERM handled by a :class:`Stop`, raising the one
    real error out of the groups task groups wrap it in (see :func:`unwrap`)."""
    stop = Stop()
    try:
        async with _signals(stop):
            with stop.scope:
                return await command(args, stop)
        interrupted = stop.interrupted()
        assert interrupted is not None  # only a signal cancels stop.scope
        raise interrupted
    except BaseExceptionGroup as group:
        exc = unwrap(group)
        if exc is None:
            raise
        raise exc from exc.__cause__


@asynccontextmanager
async def _signals(on_signal: Callable[[int, int], None]) -> AsyncIterator[None]:
    """Call *on_signal(signum, count)* for each SIGINT or SIGTERM while the block runs."""
    async with anyio.create_task_group() as tg:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as received:

            async def watch() -> None:
                count = 0
                async for signum in received:
                    count += 1
                    on_signal(signum, count)

            tg.start_soon(watch)
            try:
                yield
            finally:
                tg.cancel_scope.cancel()
