"""open_pod on the FakeBackend: ordering, failures, restarts, probes, teardown, cancellation."""

from __future__ import annotations

import itertools
import sys
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

import asyncpod
from asyncpod import (
    Container,
    ContainerFailedError,
    EmptyDirVolumeSource,
    EventReason,
    ExecAction,
    Phase,
    Pod,
    PodEvent,
    Probe,
    Volume,
    VolumeMount,
)
from asyncpod._events import EventLog
from asyncpod.backends import FakeBackend, FakeContext, Program

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import ExceptionGroup  # type: ignore[import-not-found,unused-ignore]

pytestmark = pytest.mark.anyio

IMAGE = "busybox:latest"


def ctr(name: str, *command: str, **kwargs: object) -> Container:
    return Container(name=name, image=IMAGE, command=command or ("sleep", "inf"), **kwargs)  # type: ignore[arg-type]


async def _until(
    events: AsyncIterator[PodEvent], reason: EventReason, count: int = 1
) -> AsyncIterator[PodEvent]:
    """*events* up to and including the *count*-th one with *reason*."""
    async for event in events:
        yield event
        if event.reason is reason:
            count -= 1
            if count == 0:
                return


async def _first(events: AsyncIterator[PodEvent], reason: EventReason) -> PodEvent:
    """The first event of *events* with *reason*."""
    async for event in events:
        if event.reason is reason:
            return event
    raise AssertionError(f"no {reason.value} event")


def starts(fake: FakeBackend) -> list[str]:
    """Pod-local names of containers in the order they were started."""
    return [target for op, target in fake.calls if op == "start_container"]


def stops(fake: FakeBackend) -> list[str]:
    return [target for op, target in fake.calls if op == "stop_container"]


def seed_pod(**kwargs: object) -> Pod:
    fields: dict[str, object] = {
        "name": "javaweb-2",
        "init_containers": [
            ctr(
                "war",
                "cp",
                "/app.war",
                "/app",
                volume_mounts=[VolumeMount(name="app", mount_path="/app")],
            )
        ],
        "containers": [
            ctr(
                "tomcat",
                "httpd",
                "-f",
                "-p",
                "8080",
                "-h",
                "/webapps",
                volume_mounts=[VolumeMount(name="app", mount_path="/webapps")],
            ),
        ],
        "volumes": [Volume(name="app", empty_dir=EmptyDirVolumeSource())],
    }
    fields.update(kwargs)
    return Pod(**fields)  # type: ignore[arg-type]


