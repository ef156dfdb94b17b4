"""The backend contract, checked: what every backend does, a third-party one included.

Each check drives the :class:`~asyncpod.backends.Backend` methods directly, with only
commands that both a busybox image and the FakeBackend's shell understand (``sh -c``,
``echo``, ``cat``, ``cp``, ``sleep``, ``test``, ``httpd``). Nothing here involves the
supervisor: :mod:`._scenarios` runs it on top.
"""

from __future__ import annotations

import io
import tarfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio

from .._exceptions import BackendError, ImageError, ObjectExistsError, ObjectNotFoundError
from .._labels import LABEL_RUN
from .._lowlevel import _in_trio
from .._models import PullPolicy
from ..backends._base import (
    Backend,
    ContainerExit,
    ContainerSpec,
    ExitWatcher,
    Mount,
    PodSpec,
    RuntimeState,
    VolumeSpec,
)
from ._fixture import BackendFixture, _log_text, _pod, _run, _spec, contract_check

__all__: list[str] = []


# Objects and labels


@contract_check
async def check_pod_create_list_remove(fx: BackendFixture) -> None:
    async with _pod(fx) as pod:
        found = await fx.backend.list_objects(fx.labels)
        assert [(o.type, o.id) for o in found if o.type == "pod"] == [("pod", pod)], found
        assert all(o.labels.get(LABEL_RUN) == fx.run for o in found)
    assert [o for o in await fx.backend.list_objects(fx.labels) if o.type == "pod"] == []
    await fx.backend.remove_pod(pod)  # removing twice is no error


@contract_check
async def check_pod_name_conflict(fx: BackendFixture) -> None:
    async with _pod(fx):
        try:
            await fx.backend.create_pod(
                PodSpec(name=fx.name("pod"), hostname="x", labels=fx.labels)
            )
        except ObjectExistsError:
            pass
        else:
            raise AssertionError("a second pod of the same name was created")


@contract_check
async def check_volume_create_remove(fx: BackendFixture) -> None:
    vid = await fx.backend.create_volume(VolumeSpec(name=fx.name("vol"), labels=fx.labels))
    found = await fx.backend.list_objects(fx.labels)
    assert [o.id for o in found if o.type == "volume"] == [vid], found
    await fx.backend.remove_volume(vid)
    assert [o for o in await fx.backend.list_objects(fx.labels) if o.type == "volume"] == []
    await fx.backend.remove_volume(vid)


@contract_check
async def check_images(fx: BackendFixture) -> None:
    assert await fx.backend.image_exists(fx.image)
    await fx.backend.ensure_image(fx.image, PullPolicy.IF_NOT_PRESENT)
    await fx.backend.ensure_image(fx.image, PullPolicy.NEVER)
    missing = f"localhost/asyncpod-missing-{fx.run}:v1"
    assert not await fx.backend.image_exists(missing)
    try:
        await fx.backend.ensure_image(missing, PullPolicy.NEVER)
    except ImageError as exc:
        assert exc.image == missing
    else:
        raise AssertionError("a missing image with policy Never did not raise ImageError")


# Containers


@contract_check
async def check_exit_code_and_inspect(fx: BackendFixture) -> None:
    async with _pod(fx) as pod:
        cid = await fx.backend.create_container(_spec(fx, pod, "c", "exit 3"))
        info = await fx.backend.inspect_container(cid)
        assert info.state is RuntimeState.CREATED, info
        await fx.backend.start_container(cid)
        assert await fx.backend.wait_container(cid) == 3
        info = await fx.backend.inspect_container(cid)
        assert (info.state, info.exit_code) == (RuntimeState.EXITED, 3), info
        assert await fx.backend.wait_container(cid) == 3  # again, at once
        await fx.backend.start_container(cid)  # an exited container starts again
        assert await fx.backend.wait_container(cid) == 3


@contract_check
async def check_wait_on_created_container(fx: BackendFixture) -> None:
    async with _pod(fx) as pod:
        cid = await fx.backend.create_container(_spec(fx, pod, "c", "exit 5"))
        codes: list[int] = []

        async def waiter() -> None:
            codes.append(await fx.backend.wait_container(cid))

        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter)
            await anyio.sleep(0.2)
            await fx.backend.start_container(cid)
        assert codes == [5]


