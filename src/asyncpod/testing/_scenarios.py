"""Supervisor scenarios: :func:`~asyncpod.open_pod` on each backend, the same events in the
same order.

They pass on a backend that keeps the contract (:mod:`._contract`); they are here so
that a backend's author sees the supervisor work on it, and so that the FakeBackend and
Podman are held to the same behaviour.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Awaitable, Callable

import anyio
import attrs

from .._claims import list_claims, remove_claim
from .._events import EventReason, PodEvent
from .._exceptions import ContainerFailedError, CreateContainerConfigError, PortInUseError
from .._labels import LABEL_CONFORMANCE, LABEL_POD, LABEL_RUN
from .._models import (
    Container,
    ContainerPort,
    ContainerRestartRule,
    ContainerRestartRuleOnExitCodes,
    EmptyDirVolumeSource,
    EnvVar,
    ExecAction,
    HTTPGetAction,
    Lifecycle,
    LifecycleHandler,
    Pod,
    Probe,
    RestartPolicy,
    TCPSocketAction,
    Volume,
    VolumeMount,
)
from .._network import HostAlias, PodDNSConfig, PodDNSConfigOption
from .._objects import ConfigMap, Secret
from .._security import Capabilities, PodSecurityContext, SecurityContext, Sysctl
from .._sources import (
    ConfigMapEnvSource,
    ConfigMapKeySelector,
    ConfigMapVolumeSource,
    DownwardAPIVolumeFile,
    DownwardAPIVolumeSource,
    EnvFromSource,
    EnvVarSource,
    KeyToPath,
    ObjectFieldSelector,
    PersistentVolumeClaimVolumeSource,
    SecretKeySelector,
    SecretVolumeSource,
)
from .._status import Phase, Running, Terminated, Waiting
from .._supervisor import RunningPod, open_pod
from ..backends._base import Backend
from ._fixture import BackendFixture, scenario

__all__: list[str] = []


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


@scenario
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


@scenario
async def check_open_pod_init_failure(fx: BackendFixture) -> None:
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


@scenario
async def check_open_pod_port_in_use(fx: BackendFixture) -> None:
    """A host port held by another socket: one PortInUseError naming it, no crash loop."""
    events: list[PodEvent] = []
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        pod = attrs.evolve(
            _seed_pod(fx, fx.name("port")),
            containers=[
                Container(
                    name="web",
                    image=fx.image,
                    command=["sleep", "30"],
                    ports=[ContainerPort(container_port=80, host_port=port, host_ip="127.0.0.1")],
                )
            ],
            init_containers=[],
        )
        try:
            with anyio.fail_after(60):
                async with open_pod(pod, backend=fx.backend, on_event=events.append):
                    raise AssertionError("the pod came up although its host port is taken")
        except PortInUseError as exc:
            assert exc.port == port, exc
            assert f"host port {port}/tcp" in str(exc), exc
            if fx.backend.is_local:
                assert exc.holder is not None, exc
                assert f"pid {os.getpid()} " in exc.holder, exc
    assert [e.reason for e in events].count(EventReason.FAILED) == 1, events
    assert EventReason.BACK_OFF not in [e.reason for e in events], events
    assert await fx.backend.list_objects({LABEL_POD: pod.name}) == []


@scenario
async def check_probe_failures_say_why(fx: BackendFixture) -> None:
    """An Unhealthy event carries the reason, worded as the kubelet's events are."""
    web = Container(
        name="web",
        image=fx.image,
        command=["httpd", "-f", "-p", "8080", "-h", "/"],
        ports=[ContainerPort(container_port=8080)],
        readiness_probe=Probe(
            http_get=HTTPGetAction(path="/no-such-page", port=8080), period_seconds=1
        ),
        liveness_probe=Probe(
            tcp_socket=TCPSocketAction(port=9999), period_seconds=1, failure_threshold=100
        ),
        startup_probe=Probe(
            exec=ExecAction(command=["sh", "-c", "echo not yet >&2; exit 3"]),
            period_seconds=1,
            failure_threshold=100,
        ),
    )
    pod = Pod(name=fx.name("why"), labels={LABEL_CONFORMANCE: "1"}, containers=[web])
    pod = attrs.evolve(pod, termination_grace_period_seconds=2)

    async def messages_until(pod: Pod, *wanted: str) -> list[str]:
        """The pod's event messages until one starts with each of *wanted* (a failing
        startup probe keeps bring-up waiting: the events come through ``on_event``)."""
        messages: list[str] = []
        seen = anyio.Event()

        def on_event(event: PodEvent) -> None:
            messages.append(event.message)
            if all(any(m.startswith(w) for m in messages) for w in wanted):
                seen.set()

        with anyio.move_on_after(30):
            async with anyio.create_task_group() as tg:

                async def run() -> None:
                    async with open_pod(pod, backend=fx.backend, on_event=on_event):
                        await anyio.sleep_forever()

                tg.start_soon(run)
                await seen.wait()
                tg.cancel_scope.cancel()
        assert seen.is_set(), f"no event starts with each of {wanted}: {messages}"
        return messages

    messages = await messages_until(pod, "Startup probe failed: command exited with 3: not yet")
    assert not any(m.startswith("Readiness") for m in messages), messages
    pod = attrs.evolve(pod, containers=[attrs.evolve(web, startup_probe=None)])
    messages = await messages_until(
        pod,
        "Readiness probe failed: HTTP probe failed with statuscode: 404",
        "Liveness probe failed: dial tcp :9999: connect: connection refused",
    )