class TestBringUp:
    async def test_seed_pod_init_data_reaches_app(self, fake: FakeBackend) -> None:
        """The init container's copy of the war is served by the web container."""
        fake.add_image(IMAGE, {"/app.war": b"WAR"})
        async with asyncpod.open_pod(seed_pod(), backend=fake) as running:
            status = running.status()
            assert status.phase is Phase.RUNNING
            assert status.container("war").exit_code == 0
            assert status.conditions.initialized
            result = await running.exec("tomcat", ["cat", "/webapps/app.war"])
            assert result.stdout == b"WAR"
        assert starts(fake) == ["war", "tomcat"]

    async def test_depends_on_orders_and_parallel_branches(self, fake: FakeBackend) -> None:
        """App containers start after what they depend on; independent ones start together."""
        pod = Pod(
            name="p",
            containers=[
                ctr("web", depends_on=["api"]),
                ctr("api", depends_on={"db": "ready", "migrate": "completed"}),
                ctr(
                    "db", readiness_probe=Probe(exec=ExecAction(command=["true"]), period_seconds=5)
                ),
                ctr("migrate", "sleep", "30", restart_policy="OnFailure"),
                ctr("cache"),
            ],
        )
        async with asyncpod.open_pod(pod, backend=fake) as running:
            order = starts(fake)
            assert set(order[:3]) == {"db", "migrate", "cache"}
            assert order[3:] == ["api", "web"]
            assert anyio.current_time() >= 30  # api waited for migrate to complete
            assert running.status().container("migrate").exit_code == 0

    async def test_sidecar_is_started_before_next_init_and_stopped_last(
        self, fake: FakeBackend
    ) -> None:
        """A native sidecar gates the next init step on its startup probe and stops after apps."""
        fake.programs["log"] = Program(delay=None)
        pod = Pod(
            name="p",
            init_containers=[
                ctr("init-a", "true"),
                ctr(
                    "log",
                    restart_policy="Always",
                    startup_probe=Probe(
                        exec=ExecAction(command=["test", "-e", "/ready"]),
                        period_seconds=1,
                        failure_threshold=100,
                    ),
                ),
                ctr("proxy", restart_policy="Always"),
                ctr("init-b", "true"),
            ],
            containers=[ctr("app"), ctr("worker", depends_on=["app"])],
        )

        async def make_ready() -> None:
            await anyio.sleep(5)
            fake.container("log").fs.write("/ready", b"")

        async with anyio.create_task_group() as tg:
            tg.start_soon(make_ready)
            async with asyncpod.open_pod(pod, backend=fake) as running:
                assert anyio.current_time() >= 5
                assert starts(fake) == ["init-a", "log", "proxy", "init-b", "app", "worker"]
                assert running.status().container("log").started
        assert stops(fake) == ["worker", "app", "proxy", "log"]

    async def test_env_expansion_in_command(self, fake: FakeBackend) -> None:
        """$(VAR) in command and env expands as Kubernetes does; $$ escapes."""
        pod = Pod(
            name="p",
            containers=[
                ctr(
                    "c",
                    "echo",
                    "$(GREETING)",
                    "$$(HOME)",
                    "$(MISSING)",
                    env={"NAME": "pod", "GREETING": "hello-$(NAME)"},
                ),
            ],
            restart_policy="Never",
        )
        async with asyncpod.open_pod(pod, backend=fake) as running:
            await running.wait()
            async with running.logs("c") as lines:
                text = [line.text async for line in lines]
        assert text == ["hello-pod $(HOME) $(MISSING)"]

    async def test_command_without_args_clears_the_image_args(self, fake: FakeBackend) -> None:
        """Kubernetes: command given, args not: the image's command is dropped too (args=())."""
        pod = Pod(
            name="p",
            containers=[
                ctr("cmd", "sleep", "inf"),
                Container(name="both", image=IMAGE, command=["sleep"], args=["inf"]),
                Container(name="args", image=IMAGE, args=["inf"]),
                Container(name="image", image=IMAGE),
            ],
        )
        # the fake has no image entrypoint to run "inf" with: it stands in for it
        fake.programs["args"] = Program(delay=None)
        async with asyncpod.open_pod(pod, backend=fake):
            specs = {name: fake.container(name).spec for name in ("cmd", "both", "args", "image")}
        assert (specs["cmd"].command, specs["cmd"].args) == (("sleep", "inf"), ())
        assert (specs["both"].command, specs["both"].args) == (("sleep",), ("inf",))
        assert (specs["args"].command, specs["args"].args) == (None, ("inf",))
        assert (specs["image"].command, specs["image"].args) == (None, None)