@contract_check
async def check_watch_exits(fx: BackendFixture) -> None:
    async with _pod(fx) as pod, fx.backend.watch_exits() as exits:
        done = await _run(fx, pod, "done", "exit 4")
        assert await fx.backend.wait_container(done) == 4
        exits.watch(done)  # exited already: reported at once
        quick = await _run(fx, pod, "quick", "sleep 0.2; exit 3")
        exits.watch(quick)
        slow = await _run(fx, pod, "slow", "sleep 1000")
        exits.watch(slow)
        with anyio.fail_after(60):
            seen = {(e.container, e.exit_code) async for e in _take(exits, 2)}
            assert seen == {(done, 4), (quick, 3)}, seen
            await fx.backend.start_container(quick)  # watched again after a restart
            exits.watch(quick)
            assert [(e.container, e.exit_code) async for e in _take(exits, 1)] == [(quick, 3)]
            await fx.backend.remove_container(slow)  # gone: None, or the kill it took (137)
            [gone] = [e async for e in _take(exits, 1)]
            assert gone.container == slow, gone
            assert gone.exit_code in (None, 137), gone


async def _take(exits: ExitWatcher, count: int) -> AsyncIterator[ContainerExit]:
    for _ in range(count):
        yield await exits.__anext__()


@contract_check
async def check_init_container_shares_volume(fx: BackendFixture) -> None:
    vid = await fx.backend.create_volume(VolumeSpec(name=fx.name("data"), labels=fx.labels))
    async with _pod(fx) as pod:
        mounts = (Mount(target="/data", volume=vid),)
        init = await fx.backend.create_container(
            _spec(fx, pod, "init", "echo hello-from-init > /data/msg", mounts=mounts, init=True)
        )
        app = await fx.backend.create_container(
            _spec(fx, pod, "app", "cat /data/msg", mounts=mounts)
        )
        await fx.backend.start_container(init)
        assert await fx.backend.wait_container(init) == 0
        await fx.backend.start_container(app)
        assert await fx.backend.wait_container(app) == 0
        assert (await _log_text(fx, app))["stdout"] == "hello-from-init"
        for cid in (init, app):
            await fx.backend.remove_container(cid)
    await fx.backend.remove_volume(vid)


@contract_check
async def check_read_only_mount(fx: BackendFixture) -> None:
    vid = await fx.backend.create_volume(VolumeSpec(name=fx.name("ro"), labels=fx.labels))
    async with _pod(fx) as pod:
        cid = await _run(
            fx,
            pod,
            "w",
            "echo x > /data/f",
            mounts=(Mount(target="/data", volume=vid, read_only=True),),
        )
        assert await fx.backend.wait_container(cid) != 0
        await fx.backend.remove_container(cid)
    await fx.backend.remove_volume(vid)


@contract_check
async def check_exec(fx: BackendFixture) -> None:
    async with _pod(fx) as pod:
        cid = await _run(fx, pod, "c", "sleep 1000")
        result = await fx.backend.exec(cid, ("sh", "-c", "echo out; echo err >&2; exit 4"))
        assert (result.exit_code, result.stdout, result.stderr) == (4, b"out\n", b"err\n"), result
        missing = await fx.backend.exec(cid, ("/no/such/program",))
        assert missing.exit_code == 127, missing
        await fx.backend.remove_container(cid)


@contract_check
async def check_logs_apart_and_follow(fx: BackendFixture) -> None:
    async with _pod(fx) as pod:
        cid = await _run(fx, pod, "c", "echo one; echo two >&2; sleep 1; echo three")
        seen: list[tuple[str, str]] = []
        with anyio.fail_after(30):
            async with fx.backend.logs(cid, follow=True) as records:
                async for record in records:
                    seen.append((record.stream, record.text))
        assert seen == [("stdout", "one"), ("stderr", "two"), ("stdout", "three")], seen
        assert await fx.backend.wait_container(cid) == 0