@scenario
async def check_open_pod_random_host_port(fx: BackendFixture) -> None:
    """``hostPort: 0`` publishes on a port the backend picks; RunningPod and status say
    which, and two such ports differ."""
    ports = [
        ContainerPort(container_port=8080, host_port=0, host_ip="127.0.0.1", name="http"),
        ContainerPort(container_port=8081, host_port=0, host_ip="127.0.0.1"),
    ]
    pod = Pod(
        name=fx.name("random-port"),
        labels={LABEL_CONFORMANCE: "1"},
        containers=[Container(name="web", image=fx.image, command=["sleep", "30"], ports=ports)],
        termination_grace_period_seconds=2,
    )
    async with open_pod(pod, backend=fx.backend) as running:
        first, second = running.host_port("web", 8080), running.host_port("web", 8081)
        assert first > 0, first
        assert second > 0, second
        assert first != second
        assert running.host_port("web", "http") == first
        assert [
            (p.container, p.container_port, p.host_port, p.host_ip, p.protocol)
            for p in running.status().ports
        ] == [
            ("web", 8080, first, "127.0.0.1", "TCP"),
            ("web", 8081, second, "127.0.0.1", "TCP"),
        ]
        for missing in (8082, "https"):
            try:
                running.host_port("web", missing)
            except LookupError:
                pass
            else:
                raise AssertionError(f"port {missing} is not published")


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


@scenario
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


@scenario
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


@scenario
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
    assert unhealthy == ["Liveness probe failed: command exited with 1"] * 2, unhealthy


@scenario
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


@scenario
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


@scenario
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


@scenario
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


@scenario
async def check_shell_wrapped_servers_become_ready(fx: BackendFixture) -> None:
    """Servers started from shell scripts, as manifests often start them, serve and pass
    their probes: ``httpd -f`` as the script's last command (tcpSocket probe), and an
    ``httpd`` that backgrounds itself before the script goes on (httpGet probe)."""
    front = _sh(
        fx,
        "front",
        "echo front > /data/index.html; httpd -f -p 8080 -h /data",
        readiness_probe=Probe(tcp_socket=TCPSocketAction(port=8080), period_seconds=1),
    )
    back = _sh(
        fx,
        "back",
        "echo back > /data/back.html; httpd -p 8081 -h /data; "
        "trap 'exit 0' TERM; while true; do sleep 0.2; done",
        readiness_probe=Probe(
            http_get=HTTPGetAction(port=8081, path="/back.html"), period_seconds=1
        ),
    )
    pod = _data_pod(fx, "shells", containers=[front, back])

    async def body(running: RunningPod) -> None:
        with anyio.fail_after(30):
            status = await running.wait_ready()
        assert [c.ready for c in status.containers] == [True, True], status
        for port, path, text in ((8080, "/index.html", b"front"), (8081, "/back.html", b"back")):
            stream = await fx.backend.connect(running.id, port)
            async with stream:
                await stream.send(f"GET {path} HTTP/1.0\r\n\r\n".encode())
                reply = b""
                try:
                    while True:
                        reply += await stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    pass
            assert b" 200 " in reply.split(b"\r\n", 1)[0], reply
            assert reply.endswith(text + b"\n"), reply

    events = await _record(pod, fx.backend, body)
    assert ("Exited", "back", 0) in _trace(events), events  # its trap made it exit at once


