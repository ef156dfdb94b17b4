"""The demo: bring up a bundled example, show it working, tear it down.

``asyncpod demo`` runs the seed's javaweb-2 pod on Podman where Podman answers (its war
served on host port 8001), else says how to install Podman and runs on the in-memory
FakeBackend. ``asyncpod demo log-sidecar`` runs the second example. Both examples' images
are stand-ins made locally from busybox-static (see :mod:`asyncpod._images`).
"""

from __future__ import annotations

import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import anyio.abc

from ._console import open_console
from ._events import EventReason, PodEvent
from ._exceptions import AsyncpodError, BackendUnavailableError
from ._images import BUSYBOX_CHANGES, STAND_INS, WAR, busybox_path, busybox_rootfs, stand_in
from ._labels import LABEL_POD
from ._models import Pod
from ._status import PodStatus, Running, Terminated, Waiting
from ._supervisor import RunningPod, open_pod
from .backends import Backend, FakeBackend, FakeContext, get_backend

#: a fake container's program (what :class:`FakeBackend` runs for an image)
ProgramFn = Callable[[FakeContext], Awaitable["int | None"]]

__all__ = [
    "EXAMPLES",
    "INSTALL_PODMAN",
    "demo_backend",
    "ensure_stand_ins",
    "examples_dir",
    "fake_backend",
    "is_bundled",
    "resolve_manifest",
    "run_demo",
    "summary",
]

#: the bundled examples, by name (``examples/NAME.yaml``)
EXAMPLES = ("javaweb-2", "log-sidecar")

INSTALL_PODMAN = """\
To run it on Podman (4.3 or later), install Podman and busybox-static (for the stand-in images)
and start Podman's service:
  Debian/Ubuntu:  sudo apt-get install -y podman busybox-static
  Fedora:         sudo dnf install -y podman busybox
  then:           systemctl --user enable --now podman.socket
                  (as root: systemctl enable --now podman.socket)
  or, as root, in a checkout of asyncpod: bash .ci/podman-setup"""

WEBAPPS = "/root/apache-tomcat-7.0/webapps"
APP_LOG = "/var/log/app/app.log"


def examples_dir() -> Path | None:
    """Where the bundled examples are: in the installed package, or in the source tree."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "examples", here.parent.parent / "examples"):
        if (candidate / "javaweb-2.yaml").is_file():
            return candidate
    return None


def resolve_manifest(arg: str) -> Path:
    """A manifest path from a command-line argument: a file, or a bundled example's name."""
    path = Path(arg)
    if path.exists() or arg.removesuffix(".yaml") not in EXAMPLES:
        return path
    found = examples_dir()
    if found is None:
        raise FileNotFoundError(
            2, f"the bundled example {arg!r} is not installed here: pass a manifest file", arg
        )
    return found / f"{arg.removesuffix('.yaml')}.yaml"


def fake_backend(pod: Pod | None = None) -> FakeBackend:
    """A FakeBackend with programs standing in for the examples' images.

    ``tomcat:7.0`` serves its webapps directory over HTTP on 8080 and ``app:v2`` holds the
    war. For *pod* equal to the bundled log-sidecar example, its app appends a line to the
    shared log every second and its collector logs each new line.
    """

    @_trap_term
    async def tomcat(ctx: FakeContext) -> int:
        ctx.log("Tomcat 7.0 (asyncpod stand-in) serving webapps on :8080")
        await ctx.serve_files(8080, WEBAPPS)
        return 0

    fake = FakeBackend(programs={"tomcat:7.0": tomcat})
    fake.add_image("app:v2", {"/app.war": WAR})
    fake.add_image("tomcat:7.0", {})
    if pod is not None and pod == _bundled("log-sidecar"):
        fake.programs.update({"app": _log_writer, "log-collector": _log_collector})
    return fake


def is_bundled(pod: Pod) -> bool:
    """Whether *pod* is one of the bundled examples (whose images are stand-ins)."""
    return any(pod == _bundled(name) for name in EXAMPLES)


def _bundled(name: str) -> Pod | None:
    from .kube import load_pod

    found = examples_dir()
    return load_pod(found / f"{name}.yaml") if found is not None else None


def _trap_term(program: Callable[[FakeContext], Awaitable[int]]) -> ProgramFn:
    """*program*, ending with exit code 0 on SIGTERM, as the scripts it stands in for do
    (``trap 'exit 0' TERM``)."""

    @functools.wraps(program)
    async def trapping(ctx: FakeContext) -> int:
        ctx.handle_term = True
        code = 0

        async def run() -> None:
            nonlocal code
            code = await program(ctx)
            tg.cancel_scope.cancel()

        async with anyio.create_task_group() as tg:
            tg.start_soon(run)
            await ctx.terminated.wait()
            tg.cancel_scope.cancel()
        return code

    return trapping


@_trap_term
async def _log_writer(ctx: FakeContext) -> int:
    while True:
        line = f"{time.strftime('%a %b %d %H:%M:%S UTC %Y', time.gmtime())} hello\n"
        old = ctx.read_file(APP_LOG) if ctx.exists(APP_LOG) else b""
        ctx.write_file(APP_LOG, old + line.encode())
        await anyio.sleep(1)


@_trap_term
async def _log_collector(ctx: FakeContext) -> int:
    seen = 0
    while True:
        data = ctx.read_file(APP_LOG) if ctx.exists(APP_LOG) else b""
        for line in data[seen:].decode().splitlines():
            ctx.log(line)
        seen = len(data)
        await anyio.sleep(0.25)


