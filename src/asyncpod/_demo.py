"""The demo: bring up the seed's javaweb-2 pod, fetch the war, show the timeline, tear down."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio
import anyio.abc

from ._images import BUSYBOX_CHANGES, STAND_INS, WAR, busybox_rootfs
from ._models import Pod
from ._status import PodStatus, Running, Terminated, Waiting
from ._supervisor import LABEL_CONTAINER, LABEL_POD, open_pod
from .backends._base import Backend
from .backends._fake import FakeBackend, FakeContext

__all__ = ["run_demo"]

WEBAPPS = "/root/apache-tomcat-7.0/webapps"


def fake_backend() -> FakeBackend:
    """A FakeBackend with stand-ins for the seed's images ``app:v2`` and ``tomcat:7.0``."""

    async def tomcat(ctx: FakeContext) -> int:
        ctx.log("Tomcat 7.0 (asyncpod stand-in) serving webapps on :8080")
        await ctx.serve_files(8080, WEBAPPS)
        return 0

    fake = FakeBackend(programs={"tomcat:7.0": tomcat})
    fake.add_image("app:v2", {"/app.war": WAR})
    fake.add_image("tomcat:7.0", {})
    return fake


@asynccontextmanager
async def _open_backend(name: str) -> AsyncIterator[Backend]:
    if name == "fake":
        async with fake_backend() as backend:
            yield backend
    else:
        from .backends._podman import PodmanBackend

        podman = PodmanBackend()
        async with podman:
            for reference, files in STAND_INS.items():
                if not await podman.image_exists(reference):
                    print(f"importing stand-in image {reference} (busybox-static)")
                    tarball = await anyio.to_thread.run_sync(busybox_rootfs, files)
                    await podman.import_image(reference, tarball, changes=BUSYBOX_CHANGES)
            yield podman


async def run_demo(pod: Pod, backend_name: str) -> int:
    """Run *pod* on the named backend, printing what happens; return an exit code."""
    start = anyio.current_time()

    def stamp() -> str:
        return f"[{anyio.current_time() - start:6.3f}s]"

    print(f"asyncpod demo: pod {pod.name!r} on the {backend_name} backend")
    async with _open_backend(backend_name) as backend, anyio.create_task_group() as tg:
        async with backend.events({LABEL_POD: pod.name}) as events:

            async def show_events() -> None:
                async for event in events:
                    if event.type != "container" or event.action not in ("start", "died"):
                        continue
                    what = event.labels.get(LABEL_CONTAINER, event.name)
                    extra = f" (exit code {event.exit_code})" if event.action == "died" else ""
                    print(f"{stamp()} {what:<10} {event.action}{extra}")

            tg.start_soon(show_events)
            async with open_pod(pod, backend=backend) as running:
                print(f"{stamp()} pod is up")
                _print_status(running.status())
                body = await _fetch(running.backend, running.id, 8080, "/app.war")
                print(f"{stamp()} GET http://localhost:8080/app.war inside the pod -> {body!r}")
                if backend_name != "fake":  # the fake publishes no ports on the host
                    for port in _host_ports(pod):
                        body = await _fetch_host(port, "/app.war")
                        url = f"http://127.0.0.1:{port}/app.war"
                        print(f"{stamp()} GET {url} from the host -> {body!r}")
                print(f"{stamp()} tearing down")
            print(
                f"{stamp()} pod removed; objects left: "
                f"{len(await backend.list_objects({LABEL_POD: pod.name}))}"
            )
            tg.cancel_scope.cancel()
    return 0


def _host_ports(pod: Pod) -> list[int]:
    return [p.host_port for c in pod.containers for p in c.ports if p.host_port is not None]


async def _fetch(backend: Backend, pod_id: str, port: int, path: str) -> bytes:
    async def connect() -> anyio.abc.ByteStream:
        return await backend.connect(pod_id, port)

    return await _get(connect, path)


async def _fetch_host(port: int, path: str) -> bytes:
    async def connect() -> anyio.abc.ByteStream:
        return await anyio.connect_tcp("127.0.0.1", port)

    return await _get(connect, path)


async def _get(connect: Callable[[], Awaitable[anyio.abc.ByteStream]], path: str) -> bytes:
    with anyio.fail_after(30):
        while True:
            try:
                stream = await connect()
                break
            except OSError:
                await anyio.sleep(0.2)
        async with stream:
            await stream.send(f"GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n".encode())
            data = b""
            try:
                while True:
                    data += await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                pass
    return data.partition(b"\r\n\r\n")[2]


def _print_status(status: PodStatus) -> None:
    print(
        f"         phase {status.phase.value}; initialized={status.conditions.initialized} "
        f"ready={status.conditions.ready}"
    )
    for c in status.containers:
        state = c.state
        if isinstance(state, Running):
            text = "Running"
        elif isinstance(state, Terminated):
            text = f"Terminated ({state.reason}, exit code {state.exit_code})"
        else:
            assert isinstance(state, Waiting)
            text = f"Waiting ({state.reason})"
        print(
            f"         {c.name:<10} {c.kind.value:<8} {text:<36} ready={c.ready} "
            f"restarts={c.restart_count}"
        )
