"""The backend conformance suite: one set of checks every backend passes.

The checks use only commands that both a busybox image and the FakeBackend's built-in
tools understand (``sh -c``, ``echo``, ``cat``, ``cp``, ``sleep``, ``test``, ``httpd``),
so one suite proves the fake behaves like Podman.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

import anyio
import attrs

from .._events import EventReason, PodEvent
from .._exceptions import ImageError, ObjectExistsError
from .._labels import LABEL_CONFORMANCE, LABEL_POD, LABEL_RUN
from .._models import (
    Container,
    ContainerPort,
    ContainerRestartRule,
    ContainerRestartRuleOnExitCodes,
    EmptyDirVolumeSource,
    ExecAction,
    Lifecycle,
    LifecycleHandler,
    Pod,
    Probe,
    PullPolicy,
    RestartPolicy,
    Volume,
    VolumeMount,
)
from .._status import Phase, Running, Waiting
from .._supervisor import RunningPod, open_pod
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

__all__ = ["CONFORMANCE_CHECKS", "BackendFixture", "check_backend"]

_F = TypeVar("_F", bound=Callable[..., Awaitable[None]])


@attrs.frozen
class BackendFixture:
    """What a check needs: an open backend, and an image with busybox-compatible tools."""

    backend: Backend
    image: str
    #: a unique label value per check; everything a check creates carries it
    run: str = attrs.field(factory=lambda: uuid.uuid4().hex[:10])

    @property
    def labels(self) -> dict[str, str]:
        return {LABEL_RUN: self.run, LABEL_CONFORMANCE: "1"}

    def name(self, suffix: str) -> str:
        return f"conf-{self.run}-{suffix}"


CONFORMANCE_CHECKS: dict[str, Callable[[BackendFixture], Awaitable[None]]] = {}


def _check(fn: _F) -> _F:
    CONFORMANCE_CHECKS[fn.__name__.removeprefix("check_")] = fn
    return fn


async def check_backend(make_backend: Callable[[], Backend], image: str) -> None:
    """Run every conformance check against fresh backends from *make_backend*.

    Raises :class:`AssertionError` naming the first check that fails.
    """
    for name, check in CONFORMANCE_CHECKS.items():
        async with make_backend() as backend:
            try:
                await run_check(check, BackendFixture(backend, image))
            except AssertionError as exc:
                raise AssertionError(f"conformance check {name!r} failed: {exc}") from exc


async def run_check(check: Callable[[BackendFixture], Awaitable[None]], fx: BackendFixture) -> None:
    """Run one check, then remove whatever it left (and fail if that was anything)."""
    try:
        with anyio.fail_after(120):
            await check(fx)
    finally:
        with anyio.CancelScope(shield=True):
            left = await fx.backend.list_objects({LABEL_RUN: fx.run})
            await fx.backend.remove_objects(left)


@asynccontextmanager
async def _pod(fx: BackendFixture, suffix: str = "pod", **kwargs: object) -> AsyncIterator[str]:
    pod = await fx.backend.create_pod(
        PodSpec(name=fx.name(suffix), hostname="conf", labels=fx.labels, **kwargs)  # type: ignore[arg-type]
    )
    try:
        yield pod
    finally:
        with anyio.CancelScope(shield=True):
            await fx.backend.remove_pod(pod)


def _spec(
    fx: BackendFixture, pod: str, suffix: str, script: str, **kwargs: object
) -> ContainerSpec:
    return ContainerSpec(
        name=fx.name(suffix),
        pod=pod,
        image=fx.image,
        short_name=suffix,
        command=("sh", "-c", script),
        labels=fx.labels,
        **kwargs,  # type: ignore[arg-type]
    )


async def _run(fx: BackendFixture, pod: str, suffix: str, script: str, **kwargs: object) -> str:
    cid = await fx.backend.create_container(_spec(fx, pod, suffix, script, **kwargs))
    await fx.backend.start_container(cid)
    return cid


async def _log_text(fx: BackendFixture, cid: str) -> dict[str, str]:
    lines: dict[str, list[str]] = {"stdout": [], "stderr": []}
    async with fx.backend.logs(cid) as records:
        async for record in records:
            lines[record.stream].append(record.text)
    return {stream: "\n".join(text) for stream, text in lines.items()}


# Objects and labels


@_check
async def check_pod_create_list_remove(fx: BackendFixture) -> None:
    async with _pod(fx) as pod:
        found = await fx.backend.list_objects(fx.labels)
        assert [(o.type, o.id) for o in found if o.type == "pod"] == [("pod", pod)], found
        assert all(o.labels.get(LABEL_RUN) == fx.run for o in found)
    assert [o for o in await fx.backend.list_objects(fx.labels) if o.type == "pod"] == []
    await fx.backend.remove_pod(pod)  # removing twice is no error


@_check
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


@_check
async def check_volume_create_remove(fx: BackendFixture) -> None:
    vid = await fx.backend.create_volume(VolumeSpec(name=fx.name("vol"), labels=fx.labels))
    found = await fx.backend.list_objects(fx.labels)
    assert [o.id for o in found if o.type == "volume"] == [vid], found
    await fx.backend.remove_volume(vid)
    assert [o for o in await fx.backend.list_objects(fx.labels) if o.type == "volume"] == []
    await fx.backend.remove_volume(vid)


@_check
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


@_check
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


@_check
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


@_check
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


@_check
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


@_check
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


@_check
async def check_exec(fx: BackendFixture) -> None:
    async with _pod(fx) as pod:
        cid = await _run(fx, pod, "c", "sleep 1000")
        result = await fx.backend.exec(cid, ("sh", "-c", "echo out; echo err >&2; exit 4"))
        assert (result.exit_code, result.stdout, result.stderr) == (4, b"out\n", b"err\n"), result
        missing = await fx.backend.exec(cid, ("/no/such/program",))
        assert missing.exit_code == 127, missing
        await fx.backend.remove_container(cid)


@_check
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


@_check
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


@_check
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


@_check
async def check_remove_running_container(fx: BackendFixture) -> None:
    async with _pod(fx) as pod:
        cid = await _run(fx, pod, "c", "sleep 1000")
        await fx.backend.remove_container(cid)
        assert [o for o in await fx.backend.list_objects(fx.labels) if o.type == "container"] == []
        await fx.backend.remove_container(cid)


@_check
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


@_check
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


@_check
async def check_cancelled_create_is_findable(fx: BackendFixture) -> None:
    async with _pod(fx) as pod:
        for delay in (0, 0.01, 0.05):
            with anyio.move_on_after(delay):
                await fx.backend.create_container(_spec(fx, pod, f"c{int(delay * 100)}", "exit 0"))
        for obj in await fx.backend.list_objects(fx.labels):
            if obj.type == "container":
                await fx.backend.remove_container(obj.id)
        assert [o for o in await fx.backend.list_objects(fx.labels) if o.type == "container"] == []


# The supervisor on top of the backend


def _seed_pod(fx: BackendFixture, name: str, restart: RestartPolicy = RestartPolicy.ALWAYS) -> Pod:
    """The seed's javaweb-2 shape: an init container fills a volume a web server serves."""
    return Pod(
        name=name,
        labels={LABEL_CONFORMANCE: "1"},
        init_containers=[
            Container(
                name="war",
                image=fx.image,
                command=["sh", "-c", "echo war-bytes > /app/app.war"],
                volume_mounts=[VolumeMount(name="app-volume", mount_path="/app")],
            )
        ],
        containers=[
            Container(
                name="web",
                image=fx.image,
                command=["httpd", "-f", "-p", "8080", "-h", "/srv"],
                ports=[ContainerPort(container_port=8080)],
                volume_mounts=[VolumeMount(name="app-volume", mount_path="/srv")],
            )
        ],
        volumes=[Volume(name="app-volume", empty_dir=EmptyDirVolumeSource())],
        restart_policy=restart,
        termination_grace_period_seconds=3,
    )


