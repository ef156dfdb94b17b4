"""The termination message on the fake: each run's own, the kubelet's limits, the
teardown's, and a reading that hangs (bounded, never in the way). The conformance scenario
``termination_message`` holds both backends to the basic rules."""

from __future__ import annotations

import anyio
import pytest

import asyncpod
from asyncpod import Container, Pod, Terminated
from asyncpod.backends import FakeBackend, FakeContext

pytestmark = pytest.mark.anyio

IMAGE = "busybox:latest"


def _sh(name: str, script: str, **kwargs: object) -> Container:
    return Container(name=name, image=IMAGE, command=["sh", "-c", script], **kwargs)  # type: ignore[arg-type]


async def test_the_last_state_of_a_restarted_container_has_its_message(
    fake: FakeBackend,
) -> None:
    """Each run's message is its own: the file is read as the exit is seen."""
    runs = 0

    async def crasher(ctx: FakeContext) -> int:
        nonlocal runs
        runs += 1
        ctx.write_file("/dev/termination-log", f"run {runs}")
        return 1

    fake.programs["c"] = crasher
    async with asyncpod.open_pod(
        Pod(name="p", containers=[_sh("c", "false")]), backend=fake
    ) as running:
        await anyio.sleep(15)  # run 2 at once, run 3 after 10 s
        status = running.status().container("c")
        assert status.restart_count == 2, status
        assert status.last_state is not None and status.last_state.message == "run 3", status


async def test_the_message_is_the_last_4096_bytes(fake: FakeBackend) -> None:
    async def writer(ctx: FakeContext) -> int:
        ctx.write_file("/dev/termination-log", b"x" * 5000 + b"y" * 96)
        return 0

    fake.programs["c"] = writer
    pod = Pod(name="p", containers=[_sh("c", "true")], restart_policy="Never")
    async with asyncpod.open_pod(pod, backend=fake) as running:
        state = (await running.wait()).container("c").state
    assert isinstance(state, Terminated)
    assert state.message == "x" * 4000 + "y" * 96


async def test_fallback_only_for_an_error_exit(fake: FakeBackend) -> None:
    """FallbackToLogsOnError: an exit 0 with an empty file has no message."""
    fallback = {"termination_message_policy": "FallbackToLogsOnError"}
    pod = Pod(
        name="p",
        containers=[
            _sh("ok", "echo fine", **fallback),
            _sh("bad", "echo broken; exit 1", **fallback),
        ],
        restart_policy="Never",
    )
    async with asyncpod.open_pod(pod, backend=fake) as running:
        final = await running.wait()
    messages = {
        c.name: c.state.message for c in final.containers if isinstance(c.state, Terminated)
    }
    assert messages == {"ok": "", "bad": "broken\n"}


async def test_a_container_stopped_by_the_teardown_has_its_message(fake: FakeBackend) -> None:
    async def server(ctx: FakeContext) -> int:
        await ctx.terminated.wait()
        ctx.write_file("/dev/termination-log", "stopped")
        return 0

    fake.programs["c"] = server
    async with asyncpod.open_pod(
        Pod(name="p", containers=[_sh("c", "serve")]), backend=fake
    ) as running:
        await running.wait_ready()
    state = running.status().container("c").state
    assert isinstance(state, Terminated), state
    assert state.message == "stopped"


class _HangingReads(FakeBackend):
    async def read_termination_message(self, container: str, path: str) -> bytes:
        await anyio.sleep_forever()
        raise AssertionError("unreachable")


async def test_a_reading_that_hangs_is_given_up() -> None:
    """The exit shows (without a message) once the reading's time is up; the teardown is
    not held up by it either."""
    async with _HangingReads() as fake:
        pod = Pod(
            name="p",
            containers=[_sh("done", "exit 2"), _sh("up", "sleep 1000")],
            restart_policy="Never",
            termination_grace_period_seconds=2,
        )
        async with asyncpod.open_pod(pod, backend=fake) as running:
            start = anyio.current_time()
            with anyio.fail_after(10):
                async for event in running.events():
                    if event.reason is asyncpod.EventReason.EXITED:
                        break
            assert 5 <= anyio.current_time() - start < 6
            assert running.status().container("done").exit_code == 2
            stopping = anyio.current_time()
        assert anyio.current_time() - stopping < 4  # the 2 s stop, 1 s of reading at most
        final = running.status()
        done, up = final.container("done").state, final.container("up").state
        assert isinstance(done, Terminated) and isinstance(up, Terminated), final
        assert (done.exit_code, done.message, up.message) == (2, "", ""), final
        assert done.finished_at < start + 1, final  # when it exited, not when it showed
        assert fake.objects() == []


async def test_the_log_fallback_keeps_the_end_of_long_lines(fake: FakeBackend) -> None:
    """The kubelet writes the last 80 lines into a 2048-byte ring buffer: with long lines,
    the message is their last 2048 bytes, so the final line (the error) is there."""
    long = "x" * 500
    script = "; ".join([f"echo {i}-{long}" for i in range(5)] + ["echo fatal: gave up", "exit 2"])
    pod = Pod(
        name="p",
        containers=[_sh("c", script, termination_message_policy="FallbackToLogsOnError")],
        restart_policy="Never",
    )
    async with asyncpod.open_pod(pod, backend=fake) as running:
        state = (await running.wait()).container("c").state
    assert isinstance(state, Terminated)
    assert len(state.message.encode()) == 2048, state.message
    assert state.message.endswith("fatal: gave up\n"), state.message