class TestFailures:
    async def test_init_failure_under_never_raises_after_cleanup(self, fake: FakeBackend) -> None:
        """A failing init container under Never names itself, its exit code and its logs."""
        pod = seed_pod(
            init_containers=[ctr("war", "sh", "-c", "echo no war here >&2; exit 3")],
            restart_policy="Never",
        )
        with pytest.raises(ContainerFailedError) as info:
            async with asyncpod.open_pod(pod, backend=fake):
                pytest.fail("the pod came up")
        assert (info.value.container, info.value.exit_code) == ("war", 3)
        assert info.value.logs == ("no war here",)
        assert "no war here" in str(info.value)
        assert "tomcat" not in starts(fake)

    async def test_init_failure_under_always_retries_with_backoff(self, fake: FakeBackend) -> None:
        """Under Always a failing init container is retried with back-off; the pod stays Pending."""
        pod = seed_pod(init_containers=[ctr("war", "false")])
        with pytest.raises(TimeoutError):
            with anyio.fail_after(100):
                async with asyncpod.open_pod(pod, backend=fake):
                    pytest.fail("the pod came up")
        # runs at 0, 0 (first restart immediate), 10, 30, 70; the next would be at 150
        assert starts(fake) == ["war"] * 5

    async def test_missing_image_fails_before_anything_is_created(self) -> None:
        """A missing image raises ImageError naming it, and nothing was created."""
        async with FakeBackend(images=[IMAGE], registry=[]) as fake:
            pod = Pod(name="p", containers=[ctr("a"), Container(name="b", image="nope:1")])
            with pytest.raises(asyncpod.ImageError, match="nope:1"):
                async with asyncpod.open_pod(pod, backend=fake):
                    pytest.fail("the pod came up")
            assert not any(op.startswith("create") for op, _ in fake.calls)

    async def test_create_failure_cleans_up(self, fake: FakeBackend) -> None:
        """A failing container create raises the backend's error and removes what was made."""
        fake.inject("create_container", target="b", error=asyncpod.BackendError("disk full"))
        pod = Pod(
            name="p",
            containers=[ctr("a"), ctr("b"), ctr("c")],
            volumes=[Volume(name="v", empty_dir=EmptyDirVolumeSource())],
        )
        with pytest.raises(asyncpod.BackendError, match="disk full"):
            async with asyncpod.open_pod(pod, backend=fake):
                pytest.fail("the pod came up")

    async def test_dependency_that_fails_is_reported(self, fake: FakeBackend) -> None:
        """A dependency that can never complete fails bring-up, naming both containers."""
        pod = Pod(
            name="p",
            containers=[ctr("migrate", "false"), ctr("app", depends_on={"migrate": "completed"})],
            restart_policy="Never",
        )
        with pytest.raises(asyncpod.DependencyFailedError) as info:
            async with asyncpod.open_pod(pod, backend=fake):
                pytest.fail("the pod came up")
        assert (info.value.container, info.value.dependent) == ("migrate", "app")

    async def test_app_that_never_starts_fails_bring_up(self, fake: FakeBackend) -> None:
        """Under Never, an app container that cannot start, or dies before its startup probe
        passes, fails bring-up instead of leaving it waiting forever."""
        fake.inject("start_container", target="web", error=asyncpod.BackendError("no such binary"))
        pod = Pod(name="p", containers=[ctr("web")], restart_policy="Never")
        with pytest.raises(ContainerFailedError, match="failed to start") as info:
            async with asyncpod.open_pod(pod, backend=fake):
                pytest.fail("the pod came up")
        assert info.value.container == "web"
        assert "no such binary" in info.value.logs

        never = Probe(exec=ExecAction(command=["false"]), period_seconds=1, failure_threshold=2)
        pod = Pod(name="q", containers=[ctr("web", startup_probe=never)], restart_policy="Never")
        with pytest.raises(ContainerFailedError, match="exited before it started"):
            async with asyncpod.open_pod(pod, backend=fake):
                pytest.fail("the pod came up")

    @pytest.mark.parametrize("when", ["first start", "restart after the vanish"])
    async def test_engine_failure_at_start_ends_bring_up(
        self, fake: FakeBackend, when: str
    ) -> None:
        """The service lost while a container starts is the engine's failure, not the
        container's: the typed error reaches the caller at once (no StartError, no back-off
        of 10, 20, 40 s...), and the teardown still runs."""
        lost = asyncpod.BackendUnavailableError("lost the connection to the Podman service")
        if when == "first start":
            fake.inject("start_container", target="web", error=lost, times=None)
        else:  # the container vanished; creating it again finds the service gone
            fake.inject("start_container", target="web", error=asyncpod.ObjectNotFoundError("gone"))

        def on_event(event: PodEvent) -> None:
            if when != "first start" and event.reason is EventReason.CREATED:
                fake.inject("create_container", target="web", error=lost, times=None)

        pod = Pod(name="p", containers=[ctr("side"), ctr("web")])
        with anyio.fail_after(5), pytest.raises(asyncpod.BackendUnavailableError, match="lost"):
            async with asyncpod.open_pod(pod, backend=fake, on_event=on_event):
                pytest.fail("the pod came up")

    async def test_same_name_at_once_one_winner(self, fake: FakeBackend) -> None:
        """Two runs of one pod name at once: exactly one comes up; the other gets
        ObjectExistsError and leaves the winner's pod and volumes alone. (The first caller's
        pod create answers only after the other's, so that, were pod and volumes created
        together, it would win the volume's name while the other won the pod's.)"""
        original = fake.create_pod
        calls = 0
        second_created = anyio.Event()

        async def slow_first(spec: Any) -> str:
            nonlocal calls
            calls += 1
            if calls == 1:  # until the other caller's pod create has answered
                await second_created.wait()
                return await original(spec)
            try:
                return await original(spec)
            finally:
                second_created.set()

        fake.create_pod = slow_first  # type: ignore[method-assign]
        pod = Pod(
            name="p",
            containers=[ctr("a")],
            volumes=[Volume(name="v", empty_dir=EmptyDirVolumeSource())],
        )
        outcomes: dict[int, object] = {}
        loser_done = anyio.Event()

        async def run(which: int) -> None:
            try:
                async with asyncpod.open_pod(pod, backend=fake) as running:
                    outcomes[which] = "won"
                    await loser_done.wait()
                    names = {(o.type, o.name) for o in fake.objects()}
                    assert ("pod", "p") in names
                    assert ("volume", "p-v") in names
                    assert running.status().phase is Phase.RUNNING
            except asyncpod.ObjectExistsError as exc:
                outcomes[which] = exc
                loser_done.set()

        with anyio.fail_after(60):  # the winner's teardown takes its grace period
            async with anyio.create_task_group() as tg:
                tg.start_soon(run, 1)
                tg.start_soon(run, 2)
        assert sorted(outcomes) == [1, 2]
        assert sum(o == "won" for o in outcomes.values()) == 1, outcomes
        assert sum(isinstance(o, asyncpod.ObjectExistsError) for o in outcomes.values()) == 1

    async def test_body_exception_propagates_unwrapped(self, fake: FakeBackend) -> None:
        """An exception raised in the block reaches the caller as itself, after teardown."""
        fake.add_image(IMAGE, {"/app.war": b"WAR"})
        with pytest.raises(KeyError, match="mine"):
            async with asyncpod.open_pod(seed_pod(), backend=fake):
                raise KeyError("mine")

    async def test_body_exception_group_comes_out_as_raised(self, fake: FakeBackend) -> None:
        """A group the block raises stays that group: only asyncpod's own wrapping goes."""
        fake.add_image(IMAGE, {"/app.war": b"WAR"})
        mine = ExceptionGroup("mine", [ValueError("inner")])
        with pytest.raises(ExceptionGroup) as info:
            async with asyncpod.open_pod(seed_pod(), backend=fake):
                raise mine
        assert info.value is mine

    async def test_body_exception_keeps_its_context_and_cause(self, fake: FakeBackend) -> None:
        fake.add_image(IMAGE, {"/app.war": b"WAR"})
        with pytest.raises(ValueError, match="handling") as info:
            async with asyncpod.open_pod(seed_pod(), backend=fake):
                try:
                    {"key": 0}["original"]
                except KeyError:
                    raise ValueError("while handling")  # noqa: B904 - the context is the point
        assert isinstance(info.value.__context__, KeyError)
        assert not info.value.__suppress_context__
        assert info.value.__cause__ is None

        cause = OSError("cause")
        with pytest.raises(ValueError, match="caused") as info:
            async with asyncpod.open_pod(seed_pod(), backend=fake):
                raise ValueError("caused") from cause
        assert info.value.__cause__ is cause
        assert info.value.__suppress_context__


