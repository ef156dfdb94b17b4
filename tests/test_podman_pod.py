"""Pods on real Podman: the seed's javaweb-2 verbatim, pod sharing, and the cancellation
sweep (no mocks; skipped without Podman unless ASYNCPOD_REQUIRE_PODMAN=1). The conformance
suite runs on Podman in tests/test_conformance.py.
"""

from __future__ import annotations

import urllib.request
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

import asyncpod
from asyncpod import Container, EmptyDirVolumeSource, Pod, Volume, VolumeMount
from asyncpod._images import STAND_INS, WAR
from asyncpod.backends import PodmanBackend
from asyncpod.kube import load_pod
from podman_images import TEST_IMAGE, ensure_test_image, left_behind

pytestmark = [pytest.mark.podman, pytest.mark.anyio]

SEED = Path(__file__).parent.parent / "examples" / "javaweb-2.yaml"


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Real time: Podman does real work."""
    return str(request.param)


@pytest.fixture
async def podman(podman_url: str, image: str) -> AsyncIterator[PodmanBackend]:
    async with PodmanBackend(podman_url) as backend:
        yield backend


@pytest.fixture(scope="session")
def seed_images(podman_client: Any) -> None:
    """The seed's images, made locally from busybox: app:v2 holds the war, tomcat serves it."""
    for reference, files in STAND_INS.items():
        ensure_test_image(podman_client, reference, files)


@pytest.mark.xdist_group("javaweb-2")  # the seed's pod name and host port 8001 (test_cli.py)
async def test_seed_javaweb2_verbatim(
    podman: PodmanBackend, podman_client: Any, seed_images: None
) -> None:
    """The seed's manifest, verbatim: the war copied by the init container is served on 8001."""
    pod = load_pod(SEED)
    async with asyncpod.open_pod(pod, backend=podman) as running:
        status = running.status()
        assert status.container("war").exit_code == 0
        assert status.phase is asyncpod.Phase.RUNNING
        body = b""
        with anyio.fail_after(20):
            while body != WAR:
                try:
                    body = await anyio.to_thread.run_sync(
                        _http_get, "http://127.0.0.1:8001/app.war"
                    )
                except OSError:
                    await anyio.sleep(0.2)
        run = running.run_id
    assert left_behind(podman_client, "io.asyncpod.run", run) == []


def _http_get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as response:
        data: bytes = response.read()
        return data


def _server(name: str, **kwargs: Any) -> Container:
    script = "trap 'exit 0' TERM; while true; do sleep 0.2; done"
    return Container(name=name, image=TEST_IMAGE, command=["sh", "-c", script], **kwargs)


async def test_pod_shares_localhost_ip_and_volumes(podman: PodmanBackend) -> None:
    """Containers of a pod reach each other on localhost, share one IP, see init data,
    and a read-only mount refuses writes."""
    www = [VolumeMount(name="www", mount_path="/www")]
    pod = Pod(
        name="apt-share",
        init_containers=[
            Container(
                name="init",
                image=TEST_IMAGE,
                volume_mounts=www,
                command=["sh", "-c", "echo from-init > /www/index.html"],
            ),
        ],
        containers=[
            Container(
                name="web",
                image=TEST_IMAGE,
                volume_mounts=www,
                command=["httpd", "-f", "-p", "8080", "-h", "/www"],
            ),
            _server(
                "client", volume_mounts=[VolumeMount(name="www", mount_path="/ro", read_only=True)]
            ),
        ],
        volumes=[Volume(name="www", empty_dir=EmptyDirVolumeSource())],
        termination_grace_period_seconds=2,
    )
    async with asyncpod.open_pod(pod, backend=podman) as running:
        with anyio.fail_after(20):
            while True:
                got = await running.exec("client", ["wget", "-qO-", "http://127.0.0.1:8080/"])
                if got.exit_code == 0:
                    break
                await anyio.sleep(0.2)
        assert got.stdout == b"from-init\n"
        ips = [(await running.exec(name, ["hostname", "-i"])).stdout for name in ("web", "client")]
        assert ips[0] == ips[1] and ips[0].strip()
        assert (await running.exec("client", ["cat", "/ro/index.html"])).stdout == b"from-init\n"
        refused = await running.exec("client", ["sh", "-c", "echo x > /ro/new"])
        assert refused.exit_code != 0
        assert b"Read-only" in refused.stderr


class _CancelAt(PodmanBackend):
    """A PodmanBackend that cancels a scope at its k-th call."""

    def __init__(self, url: str, k: int, scope: anyio.CancelScope) -> None:
        super().__init__(url)
        self.k, self.scope, self.count = k, scope, 0

    def _tick(self) -> None:
        self.count += 1
        if self.count == self.k:
            self.scope.cancel()


