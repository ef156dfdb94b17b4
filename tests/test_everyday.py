"""Everyday use on the FakeBackend: final status, wall-clock events, diagnosis, waits."""

from __future__ import annotations

import time

import anyio
import pytest

import asyncpod
from asyncpod import (
    Container,
    ContainerPort,
    Diagnosis,
    EventReason,
    ExecAction,
    Phase,
    Pod,
    PodTimeoutError,
    Probe,
    RestartPolicy,
    Terminated,
)
from asyncpod.backends import FakeBackend

pytestmark = pytest.mark.anyio

IMAGE = "busybox:latest"


def sh(name: str, script: str, **kwargs: object) -> Container:
    return Container(name=name, image=IMAGE, command=["sh", "-c", script], **kwargs)  # type: ignore[arg-type]


async def test_status_after_the_block_is_final(fake: FakeBackend) -> None:
    pod = Pod(name="p", containers=[sh("c", "sleep 1000")], termination_grace_period_seconds=2)
    async with asyncpod.open_pod(pod, backend=fake) as running:
        assert running.status().phase is Phase.RUNNING
    status = running.status()
    # As a deleted pod's: terminal, Failed since its container was killed.
    assert status.phase is Phase.FAILED
    state = status.container("c").state
    assert isinstance(state, Terminated)
    assert state.exit_code == 137
    assert not status.conditions.ready
    assert running.error is None


async def test_status_after_a_completed_run_is_succeeded(fake: FakeBackend) -> None:
    pod = Pod(name="p", containers=[sh("c", "exit 0")], restart_policy=RestartPolicy.NEVER)
    async with asyncpod.open_pod(pod, backend=fake) as running:
        await running.wait()
    assert running.status().phase is Phase.SUCCEEDED


async def test_events_carry_wall_clock_time(fake: FakeBackend) -> None:
    before = time.time()
    events: list[asyncpod.PodEvent] = []
    pod = Pod(name="p", containers=[sh("c", "sleep 1000")], termination_grace_period_seconds=2)
    async with asyncpod.open_pod(pod, backend=fake, on_event=events.append):
        pass
    after = time.time()
    assert events
    assert all(before <= e.wall_time <= after for e in events), events
    assert events[0].timestamp.timestamp() == pytest.approx(events[0].wall_time)
    assert events[0].timestamp.tzinfo is not None


def _unready_pod() -> Pod:
    return Pod(
        name="p",
        containers=[
            sh(
                "web",
                "echo starting; echo config missing >&2; sleep 1000",
                readiness_probe=Probe(
                    exec=ExecAction(command=["sh", "-c", "echo no config; exit 1"]),
                    period_seconds=1,
                ),
            )
        ],
        termination_grace_period_seconds=2,
    )


async def test_diagnose_says_why_a_pod_is_not_ready(fake: FakeBackend) -> None:
    async with asyncpod.open_pod(_unready_pod(), backend=fake) as running:
        await anyio.sleep(3)
        diagnosis = await running.diagnose()
    assert isinstance(diagnosis, Diagnosis)
    assert diagnosis.not_ready == ("web",)
    assert diagnosis.logs["web"] == ("starting", "config missing")
    assert diagnosis.events[-1].reason is EventReason.UNHEALTHY
    text = str(diagnosis)
    assert "pod 'p': Running, not ready" in text
    assert "app container 'web': running, not ready" in text
    assert "Readiness probe failed: command exited with 1: no config" in text
    assert "  | config missing" in text


async def test_fail_after_raises_a_timeout_that_says_why(fake: FakeBackend) -> None:
    async with asyncpod.open_pod(_unready_pod(), backend=fake) as running:
        start = anyio.current_time()
        with pytest.raises(PodTimeoutError) as caught:
            async with running.fail_after(5):
                await running.wait_ready()
        assert anyio.current_time() - start == pytest.approx(5, abs=0.5)
    assert isinstance(caught.value, TimeoutError)
    assert isinstance(caught.value.diagnosis, Diagnosis)
    message = str(caught.value)
    assert message.startswith("pod 'p': still waiting after 5 s\n")
    assert "Readiness probe failed: command exited with 1: no config" in message


async def test_fail_after_in_time_raises_nothing(fake: FakeBackend) -> None:
    pod = Pod(name="p", containers=[sh("web", "sleep 1000")], termination_grace_period_seconds=2)
    async with asyncpod.open_pod(pod, backend=fake) as running:
        async with running.fail_after(5):
            status = await running.wait_ready()
        assert status.conditions.ready


async def test_wait_for_log(fake: FakeBackend) -> None:
    pod = Pod(
        name="p",
        containers=[sh("web", "echo booting; sleep 3; echo listening on 8080; sleep 1000")],
        termination_grace_period_seconds=2,
    )
    async with asyncpod.open_pod(pod, backend=fake) as running:
        start = anyio.current_time()
        async with running.fail_after(10):
            match = await running.wait_for_log("web", r"listening on (\d+)")
        assert match.group(1) == "8080"
        assert anyio.current_time() - start >= 2.5
        # A line logged before the call counts too.
        async with running.fail_after(1):
            assert (await running.wait_for_log("web", "boot")).group(0) == "boot"


async def test_wait_for_log_sees_a_restarted_container(fake: FakeBackend) -> None:
    pod = Pod(
        name="p",
        containers=[sh("web", "test -f /tmp/again && echo second run; touch /tmp/again; exit 1")],
        termination_grace_period_seconds=2,
    )
    async with asyncpod.open_pod(pod, backend=fake) as running:
        async with running.fail_after(60):
            await running.wait_for_log("web", "second run")
        assert running.status().container("web").restart_count >= 1


async def test_wait_for_port(fake: FakeBackend) -> None:
    pod = Pod(
        name="p",
        containers=[
            sh(
                "web",
                "sleep 3; httpd -f -p 8080 -h /",
                ports=[ContainerPort(container_port=8080)],
            )
        ],
        termination_grace_period_seconds=2,
    )
    async with asyncpod.open_pod(pod, backend=fake) as running:
        start = anyio.current_time()
        async with running.fail_after(10):
            await running.wait_for_port(8080)
        assert anyio.current_time() - start >= 2.5
        with pytest.raises(PodTimeoutError, match="still waiting after 2 s"):
            async with running.fail_after(2):
                await running.wait_for_port(9090)


async def test_wait_for_command(fake: FakeBackend) -> None:
    pod = Pod(
        name="p",
        containers=[sh("web", "sleep 3; touch /tmp/done; sleep 1000")],
        termination_grace_period_seconds=2,
    )
    async with asyncpod.open_pod(pod, backend=fake) as running:
        start = anyio.current_time()
        async with running.fail_after(10):
            result = await running.wait_for_command("web", ["test", "-f", "/tmp/done"])
        assert result.exit_code == 0
        assert anyio.current_time() - start >= 2.5
        with pytest.raises(LookupError):
            await running.wait_for_command("nope", ["true"])
