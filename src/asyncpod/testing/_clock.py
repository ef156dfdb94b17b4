"""Virtual time for tests: sleeps, timeouts and probe periods that cost no real time."""

from __future__ import annotations

import asyncio
import selectors
import sys
from collections.abc import Mapping
from typing import Any

__all__ = ["VirtualTimeEventLoop", "on_virtual_time", "virtual_time"]


class _AutojumpSelector(selectors.BaseSelector):
    """A selector that, instead of sleeping until the next timer, jumps the clock to it."""

    def __init__(self, loop: VirtualTimeEventLoop) -> None:
        self._selector = selectors.DefaultSelector()
        self._loop = loop

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._selector.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._selector.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._selector.modify(fileobj, events, data)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = self._selector.select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:  # no timer at all: only real I/O can wake us
            return self._selector.select(None)
        self._loop.advance(timeout)
        return []

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return self._selector.get_map()

    def close(self) -> None:
        self._selector.close()


class VirtualTimeEventLoop(asyncio.SelectorEventLoop):
    """An asyncio event loop whose clock jumps ahead whenever every task is waiting.

    The asyncio counterpart of ``trio.testing.MockClock(autojump_threshold=0)``: timers
    fire in order, instantly. Only for code that does no real I/O or threads while it
    waits on timers (the :class:`~asyncpod.backends.FakeBackend`).
    """

    def __init__(self) -> None:
        self._virtual_time = 0.0
        super().__init__(selector=_AutojumpSelector(self))

    def time(self) -> float:
        return self._virtual_time

    def advance(self, seconds: float) -> None:
        """Move the clock forward by *seconds*."""
        self._virtual_time += seconds


def virtual_time(backend: str) -> tuple[str, dict[str, Any]]:
    """An ``anyio_backend`` fixture value running *backend* ("asyncio" or "trio") on virtual time.

    Use it in your ``conftest.py``::

        @pytest.fixture(params=["asyncio", "trio"])
        def anyio_backend(request):
            return asyncpod.testing.virtual_time(request.param)
    """
    if backend == "asyncio":
        return "asyncio", {"loop_factory": VirtualTimeEventLoop}
    if backend == "trio":
        import trio.testing

        return "trio", {"clock": trio.testing.MockClock(autojump_threshold=0)}
    raise LookupError(f"no virtual time for backend {backend!r}")


def on_virtual_time() -> bool:
    """Whether the calling task runs on a virtual clock.

    True under a :class:`VirtualTimeEventLoop` or a ``trio.testing.MockClock``, where real
    I/O and threads (Podman) cannot work: the clock jumps past every timeout while they run.
    """
    if "trio" in sys.modules:  # never imported: not running trio
        import trio.testing

        if trio.lowlevel.in_trio_run():
            return isinstance(trio.lowlevel.current_clock(), trio.testing.MockClock)
    try:
        return isinstance(asyncio.get_running_loop(), VirtualTimeEventLoop)
    except RuntimeError:  # no event loop in this thread
        return False