@_check
async def check_open_pod_seed_shape(fx: BackendFixture) -> None:
    pod = _seed_pod(fx, fx.name("seed"))
    async with open_pod(pod, backend=fx.backend) as running:
        status = running.status()
        assert status.container("war").exit_code == 0, status
        result = await running.exec("web", ["cat", "/srv/app.war"])
        assert result.stdout == b"war-bytes\n", result
        with anyio.fail_after(30):
            ready = await running.wait_ready()
        assert ready.phase is Phase.RUNNING, ready
        run_label = running.run_id
    left = await fx.backend.list_objects({LABEL_RUN: run_label})
    assert left == [], left


@_check
async def check_open_pod_init_failure(fx: BackendFixture) -> None:
    from .._exceptions import ContainerFailedError

    pod = attrs.evolve(
        _seed_pod(fx, fx.name("fail"), RestartPolicy.NEVER),
        init_containers=[
            Container(name="war", image=fx.image, command=["sh", "-c", "echo broken >&2; exit 2"])
        ],
        volumes=[Volume(name="app-volume", empty_dir=EmptyDirVolumeSource())],
    )
    try:
        async with open_pod(pod, backend=fx.backend):
            raise AssertionError("the pod came up although its init container failed")
    except ContainerFailedError as exc:
        assert (exc.container, exc.exit_code) == ("war", 2), exc
        assert "broken" in exc.logs, exc.logs
    assert await fx.backend.list_objects({LABEL_POD: pod.name}) == []