for _name in (
    "ensure_image",
    "image_exists",
    "pull_image",
    "create_pod",
    "create_volume",
    "create_container",
    "start_container",
    "wait_container",
    "inspect_container",
    "exec",
    "stop_container",
):

    def _counting(name: str) -> Callable[..., Awaitable[Any]]:
        async def method(self: _CancelAt, *args: Any, **kwargs: Any) -> Any:
            self._tick()
            return await getattr(PodmanBackend, name)(self, *args, **kwargs)

        return method

    setattr(_CancelAt, _name, _counting(_name))


async def test_cancellation_sweep_leaves_nothing(podman_url: str, podman_client: Any) -> None:
    """Cancel bring-up at its k-th backend call, for every k: Podman holds nothing of the pod."""
    pod = Pod(
        name=f"apt-sweep-{uuid.uuid4().hex[:8]}",  # unique: tests run in parallel
        init_containers=[
            Container(name="init", image=TEST_IMAGE, command=["true"]),
            _server("side", restart_policy="Always"),
        ],
        containers=[_server("a"), _server("b", depends_on=["a"])],
        volumes=[Volume(name="v", empty_dir=EmptyDirVolumeSource())],
        termination_grace_period_seconds=2,
    )
    with anyio.CancelScope() as never:
        async with (
            _CancelAt(podman_url, 0, never) as counter,
            asyncpod.open_pod(pod, backend=counter),
        ):
            total = counter.count
    assert total >= 8
    for k in range(1, total + 1):
        with anyio.CancelScope() as scope:
            async with _CancelAt(podman_url, k, scope) as backend:
                async with asyncpod.open_pod(pod, backend=backend):
                    pass
        assert left_behind(podman_client, "io.asyncpod.pod", pod.name) == [], f"cancelled at {k}"


async def test_removed_container_is_created_anew_and_removed_pod_fails(
    podman: PodmanBackend, podman_client: Any
) -> None:
    """`podman rm -f` of one container: a new one runs (one restart); of the pod: Failed."""
    pod = Pod(
        name=f"asyncpod-vanish-{uuid.uuid4().hex[:8]}",
        # Handles SIGTERM, so that `rm -f` need not wait 10 s to kill it.
        containers=[
            Container(
                name="web",
                image=TEST_IMAGE,
                command=["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"],
            )
        ],
        termination_grace_period_seconds=2,
    )
    async with asyncpod.open_pod(pod, backend=podman) as running:
        first = running.container_id("web")
        await anyio.to_thread.run_sync(
            lambda: podman_client.containers.get(first).remove(force=True)
        )
        with anyio.fail_after(30):
            while True:
                web = running.status().container("web")
                if web.container_id != first and isinstance(web.state, asyncpod.Running):
                    break
                await anyio.sleep(0.2)
        # One restart, or two: `rm -f` stops the container before it removes it, and the
        # restart at once after that stop may start it again just before the removal.
        assert web.restart_count in (1, 2)
        assert web.last_state is not None  # the run of the container that was removed

        pod_id = running.id
        await anyio.to_thread.run_sync(lambda: podman_client.pods.get(pod_id).remove(force=True))
        # At once, or (if the container still was there) once the back-off is over.
        with anyio.fail_after(60):
            status = await running.wait()
        assert status.phase is asyncpod.Phase.FAILED
        with pytest.raises(asyncpod.PodVanishedError, match=pod.name):
            await running.wait_ready()


async def test_random_host_port_serves(podman: PodmanBackend, podman_client: Any) -> None:
    """``hostPort: 0``: Podman picks the port; what RunningPod names is the one that serves."""
    pod = load_pod(
        f"""
apiVersion: v1
kind: Pod
metadata: {{name: asyncpod-test-random-port-{uuid.uuid4().hex[:8]}}}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: web
    image: {TEST_IMAGE}
    command: [sh, -c, "echo hello > /tmp/index.html; exec httpd -f -p 8080 -h /tmp"]
    ports: [{{containerPort: 8080, hostPort: 0, hostIP: 127.0.0.1}}]
"""
    )
    async with asyncpod.open_pod(pod, backend=podman) as running:
        port = running.host_port("web", 8080)
        async with running.fail_after(20):
            await running.wait_for_port(8080)
        body = await anyio.to_thread.run_sync(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=5).read()
        )
        assert body == b"hello\n"
        run = running.run_id
    assert left_behind(podman_client, "io.asyncpod.run", run) == []
