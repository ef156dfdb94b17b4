"""A container that keeps failing, restarted with the kubelet's back-off.

``worker`` exits with code 1 two seconds after each start. Under ``restartPolicy:
Always`` asyncpod restarts it at once the first time, then after 10, 20, 40... seconds
(at most 300), and says ``CrashLoopBackOff`` while it waits.

The fake runs on anyio's clock, so this script runs on a virtual one: the minute it
watches passes in an instant.
"""

from __future__ import annotations

import anyio

import asyncpod
from asyncpod.backends import FakeBackend, Program
from asyncpod.testing import virtual_time

POD = asyncpod.Pod(
    name="crash-loop",
    containers=[asyncpod.Container(name="worker", image="busybox:1.36")],
)


def describe(status: asyncpod.ContainerStatus) -> str:
    state = status.state
    if isinstance(state, asyncpod.Waiting):
        now = f"waiting ({state.reason})"
    elif isinstance(state, asyncpod.Terminated):
        now = f"terminated (exit code {state.exit_code})"
    else:
        now = "running"
    last = status.last_state
    before = f", last exit code {last.exit_code}" if last is not None else ""
    return f"{now}, restarts={status.restart_count}{before}"


async def main() -> None:
    engine = FakeBackend(programs={"worker": Program(exit_code=1, delay=2)})
    async with engine, asyncpod.open_pod(POD, backend=engine) as running:
        began = anyio.current_time()
        for at in (1, 3, 5, 10, 15, 20, 37, 45, 60):
            await anyio.sleep(began + at - anyio.current_time())
            status = running.status()
            worker = describe(status.container("worker"))
            print(f"t={at:>2}s  phase {status.phase.value:<7}  worker {worker}")


if __name__ == "__main__":
    backend, options = virtual_time("asyncio")
    anyio.run(main, backend=backend, backend_options=options)
