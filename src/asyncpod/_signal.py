"""A cheap broadcast "something changed" signal."""

from __future__ import annotations

import anyio
import anyio.lowlevel

__all__ = ["Latch", "Signal"]


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


class Latch:
    """A set-once flag tasks can wait for; it allocates nothing until someone waits."""

    __slots__ = ("_event", "_set")

    def __init__(self) -> None:
        self._set = False
        self._event: anyio.Event | None = None

    def is_set(self) -> bool:
        """Whether :meth:`set` was called."""
        return self._set

    def set(self) -> None:
        """Set the flag and wake every waiter."""
        self._set = True
        if self._event is not None:
            self._event.set()

    async def wait(self) -> None:
        """Wait until the flag is set (a checkpoint either way)."""
        if self._set:
            await anyio.lowlevel.checkpoint()
            return
        if self._event is None:
            self._event = anyio.Event()
        await self._event.wait()
