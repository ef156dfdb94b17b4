"""The commands that show a manifest without managing anything: ``plan`` and ``demo``."""

from __future__ import annotations

import argparse

import anyio

from .._demo import demo_backend, run_demo
from .._plan import StartupPlan
from ._errors import EXIT_OK
from ._signals import Stop

__all__ = ["demo", "plan"]


def plan(args: argparse.Namespace) -> int:
    for line in StartupPlan.from_pod(args.pod).describe():
        print(line)
    return EXIT_OK


async def demo(args: argparse.Namespace, stop: Stop) -> int:
    kill = anyio.Event()
    # Once the backend is up, only the demo is cancelled, not the backend: the fake's
    # containers must live on for the teardown to stop them.
    scope = anyio.CancelScope()

    def on_signal(signum: int, count: int) -> None:
        if count == 1:
            scope.cancel()
        else:
            kill.set()

    async with demo_backend(args.backend, args.url, args.pod) as backend:
        stop.handler = on_signal
        with scope:
            return await run_demo(args.pod, backend, kill_event=kill)
    raise stop.interrupted() or AssertionError("the demo was cancelled without a signal")