class TestRestarts:
    async def test_crash_loop_backoff_doubles(self, fake: FakeBackend) -> None:
        """Restarts: immediate, then 10 s doubling, shown as CrashLoopBackOff."""
        times: list[float] = []

        async def crasher(ctx: FakeContext) -> int:
            times.append(anyio.current_time())
            await anyio.sleep(1)
            return 1

        fake.programs["c"] = crasher
        pod = Pod(name="p", containers=[ctr("c")])
        async with asyncpod.open_pod(pod, backend=fake) as running:
            await anyio.sleep(200)
            status = running.status().container("c")
        gaps = [round(b - a) for a, b in itertools.pairwise(times)]
        # each run lasts 1 s; restarts come at once, then after 10, 20, 40, 80 s
        assert gaps == [1, 11, 21, 41, 81]
        assert status.restart_count == 5

    async def test_waiting_reason_is_crash_loop_backoff(self, fake: FakeBackend) -> None:
        """While backing off the container waits with reason CrashLoopBackOff and a last state."""
        fake.programs["c"] = Program(exit_code=2, delay=0)
        pod = Pod(name="p", containers=[ctr("c")])
        async with asyncpod.open_pod(pod, backend=fake) as running:
            await anyio.sleep(5)
            status = running.status().container("c")
            assert isinstance(status.state, asyncpod.Waiting)
            assert status.state.reason == "CrashLoopBackOff"
            assert status.last_state is not None and status.last_state.exit_code == 2
            assert running.status().phase is Phase.RUNNING

    async def test_phases_of_finished_pods(self, fake: FakeBackend) -> None:
        """Never: all exit 0 is Succeeded; any non-zero is Failed. Sidecars don't count."""
        fake.programs["side"] = Program(delay=None)
        ok = Pod(
            name="ok",
            init_containers=[ctr("side", restart_policy="Always")],
            containers=[ctr("a", "true"), ctr("b", "true")],
            restart_policy="Never",
        )
        async with asyncpod.open_pod(ok, backend=fake) as running:
            assert (await running.wait()).phase is Phase.SUCCEEDED
        bad = attrs_evolve(ok, name="bad", containers=[ctr("a", "true"), ctr("b", "false")])
        async with asyncpod.open_pod(bad, backend=fake) as running:
            assert (await running.wait()).phase is Phase.FAILED

    async def test_on_failure_restarts_only_failures(self, fake: FakeBackend) -> None:
        """OnFailure restarts a failing container and lets a successful one finish."""
        runs = {"flaky": 0}

        async def flaky(ctx: FakeContext) -> int:
            runs["flaky"] += 1
            return 0 if runs["flaky"] >= 3 else 1

        fake.programs["flaky"] = flaky
        pod = Pod(
            name="p", containers=[ctr("flaky"), ctr("done", "true")], restart_policy="OnFailure"
        )
        async with asyncpod.open_pod(pod, backend=fake) as running:
            final = await running.wait()
        assert final.phase is Phase.SUCCEEDED
        assert final.container("flaky").restart_count == 2
        assert final.container("done").restart_count == 0