# Security contexts: what the processes see of their identity and privileges.

_SERVE = "trap 'exit 0' TERM; while true; do sleep 0.2; done"


def _status_field(status: bytes, name: str) -> str:
    for line in status.decode().splitlines():
        key, _, value = line.partition(":")
        if key == name:
            return value.strip()
    raise AssertionError(f"no {name} in /proc/self/status: {status!r}")


@scenario
async def check_security_context_is_honoured(fx: BackendFixture) -> None:
    """runAsUser/runAsGroup with the pod's supplementalGroups and fsGroup in ``id``;
    capabilities and no_new_privs in /proc/self/status; a read-only root refuses writes;
    the pod's sysctls in /proc/sys."""
    pod = Pod(
        name=fx.name("security"),
        labels={LABEL_CONFORMANCE: "1"},
        containers=[
            _sh(
                fx,
                "user",
                _SERVE,
                security_context=SecurityContext(
                    run_as_user=1000, run_as_group=2000, allow_privilege_escalation=False
                ),
            ),
            _sh(
                fx,
                "caps",
                _SERVE,
                security_context=SecurityContext(
                    capabilities=Capabilities(drop=["ALL"], add=["NET_BIND_SERVICE"]),
                    read_only_root_filesystem=True,
                ),
            ),
            _sh(fx, "plain", _SERVE),
        ],
        security_context=PodSecurityContext(
            supplemental_groups=[3000],
            fs_group=4000,
            sysctls=[Sysctl(name="kernel.shm_rmid_forced", value="1")],
        ),
        termination_grace_period_seconds=2,
    )
    async with open_pod(pod, backend=fx.backend) as running:
        ids = await running.exec("user", ["id"])
        assert ids.stdout.split() == [b"uid=1000(1000)", b"gid=2000(2000)", b"groups=3000,4000"], (
            ids
        )
        assert (await running.exec("user", ["id", "-u"])).stdout == b"1000\n"
        status = (await running.exec("user", ["cat", "/proc/self/status"])).stdout
        assert _status_field(status, "NoNewPrivs") == "1", status
        assert _status_field(status, "CapEff") == "0000000000000000", status
        status = (await running.exec("caps", ["cat", "/proc/self/status"])).stdout
        assert _status_field(status, "CapEff") == f"{1 << 10:016x}", status  # NET_BIND_SERVICE
        assert _status_field(status, "NoNewPrivs") == "0", status
        write = await running.exec("caps", ["touch", "/written"])
        assert write.exit_code != 0, write
        assert b"Read-only file system" in write.stderr, write
        assert (await running.exec("plain", ["touch", "/written"])).exit_code == 0
        assert (await running.exec("plain", ["id", "-u"])).stdout == b"0\n"
        sysctl = await running.exec("plain", ["cat", "/proc/sys/kernel/shm_rmid_forced"])
        assert sysctl.stdout == b"1\n", sysctl


@scenario
async def check_run_as_non_root_refuses_a_root_image(fx: BackendFixture) -> None:
    """The image runs as root: runAsNonRoot refuses it with the kubelet's message before
    anything is created, and runAsUser 0 breaks the policy too."""
    for name, context in (
        ("image", SecurityContext(run_as_non_root=True)),
        ("uid0", SecurityContext(run_as_non_root=True, run_as_user=0)),
    ):
        pod = Pod(
            name=fx.name(f"nonroot-{name}"),
            labels={LABEL_CONFORMANCE: "1"},
            containers=[_sh(fx, "app", _SERVE, security_context=context)],
        )
        try:
            async with open_pod(pod, backend=fx.backend):
                raise AssertionError("a root container ran although runAsNonRoot was set")
        except CreateContainerConfigError as exc:
            assert exc.container == "app", exc
            assert exc.reason == (
                "container has runAsNonRoot and image will run as root"
                if name == "image"
                else "container's runAsUser breaks non-root policy"
            ), exc
        assert await fx.backend.list_objects({LABEL_POD: pod.name}) == []


