"""PodmanBackend against a real Podman service (no mocks).

Skipped when no Podman socket answers, unless ``ASYNCPOD_REQUIRE_PODMAN=1`` (CI), which
makes that a failure. ``ASYNCPOD_PODMAN_URL`` picks the service (default: the backend's
own discovery). Every object a test makes carries a unique label and is removed by it.
"""

from __future__ import annotations

import gc
import os
import socket
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from asyncpod import (
    BackendError,
    BackendUnavailableError,
    ImageError,
    ObjectExistsError,
    ObjectNotFoundError,
    PortInUseError,
    PullPolicy,
)
from asyncpod.backends import (
    BackendEvent,
    ContainerExit,
    ContainerSpec,
    Mount,
    PodmanBackend,
    PodSpec,
    PortMapping,
    RuntimeState,
    VolumeSpec,
)
from podman_images import TEST_IMAGE

pytestmark = [pytest.mark.podman, pytest.mark.anyio]

LABEL = "asyncpod-test"


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _remove_labelled(client: Any, key: str, value: str) -> None:
    import json

    filters = json.dumps({"label": [f"{key}={value}"]})
    api = client.api
    for pod in api.get("/pods/json", params={"filters": filters}).json() or []:
        api.delete(f"/pods/{pod['Id']}", params={"force": "true", "timeout": 0})
    ctrs = api.get("/containers/json", params={"filters": filters, "all": "true"}).json() or []
    for ctr in ctrs:
        api.delete(f"/containers/{ctr['Id']}", params={"force": "true", "timeout": 0})
    for vol in api.get("/volumes/json", params={"filters": filters}).json() or []:
        api.delete(f"/volumes/{vol['Name']}", params={"force": "true"})


@pytest.fixture
def labels(podman_client: Any) -> Iterator[dict[str, str]]:
    """A unique label for this test; whatever carries it is removed afterwards."""
    value = uuid.uuid4().hex[:12]
    yield {LABEL: value}
    _remove_labelled(podman_client, LABEL, value)


@pytest.fixture
def prefix(labels: dict[str, str]) -> str:
    return f"apt-{labels[LABEL]}"


@pytest.fixture
async def backend(
    podman_url: str, image: str, labels: dict[str, str]
) -> AsyncIterator[PodmanBackend]:
    async with PodmanBackend(podman_url) as b:
        yield b


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _pod(backend: PodmanBackend, prefix: str, labels: dict[str, str], **kw: Any) -> str:
    return await backend.create_pod(
        PodSpec(name=f"{prefix}-pod", hostname="testpod", labels=labels, **kw)
    )


async def _ctr(
    backend: PodmanBackend,
    pod: str,
    name: str,
    labels: dict[str, str],
    script: str | None = None,
    **kw: Any,
) -> str:
    if script is not None:
        kw.setdefault("command", ("sh", "-c", script))
    return await backend.create_container(
        ContainerSpec(name=name, pod=pod, image=TEST_IMAGE, labels=labels, **kw)
    )