# Kubernetes lifecycle scenarios: the same events, in the same order, on every backend.
#
# The scripts use only what busybox's sh and the fake's shell both understand. busybox's
# tools as PID 1 ignore SIGTERM, so every stop here ends with the SIGKILL at the end of
# the grace period (exit code 137): the pods keep their grace periods at the 2 s minimum.

_NOISE = frozenset({EventReason.CREATED, EventReason.UNHEALTHY})


def _trace(
    events: list[PodEvent], container: str | None = None, *, skip: frozenset[EventReason] = _NOISE
) -> list[tuple[str, str | None, int | None]]:
    """``(reason, container, exit code)`` of *events*, less the timing-dependent ones."""
    return [
        (e.reason.value, e.container, e.exit_code)
        for e in events
        if e.reason not in skip and (container is None or e.container in (None, container))
    ]


async def _record(
    pod: Pod, backend: Backend, body: Callable[[RunningPod], Awaitable[None]]
) -> list[PodEvent]:
    """Run *pod* around *body*; return every event of the run, teardown included."""
    events: list[PodEvent] = []

    async def collect(running: RunningPod) -> None:
        async for event in running.events():
            events.append(event)

    async with anyio.create_task_group() as tg:
        async with open_pod(pod, backend=backend) as running:
            tg.start_soon(collect, running)
            await body(running)
    return events


async def _next_event(
    running: RunningPod, reason: EventReason, container: str, count: int = 1
) -> PodEvent:
    """The *count*-th event of *container* with *reason* (waiting for it if need be)."""
    async for event in running.events():
        if event.reason is reason and event.container == container:
            count -= 1
            if count == 0:
                return event
    raise AssertionError(f"the pod was torn down before {reason.value} of {container}")


def _data_pod(fx: BackendFixture, suffix: str, **kwargs: object) -> Pod:
    """A pod with one emptyDir ``data`` mounted at /data in every container."""
    mount = [VolumeMount(name="data", mount_path="/data")]

    def with_data(containers: object) -> list[Container]:
        assert isinstance(containers, list)
        return [attrs.evolve(c, volume_mounts=mount) for c in containers]

    for key in ("containers", "init_containers"):
        if key in kwargs:
            kwargs[key] = with_data(kwargs[key])
    return Pod(
        name=fx.name(suffix),
        labels={LABEL_CONFORMANCE: "1"},
        volumes=[Volume(name="data", empty_dir=EmptyDirVolumeSource())],
        **{"termination_grace_period_seconds": 2, **kwargs},  # type: ignore[arg-type]
    )