@contract_check
async def check_exec_options(fx: BackendFixture) -> None:
    """exec's environment, working directory, user, standard input and streamed output."""
    async with _pod(fx) as pod:
        cid = await _run(fx, pod, "c", "sleep 1000")
        b = fx.backend
        env = await b.exec(cid, ("env",), env={"ASYNCPOD_X": "y z"})
        assert "ASYNCPOD_X=y z" in env.stdout.decode().splitlines(), env
        pwd = await b.exec(cid, ("pwd",), working_dir="/tmp")
        assert pwd.stdout == b"/tmp\n", pwd
        uid = await b.exec(cid, ("id", "-u"), user="1234")
        assert uid.stdout == b"1234\n", uid
        echo = await b.exec(cid, ("cat",), stdin=b"in\nput\n")
        assert (echo.exit_code, echo.stdout) == (0, b"in\nput\n"), echo
        empty = await b.exec(cid, ("cat",))  # no stdin: end-of-file at once
        assert (empty.exit_code, empty.stdout) == (0, b""), empty
        pieces: list[tuple[str, bytes]] = []
        streamed = await b.exec(
            cid,
            ("sh", "-c", "echo out; echo err >&2"),
            output=lambda stream, data: pieces.append((stream, data)),
        )
        assert (streamed.exit_code, streamed.stdout, streamed.stderr) == (0, b"", b"")
        joined = {s: b"".join(d for k, d in pieces if k == s) for s in ("stdout", "stderr")}
        assert joined == {"stdout": b"out\n", "stderr": b"err\n"}, pieces
        await b.remove_container(cid)


@contract_check
async def check_logs_tail_since_timestamps(fx: BackendFixture) -> None:
    """tail, since and timestamps select lines of a log that goes on across runs."""
    b = fx.backend
    async with _pod(fx) as pod:
        before = time.time()
        cid = await _run(fx, pod, "c", "echo one; echo two >&2; sleep 1.2; echo three")
        with anyio.fail_after(30):
            assert await b.wait_container(cid) == 0
        async with b.logs(cid, timestamps=True) as records:
            stamped = [r async for r in records]
        assert [r.text for r in stamped] == ["one", "two", "three"], stamped
        times = [r.timestamp for r in stamped]
        assert all(t is not None and before - 1 <= t <= time.time() + 1 for t in times), times
        assert times == sorted(times), times  # type: ignore[type-var]
        async with b.logs(cid) as records:
            assert [r.timestamp async for r in records] == [None] * 3
        assert await _texts(fx, cid, tail=1) == ["three"]
        assert await _texts(fx, cid, tail=0) == []
        assert await _texts(fx, cid, tail=10) == ["one", "two", "three"]
        third = stamped[2].timestamp
        assert await _texts(fx, cid, since=third) == ["three"]
        assert await _texts(fx, cid, since=third, tail=5) == ["three"]
        assert await _texts(fx, cid, since=time.time() + 5) == []
        # A second run: the log goes on.
        again = time.time()
        await b.start_container(cid)
        with anyio.fail_after(30):
            assert await b.wait_container(cid) == 0
        both = await _texts(fx, cid)
        assert both == ["one", "two", "three"] * 2, both
        assert await _texts(fx, cid, since=again) == ["one", "two", "three"]
        assert await _texts(fx, cid, tail=2) == ["two", "three"]
        await b.remove_container(cid)


async def _texts(fx: BackendFixture, cid: str, **options: Any) -> list[str]:
    async with fx.backend.logs(cid, **options) as records:
        return [r.text async for r in records]


@contract_check
async def check_archives(fx: BackendFixture) -> None:
    """put_archive unpacks into a directory, made if missing; get_archive packs a file or
    a directory under its own name."""
    b = fx.backend
    async with _pod(fx) as pod:
        cid = await _run(fx, pod, "c", "sleep 1000")
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as archive:
            for name, data in (("a.txt", b"alpha"), ("sub/b.txt", b"beta")):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
        await b.put_archive(cid, "/tmp/in", buffer.getvalue())
        shown = await b.exec(cid, ("cat", "/tmp/in/a.txt", "/tmp/in/sub/b.txt"))
        assert shown.stdout == b"alphabeta", shown
        one = _members(await b.get_archive(cid, "/tmp/in/a.txt"))
        assert one == {"a.txt": b"alpha"}, one
        tree = _members(await b.get_archive(cid, "/tmp/in"))
        assert {k: v for k, v in tree.items() if v is not None} == {
            "in/a.txt": b"alpha",
            "in/sub/b.txt": b"beta",
        }, tree
        try:
            await b.get_archive(cid, "/no/such/path")
        except ObjectNotFoundError:
            pass
        else:
            raise AssertionError("get_archive of a missing path did not raise")
        try:
            await b.put_archive(cid, "/tmp/in/a.txt", buffer.getvalue())
        except BackendError:
            pass
        else:
            raise AssertionError("put_archive into a file did not raise")
        await b.remove_container(cid)