async def _missing_stand_ins(backend: Backend, pod: Pod) -> list[str]:
    """The stand-in images *pod* uses that *backend* lacks."""
    references = sorted(filter(None, {stand_in(c.image) for c in pod.all_containers}))
    return [r for r in references if not await backend.image_exists(r)]


async def ensure_stand_ins(backend: Backend, pod: Pod) -> None:
    """Import the stand-in images *pod* uses that *backend* lacks."""
    for reference in await _missing_stand_ins(backend, pod):
        print(f"importing the stand-in image {reference} (busybox-static)")
        tarball = await anyio.to_thread.run_sync(busybox_rootfs, STAND_INS[reference])
        await backend.import_image(reference, tarball, changes=BUSYBOX_CHANGES)


@asynccontextmanager
async def demo_backend(choice: str, url: str | None, pod: Pod) -> AsyncIterator[Backend]:
    """The backend the demo runs on: *choice* "podman", "fake", or "auto" (Podman where it
    answers and busybox-static is there for the stand-in images, else the fake)."""
    if choice == "fake":
        async with fake_backend(pod) as fake:
            yield fake
        return
    podman = get_backend("podman", url=url)
    try:
        await podman.aopen()
        if choice == "auto" and await _missing_stand_ins(podman, pod):
            busybox_path()  # building them needs it
    except (BackendUnavailableError, FileNotFoundError) as exc:
        await podman.aclose()
        if choice != "auto":
            raise
        reason = str(exc).splitlines()[0]
        print(f"Podman is not available here: {reason}")
        print(INSTALL_PODMAN)
        print("Running on the in-memory FakeBackend instead.\n")
        async with fake_backend(pod) as fake:
            yield fake
        return
    except BaseException:  # a cancellation too: a private service it started must stop
        with anyio.CancelScope(shield=True):
            await podman.aclose()
        raise
    async with podman:
        await ensure_stand_ins(podman, pod)
        yield podman


#: events the demo leaves out: the pod's status says as much
_QUIET = frozenset({EventReason.CREATED, EventReason.UP})


async def run_demo(pod: Pod, backend: Backend, *, kill_event: anyio.Event | None = None) -> int:
    """Run *pod* on *backend*, printing what happens; return an exit code."""
    start = anyio.current_time()

    def stamp(at: float | None = None) -> str:
        return f"[{(anyio.current_time() if at is None else at) - start:6.3f}s]"

    print(f"asyncpod demo: pod {pod.name!r} on the {backend.name} backend")

    def show(event: PodEvent) -> None:
        # asyncpod's own events, printed as they happen: Podman's event stream (with its
        # file logger) comes a few tenths of a second late, after later output.
        if event.reason in _QUIET:
            return
        who = event.container or "(pod)"
        if event.exit_code is not None:
            detail = f" (exit code {event.exit_code})"
        else:
            detail = f": {event.message}" if event.message else ""
        print(f"{stamp(event.time)} {who:<13} {event.reason.value}{detail}")

    async with open_pod(pod, backend=backend, kill_event=kill_event, on_event=show) as running:
        print(f"{stamp()} pod is up")
        _print_status(running.status())
        for port in _container_ports(pod):
            body = await _fetch(backend, running.id, port, "/app.war")
            url = f"http://localhost:{port}/app.war"
            print(f"{stamp()} GET {url} inside the pod -> {summary(body)}")
        if backend.name != "fake":  # the fake publishes no ports on the host
            for port in _host_ports(pod):
                body = await _fetch_host(port, "/app.war")
                url = f"http://127.0.0.1:{port}/app.war"
                print(f"{stamp()} GET {url} from the host -> {summary(body)}")
        if not _container_ports(pod):
            await _show_logs(running, lines=4, seconds=10)
    print(
        f"{stamp()} pod removed; objects left: "
        f"{len(await backend.list_objects({LABEL_POD: pod.name}))}"
    )
    return 0


async def _show_logs(running: RunningPod, *, lines: int, seconds: float) -> None:
    """Print the first *lines* log lines of the running containers (waiting *seconds* at
    most)."""
    names = [c.name for c in running.status().containers if isinstance(c.state, Running)]
    console = open_console()
    width = max((len(n) for n in names), default=0)
    print(f"         the first {lines} log lines:")
    shown = 0

    async def follow(index: int, name: str, scope: anyio.CancelScope) -> None:
        nonlocal shown
        try:
            async with running.logs(name, follow=True) as records:
                async for record in records:
                    console.log(f"         {name:<{width}}", index, record.text)
                    shown += 1
                    if shown == lines:
                        scope.cancel()
        except AsyncpodError:
            pass

    with anyio.move_on_after(seconds):
        async with anyio.create_task_group() as tg:
            for index, name in enumerate(names):
                tg.start_soon(follow, index, name, tg.cancel_scope)


def _container_ports(pod: Pod) -> list[int]:
    return [p.container_port for c in pod.containers for p in c.ports]


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


#: the bytes of a response body the demo shows
SHOWN_BYTES = 32


def summary(body: bytes) -> str:
    """A response body in one short line: its size and first bytes."""
    more = "..." if len(body) > SHOWN_BYTES else ""
    return f"{len(body)} bytes: {body[:SHOWN_BYTES]!r}{more}"


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
            f"         {c.name:<13} {c.kind.value:<8} {text:<36} ready={c.ready} "
            f"restarts={c.restart_count}"
        )
