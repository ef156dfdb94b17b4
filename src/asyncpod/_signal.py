"""A cheap broadcast "something changed" signal."""

from __future__ import annotations

from collections.abc import Awaitable

import anyio

__all__ = ["Signal"]


class Signal:
    """Wake every task waiting in :meth:`wait` when :meth:`fire` is called.

    Unlike a fresh :class:`anyio.Event` per change, nothing is allocated while nobody
    waits, which keeps large pods cheap. Waiters re-check their condition in a loop.
    """

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event: anyio.Event | None = None

    def fire(self) -> None:
        """Wake all current waiters."""
        if self._event is not None:
            self._event.set()
            self._event = None

    def wait(self) -> Awaitable[None]:
        """Wait for the next :meth:`fire` (``await signal.wait()``).

        Not a coroutine function of its own: it hands out the event's wait, which keeps
        one frame less alive per waiting task.
        """
        if self._event is None:
            self._event = anyio.Event()
        return self._event.wait()