def _members(tarball: bytes) -> dict[str, bytes | None]:
    """The entries of *tarball*: a file's contents, ``None`` for a directory."""
    found: dict[str, bytes | None] = {}
    with tarfile.open(fileobj=io.BytesIO(tarball)) as archive:
        for member in archive.getmembers():
            extracted = archive.extractfile(member) if member.isfile() else None
            found[member.name.strip("/")] = None if extracted is None else extracted.read()
    return found


@contract_check
async def check_stats(fx: BackendFixture) -> None:
    """stats of a running container: ``None`` (cannot tell), or what it uses."""
    async with _pod(fx) as pod:
        cid = await _run(fx, pod, "c", "sleep 1000")
        stats = await fx.backend.stats(cid)
        if stats is not None:
            assert stats.cpu_seconds >= 0, stats
            assert stats.memory_bytes >= 0, stats
        await fx.backend.remove_container(cid)


@contract_check
async def check_logs_follow_cancels_promptly(fx: BackendFixture) -> None:
    async with _pod(fx) as pod:
        cid = await _run(fx, pod, "c", "echo started; sleep 1000")
        with anyio.fail_after(20):
            async with fx.backend.logs(cid, follow=True) as records:
                async for record in records:
                    assert record.text == "started"
                    break
        with anyio.move_on_after(1) as scope:
            async with fx.backend.logs(cid, follow=True) as records:
                async for _ in records:
                    pass
        assert scope.cancelled_caught
        await fx.backend.remove_container(cid)


@contract_check
async def check_stop_and_kill(fx: BackendFixture) -> None:
    async with _pod(fx) as pod:
        cid = await _run(fx, pod, "c", "sleep 1000")
        code = await fx.backend.stop_container(cid, grace=2)
        info = await fx.backend.inspect_container(cid)
        assert info.state is RuntimeState.EXITED, info
        assert info.exit_code == code == 137, (code, info)  # PID 1 ignores SIGTERM
        assert await fx.backend.stop_container(cid, grace=2) == 137  # not running: no error
        await fx.backend.kill_container(cid)  # not running: no error
        await fx.backend.start_container(cid)
        await fx.backend.kill_container(cid)
        assert await fx.backend.wait_container(cid) == 137
        await fx.backend.remove_container(cid)
        # A shell that traps SIGTERM exits as its trap says, well within the grace period.
        trapping = await _run(fx, pod, "t", "trap 'exit 0' TERM; while true; do sleep 0.2; done")
        with anyio.fail_after(5):
            assert await fx.backend.stop_container(trapping, grace=30) == 0


@contract_check
async def check_remove_running_container(fx: BackendFixture) -> None:
    async with _pod(fx) as pod:
        cid = await _run(fx, pod, "c", "sleep 1000")
        await fx.backend.remove_container(cid)
        assert [o for o in await fx.backend.list_objects(fx.labels) if o.type == "container"] == []
        await fx.backend.remove_container(cid)


@contract_check
async def check_events(fx: BackendFixture) -> None:
    async with _pod(fx) as pod, fx.backend.events(fx.labels) as events:
        cid = await _run(fx, pod, "c", "exit 7")
        assert await fx.backend.wait_container(cid) == 7
        actions: list[tuple[str, int | None]] = []
        with anyio.fail_after(20):
            async for event in events:
                if event.type == "container" and event.id == cid:
                    actions.append((event.action, event.exit_code))
                    if event.action == "died":
                        break
        assert ("start", None) in [(a, None) for a, _ in actions], actions
        assert actions[-1] == ("died", 7), actions


@contract_check
async def check_past_events(fx: BackendFixture) -> None:
    """past_events: what happened to the labelled objects since a time, stamped, oldest
    first; a backend that keeps no history (the default) knows none."""
    async with _pod(fx) as pod:
        cid = await _run(fx, pod, "c", "exit 7")
        assert await fx.backend.wait_container(cid) == 7
        info = await fx.backend.inspect_container(cid)
        assert info.image in (None, fx.image), info
        begun = info.started_at
        assert begun is not None
        mine: list[tuple[str, int | None]] = []
        with anyio.fail_after(20):
            while ("died", 7) not in mine:
                past = await fx.backend.past_events(fx.labels, since=begun - 5)
                if not past and type(fx.backend).past_events is Backend.past_events:
                    return  # the default: no history
                mine = [(e.action, e.exit_code) for e in past if e.id == cid]
                await anyio.sleep(0.1)
        assert mine.index(("start", None)) < mine.index(("died", 7)), mine
        times = [e.time for e in past]
        assert None not in times, past
        assert times == sorted(times), past  # type: ignore[type-var]
        assert all(t >= begun - 5 for t in times if t is not None), (begun, times)
        assert await fx.backend.past_events(fx.labels, since=time.time() + 3600) == []