def attrs_evolve(pod: Pod, **changes: object) -> Pod:
    import attrs

    return attrs.evolve(pod, **changes)  # type: ignore[arg-type]


class TestProbes:
    async def test_readiness_follows_probe(self, fake: FakeBackend) -> None:
        """Ready only once the readiness probe passes, and not ready again when it fails."""
        probe = Probe(
            exec=ExecAction(command=["test", "-e", "/tmp/ready"]),
            period_seconds=2,
            failure_threshold=1,
        )
        pod = Pod(name="p", containers=[ctr("web", readiness_probe=probe)])
        async with asyncpod.open_pod(pod, backend=fake) as running:
            assert not running.status().conditions.ready
            fake.container("web").fs.write("/tmp/ready", b"")
            with anyio.fail_after(10):
                status = await running.wait_ready()
            assert status.container("web").ready
            fake.container("web").fs.remove("/tmp/ready")
            await anyio.sleep(5)
            assert not running.status().conditions.ready

    async def test_liveness_failure_restarts(self, fake: FakeBackend) -> None:
        """Failing the liveness probe failureThreshold times restarts the container."""
        probe = Probe(exec=ExecAction(command=["check"]), period_seconds=1, failure_threshold=3)
        pod = Pod(name="p", containers=[ctr("web", liveness_probe=probe)])
        async with asyncpod.open_pod(pod, backend=fake) as running:
            fake.set_exec_result("web", ["check"], 0)
            await anyio.sleep(10)
            assert running.status().container("web").restart_count == 0
            fake.set_exec_result("web", ["check"], 1)
            # busybox's sleep as PID 1 ignores SIGTERM: killed at the end of the pod's 30 s.
            await anyio.sleep(3 + 30 + 1)
            status = running.status().container("web")
            assert status.restart_count == 1
            assert status.last_state is not None and status.last_state.exit_code == 137
            events = [
                (e.reason.value, e.message, e.exit_code)
                async for e in _until(running.events(), EventReason.STARTED, 2)
            ]
        assert events[-8:] == [
            ("Unhealthy", "Liveness probe failed: command exited with 1", None),
            ("Unhealthy", "Liveness probe failed: command exited with 1", None),
            ("Unhealthy", "Liveness probe failed: command exited with 1", None),
            ("Killing", "Container web failed its liveness probe, will be stopped", None),
            ("NotReady", "", None),
            ("Exited", "Error", 137),
            ("Restarting", "", None),
            ("Started", "", None),
        ]

    async def test_http_and_tcp_probes_reach_the_pod(self, fake: FakeBackend) -> None:
        """HTTP and TCP probes go through the backend into the pod's network."""
        http = Probe(http_get=asyncpod.HTTPGetAction(port="web", path="/"), period_seconds=1)
        tcp = Probe(tcp_socket=asyncpod.TCPSocketAction(port=8080), period_seconds=1)
        pod = Pod(
            name="p",
            containers=[
                ctr(
                    "web",
                    "httpd",
                    "-f",
                    "-p",
                    "8080",
                    "-h",
                    "/www",
                    ports=[asyncpod.ContainerPort(container_port=8080, name="web")],
                    readiness_probe=http,
                    liveness_probe=tcp,
                ),
            ],
        )
        fake.add_image(IMAGE, {"/www/index.html": b"hi"})
        async with asyncpod.open_pod(pod, backend=fake) as running:
            with anyio.fail_after(10):
                await running.wait_ready()
            await anyio.sleep(10)
            assert running.status().container("web").restart_count == 0

    async def test_liveness_kill_uses_the_probe_grace_period(self, fake: FakeBackend) -> None:
        """A probe's terminationGracePeriodSeconds overrides the pod's for its kills."""
        probe = Probe(
            exec=ExecAction(command=["false"]),
            period_seconds=1,
            failure_threshold=1,
            termination_grace_period_seconds=5,
        )
        pod = Pod(name="p", containers=[ctr("web", liveness_probe=probe)], restart_policy="Never")
        async with asyncpod.open_pod(pod, backend=fake) as running:
            killing = await _first(running.events(), EventReason.KILLING)
            exited = await _first(running.events(), EventReason.EXITED)
            assert exited.time - killing.time == pytest.approx(5)  # not the pod's 30 s
            assert exited.exit_code == 137