@scenario
async def check_pod_names_and_resolver(fx: BackendFixture) -> None:
    """What a pod's containers see of its names: ``hostname`` (fully qualified with
    ``subdomain`` and ``setHostnameAsFQDN``), ``hostAliases`` first in ``/etc/hosts``,
    ``dnsConfig`` merged into the host's resolver (``dnsPolicy: Default``) or alone
    (``None``)."""
    aliases = [
        HostAlias(ip="10.1.2.3", hostnames=["db", "db.internal"]),
        HostAlias(ip="10.1.2.4", hostnames=["cache"]),
    ]
    merged = Pod(
        name=fx.name("dns"),
        labels={LABEL_CONFORMANCE: "1"},
        containers=[_sh(fx, "main", "sleep 1000")],
        hostname="web",
        subdomain="front",
        set_hostname_as_fqdn=True,
        host_aliases=aliases,
        dns_policy="Default",
        dns_config=PodDNSConfig(
            nameservers=["192.0.2.99"],
            searches=["corp.example"],
            options=[PodDNSConfigOption(name="ndots", value="3")],
        ),
        termination_grace_period_seconds=2,
    )
    alone = attrs.evolve(
        merged,
        name=fx.name("dnsnone"),
        hostname=None,
        subdomain=None,
        set_hostname_as_fqdn=None,
        host_aliases=(),
        dns_policy="None",
        dns_config=PodDNSConfig(
            nameservers=["192.0.2.98"],
            options=[PodDNSConfigOption(name="timeout", value="2")],
        ),
    )

    async def read(running: RunningPod, path: str) -> list[str]:
        result = await running.exec("main", ["cat", path])
        assert result.exit_code == 0, result
        return result.stdout.decode().splitlines()

    async with open_pod(merged, backend=fx.backend) as running:
        assert await read(running, "/etc/hostname") == ["web.front.default.svc.cluster.local"]
        hosts = [line.split() for line in await read(running, "/etc/hosts")]
        assert hosts[:3] == [["10.1.2.3", "db"], ["10.1.2.3", "db.internal"], ["10.1.2.4", "cache"]]
        resolv = [line.split() for line in await read(running, "/etc/resolv.conf")]
        servers = [words[1] for words in resolv if words[0] == "nameserver"]
        assert servers[-1] == "192.0.2.99", resolv
        assert len(servers) >= 2, resolv  # the host's first
        search = next(words[1:] for words in resolv if words[0] == "search")
        assert search[-1] == "corp.example", resolv
        options = next(words[1:] for words in resolv if words[0] == "options")
        assert "ndots:3" in options, resolv
        assert not [o for o in options if o.startswith("ndots:") and o != "ndots:3"], resolv
    async with open_pod(alone, backend=fx.backend) as running:
        assert await read(running, "/etc/hostname") == [alone.name.split(".")[0]]
        resolv = [line.split() for line in await read(running, "/etc/resolv.conf")]
        assert [w for w in resolv if w[0] == "nameserver"] == [["nameserver", "192.0.2.98"]], resolv
        assert not [w for w in resolv if w[0] == "search"], resolv
        options = next(words[1:] for words in resolv if words[0] == "options")
        assert "timeout:2" in options, resolv


@scenario
async def check_active_deadline_fails_the_pod(fx: BackendFixture) -> None:
    """``activeDeadlineSeconds``: once it runs out, every container is stopped for good
    (not restarted, whatever the restart policy) and the pod has Failed, reason
    ``DeadlineExceeded``, as the kubelet does."""
    pod = _data_pod(
        fx,
        "deadline",
        # long enough for a loaded machine to bring the pod up first
        active_deadline_seconds=5,
        containers=[_sh(fx, "main", "trap 'exit 0' TERM; while true; do sleep 0.2; done")],
    )

    async def body(running: RunningPod) -> None:
        with anyio.fail_after(30):
            await _next_event(running, EventReason.STARTED, "main")
            assert running.status().phase is Phase.RUNNING, running.status()
            final = await running.wait()
            assert final.phase is Phase.FAILED, final
            assert final.reason == "DeadlineExceeded", final
            await _next_event(running, EventReason.EXITED, "main")
        await anyio.sleep(0.5)  # no restart follows
        main = running.status().container("main")
        assert main.restart_count == 0, main
        assert main.exit_code == 0, main  # stopped with its stop signal

    events = await _record(pod, fx.backend, body)
    trace = _trace(events, skip=_NOISE | {EventReason.READY})
    assert trace[trace.index(("DeadlineExceeded", None, None)) :][:3] == [
        ("DeadlineExceeded", None, None),
        ("Killing", "main", None),
        ("Exited", "main", 0),
    ], events