async def _http_get(stream: anyio.abc.ByteStream, path: str) -> bytes:
    async with stream:
        await stream.send(f"GET {path} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
        data = b""
        with anyio.fail_after(5):
            while True:
                try:
                    data += await stream.receive()
                except anyio.EndOfStream:
                    return data


async def _wait_during(
    backend: PodmanBackend, container: str, action: Coroutine[Any, Any, None]
) -> int | BaseException:
    """Wait for *container* while *action* runs; the exit code or the error."""
    outcome: list[int | BaseException] = []

    async def wait() -> None:
        try:
            outcome.append(await backend.wait_container(container))
        except BackendError as exc:
            outcome.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(wait)
        await anyio.sleep(0.5)
        await action
    return outcome[0]


# The tests


async def test_pod_volume_init_app_ports_exec(
    backend: PodmanBackend, labels: dict[str, str], prefix: str
) -> None:
    host_port = _free_port()
    volume = await backend.create_volume(VolumeSpec(name=f"{prefix}-data", labels=labels))
    pod = await _pod(
        backend,
        prefix,
        labels,
        ports=(PortMapping(container_port=8080, host_port=host_port, host_ip="127.0.0.1"),),
    )
    data = Mount(target="/data", volume=volume)
    data_ro = Mount(target="/data", volume=volume, read_only=True)
    init = await _ctr(
        backend,
        pod,
        f"{prefix}-init",
        labels,
        "echo hello-from-init > /data/index.html",
        mounts=(data,),
        init=True,
    )
    web = await _ctr(
        backend, pod, f"{prefix}-web", labels, "exec httpd -f -p 8080 -h /data", mounts=(data_ro,)
    )
    client = await _ctr(
        backend,
        pod,
        f"{prefix}-client",
        labels,
        "until wget -qO- http://127.0.0.1:8080/index.html; do sleep 0.1; done",
    )

    info = await backend.inspect_container(init)
    assert info.state is RuntimeState.CREATED
    assert info.exit_code is None
    assert info.started_at is None

    await backend.start_container(init)
    assert await backend.wait_container(init) == 0
    info = await backend.inspect_container(init)
    assert (info.state, info.exit_code, info.name) == (RuntimeState.EXITED, 0, f"{prefix}-init")
    assert info.started_at is not None
    assert info.finished_at is not None
    assert abs(info.finished_at - time.time()) < 60

    await backend.start_container(web)
    await backend.start_container(web)  # starting a running container is fine
    assert (await backend.inspect_container(web)).state is RuntimeState.RUNNING

    # HTTP from the host on the published port
    with anyio.fail_after(15):
        while True:
            try:
                stream = await anyio.connect_tcp("127.0.0.1", host_port)
            except OSError:
                await anyio.sleep(0.1)
                continue
            reply = await _http_get(stream, "/index.html")
            if b"hello-from-init" in reply:
                break
            await anyio.sleep(0.1)

    # connect() reaches the port inside the pod's network namespace
    reply = await _http_get(await backend.connect(pod, 8080), "/index.html")
    assert reply.startswith(b"HTTP/1.")
    assert b"hello-from-init" in reply
    with pytest.raises(OSError):
        await backend.connect(pod, 8081)

    # localhost between two containers of the pod
    await backend.start_container(client)
    with anyio.fail_after(15):
        assert await backend.wait_container(client) == 0
    async with backend.logs(client) as records:
        lines = [r.text async for r in records if r.stream == "stdout"]
    assert "hello-from-init" in lines

    # read-only mount, exec output and exit codes
    result = await backend.exec(web, ("sh", "-c", "echo x > /data/y"))
    assert result.exit_code != 0
    assert b"Read-only file system" in result.stderr
    result = await backend.exec(web, ("sh", "-c", "echo out; echo err >&2; exit 5"))
    assert (result.exit_code, result.stdout, result.stderr) == (5, b"out\n", b"err\n")
    assert (await backend.exec(web, ("no-such-program",))).exit_code == 127
    assert (await backend.exec(web, ("/etc/passwd",))).exit_code == 126
    with pytest.raises(BackendError):
        await backend.exec(init, ("true",))  # not running

    # ownership by label
    objects = await backend.list_objects(labels)
    found = {(o.type, o.id) for o in objects}
    assert found == {
        ("pod", pod),
        ("volume", volume),
        ("container", init),
        ("container", web),
        ("container", client),
    }
    assert all(o.labels[LABEL] == labels[LABEL] for o in objects)
    assert await backend.list_objects({LABEL: "nothing-carries-this"}) == []

    await backend.stop_container(web, grace=1)  # httpd as PID 1 ignores SIGTERM
    assert (await backend.inspect_container(web)).state is RuntimeState.EXITED
    await backend.remove_pod(pod)
    await backend.remove_pod(pod)  # gone already: fine
    await backend.remove_volume(volume)
    await backend.remove_volume(volume)
    assert await backend.list_objects(labels) == []


async def test_logs(backend: PodmanBackend, labels: dict[str, str], prefix: str) -> None:
    pod = await _pod(backend, prefix, labels)
    done = await _ctr(
        backend,
        pod,
        f"{prefix}-done",
        labels,
        "echo out1; echo err1 >&2; echo out2; printf partial",
    )
    await backend.start_container(done)
    assert await backend.wait_container(done) == 0
    async with backend.logs(done) as records:
        got = [(r.stream, r.text) async for r in records]
    assert [t for s, t in got if s == "stdout"] == ["out1", "out2", "partial"]
    assert [t for s, t in got if s == "stderr"] == ["err1"]

    # follow ends when the container exits
    slow = await _ctr(backend, pod, f"{prefix}-slow", labels, "echo a; sleep 1; echo b >&2")
    await backend.start_container(slow)
    with anyio.fail_after(10):
        async with backend.logs(slow, follow=True) as records:
            got = [(r.stream, r.text) async for r in records]
    assert got == [("stdout", "a"), ("stderr", "b")]

    # cancelling a follow on a running container returns promptly
    forever = await _ctr(backend, pod, f"{prefix}-forever", labels, "echo first; exec sleep 1000")
    await backend.start_container(forever)
    with anyio.fail_after(5):
        async with backend.logs(forever, follow=True) as records:
            first = await records.__anext__()
            assert first.text == "first"
            with anyio.move_on_after(0.3) as scope:
                await records.__anext__()
            assert scope.cancelled_caught
    with anyio.fail_after(5):
        async with backend.logs(forever, follow=True) as records:
            assert (await records.__anext__()).text == "first"
        # leaving the context while a read is pending in another task
        async with anyio.create_task_group() as tg, backend.logs(forever, follow=True) as records:

            async def drain() -> None:
                async for _ in records:
                    pass

            tg.start_soon(drain)
            await anyio.sleep(0.2)
            tg.cancel_scope.cancel()
    await backend.kill_container(forever)
    assert await backend.wait_container(forever) == 137


async def test_events(backend: PodmanBackend, labels: dict[str, str], prefix: str) -> None:
    seen: list[BackendEvent] = []
    async with backend.events(labels) as events:
        volume = await backend.create_volume(VolumeSpec(name=f"{prefix}-v", labels=labels))
        pod = await _pod(backend, prefix, labels)
        ctr = await _ctr(backend, pod, f"{prefix}-c", labels, "exit 3")
        await backend.start_container(ctr)
        with anyio.fail_after(15):
            async for event in events:
                seen.append(event)
                if (event.type, event.action) == ("container", "died"):
                    break
    mine = [(e.type, e.action) for e in seen if e.id in (ctr, pod, volume)]
    assert ("volume", "create") in mine
    assert ("pod", "create") in mine
    assert ("container", "create") in mine
    assert ("container", "start") in mine
    died = seen[-1]
    assert (died.id, died.name, died.exit_code) == (ctr, f"{prefix}-c", 3)
    assert all(e.labels.get(LABEL) == labels[LABEL] for e in seen)
    pod_event = next(e for e in seen if e.type == "pod")
    assert pod_event.name == f"{prefix}-pod"

    # other labels: nothing of ours
    async with backend.events({LABEL: "other"}) as events:
        await backend.remove_pod(pod)
        with anyio.move_on_after(1):
            async for event in events:
                pytest.fail(f"unexpected event {event}")


def _rotate_event_log(podman_client: Any) -> None:
    """Rotate the service's event log the way Podman does past ``events_logfile_max_size``.

    Podman 4.3 keeps the newer half of the log in a new file, renamed over the old one,
    holding the log's lock. Only the file event logger (no journald) has such a log.
    """
    import fcntl

    info = podman_client.info()
    host = info.get("host") or {}
    if host.get("eventLogger") != "file":
        pytest.skip(f"the service logs events to {host.get('eventLogger')!r}, not a file")
    if (host.get("security") or {}).get("rootless"):
        log = Path(os.environ["XDG_RUNTIME_DIR"]) / "libpod" / "tmp" / "events" / "events.log"
    else:
        log = Path("/run/libpod/events/events.log")
    with open(f"{log}.lock", "a") as lock:
        fcntl.lockf(lock, fcntl.LOCK_EX)
        data = log.read_bytes()
        newer = data[len(data) // 2 :]
        newer = newer[newer.find(b"\n") + 1 :]  # from the first whole line, as Podman
        fd, tmp = tempfile.mkstemp(dir=log.parent)
        with os.fdopen(fd, "wb") as file:
            file.write(newer)
        os.rename(tmp, log)


async def test_events_outlive_a_rotation_of_the_event_log(
    backend: PodmanBackend, labels: dict[str, str], prefix: str, podman_client: Any
) -> None:
    """A subscription goes on, sending neither old events nor any event twice."""

    async def next_event() -> tuple[str, str, str]:
        with anyio.fail_after(15):
            event = await events.__anext__()
        return (event.type, event.action, event.name)

    async with backend.events(labels) as events:
        await backend.create_volume(VolumeSpec(name=f"{prefix}-v1", labels=labels))
        assert await next_event() == ("volume", "create", f"{prefix}-v1")
        await anyio.to_thread.run_sync(_rotate_event_log, podman_client)
        await backend.create_volume(VolumeSpec(name=f"{prefix}-v2", labels=labels))
        assert await next_event() == ("volume", "create", f"{prefix}-v2")
        await backend.remove_volume(f"{prefix}-v1")
        assert await next_event() == ("volume", "remove", f"{prefix}-v1")


async def test_images(backend: PodmanBackend, labels: dict[str, str], prefix: str) -> None:
    assert await backend.image_exists(TEST_IMAGE)
    missing = "localhost/asyncpod-test-missing:never"
    assert not await backend.image_exists(missing)
    await backend.ensure_image(TEST_IMAGE, PullPolicy.NEVER)
    await backend.ensure_image(TEST_IMAGE, PullPolicy.IF_NOT_PRESENT)
    with pytest.raises(ImageError) as info:
        await backend.ensure_image(missing, PullPolicy.NEVER)
    assert info.value.image == missing
    unreachable = "127.0.0.1:9/asyncpod/nothing:1"  # the discard port: refused at once
    with anyio.fail_after(30), pytest.raises(ImageError) as info:
        await backend.ensure_image(unreachable, PullPolicy.IF_NOT_PRESENT)
    assert info.value.image == unreachable
    pod = await _pod(backend, prefix, labels)
    with pytest.raises(ImageError) as info:
        await backend.create_container(
            ContainerSpec(name=f"{prefix}-c", pod=pod, image=missing, labels=labels)
        )
    assert info.value.image == missing


async def test_conflicts_and_missing(
    backend: PodmanBackend, labels: dict[str, str], prefix: str
) -> None:
    pod = await _pod(backend, prefix, labels)
    with pytest.raises(ObjectExistsError):
        await _pod(backend, prefix, labels)
    await _ctr(backend, pod, f"{prefix}-c", labels, "true")
    with pytest.raises(ObjectExistsError):
        await _ctr(backend, pod, f"{prefix}-c", labels, "true")
    await backend.create_volume(VolumeSpec(name=f"{prefix}-v", labels=labels))
    with pytest.raises(ObjectExistsError):
        await backend.create_volume(VolumeSpec(name=f"{prefix}-v", labels=labels))
    with pytest.raises(ObjectNotFoundError):
        await backend.inspect_container(f"{prefix}-nope")
    with pytest.raises(ObjectNotFoundError):
        await backend.start_container(f"{prefix}-nope")
    with pytest.raises(ObjectNotFoundError):
        await backend.wait_container(f"{prefix}-nope")
    await backend.remove_container(f"{prefix}-nope")
    await backend.remove_volume(f"{prefix}-nope")
    await backend.remove_pod(f"{prefix}-nope")


async def test_stop_kill_wait(backend: PodmanBackend, labels: dict[str, str], prefix: str) -> None:
    pod = await _pod(backend, prefix, labels)
    sleeper = await _ctr(backend, pod, f"{prefix}-sleep", labels, "exec sleep 1000")
    # a created container is waited on until it has run
    async with anyio.create_task_group() as tg:
        codes: list[int] = []

        async def wait() -> None:
            codes.append(await backend.wait_container(sleeper))

        tg.start_soon(wait)
        await anyio.sleep(0.3)
        assert codes == []
        await backend.start_container(sleeper)
        await anyio.sleep(0.3)
        assert codes == []
        started = time.monotonic()
        await backend.stop_container(sleeper, grace=0.2)  # sleep ignores SIGTERM as PID 1
        assert time.monotonic() - started < 5
    assert codes == [137]
    await backend.stop_container(sleeper, grace=1)  # not running: fine
    await backend.kill_container(sleeper)  # not running: fine
    info = await backend.inspect_container(sleeper)
    assert (info.state, info.exit_code) == (RuntimeState.EXITED, 137)

    # restart an exited container; a wait on a removed container raises
    await backend.start_container(sleeper)
    with anyio.fail_after(10):
        outcome = await _wait_during(backend, sleeper, backend.remove_container(sleeper))
    # the removal kills the container first: the wait may see that exit, or the removal
    assert isinstance(outcome, ObjectNotFoundError) or outcome == 137, outcome
    await backend.remove_container(sleeper)

    # a wait can be cancelled promptly
    other = await _ctr(backend, pod, f"{prefix}-other", labels, "exec sleep 1000")
    await backend.start_container(other)
    with anyio.fail_after(3), anyio.move_on_after(0.3):
        await backend.wait_container(other)
    await backend.kill_container(other, signal=15)  # ignored by PID 1 sleep
    await backend.kill_container(other)
    assert await backend.wait_container(other) == 137


async def test_waits_do_not_hold_up_execs(
    podman_url: str, labels: dict[str, str], prefix: str
) -> None:
    """More running containers than long-call slots: their waits (each blocks a thread for
    as long as the container runs) leave an exec its own way through."""
    async with PodmanBackend(podman_url, stream_pool_size=2) as backend:
        pod = await _pod(backend, prefix, labels)
        sleepers = [
            await _ctr(backend, pod, f"{prefix}-s{i}", labels, "exec sleep 1000") for i in range(3)
        ]
        async with backend.watch_exits() as exits:
            for sleeper in sleepers:
                await backend.start_container(sleeper)
                exits.watch(sleeper)
            await anyio.sleep(3)  # every wait is past its polls, blocked on the service
            with anyio.fail_after(8):  # a wait slice lasts 10 s
                result = await backend.exec(sleepers[0], ("echo", "through"))
            assert result.stdout == b"through\n"
            await backend.kill_container(sleepers[0])
            with anyio.fail_after(8):
                ended = await exits.__anext__()
            assert (ended.container, ended.exit_code) == (sleepers[0], 137)


@pytest.mark.parametrize("exit_files", [True, False], ids=["exit-files", "events-only"])
async def test_exits_of_a_local_service_come_from_conmons_exit_files(
    podman_url: str, labels: dict[str, str], prefix: str, exit_files: bool
) -> None:
    """A local service's exits are read from conmon's exit dir (found from the watched
    container's conmon), and the events report none of them again; a restarted container's
    next exit is its own. Without exit files, or for a remote service, the events alone
    report the same."""
    async with PodmanBackend(podman_url, exit_files=exit_files) as backend:
        pod = await _pod(backend, prefix, labels)
        quick = await _ctr(backend, pod, f"{prefix}-quick", labels, "sleep 0.5; exit 4")
        sleeper = await _ctr(backend, pod, f"{prefix}-sleeper", labels, "exec sleep 1000")
        async with backend.watch_exits() as exits:
            for container in (quick, sleeper):
                await backend.start_container(container)
                exits.watch(container)
            with anyio.fail_after(10):
                assert await exits.__anext__() == ContainerExit(quick, 4)
            await backend.kill_container(sleeper)
            with anyio.fail_after(10):
                assert await exits.__anext__() == ContainerExit(sleeper, 137)
            await backend.start_container(quick)
            exits.watch(quick)
            with anyio.fail_after(10):
                assert await exits.__anext__() == ContainerExit(quick, 4)
            with anyio.move_on_after(1.0):
                extra = await exits.__anext__()
                pytest.fail(f"reported twice: {extra}")
        exit_dir = backend._exits._exit_dir
        if exit_files and backend.is_local:
            assert exit_dir and await anyio.Path(exit_dir).is_dir(), exit_dir
            assert Path(exit_dir).name == "exits"
        else:
            assert exit_dir is None


async def test_command_args_env_workdir(
    backend: PodmanBackend, labels: dict[str, str], prefix: str
) -> None:
    pod = await _pod(backend, prefix, labels)
    cases: dict[str, dict[str, Any]] = {
        "cmd-only": {"command": ("echo",)},  # the image's CMD (/bin/sh) is dropped
        "args-only": {"args": ("echo", "from-args")},
        "both": {"command": ("sh", "-c"), "args": ('echo "$GREETING" "$PWD"',)},
    }
    ids = {}
    for name, kw in cases.items():
        ids[name] = await _ctr(
            backend,
            pod,
            f"{prefix}-{name}",
            labels,
            env=(("GREETING", "hi there"),),
            working_dir="/tmp",
            **kw,
        )
        await backend.start_container(ids[name])
    out = {}
    for name, ident in ids.items():
        assert await backend.wait_container(ident) == 0
        async with backend.logs(ident) as records:
            out[name] = [r.text async for r in records]
    assert out == {"cmd-only": [""], "args-only": ["from-args"], "both": ["hi there /tmp"]}


async def test_host_paths_and_subpath(
    backend: PodmanBackend, labels: dict[str, str], prefix: str
) -> None:
    pod = await _pod(backend, prefix, labels)
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)  # a rootless service reads it too
        missing = os.path.join(tmp, "missing")
        with pytest.raises(BackendError, match="missing"):
            await _ctr(
                backend,
                pod,
                f"{prefix}-a",
                labels,
                "true",
                mounts=(Mount(target="/m", host_path=missing, host_path_type="Directory"),),
            )
        Path(tmp, "file").write_text("content\n")  # noqa: ASYNC240
        os.chmod(os.path.join(tmp, "file"), 0o644)
        with pytest.raises(BackendError, match="not a directory"):
            await _ctr(
                backend,
                pod,
                f"{prefix}-b",
                labels,
                "true",
                mounts=(
                    Mount(
                        target="/m", host_path=os.path.join(tmp, "file"), host_path_type="Directory"
                    ),
                ),
            )
        made = os.path.join(tmp, "made", "here")
        ctr = await _ctr(
            backend,
            pod,
            f"{prefix}-c",
            labels,
            "cat /f/file && test -d /d && grep -q ' /d ' /proc/mounts",
            mounts=(
                Mount(target="/d", host_path=made, host_path_type="DirectoryOrCreate"),
                Mount(target="/f", host_path=tmp, host_path_type="Directory", read_only=True),
            ),
        )
        await backend.start_container(ctr)
        assert await backend.wait_container(ctr) == 0
        assert os.path.isdir(made)  # noqa: ASYNC240
        await backend.remove_container(ctr)
    volume = await backend.create_volume(
        VolumeSpec(name=f"{prefix}-mem", labels=labels, memory=True, size_bytes=8 << 20)
    )
    if backend._version < (4, 4):
        with pytest.raises(BackendError, match=r"subPath, which needs Podman 4\.4"):
            await _ctr(
                backend,
                pod,
                f"{prefix}-s",
                labels,
                "true",
                mounts=(Mount(target="/m", volume=volume, sub_path="x"),),
            )
    ctr = await _ctr(
        backend,
        pod,
        f"{prefix}-t",
        labels,
        "grep ' /m ' /proc/mounts",
        mounts=(Mount(target="/m", volume=volume),),
    )
    await backend.start_container(ctr)
    assert await backend.wait_container(ctr) == 0
    async with backend.logs(ctr) as records:
        mounts = [r.text async for r in records]
    assert mounts
    assert mounts[0].startswith("tmpfs /m tmpfs")
    assert "size=8192k" in mounts[0]


async def test_port_in_use(backend: PodmanBackend, labels: dict[str, str], prefix: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        pod = await _pod(
            backend,
            prefix,
            labels,
            ports=(PortMapping(container_port=80, host_port=port, host_ip="127.0.0.1"),),
        )
        ctr = await _ctr(backend, pod, f"{prefix}-c", labels, "true")
        with pytest.raises(PortInUseError):
            await backend.start_container(ctr)


# podman-py does not close the socket of a failed connect (UDSConnection.connect)
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_service_killed_and_spawned(
    image: str,
    labels: dict[str, str],
    prefix: str,
    monkeypatch: pytest.MonkeyPatch,
    spawnable_podman: str,
) -> None:
    """A private service (started by the backend itself) killed mid-wait: a typed error."""
    import asyncpod.backends._podman._service as podman_module

    monkeypatch.setattr(
        podman_module,
        "candidate_urls",
        lambda url: ([f"unix://{tempfile.gettempdir()}/asyncpod-no-such.sock"], False),
    )
    conf = Path(__file__).parent.parent / ".ci" / "containers.conf"
    if conf.exists() and "CONTAINERS_CONF" not in os.environ:
        monkeypatch.setenv("CONTAINERS_CONF", str(conf))  # the spawned service reads it
    backend = PodmanBackend()
    async with backend:
        private = backend._service
        assert private is not None
        pod = await _pod(backend, prefix, labels)
        ctr = await _ctr(backend, pod, f"{prefix}-c", labels, "exec sleep 1000")
        await backend.start_container(ctr)
        service = private.process
        assert service is not None

        async def kill() -> None:
            service.kill()

        with anyio.fail_after(5):
            outcome = await _wait_during(backend, ctr, kill())
        assert isinstance(outcome, BackendUnavailableError)
        with anyio.fail_after(5), pytest.raises(BackendUnavailableError):
            await backend.inspect_container(ctr)
    assert backend._service is None
    del backend
    gc.collect()  # collect podman-py's leaked sockets while the warnings are ignored


async def test_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    backend = PodmanBackend("unix:///nonexistent/podman.sock")
    with pytest.raises(BackendUnavailableError, match="nonexistent"):
        await backend.aopen()
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(
        "asyncpod.backends._podman._service.candidate_urls",
        lambda url: (["unix:///nonexistent/podman.sock"], False),
    )
    with pytest.raises(BackendUnavailableError, match=r"[iI]nstall Podman"):
        await PodmanBackend().aopen()


async def test_reap_removes_the_termination_logs_of_pods_that_are_gone(
    backend: PodmanBackend, labels: dict[str, str], prefix: str, podman_client: Any
) -> None:
    """An owner killed before remove_pod leaves its pod's termination-log volume: the
    pod's objects go with ``gc``, and the volume with :meth:`reap`; a live pod's stays."""
    if not backend.is_local:
        pytest.skip("termination logs in a volume are for a service on this machine")
    gone = await _pod(backend, f"{prefix}-gone", labels)
    alive = await _pod(backend, f"{prefix}-alive", labels)
    for pod in (gone, alive):
        await _ctr(
            backend,
            pod,
            f"{prefix}-{pod[:8]}",
            labels,
            "true",
            termination_message_path="/dev/termination-log",
        )
    volumes = {f"asyncpod-termination-logs-{pod}" for pod in (gone, alive)}

    def names() -> set[str]:
        return {v["Name"] for v in podman_client.api.get("/volumes/json").json() or []}

    assert volumes <= names()
    # the owner is killed: its pod goes (with gc) without PodmanBackend.remove_pod
    podman_client.api.delete(f"/pods/{gone}", params={"force": "true", "timeout": 0})
    reaped = await backend.reap()
    assert any(gone in what for what in reaped)
    assert not any(alive in what for what in reaped)
    assert names() & volumes == {f"asyncpod-termination-logs-{alive}"}
    await backend.remove_pod(alive)
    assert not names() & volumes