def _sh(fx: BackendFixture, name: str, script: str, **kwargs: object) -> Container:
    return Container(name=name, image=fx.image, command=["sh", "-c", script], **kwargs)  # type: ignore[arg-type]


@_check
async def check_lifecycle_start_and_stop_order(fx: BackendFixture) -> None:
    """Init, then the sidecar (started = postStart done + startup probe passed), then the
    app containers along depends_on; teardown in reverse, sidecars last."""
    sidecar = _sh(
        fx,
        "side",
        "sleep 1000",
        restart_policy=RestartPolicy.ALWAYS,
        startup_probe=Probe(
            exec=ExecAction(command=["test", "-f", "/data/hooked"]), period_seconds=1
        ),
        lifecycle=Lifecycle(
            post_start=LifecycleHandler(exec=ExecAction(command=["touch", "/data/hooked"]))
        ),
    )
    pod = _data_pod(
        fx,
        "order",
        restart_policy=RestartPolicy.NEVER,
        init_containers=[_sh(fx, "setup", "touch /data/setup"), sidecar],
        containers=[
            # exits 1 (and fails the pod) unless the sidecar's hook ran before it started
            _sh(fx, "app", "test -f /data/hooked && sleep 1000"),
            _sh(fx, "helper", "sleep 1000", depends_on=["app"]),
        ],
    )

    async def body(running: RunningPod) -> None:
        status = running.status()
        assert status.phase is Phase.RUNNING, status
        assert [c.started for c in status.containers] == [False, True, True, True], status

    events = await _record(pod, fx.backend, body)
    assert _trace(events) == [
        ("Started", "setup", None),
        ("Exited", "setup", 0),
        ("Started", "side", None),
        ("Ready", "side", None),
        ("Started", "app", None),
        ("Ready", "app", None),
        ("Started", "helper", None),
        ("Up", None, None),
        ("Ready", "helper", None),
        ("Terminating", None, None),
        ("Killing", "helper", None),
        ("Exited", "helper", 137),
        ("Killing", "app", None),
        ("Exited", "app", 137),
        ("Killing", "side", None),
        ("Exited", "side", 137),
        ("TornDown", None, None),
    ], events
    assert sorted(e.container or "" for e in events if e.reason is EventReason.CREATED) == [
        "app",
        "helper",
        "setup",
        "side",
    ]


@_check
async def check_lifecycle_restart_back_off(fx: BackendFixture) -> None:
    """A crashing container restarts at once, then after 10 s of CrashLoopBackOff."""
    crash = (
        "test -f /data/two && sleep 1000; "
        "test -f /data/one && touch /data/two; touch /data/one; exit 3"
    )
    pod = _data_pod(fx, "backoff", containers=[_sh(fx, "crash", crash)])

    async def body(running: RunningPod) -> None:
        with anyio.fail_after(60):
            back_off = await _next_event(running, EventReason.BACK_OFF, "crash")
            assert back_off.message == "back-off 10s restarting failed container crash"
            state = running.status().container("crash").state
            assert isinstance(state, Waiting), state
            assert state.reason == "CrashLoopBackOff", state
            started = await _next_event(running, EventReason.STARTED, "crash", 3)
        assert started.time - back_off.time >= 10, (back_off, started)
        status = running.status().container("crash")
        assert status.restart_count == 2, status
        assert status.last_state is not None, status
        assert status.last_state.exit_code == 3, status
        assert isinstance(status.state, Running), status

    events = await _record(pod, fx.backend, body)
    assert _trace(events, skip=_NOISE | {EventReason.READY}) == [
        ("Started", "crash", None),
        ("Up", None, None),
        ("Exited", "crash", 3),
        ("Restarting", "crash", None),
        ("Started", "crash", None),
        ("Exited", "crash", 3),
        ("BackOff", "crash", None),
        ("Restarting", "crash", None),
        ("Started", "crash", None),
        ("Terminating", None, None),
        ("Killing", "crash", None),
        ("Exited", "crash", 137),
        ("TornDown", None, None),
    ], events
    assert [e.restart_count for e in events if e.reason is EventReason.STARTED] == [0, 1, 2]