@scenario
async def check_termination_message(fx: BackendFixture) -> None:
    """A container's termination message: what it wrote to ``/dev/termination-log`` (or
    its own ``terminationMessagePath``); with ``FallbackToLogsOnError``, an error exit
    that wrote nothing there gets the tail of its log instead."""
    many = "; ".join(f"echo line{i}" for i in range(1, 91))
    pod = _data_pod(
        fx,
        "termmsg",
        restart_policy=RestartPolicy.NEVER,
        containers=[
            _sh(fx, "bye", "echo bye > /dev/termination-log; exit 3"),
            _sh(
                fx,
                "own",
                "echo done > /tmp/message; echo not this",
                termination_message_path="/tmp/message",
                termination_message_policy="FallbackToLogsOnError",
            ),
            _sh(
                fx,
                "fallback",
                f"{many}; echo last >&2; exit 4",
                termination_message_policy="FallbackToLogsOnError",
            ),
            _sh(fx, "quiet", "echo said nothing; exit 5"),
        ],
    )

    async def body(running: RunningPod) -> None:
        with anyio.fail_after(60):
            final = await running.wait()
        messages = {
            c.name: c.state.message for c in final.containers if isinstance(c.state, Terminated)
        }
        tail = "".join(f"line{i}\n" for i in range(12, 91)) + "last\n"
        assert messages == {
            "bye": "bye\n",
            "own": "done\n",
            "fallback": tail,
            "quiet": "",
        }, final

    await _record(pod, fx.backend, body)


# Everyday use: logs of each run, per-container restart and signals, exec, files.


async def _texts(running: RunningPod, name: str, **options: object) -> list[str]:
    async with running.logs(name, **options) as lines:  # type: ignore[arg-type]
        return [line.text async for line in lines]


async def _until_texts(running: RunningPod, name: str, want: list[str], **options: object) -> None:
    """Wait until the log of *name* says *want* (a line may take a moment to be logged)."""
    with anyio.fail_after(30):
        while (got := await _texts(running, name, **options)) != want:  # noqa: ASYNC110 - a log has no event
            await anyio.sleep(0.1)
    assert got == want


@scenario
async def check_logs_runs_restart_exec_files(fx: BackendFixture) -> None:
    script = "test -f /v/ran && echo again || echo first; touch /v/ran; sleep 1000"
    pod = Pod(
        name=fx.name("runs"),
        labels={LABEL_CONFORMANCE: "1"},
        containers=[
            Container(
                name="app",
                image=fx.image,
                command=["sh", "-c", script],
                volume_mounts=[VolumeMount(name="v", mount_path="/v")],
            )
        ],
        volumes=[Volume(name="v", empty_dir=EmptyDirVolumeSource())],
        restart_policy=RestartPolicy.ALWAYS,
        termination_grace_period_seconds=2,
    )
    followed: list[str] = []
    async with open_pod(pod, backend=fx.backend) as running, anyio.create_task_group() as tg:
        await _until_texts(running, "app", ["first"])
        try:
            await _texts(running, "app", previous=True)
        except LookupError:
            pass
        else:
            raise AssertionError("a first run has a previous one")

        async def follow() -> None:
            async with running.logs("app", follow=True) as lines:
                async for line in lines:
                    followed.append(line.text)

        tg.start_soon(follow)
        await running.restart("app", grace=0)
        with anyio.fail_after(30):
            await running._sup.wait_for(
                lambda s: (
                    s.container("app").restart_count == 1
                    and isinstance(s.container("app").state, Running)
                )
            )
        await _until_texts(running, "app", ["again"])
        assert await _texts(running, "app", previous=True) == ["first"]
        async with running.logs("app", timestamps=True, tail=1) as lines:
            stamped = [line async for line in lines]
        assert [(r.text, r.timestamp is not None) for r in stamped] == [("again", True)]
        # A signal: the restart policy restarts it (its first crash: no back-off).
        await running.kill("app", 9)
        with anyio.fail_after(30):
            await running._sup.wait_for(
                lambda s: (
                    s.container("app").restart_count == 2
                    and isinstance(s.container("app").state, Running)
                )
            )
        await _until_texts(running, "app", ["again"])
        assert await _texts(running, "app", previous=True) == ["again"]
        with anyio.fail_after(30):
            while followed != ["first", "again", "again"]:  # noqa: ASYNC110
                await anyio.sleep(0.1)
        tg.cancel_scope.cancel()
        # exec and files
        result = await running.exec("app", ["cat"], stdin=b"piped")
        assert result.stdout == b"piped", result
        await running.put_archive("app", "/tmp/put", await running.get_archive("app", "/v/ran"))
        copied = await running.exec("app", ["test", "-f", "/tmp/put/ran"])
        assert copied.exit_code == 0, copied
        stats = await running.stats("app")
        assert stats is None or stats.memory_bytes >= 0, stats