class TestEvents:
    async def test_replayed_to_late_readers_and_ended_by_teardown(self, fake: FakeBackend) -> None:
        """A reader sees the whole run from its first event; iteration ends at TornDown."""
        pod = Pod(name="p", init_containers=[ctr("init", "true")], containers=[ctr("web")])
        reasons: list[tuple[str, str | None]] = []

        async def read(events: AsyncIterator[PodEvent]) -> None:
            reasons.extend([(e.reason.value, e.container) async for e in events])

        async with anyio.create_task_group() as tg:
            async with asyncpod.open_pod(pod, backend=fake) as running:
                tg.start_soon(read, running.events())  # opened after bring-up
        assert reasons[-3:] == [("Killing", "web"), ("Exited", "web"), ("TornDown", None)]
        assert reasons[:2] == [("Created", "init"), ("Created", "web")] or reasons[:2] == [
            ("Created", "web"),
            ("Created", "init"),
        ]
        assert ("Up", None) in reasons

    async def test_on_event_follows_bring_up_and_teardown(self, fake: FakeBackend) -> None:
        """on_event gets every event as it happens, bring-up included, as readers get them."""
        pod = Pod(name="p", init_containers=[ctr("init", "true")], containers=[ctr("web")])
        seen: list[PodEvent] = []
        read: list[PodEvent] = []

        async def reader(events: AsyncIterator[PodEvent]) -> None:
            read.extend([e async for e in events])

        async with anyio.create_task_group() as tg:
            async with asyncpod.open_pod(pod, backend=fake, on_event=seen.append) as running:
                assert EventReason.UP in [e.reason for e in seen]  # before the block runs
                up = len(seen)
                tg.start_soon(reader, running.events())
        assert seen == read
        assert [(e.reason.value, e.container) for e in seen[up:]] == [
            ("Terminating", None),
            ("Killing", "web"),
            ("Exited", "web"),
            ("TornDown", None),
        ]

    async def test_on_event_sees_a_failed_bring_up(self, fake: FakeBackend) -> None:
        pod = seed_pod(init_containers=[ctr("war", "sh", "-c", "exit 3")], restart_policy="Never")
        seen: list[PodEvent] = []
        with pytest.raises(ContainerFailedError):
            async with asyncpod.open_pod(pod, backend=fake, on_event=seen.append):
                pytest.fail("the pod came up")
        exited = next(e for e in seen if e.reason is EventReason.EXITED)
        assert (exited.container, exited.exit_code) == ("war", 3)
        assert [e.reason for e in seen][-2:] == [EventReason.TERMINATING, EventReason.TORN_DOWN]
        assert EventReason.FAILED in [e.reason for e in seen]

    async def test_on_event_raising_is_logged_and_changes_nothing(
        self, fake: FakeBackend, caplog: pytest.LogCaptureFixture
    ) -> None:
        seen: list[EventReason] = []

        def on_event(event: PodEvent) -> None:
            seen.append(event.reason)
            if event.reason is EventReason.STARTED:
                raise RuntimeError("a broken display")

        pod = Pod(name="p", containers=[ctr("web")])
        with caplog.at_level("ERROR", logger="asyncpod"):
            async with asyncpod.open_pod(pod, backend=fake, on_event=on_event) as running:
                assert running.status().phase is Phase.RUNNING
        assert seen[-1] is EventReason.TORN_DOWN
        [record] = [r for r in caplog.records if r.exc_info]
        assert "on_event raised on Started" in record.getMessage()
        assert str(record.exc_info[1]) == "a broken display"  # type: ignore[index]

    async def test_readers_skip_what_the_bounded_log_dropped(self) -> None:
        """The log keeps its last N events; a slow reader goes on from the oldest kept."""
        log = EventLog(size=3)
        reader = log.follow()
        for n in range(5):
            log.append((n, EventReason.STARTED, f"c{n}", "", None, 0, 0.0))
        log.close()
        assert [e.container async for e in reader] == ["c2", "c3", "c4"]
        assert [e.container async for e in log.follow()] == ["c2", "c3", "c4"]