@_check
async def check_lifecycle_liveness_kill_runs_pre_stop(fx: BackendFixture) -> None:
    """A failed liveness probe: Killing, preStop, stop; not restarted under Never."""
    live = _sh(
        fx,
        "live",
        "sleep 1000",
        liveness_probe=Probe(
            exec=ExecAction(command=["test", "-f", "/data/alive"]),
            period_seconds=1,
            failure_threshold=2,
            termination_grace_period_seconds=2,
        ),
        lifecycle=Lifecycle(
            pre_stop=LifecycleHandler(exec=ExecAction(command=["touch", "/data/pre-stopped"]))
        ),
    )
    pod = _data_pod(
        fx,
        "liveness",
        restart_policy=RestartPolicy.NEVER,
        containers=[live, _sh(fx, "watch", "sleep 1000")],
    )

    async def body(running: RunningPod) -> None:
        with anyio.fail_after(30):
            await _next_event(running, EventReason.EXITED, "live")
        result = await running.exec("watch", ["test", "-f", "/data/pre-stopped"])
        assert result.exit_code == 0, "the preStop hook did not run before the kill"
        status = running.status()
        assert status.phase is Phase.RUNNING, status  # "watch" still runs
        live_status = status.container("live")
        assert live_status.restart_count == 0, live_status
        assert live_status.exit_code == 137, live_status

    events = await _record(pod, fx.backend, body)
    # "watch" starts beside "live": when the pod is Up depends on which starts last.
    assert _trace(events, "live", skip=frozenset({EventReason.CREATED, EventReason.UP})) == [
        ("Started", "live", None),
        ("Ready", "live", None),
        ("Unhealthy", "live", None),
        ("Unhealthy", "live", None),
        ("Killing", "live", None),
        ("NotReady", "live", None),
        ("Exited", "live", 137),
        ("Terminating", None, None),
        ("TornDown", None, None),
    ], events
    unhealthy = [e.message for e in events if e.reason is EventReason.UNHEALTHY]
    assert unhealthy == ["Liveness probe failed"] * 2, unhealthy


@_check
async def check_lifecycle_restart_rules(fx: BackendFixture) -> None:
    """KEP-5307: in a Never pod, a rule restarts the container on exit code 42 only."""
    job = _sh(
        fx,
        "job",
        "test -f /data/ran && exit 0; touch /data/ran; exit 42",
        restart_policy=RestartPolicy.NEVER,
        restart_policy_rules=[
            ContainerRestartRule(
                exit_codes=ContainerRestartRuleOnExitCodes(operator="In", values=[42])
            )
        ],
    )
    pod = _data_pod(fx, "rules", restart_policy=RestartPolicy.NEVER, containers=[job])

    async def body(running: RunningPod) -> None:
        with anyio.fail_after(30):
            final = await running.wait()
        assert final.phase is Phase.SUCCEEDED, final
        assert final.container("job").restart_count == 1, final

    events = await _record(pod, fx.backend, body)
    assert _trace(events, skip=_NOISE | {EventReason.READY, EventReason.UP}) == [
        ("Started", "job", None),
        ("Exited", "job", 42),
        ("Restarting", "job", None),
        ("Started", "job", None),
        ("Exited", "job", 0),
        ("Terminating", None, None),
        ("TornDown", None, None),
    ], events


