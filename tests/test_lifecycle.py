"""Kubelet rules at the edges: sidecars retired when the app containers are done, teardown
of containers that are not running, detached pods, escalation, event delivery."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import anyio.lowlevel
import pytest

import asyncpod
from asyncpod import (
    Container,
    EventReason,
    ExecAction,
    Lifecycle,
    LifecycleHandler,
    Phase,
    Pod,
    PodEvent,
    Probe,
    Running,
    SleepAction,
    Terminated,
)
from asyncpod._events import EventLog
from asyncpod._labels import LABEL_CONTAINER
from asyncpod.backends import (
    ExecResult,
    FakeBackend,
    FakeContext,
    OwnedObject,
    Program,
    RuntimeState,
)

pytestmark = pytest.mark.anyio

IMAGE = "busybox:latest"


def ctr(name: str, **kwargs: object) -> Container:
    return Container(name=name, image=IMAGE, command=["sleep", "inf"], **kwargs)  # type: ignore[arg-type]


def sidecar(name: str, **kwargs: object) -> Container:
    return ctr(name, restart_policy="Always", **kwargs)


async def record(
    pod: Pod, backend: FakeBackend, seconds: float = 0, **kwargs: object
) -> list[PodEvent]:
    """Every event of a run of *pod* that lasts *seconds* (or until the pod is done)."""
    events: list[PodEvent] = []

    async def collect(running: asyncpod.RunningPod) -> None:
        async for event in running.events():
            events.append(event)

    async with anyio.create_task_group() as tg:
        async with asyncpod.open_pod(pod, backend=backend, **kwargs) as running:  # type: ignore[arg-type]
            tg.start_soon(collect, running)
            if seconds:
                await anyio.sleep(seconds)
            else:
                with anyio.fail_after(3600):
                    await running.wait()
    return events


def of(events: list[PodEvent], reason: EventReason, container: str | None) -> list[PodEvent]:
    return [e for e in events if e.reason is reason and e.container == container]


async def test_sidecar_backing_off_is_retired_without_restart(fake: FakeBackend) -> None:
    """A crash-looping sidecar is not started again once the job is done."""
    fake.programs["side"] = Program(exit_code=1, delay=1)
    fake.programs["job"] = Program(exit_code=0, delay=25)
    pod = Pod(
        name="p", restart_policy="Never", init_containers=[sidecar("side")], containers=[ctr("job")]
    )
    events = await record(pod, fake)
    (job_exit,) = of(events, EventReason.EXITED, "job")
    assert [e for e in of(events, EventReason.RESTARTING, "side") if e.time > job_exit.time] == []
    # the back-off is not waited out, and the old exit is not reported again
    exits = of(events, EventReason.EXITED, "side")
    assert all(e.time <= job_exit.time for e in exits), exits


async def test_retired_sidecars_run_pre_stop_at_once_and_stop_in_reverse(
    fake: FakeBackend,
) -> None:
    """Retirement is a teardown of the sidecars: hooks together, signals last-first."""
    hook = Lifecycle(pre_stop=LifecycleHandler(sleep=SleepAction(seconds=8)))
    fake.programs["job"] = Program(exit_code=0, delay=1)
    pod = Pod(
        name="p",
        restart_policy="Never",
        termination_grace_period_seconds=10,
        init_containers=[sidecar("a", lifecycle=hook), sidecar("b", lifecycle=hook)],
        containers=[ctr("job")],
    )
    events = await record(pod, fake, seconds=30)
    kill_b, kill_a = (of(events, EventReason.KILLING, n)[0] for n in "ba")
    exit_b, exit_a = (of(events, EventReason.EXITED, n)[0] for n in "ba")
    assert kill_b.time == pytest.approx(1 + 8)  # its hook took 8 s (a's ran meanwhile)
    assert kill_a.time == exit_b.time  # b, declared last, stops first
    assert exit_a.time == pytest.approx(1 + 10 + 2)  # grace period, then the 2 s minimum
    assert len(of(events, EventReason.KILLING, "a")) == 1  # teardown does not stop it again


async def test_teardown_during_a_retirement_stops_nothing_twice(fake: FakeBackend) -> None:
    hook = Lifecycle(pre_stop=LifecycleHandler(sleep=SleepAction(seconds=10)))
    fake.programs["job"] = Program(exit_code=0, delay=1)
    pod = Pod(
        name="p",
        restart_policy="Never",
        init_containers=[sidecar("side", lifecycle=hook)],
        containers=[ctr("job")],
    )
    events = await record(pod, fake, seconds=4)  # the block ends inside the retirement
    assert len(of(events, EventReason.KILLING, "side")) == 1
    assert len(of(events, EventReason.EXITED, "side")) == 1


async def test_containers_with_their_own_never_policy_end_an_always_pod(
    fake: FakeBackend,
) -> None:
    """KEP-5307: when no app container will run again, the exit codes decide the phase."""
    fake.programs["ok"] = Program(exit_code=0, delay=5)
    fake.programs["bad"] = Program(exit_code=2, delay=5)
    for name, phase in (("ok", Phase.SUCCEEDED), ("bad", Phase.FAILED)):
        pod = Pod(name=f"p-{name}", containers=[ctr(name, restart_policy="Never")])
        async with asyncpod.open_pod(pod, backend=fake) as running:
            with anyio.fail_after(60):
                assert (await running.wait()).phase is phase


async def test_teardown_during_back_off_reports_no_new_exit(fake: FakeBackend) -> None:
    fake.programs["c"] = Program(exit_code=3, delay=1)
    pod = Pod(name="p", containers=[ctr("c")])
    events = await record(pod, fake, seconds=5)  # second run exited at 2: backing off 10 s
    (terminating,) = of(events, EventReason.TERMINATING, None)
    assert [e for e in of(events, EventReason.EXITED, "c") if e.time >= terminating.time] == []
    assert of(events, EventReason.KILLING, "c") == []


async def test_container_that_never_started_is_not_reported_exited(fake: FakeBackend) -> None:
    fake.programs["init"] = Program(delay=100)
    pod = Pod(name="p", init_containers=[ctr("init")], containers=[ctr("app")])
    events: list[PodEvent] = []
    with anyio.move_on_after(5):  # cancels the bring-up while "app" waits for "init"
        async with asyncpod.open_pod(pod, backend=fake, on_event=events.append):
            pass  # pragma: no cover - bring-up never finishes
    assert of(events, EventReason.KILLING, "app") == []
    assert of(events, EventReason.EXITED, "app") == []
    assert of(events, EventReason.TORN_DOWN, None)


async def test_failed_stop_after_a_probe_kill_does_not_break_the_pod(fake: FakeBackend) -> None:
    """A backend error while stopping a container that failed its probe is logged."""
    probe = Probe(exec=ExecAction(command=["false"]), period_seconds=1, failure_threshold=1)
    pod = Pod(name="p", containers=[ctr("web", liveness_probe=probe)])
    fake.inject("stop_container", target="web", error=asyncpod.BackendError("hiccup"), times=1)
    async with asyncpod.open_pod(pod, backend=fake) as running:
        await anyio.sleep(40)
        assert running.status().phase is Phase.RUNNING


async def test_detached_pod_ends_its_events(fake: FakeBackend) -> None:
    pod = Pod(name="p", containers=[ctr("c")])
    reasons: list[EventReason] = []
    try:
        async with anyio.create_task_group() as tg:
            async with asyncpod.open_pod(pod, backend=fake, detach=True) as running:
                events = running.events()

                async def read() -> None:
                    reasons.extend([e.reason async for e in events])

                tg.start_soon(read)
    finally:
        await fake.remove_objects(await fake.list_objects({"io.asyncpod.pod": "p"}))
    assert reasons[-1] is EventReason.DETACHED


async def test_an_event_is_not_lost_to_a_cancelled_read() -> None:
    log = EventLog()
    reader = log.follow()
    log.append((0.0, EventReason.STARTED, "a", "", None, 0, 0.0))
    with anyio.CancelScope() as scope:
        scope.cancel()
        await reader.__anext__()
    assert (await reader.__anext__()).reason is EventReason.STARTED


async def test_retired_sidecar_shows_its_exit(fake: FakeBackend) -> None:
    fake.programs["job"] = Program(exit_code=0, delay=1)
    pod = Pod(
        name="p", restart_policy="Never", init_containers=[sidecar("side")], containers=[ctr("job")]
    )
    async with asyncpod.open_pod(pod, backend=fake) as running:
        with anyio.fail_after(60):
            await running.wait()
            async for event in running.events():
                if event.reason is EventReason.EXITED and event.container == "side":
                    break
        assert isinstance(running.status().container("side").state, Terminated)
        side = running.status().container("side")
        assert side.exit_code == 137  # busybox's sleep ignores SIGTERM: killed after 2 s
        assert side.restart_count == 0


def slow_starts(fake: FakeBackend, name: str, seconds: float, *, shielded: bool = False) -> None:
    """Make starting container *name* take *seconds*; *shielded*: a cancelled start still
    goes through, as on Podman (whose short calls are waited for when cancelled)."""
    start = fake.start_container

    async def slow_start(container: str) -> None:
        if fake.container(container).short_name != name:
            await start(container)
        elif shielded:
            with anyio.CancelScope(shield=True):
                await anyio.sleep(seconds)
                await start(container)
            await anyio.lowlevel.checkpoint()
        else:
            await anyio.sleep(seconds)
            await start(container)

    fake.start_container = slow_start  # type: ignore[method-assign]


async def test_sidecar_retired_while_restarting_is_stopped_and_probed_no_more(
    fake: FakeBackend,
) -> None:
    """The start under way ends, the sidecar is stopped, and no probe runs after that."""
    fake.programs["job"] = Program(delay=None)
    fake.programs["side"] = Program(delay=None)
    probe = Probe(exec=ExecAction(command=["true"]), period_seconds=1)
    pod = Pod(
        name="p",
        restart_policy="Never",
        init_containers=[sidecar("side", readiness_probe=probe)],
        containers=[ctr("job")],
    )
    async with asyncpod.open_pod(pod, backend=fake) as running:
        slow_starts(fake, "side", 1)
        fake.crash("side", 1)
        await anyio.sleep(0.1)  # its restart is starting
        fake.crash("job", 0)  # the job is done: the sidecar retires
        await anyio.sleep(30)
        side = fake.container("side")
        assert side.state is asyncpod.backends.RuntimeState.EXITED
        status = running.status().container("side")
        assert not status.started
        assert not status.ready
        late = [e async for e in _replay(running) if e.container == "side" and e.time > 5]
        assert late == []


async def _replay(running: asyncpod.RunningPod) -> AsyncIterator[PodEvent]:
    with anyio.move_on_after(0.01):
        async for event in running.events():
            yield event


async def test_kill_event_kills_a_container_whose_cancelled_start_went_through(
    fake: FakeBackend,
) -> None:
    fake.programs["slow"] = Program(delay=None, ignore_term=True)
    slow_starts(fake, "slow", 1, shielded=True)
    pod = Pod(name="p", containers=[ctr("slow")], termination_grace_period_seconds=30)
    kill = anyio.Event()
    kill.set()
    started = anyio.current_time()
    with anyio.move_on_after(0.5):  # cancelled while the start is under way
        async with asyncpod.open_pod(pod, backend=fake, kill_event=kill):
            pass
    assert anyio.current_time() - started < 2


async def test_a_teardown_during_a_retirement_keeps_the_retirement_grace(
    fake: FakeBackend,
) -> None:
    """The job ends at 1: the sidecars' grace runs out at 11. "a" ends its 9 s preStop at
    10 and gets the 2 s minimum: killed at 12. A teardown from 3 on grants no more (in
    Kubernetes a deletion may only shorten a grace period under way)."""
    fake.programs.update(
        job=Program(exit_code=0, delay=1),
        a=Program(delay=None, ignore_term=True),
        b=Program(delay=None),
    )
    hook = Lifecycle(pre_stop=LifecycleHandler(sleep=SleepAction(seconds=9)))
    pod = Pod(
        name="p",
        restart_policy="Never",
        termination_grace_period_seconds=10,
        init_containers=[sidecar("a", lifecycle=hook), sidecar("b")],
        containers=[ctr("job")],
    )
    started = anyio.current_time()
    events = await record(pod, fake, seconds=3)
    (exited,) = of(events, EventReason.EXITED, "a")
    assert exited.time - started == pytest.approx(12)


async def test_a_probe_kill_under_way_spares_the_next_run(fake: FakeBackend) -> None:
    """A liveness kill is under way (its stop goes through though cancelled, as Podman's
    does) when the container crashes on its own: the restart waits for the kill to end,
    so the kill hits the old run, not the new one."""

    async def web(ctx: FakeContext) -> None:
        run = fake.container("web").starts

        async def check(argv: tuple[str, ...]) -> ExecResult:
            return ExecResult(1 if run == 1 else 0)  # only the first run is unhealthy

        ctx.exec_handler = check
        await anyio.sleep_forever()

    fake.programs["web"] = web
    kill = fake.kill_container

    async def slow_stop(container: str, *, grace: float) -> int | None:
        found = fake.container(container)
        with anyio.CancelScope(shield=True):  # the stop request is under way
            await anyio.sleep(0.5)
            await kill(container, signal=15)
        while found.state is RuntimeState.RUNNING:
            await found.changed.wait()
        return found.exit_code

    fake.stop_container = slow_stop  # type: ignore[method-assign]
    probe = Probe(
        exec=ExecAction(command=["check"]),
        initial_delay_seconds=1,
        period_seconds=5,
        failure_threshold=1,
    )
    pod = Pod(name="p", containers=[ctr("web", liveness_probe=probe)])
    async with asyncpod.open_pod(pod, backend=fake) as running:
        await anyio.sleep(1.2)  # the probe failed at 1; the stop signal goes out at 1.5
        fake.crash("web", 1)
        await anyio.sleep(5)
        web_status = running.status().container("web")
        assert web_status.restart_count == 1
        assert isinstance(web_status.state, Running)


# Objects removed behind asyncpod's back


def owned(fake: FakeBackend, kind: str, container: str | None = None) -> list[OwnedObject]:
    """The objects of *kind* (of *container* only, if given) that exist now."""
    return [
        o
        for o in fake.objects()
        if o.type == kind and (container is None or o.labels.get(LABEL_CONTAINER) == container)
    ]


async def test_a_removed_container_is_created_anew_with_back_off(fake: FakeBackend) -> None:
    """As the kubelet does: a container that vanished is replaced by a new one from its
    spec, counted as a restart, with the restart back-off (not an endless start loop)."""
    pod = Pod(name="p", containers=[ctr("web"), ctr("db")])
    events: list[PodEvent] = []
    async with asyncpod.open_pod(pod, backend=fake, on_event=events.append) as running:
        first = running.container_id("web")
        await fake.remove_objects(owned(fake, "container", "web"))
        await anyio.sleep(1)
        web = running.status().container("web")
        assert isinstance(web.state, Running)
        assert web.restart_count == 1
        assert web.container_id != first
        assert web.last_state is not None
        assert (web.last_state.exit_code, web.last_state.reason) == (137, "ContainerStatusUnknown")
        assert fake.container("web").id == web.container_id
        assert running.status().phase is Phase.RUNNING

        second = web.container_id
        await fake.remove_objects(owned(fake, "container", "web"))
        await anyio.sleep(5)  # the second restart waits out a 10 s back-off
        web = running.status().container("web")
        assert web.state.reason == "CrashLoopBackOff"  # type: ignore[union-attr]
        await anyio.sleep(6)
        web = running.status().container("web")
        assert isinstance(web.state, Running)
        assert web.restart_count == 2
        assert web.container_id not in (first, second)
        assert running.status().container("db").restart_count == 0
    reasons = [e.reason for e in events if e.container == "web"]
    assert reasons.count(EventReason.CREATED) == 3
    assert reasons.count(EventReason.STARTED) == 3
    assert [op for op, target in fake.calls if op == "create_container" and target == "web"] == [
        "create_container"
    ] * 3


async def test_a_container_removed_before_its_start_is_created_anew(fake: FakeBackend) -> None:
    fake.programs["init"] = Program(delay=5)
    pod = Pod(name="p", init_containers=[ctr("init")], containers=[ctr("web")])
    async with anyio.create_task_group() as tg:

        async def remove_web() -> None:
            await anyio.sleep(1)
            await fake.remove_objects(owned(fake, "container", "web"))

        tg.start_soon(remove_web)
        with anyio.fail_after(120):  # not an endless loop of failed starts
            async with asyncpod.open_pod(pod, backend=fake) as running:
                web = running.status().container("web")
                assert isinstance(web.state, Running)
                assert web.restart_count == 0  # its first run, in a new container
                assert fake.container("web").id == web.container_id


async def test_a_removed_pod_fails_with_a_typed_error(fake: FakeBackend) -> None:
    pod = Pod(name="p", containers=[ctr("web")])
    events: list[PodEvent] = []
    async with asyncpod.open_pod(pod, backend=fake, on_event=events.append) as running:
        await fake.remove_objects(owned(fake, "pod"))
        with anyio.fail_after(60):
            status = await running.wait()
        assert status.phase is Phase.FAILED
        with pytest.raises(asyncpod.PodVanishedError, match=r"'p'.*vanished") as info:
            await running.wait_ready()
        assert info.value.pod == "p"
        assert info.value.pod_id == running.id
        await anyio.sleep(700)  # nothing is restarted, nothing created again
        web = running.status().container("web")
        assert isinstance(web.state, Terminated)
        assert web.state.reason == "ContainerStatusUnknown"
        assert web.restart_count <= 1
    failed = [e for e in events if e.reason is EventReason.FAILED]
    assert len(failed) == 1
    assert "vanished" in failed[0].message
    assert [op for op, _ in fake.calls].count("create_container") <= 2


async def test_a_pod_removed_during_bring_up_fails_it(fake: FakeBackend) -> None:
    fake.programs["init"] = Program(delay=5)
    pod = Pod(name="p", init_containers=[ctr("init")], containers=[ctr("web")])
    async with anyio.create_task_group() as tg:

        async def remove_pod() -> None:
            await anyio.sleep(1)
            await fake.remove_objects(owned(fake, "pod"))

        tg.start_soon(remove_pod)
        with pytest.raises(asyncpod.PodVanishedError):
            async with asyncpod.open_pod(pod, backend=fake):
                pytest.fail("the pod came up")  # pragma: no cover


async def test_a_pod_removed_is_failed_at_once_not_after_the_back_off(fake: FakeBackend) -> None:
    fake.programs["web"] = Program(exit_code=1, delay=1)
    pod = Pod(name="p", containers=[ctr("web")])
    async with asyncpod.open_pod(pod, backend=fake) as running:
        await anyio.sleep(12.5)  # exits at 1 and 2, back-off 10 s: running again since 12
        assert running.status().container("web").restart_count == 2
        await fake.remove_objects(owned(fake, "pod"))
        with anyio.fail_after(1):  # not after the next back-off, 20 s
            status = await running.wait()
        assert status.phase is Phase.FAILED
        web = status.container("web")
        assert isinstance(web.state, Terminated)
        assert web.state.reason == "ContainerStatusUnknown"