class TestTeardown:
    async def test_grace_period_then_kill(self, fake: FakeBackend) -> None:
        """A container ignoring SIGTERM is killed when the pod's grace period runs out."""
        fake.programs["stubborn"] = Program(delay=None, ignore_term=True)
        pod = Pod(name="p", containers=[ctr("stubborn")], termination_grace_period_seconds=7)
        async with asyncpod.open_pod(pod, backend=fake):
            t0 = anyio.current_time()
        assert anyio.current_time() - t0 == pytest.approx(7)

    async def test_cancellation_tears_down(self, fake: FakeBackend) -> None:
        """Cancelling the block still stops and removes everything."""
        fake.add_image(IMAGE, {"/app.war": b"WAR"})
        with anyio.move_on_after(1):
            async with asyncpod.open_pod(seed_pod(), backend=fake):
                await anyio.sleep_forever()
        assert fake.objects() == []

    async def test_cancel_at_every_checkpoint_of_bring_up(self) -> None:
        """Cancel bring-up at its k-th backend call, for every k: nothing is ever left behind."""
        pod = Pod(
            name="sweep",
            init_containers=[
                ctr("init", "true"),
                ctr("side", restart_policy="Always"),
                ctr("init2", "true"),
            ],
            containers=[
                ctr("a"),
                ctr("b", depends_on=["a"]),
                ctr("c", depends_on={"b": "started"}),
            ],
            volumes=[Volume(name="v", empty_dir=EmptyDirVolumeSource())],
        )
        async with FakeBackend() as fake, asyncpod.open_pod(pod, backend=fake):
            total = len(fake.calls)
        assert total > 10
        for k in range(1, total + 1):
            async with FakeBackend() as fake:
                with anyio.CancelScope() as scope:
                    count = 0
                    original = fake._enter

                    async def counting(
                        operation: str,
                        target: str = "",
                        *aliases: str,
                        k: int = k,
                        original: Any = original,
                    ) -> None:
                        nonlocal count
                        count += 1
                        if count == k:
                            scope.cancel()
                        await original(operation, target, *aliases)

                    fake._enter = counting  # type: ignore[method-assign]
                    async with asyncpod.open_pod(pod, backend=fake):
                        pass
                assert fake.objects() == [], f"left behind after cancelling at call {k}"


class TestScale:
    async def test_idle_containers_have_no_task_of_their_own(self, fake: FakeBackend) -> None:
        """Once up, a pod of plain containers keeps a few tasks, not one per container."""
        pod = Pod(name="big", containers=[Container(name=f"c{i}", image=IMAGE) for i in range(300)])
        async with asyncpod.open_pod(pod, backend=fake) as running:
            await anyio.sleep(1)  # the bring-up's workers end
            assert running.status().phase is Phase.RUNNING
            assert len(anyio.get_running_tasks()) < 20
        assert fake.objects() == []

    async def test_a_deep_chain_comes_up_in_order_and_down_in_reverse(
        self, fake: FakeBackend
    ) -> None:
        """Each of 2,000 containers waits for the previous one: no recursion, no task each."""
        names = [f"c{i}" for i in range(2000)]
        pod = Pod(
            name="chain",
            containers=[
                Container(name=name, image=IMAGE, depends_on=names[i - 1 : i])
                for i, name in enumerate(names)
            ],
        )
        async with asyncpod.open_pod(pod, backend=fake):
            assert starts(fake) == names
        assert stops(fake) == names[::-1]


