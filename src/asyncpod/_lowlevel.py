"""anyio's clock and checkpoint, bound once to the running event loop.

:func:`anyio.current_time` and :func:`anyio.lowlevel.checkpoint` find the running
backend on every call (through sniffio), which costs more than what they then do. A pod
of 10,000 containers reads the clock about 100,000 times and a fake backend checkpoints
40,000 times, so the supervisor and the fake bind them once, here, to what anyio itself
calls on asyncio and trio (anything else keeps anyio's functions).
"""

from __future__ import annotations

import asyncio
import functools
import sys
from collections.abc import Awaitable, Callable

import anyio
import anyio.lowlevel

__all__ = ["bound_checkpoint", "bound_clock"]


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _in_trio() -> bool:
    trio = sys.modules.get("trio")
    return trio is not None and bool(trio.lowlevel.in_trio_run())


def bound_clock() -> Callable[[], float]:
    """The running event loop's clock: what :func:`anyio.current_time` returns, faster."""
    if _in_trio():
        return sys.modules["trio"].current_time  # type: ignore[no-any-return]
    loop = _running_loop()
    if loop is not None:
        return loop.time
    return anyio.current_time


def bound_checkpoint() -> Callable[[], Awaitable[None]]:
    """What :func:`anyio.lowlevel.checkpoint` does on the running event loop, faster."""
    if _in_trio():
        return sys.modules["trio"].lowlevel.checkpoint  # type: ignore[no-any-return]
    if _running_loop() is not None:
        return functools.partial(asyncio.sleep, 0)
    return anyio.lowlevel.checkpoint
