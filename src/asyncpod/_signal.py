"""A cheap broadcast "something changed" signal."""

from __future__ import annotations

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

    async def wait(self) -> None:
        """Wait for the next :meth:`fire`."""
        if self._event is None:
            self._event = anyio.Event()
        await self._event.wait()