# ConfigMaps, Secrets, the downward API and claims: what the containers see, as files and
# environment variables, is the same on every backend.

#: a container that runs until stopped, and stops at once (its trap)
_IDLE = "trap 'exit 0' TERM; while true; do sleep 0.2; done"


def _idle_pod(fx: BackendFixture, suffix: str, container: Container, volumes: list[Volume]) -> Pod:
    return Pod(
        name=fx.name(suffix),
        labels={LABEL_CONFORMANCE: "1", "app": "conf"},
        containers=[container],
        volumes=volumes,
        termination_grace_period_seconds=2,
    )


async def _out(running: RunningPod, *argv: str) -> str:
    result = await running.exec("app", list(argv))
    assert result.exit_code == 0, (argv, result)
    return result.stdout.decode()


async def _env(running: RunningPod) -> dict[str, str]:
    lines = (await _out(running, "env")).splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


@scenario
async def check_config_map_volume_and_env(fx: BackendFixture) -> None:
    """A ConfigMap's keys as variables (``envFrom``, ``configMapKeyRef``) and as files (all
    keys, or the ``items`` at their paths)."""
    config = ConfigMap(name="conf-cfg", data={"greeting": "hello", "mode": "prod"})
    app = _sh(
        fx,
        "app",
        _IDLE,
        env_from=[
            EnvFromSource(prefix="CFG_", config_map_ref=ConfigMapEnvSource(name=config.name))
        ],
        env=[
            EnvVar(
                name="MODE",
                value_from=EnvVarSource(
                    config_map_key_ref=ConfigMapKeySelector(name=config.name, key="mode")
                ),
            ),
            EnvVar(name="BOTH", value="$(CFG_greeting)-$(MODE)"),
        ],
        volume_mounts=[
            VolumeMount(name="all", mount_path="/etc/all"),
            VolumeMount(name="some", mount_path="/etc/some", read_only=True),
        ],
    )
    volumes = [
        Volume(name="all", config_map=ConfigMapVolumeSource(name=config.name)),
        Volume(
            name="some",
            config_map=ConfigMapVolumeSource(
                name=config.name, items=(KeyToPath(key="greeting", path="sub/greeting.txt"),)
            ),
        ),
    ]
    pod = _idle_pod(fx, "cfg", app, volumes)
    async with open_pod(pod, backend=fx.backend, config_maps=[config]) as running:
        env = await _env(running)
        assert (env["CFG_greeting"], env["CFG_mode"]) == ("hello", "prod"), env
        assert (env["MODE"], env["BOTH"]) == ("prod", "hello-prod"), env
        assert (await _out(running, "ls", "/etc/all")).split() == ["greeting", "mode"]
        assert await _out(running, "cat", "/etc/all/greeting") == "hello"
        assert await _out(running, "cat", "/etc/some/sub/greeting.txt") == "hello"
        assert await _out(running, "stat", "-c", "%a", "/etc/all/mode") == "644\n"


