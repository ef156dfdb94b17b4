"""An owner SIGKILLed at any point of a run: gc removes all of it, and nothing of a live
owner's (issue #12), on real Podman.

The owner is a child process running ``open_pod`` on the shared service; it is killed
after delays that land in bring-up (pulling, creating, the init container, starting) and
once the pod is up. Meanwhile this process keeps a pod of its own open: a live owner.
"""

from __future__ import annotations

import os
import signal
import sys
import textwrap
import time
import uuid
from typing import Any

import anyio
import pytest

import asyncpod
from asyncpod import Container, Pod
from asyncpod.backends import PodmanBackend
from podman_images import TEST_IMAGE, left_behind

# alone: each collects every orphan of the service (run apart from the parallel tests)
pytestmark = [pytest.mark.podman, pytest.mark.anyio, pytest.mark.alone]


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)  # real time: a real service and a real process


_OWNER = textwrap.dedent(
    """
    import sys, anyio, asyncpod
    from asyncpod import Container, Pod
    from asyncpod.backends import PodmanBackend

    url, name, image = sys.argv[1:]
    pod = Pod(
        name=name,
        init_containers=[Container(name="init", image=image, command=["sh", "-c", "sleep 0.3"])],
        containers=[
            Container(name="a", image=image, command=["sleep", "600"]),
            Container(name="b", image=image, command=["sleep", "600"]),
        ],
        termination_grace_period_seconds=1,
    )

    async def main():
        async with PodmanBackend(url) as backend:
            async with asyncpod.open_pod(pod, backend=backend):
                print("up", flush=True)
                await anyio.sleep(600)

    anyio.run(main)
    """
)


@pytest.mark.parametrize("delay", [0.4, 0.9, 1.6, None], ids=["early", "mid", "late", "up"])
async def test_gc_after_an_owner_killed_at_a_random_point(
    podman_url: str, podman_client: Any, image: str, delay: float | None
) -> None:
    name = f"asyncpod-killed-{uuid.uuid4().hex[:8]}"
    live = Pod(
        name=f"{name}-live",
        containers=[Container(name="x", image=TEST_IMAGE, command=["sleep", "600"])],
        termination_grace_period_seconds=1,
    )
    async with PodmanBackend(podman_url) as backend, asyncpod.open_pod(live, backend=backend):
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        argv = [sys.executable, "-c", _OWNER, podman_url, name, TEST_IMAGE]
        async with await anyio.open_process(argv, env=env, stderr=None) as owner:
            try:
                if delay is None:
                    assert owner.stdout is not None
                    with anyio.fail_after(60):
                        assert (await owner.stdout.receive()).startswith(b"up")
                else:
                    await anyio.sleep(delay)
            finally:
                owner.send_signal(signal.SIGKILL)
                await owner.wait()
        # What the killed owner had in flight may still land for a moment: collect until
        # nothing of it is left (gc is meant to be run again).
        deadline = time.monotonic() + 30
        while True:
            await asyncpod.remove_orphans(backend)
            left = left_behind(podman_client, "io.asyncpod.pod", name)
            if not left or time.monotonic() > deadline:
                break
            await anyio.sleep(0.5)
        assert left == []
        assert left_behind(podman_client, "io.asyncpod.pod", live.name) != []  # untouched
    assert left_behind(podman_client, "io.asyncpod.pod", live.name) == []