@contract_check
async def check_connect_into_pod(fx: BackendFixture) -> None:
    vid = await fx.backend.create_volume(VolumeSpec(name=fx.name("www"), labels=fx.labels))
    async with _pod(fx) as pod:
        mounts = (Mount(target="/www", volume=vid),)
        init = await _run(fx, pod, "init", "echo served > /www/index.txt", mounts=mounts)
        assert await fx.backend.wait_container(init) == 0
        cid = await fx.backend.create_container(
            ContainerSpec(
                name=fx.name("web"),
                pod=pod,
                image=fx.image,
                short_name="web",
                command=("httpd", "-f", "-p", "8080", "-h", "/www"),
                mounts=mounts,
                labels=fx.labels,
            )
        )
        await fx.backend.start_container(cid)
        body = b""
        with anyio.fail_after(20):
            while b"served" not in body:
                try:
                    stream = await fx.backend.connect(pod, 8080)
                except OSError:
                    await anyio.sleep(0.1)
                    continue
                async with stream:
                    await stream.send(b"GET /index.txt HTTP/1.0\r\nHost: x\r\n\r\n")
                    try:
                        while True:
                            body += await stream.receive()
                    except (anyio.EndOfStream, anyio.BrokenResourceError):
                        pass
        assert body.startswith(b"HTTP/1."), body
        assert b" 200 " in body.split(b"\r\n", 1)[0], body
        try:
            await fx.backend.connect(pod, 8099)
        except OSError:
            pass
        else:
            raise AssertionError("connect to a port nobody listens on succeeded")
        for c in (init, cid):
            await fx.backend.remove_container(c)
    await fx.backend.remove_volume(vid)


@contract_check
async def check_cancelled_create_is_findable(fx: BackendFixture) -> None:
    """A create cancelled half-way leaves nothing, or an object that carries its labels:
    once what ``list_objects`` finds is removed, every name is free again."""
    async with _pod(fx) as pod:
        specs = [_spec(fx, pod, f"c{i}", "exit 0") for i in range(3)]
        volumes = [VolumeSpec(name=fx.name(f"v{i}"), labels=fx.labels) for i in range(3)]
        for delay, spec, volume in zip((0, 0.01, 0.05), specs, volumes, strict=True):
            with anyio.move_on_after(delay):
                await fx.backend.create_container(spec)
            with anyio.move_on_after(delay):
                await fx.backend.create_volume(volume)
        found = [o for o in await fx.backend.list_objects(fx.labels) if o.type != "pod"]
        await fx.backend.remove_objects(found)
        for spec in specs:  # an unlabelled leftover would hold its name
            await fx.backend.remove_container(await fx.backend.create_container(spec))
        for volume in volumes:
            await fx.backend.remove_volume(await fx.backend.create_volume(volume))


# Checkpoints


async def _assert_checkpoint(what: str, call: Callable[[], Awaitable[object]]) -> None:
    """*call* is a checkpoint: cancelled before it starts, it raises the cancellation
    (not an error of its own, nor a result); on trio, it also yields to the scheduler
    (:func:`trio.testing.assert_checkpoints`)."""
    with anyio.CancelScope() as scope:
        scope.cancel()
        try:
            await call()
        except (BackendError, OSError) as exc:
            raise AssertionError(
                f"{what} raised {exc!r} although cancelled: no checkpoint before it"
            ) from exc
    assert scope.cancelled_caught, f"{what} returned although cancelled: no checkpoint"
    if _in_trio():
        import trio.testing

        with trio.testing.assert_checkpoints():
            try:
                await call()
            except (BackendError, OSError):
                pass


async def _enter_logs(fx: BackendFixture, container: str) -> None:
    async with fx.backend.logs(container):
        pass


async def _enter_events(fx: BackendFixture) -> None:
    async with fx.backend.events(fx.labels):
        pass