@scenario
async def check_secret_volume_and_env(fx: BackendFixture) -> None:
    """A Secret's keys as files with the volume's ``defaultMode`` (an item's own ``mode``
    over it), an empty value as an empty file, and as a variable (``secretKeyRef``)."""
    secret = Secret(name="conf-creds", data={"empty": b"", "password": b"pw-1", "token": b"tk-2"})
    app = _sh(
        fx,
        "app",
        _IDLE,
        env=[
            EnvVar(
                name="PASSWORD",
                value_from=EnvVarSource(
                    secret_key_ref=SecretKeySelector(name=secret.name, key="password")
                ),
            )
        ],
        volume_mounts=[
            VolumeMount(name="all", mount_path="/etc/creds"),
            VolumeMount(name="one", mount_path="/etc/one"),
        ],
    )
    volumes = [
        Volume(name="all", secret=SecretVolumeSource(secret_name=secret.name, default_mode=0o400)),
        Volume(
            name="one",
            secret=SecretVolumeSource(
                secret_name=secret.name,
                default_mode=0o400,
                items=(KeyToPath(key="token", path="dir/token", mode=0o440),),
            ),
        ),
    ]
    pod = _idle_pod(fx, "secret", app, volumes)
    async with open_pod(pod, backend=fx.backend, secrets=[secret]) as running:
        assert (await _env(running))["PASSWORD"] == "pw-1"
        assert await _out(running, "cat", "/etc/creds/password") == "pw-1"
        assert await _out(running, "cat", "/etc/creds/token") == "tk-2"
        # an empty value is an empty file (Podman holds no empty secret)
        assert (await _out(running, "ls", "/etc/creds")).split() == ["empty", "password", "token"]
        assert await _out(running, "cat", "/etc/creds/empty") == ""
        assert await _out(running, "cat", "/etc/one/dir/token") == "tk-2"
        modes = await _out(running, "stat", "-c", "%a", "/etc/creds/password", "/etc/one/dir/token")
        assert modes.split() == ["400", "440"], modes


@scenario
async def check_downward_api_env_and_volume(fx: BackendFixture) -> None:
    """The pod's own fields (``fieldRef``) as variables and as files; ``metadata.uid`` is
    the run's."""
    app = _sh(
        fx,
        "app",
        _IDLE,
        env=[
            EnvVar(
                name=name,
                value_from=EnvVarSource(field_ref=ObjectFieldSelector(field_path=path)),
            )
            for name, path in (
                ("POD_NAME", "metadata.name"),
                ("POD_NAMESPACE", "metadata.namespace"),
                ("POD_UID", "metadata.uid"),
                ("APP", "metadata.labels['app']"),
            )
        ],
        volume_mounts=[VolumeMount(name="info", mount_path="/etc/info")],
    )
    info = DownwardAPIVolumeSource(
        items=(
            DownwardAPIVolumeFile(
                path="name", field_ref=ObjectFieldSelector(field_path="metadata.name")
            ),
            DownwardAPIVolumeFile(
                path="labels", field_ref=ObjectFieldSelector(field_path="metadata.labels")
            ),
        )
    )
    pod = _idle_pod(fx, "downward", app, [Volume(name="info", downward_api=info)])
    async with open_pod(pod, backend=fx.backend) as running:
        env = await _env(running)
        assert (env["POD_NAME"], env["POD_NAMESPACE"], env["APP"]) == (
            pod.name,
            "default",
            "conf",
        ), env
        uid = env["POD_UID"]
        assert uid.replace("-", "").startswith(running.run_id), env  # a UUID, this run's
        assert await _out(running, "cat", "/etc/info/name") == pod.name
        labels = await _out(running, "cat", "/etc/info/labels")
        assert labels.splitlines() == ['app="conf"', f'{LABEL_CONFORMANCE}="1"'], labels


@scenario
async def check_claim_survives_runs_until_removed(fx: BackendFixture) -> None:
    """A persistentVolumeClaim's data outlives the run that wrote it: a second run reads
    it; :func:`~asyncpod.remove_claim` removes it, and a third run starts empty."""
    claim = fx.name("claim")
    app = _sh(fx, "app", _IDLE, volume_mounts=[VolumeMount(name="data", mount_path="/data")])
    source = PersistentVolumeClaimVolumeSource(claim_name=claim)
    pod = _idle_pod(fx, "claimed", app, [Volume(name="data", persistent_volume_claim=source)])
    try:
        async with open_pod(pod, backend=fx.backend) as running:
            assert (await _out(running, "ls", "/data")).split() == []
            await _out(running, "sh", "-c", "echo kept > /data/file")
        assert claim in await list_claims(fx.backend)
        async with open_pod(pod, backend=fx.backend) as running:
            assert await _out(running, "cat", "/data/file") == "kept\n"
        assert await remove_claim(fx.backend, claim)
        assert claim not in await list_claims(fx.backend)
        async with open_pod(pod, backend=fx.backend) as running:
            assert (await _out(running, "ls", "/data")).split() == []
    finally:
        with anyio.CancelScope(shield=True):
            await remove_claim(fx.backend, claim)
    assert not await remove_claim(fx.backend, claim)