@_check
async def check_lifecycle_init_retried_under_on_failure(fx: BackendFixture) -> None:
    """A failing regular init container is run again (OnFailure) before anything else."""
    flaky = _sh(fx, "flaky", "test -f /data/ran && exit 0; touch /data/ran; exit 1")
    pod = _data_pod(
        fx,
        "initretry",
        restart_policy=RestartPolicy.ON_FAILURE,
        init_containers=[flaky],
        containers=[_sh(fx, "app", "sleep 1000")],
    )

    async def body(running: RunningPod) -> None:
        status = running.status()
        assert status.container("flaky").restart_count == 1, status
        assert status.conditions.initialized, status

    events = await _record(pod, fx.backend, body)
    assert _trace(events, skip=_NOISE | {EventReason.READY})[:7] == [
        ("Started", "flaky", None),
        ("Exited", "flaky", 1),
        ("Restarting", "flaky", None),
        ("Started", "flaky", None),
        ("Exited", "flaky", 0),
        ("Started", "app", None),
        ("Up", None, None),
    ], events


@_check
async def check_lifecycle_readiness_flips(fx: BackendFixture) -> None:
    """Readiness starts false, follows the probe both ways, and never restarts."""
    web = _sh(
        fx,
        "web",
        "sleep 1000",
        readiness_probe=Probe(
            exec=ExecAction(command=["test", "-f", "/data/ready"]),
            period_seconds=1,
            failure_threshold=1,
        ),
    )
    pod = _data_pod(fx, "readiness", containers=[web])

    async def body(running: RunningPod) -> None:
        assert not running.status().conditions.ready
        await running.exec("web", ["touch", "/data/ready"])
        with anyio.fail_after(20):
            status = await running.wait_ready()
            assert status.container("web").ready, status
            await running.exec("web", ["rm", "/data/ready"])
            await _next_event(running, EventReason.NOT_READY, "web")
        status = running.status()
        assert not status.conditions.ready, status
        assert status.phase is Phase.RUNNING, status
        assert status.container("web").restart_count == 0, status

    events = await _record(pod, fx.backend, body)
    assert _trace(events) == [
        ("Started", "web", None),
        ("Up", None, None),
        ("Ready", "web", None),
        ("NotReady", "web", None),
        ("Terminating", None, None),
        ("Killing", "web", None),
        ("Exited", "web", 137),
        ("TornDown", None, None),
    ], events


@_check
async def check_lifecycle_sidecars_stop_when_the_job_is_done(fx: BackendFixture) -> None:
    """Sidecars never block completion: once every app container exited for good, they
    are stopped, last declared first, and not restarted; the pod has Succeeded."""
    pod = _data_pod(
        fx,
        "job",
        restart_policy=RestartPolicy.NEVER,
        init_containers=[
            _sh(fx, "first", "sleep 1000", restart_policy=RestartPolicy.ALWAYS),
            _sh(fx, "second", "sleep 1000", restart_policy=RestartPolicy.ALWAYS),
        ],
        containers=[_sh(fx, "job", "test -f /data/input || touch /data/output")],
    )

    async def body(running: RunningPod) -> None:
        with anyio.fail_after(30):
            final = await running.wait()
            assert final.phase is Phase.SUCCEEDED, final
            await _next_event(running, EventReason.EXITED, "first")
        status = running.status()
        assert [c.exit_code for c in status.containers] == [137, 137, 0], status
        assert [c.restart_count for c in status.containers] == [0, 0, 0], status
        assert status.phase is Phase.SUCCEEDED, status

    events = await _record(pod, fx.backend, body)
    assert _trace(events, skip=_NOISE | {EventReason.READY})[4:] == [
        ("Exited", "job", 0),
        ("Killing", "second", None),
        ("Exited", "second", 137),
        ("Killing", "first", None),
        ("Exited", "first", 137),
        ("Terminating", None, None),
        ("TornDown", None, None),
    ], events