class TestDetachAndKill:
    async def test_detach_leaves_the_pod_running_with_its_labels(self, fake: FakeBackend) -> None:
        """Leaving a detached pod's block keeps every object, labelled for `asyncpod down`."""
        pod = Pod(
            name="det",
            init_containers=[ctr("side", restart_policy="Always")],
            containers=[ctr("db"), ctr("api", depends_on=["db"])],
            termination_grace_period_seconds=12,
        )
        async with asyncpod.open_pod(pod, backend=fake, detach=True) as running:
            run = running.run_id
        objects = await fake.list_objects({"io.asyncpod.run": run})
        containers = {
            o.labels["io.asyncpod.container"]: o for o in objects if o.type == "container"
        }
        assert {o.type for o in objects} == {"pod", "container", "volume"}
        assert all(o.labels["io.asyncpod.detached"] == "true" for o in objects)
        [marker] = [o for o in objects if o.type == "volume"]  # it was left running
        assert marker.labels["io.asyncpod.marker"] == "detached"
        ranks = {name: o.labels["io.asyncpod.stop-rank"] for name, o in containers.items()}
        assert ranks == {"api": "0", "db": "1", "side": "2"}
        assert {o.labels["io.asyncpod.grace-period"] for o in containers.values()} == {"12"}
        assert fake.container("api").state.value == "running"
        await fake.remove_objects(objects)

    async def test_detach_still_tears_down_on_an_exception(self, fake: FakeBackend) -> None:
        """An exception leaving a detached pod's block tears it down as usual."""
        with pytest.raises(KeyError):
            async with asyncpod.open_pod(
                Pod(name="det", containers=[ctr("a")]), backend=fake, detach=True
            ):
                raise KeyError("x")
        assert fake.objects() == []

    async def test_kill_event_cuts_a_graceful_teardown_short(self, fake: FakeBackend) -> None:
        """Setting the kill event during teardown kills a container ignoring SIGTERM and cuts
        a preStop hook short: the teardown ends at once instead of after the grace period."""
        fake.programs["stubborn"] = Program(delay=None, ignore_term=True)
        hook = asyncpod.Lifecycle(
            pre_stop=asyncpod.LifecycleHandler(sleep=asyncpod.SleepAction(seconds=20))
        )
        pod = Pod(
            name="p",
            init_containers=[ctr("side", restart_policy="Always")],
            containers=[ctr("stubborn"), ctr("hooked", lifecycle=hook)],
            termination_grace_period_seconds=30,
        )
        kill = anyio.Event()
        async with anyio.create_task_group() as tg:
            async with asyncpod.open_pod(pod, backend=fake, kill_event=kill):
                t0 = anyio.current_time()

                async def kill_soon() -> None:
                    await anyio.sleep(3)
                    kill.set()

                tg.start_soon(kill_soon)
        assert anyio.current_time() - t0 == pytest.approx(3)
        assert fake.objects() == []
        assert {t for op, t in fake.calls if op == "kill_container"} >= {
            "stubborn",
            "hooked",
            "side",
        }

    async def test_kill_event_set_before_teardown(self, fake: FakeBackend) -> None:
        """An event already set when the block ends: no grace at all."""
        fake.programs["stubborn"] = Program(delay=None, ignore_term=True)
        pod = Pod(name="p", containers=[ctr("stubborn")], termination_grace_period_seconds=30)
        kill = anyio.Event()
        async with asyncpod.open_pod(pod, backend=fake, kill_event=kill):
            kill.set()
            t0 = anyio.current_time()
        assert anyio.current_time() - t0 < 1
        assert fake.objects() == []


async def test_a_failing_exit_watcher_fails_bring_up_and_leaves_nothing(fake: FakeBackend) -> None:
    fake.inject("watch_exits", error=asyncpod.BackendError("no exit watcher today"))
    with pytest.raises(asyncpod.BackendError, match="no exit watcher today"):
        async with asyncpod.open_pod(seed_pod(), backend=fake):
            pass
    assert fake.objects() == []


class _Abort(BaseException):
    """What a callback may raise that is no Exception (SystemExit, KeyboardInterrupt...)."""


@pytest.mark.parametrize(
    "when", [EventReason.STARTED, EventReason.TERMINATING, EventReason.KILLING]
)
async def test_on_event_raising_a_base_exception_still_tears_down(
    fake: FakeBackend, when: EventReason
) -> None:
    """A BaseException of on_event ends the run, but never in the middle of the teardown.

    It used to stop the teardown where it was raised: containers kept running, nothing was
    removed, and readers of running.events() never saw the log closed.
    """

    def on_event(event: PodEvent) -> None:
        if event.reason is when:
            raise _Abort

    pod = Pod(name="p", containers=[ctr("web")])
    with pytest.raises(_Abort):
        async with asyncpod.open_pod(pod, backend=fake, on_event=on_event):
            pass
    assert fake.objects() == []


def test_the_container_state_machine_rejects_illegal_transitions() -> None:
    """Transitions are checked in one place: a bug that skips a stage raises there."""
    from asyncpod._supervisor._state import Stage, check_transition

    check_transition("web", Stage.NEW, Stage.CREATED)
    check_transition("web", Stage.EXITED, Stage.BACKING_OFF)
    check_transition("web", Stage.RUNNING, Stage.STOPPING)
    for old, new in [
        (Stage.RUNNING, Stage.CREATED),
        (Stage.STARTING, Stage.STOPPING),  # a stop waits for the start under way
        (Stage.DONE, Stage.STARTING),
        (Stage.REMOVED, Stage.STOPPING),
        (Stage.NEW, Stage.RUNNING),
    ]:
        with pytest.raises(AssertionError, match=f"'web' cannot go from {old.name} to {new.name}"):
            check_transition("web", old, new)