def _on_unknown(fx: BackendFixture, target: str) -> dict[str, Callable[[], Awaitable[object]]]:
    b = fx.backend
    return {
        "start_container": lambda: b.start_container(target),
        "stop_container": lambda: b.stop_container(target, grace=1),
        "kill_container": lambda: b.kill_container(target),
        "remove_container": lambda: b.remove_container(target),
        "wait_container": lambda: b.wait_container(target),
        "inspect_container": lambda: b.inspect_container(target),
        "exec": lambda: b.exec(target, ("true",)),
        "logs": lambda: _enter_logs(fx, target),
        "get_archive": lambda: b.get_archive(target, "/"),
        "stats": lambda: b.stats(target),
        "remove_pod": lambda: b.remove_pod(target),
        "remove_volume": lambda: b.remove_volume(target),
        "connect": lambda: b.connect(target, 80),
    }


@contract_check
async def check_every_method_is_a_checkpoint(fx: BackendFixture) -> None:
    """Every async method yields and can be cancelled, even when it has nothing to do (a
    running container started again, an exited one stopped) or nothing to do it on (an
    unknown id: its error comes after the checkpoint); so does entering ``logs()`` and
    ``events()``. (Entering ``watch_exits()`` need not: the contract's own default does
    not.)"""
    b = fx.backend
    async with _pod(fx) as pod:
        cid = await _run(fx, pod, "c", "sleep 1000")
        done = await _run(fx, pod, "done", "exit 0")
        assert await b.wait_container(done) == 0
        calls: dict[str, Callable[[], Awaitable[object]]] = {
            "list_objects": lambda: b.list_objects(fx.labels),
            "image_exists": lambda: b.image_exists(fx.image),
            "ensure_image (present)": lambda: b.ensure_image(fx.image, PullPolicy.IF_NOT_PRESENT),
            "inspect_container": lambda: b.inspect_container(cid),
            "start_container (running)": lambda: b.start_container(cid),
            "stop_container (exited)": lambda: b.stop_container(done, grace=1),
            "kill_container (exited)": lambda: b.kill_container(done),
            "wait_container (exited)": lambda: b.wait_container(done),
            "exec": lambda: b.exec(cid, ("true",)),
            "logs": lambda: _enter_logs(fx, done),
            "events": lambda: _enter_events(fx),
            "stats": lambda: b.stats(cid),
        }
        unknown = _on_unknown(fx, f"conf-{fx.run}-missing")
        calls.update({f"{method} (unknown id)": call for method, call in unknown.items()})
        for what, call in calls.items():
            await _assert_checkpoint(what, call)
        for c in (cid, done):
            await b.remove_container(c)


# Optional capabilities


@contract_check
async def check_is_local(fx: BackendFixture) -> None:
    """``is_local`` is a plain bool, known without asking the engine."""
    local = fx.backend.is_local
    assert isinstance(local, bool), f"is_local is {local!r}, not a bool"
    assert fx.backend.is_local is local


#: the image the import check makes: one tag, imported again by every run
IMPORTED_IMAGE = "localhost/asyncpod-conformance-import:latest"


@contract_check
async def check_import_image(fx: BackendFixture) -> None:
    """``import_image`` makes an image present; bytes that are no tarball are an
    ImageError naming the image. Passes at once where the backend cannot import images
    (the default :meth:`~asyncpod.backends.Backend.import_image` says so)."""
    content = f"imported by run {fx.run}\n".encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        member = tarfile.TarInfo("etc/asyncpod-conformance")
        member.size = len(content)
        archive.addfile(member, io.BytesIO(content))
    try:
        await fx.backend.import_image(IMPORTED_IMAGE, buffer.getvalue(), changes=["ENV A=1"])
    except ImageError as exc:
        if exc.image == IMPORTED_IMAGE and "cannot import images" in str(exc):
            return  # the optional capability is absent, as the default says
        raise
    assert await fx.backend.image_exists(IMPORTED_IMAGE), "the imported image is absent"
    await fx.backend.ensure_image(IMPORTED_IMAGE, PullPolicy.NEVER)
    broken = f"localhost/asyncpod-conformance-broken-{fx.run}:v1"
    try:
        await fx.backend.import_image(broken, b"this is no tar archive" * 64)
    except ImageError as exc:
        assert exc.image == broken, exc
    except BackendError as exc:  # ImageError would be more precise; naming it will do
        assert broken in str(exc), exc
    else:
        raise AssertionError("importing bytes that are no tarball did not fail")
