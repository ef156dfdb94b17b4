"""gRPC probes (grpc.health.v1.Health/Check over h2c): the messages, then on the fake and
on real Podman (a hostNetwork pod probed on a health server this test runs on the host)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import anyio
import anyio.abc
import pytest

import asyncpod
from asyncpod import Container, EventReason, GRPCAction, Pod, Probe
from asyncpod._probes import health_check_request, health_check_status
from asyncpod.backends import FakeBackend, FakeContext, PodmanBackend
from grpc_health import serve_health
from podman_images import TEST_IMAGE, left_behind

IMAGE = "busybox:latest"


def test_request_encodes_the_service() -> None:
    assert health_check_request("") == b""
    assert health_check_request("shop") == b"\x0a\x04shop"
    long = "s" * 200
    assert health_check_request(long) == b"\x0a\xc8\x01" + long.encode()


@pytest.mark.parametrize(
    ("message", "status"),
    [
        (b"", 0),
        (b"\x08\x01", 1),
        (b"\x08\x02", 2),
        (b"\x08\x03", 3),
        # unknown fields of every wire type are skipped
        (b"\x12\x02hi\x08\x01\x19" + bytes(8) + b"\x25" + bytes(4) + b"\x38\x96\x01", 1),
    ],
)
def test_response_status_is_decoded(message: bytes, status: int) -> None:
    assert health_check_status(message) == status


@pytest.mark.parametrize("message", [b"\x08", b"\x08\x80", b"\x12\x05hi", b"\x0f"])
def test_a_malformed_response_is_refused(message: bytes) -> None:
    with pytest.raises(ValueError):
        health_check_status(message)


async def _unhealthy(running: asyncpod.RunningPod, count: int) -> list[str]:
    """The messages of the first *count* Unhealthy events."""
    messages: list[str] = []
    async for event in running.events():
        if event.reason is EventReason.UNHEALTHY:
            messages.append(event.message)
            if len(messages) == count:
                return messages
    raise AssertionError("the events ended")


async def _event(running: asyncpod.RunningPod, reason: EventReason) -> None:
    """Wait for the next event with *reason* (the last one kept counts)."""
    async for event in running.events():
        if event.reason is reason:
            return
    raise AssertionError("the events ended")


def _probed(probe: str, action: GRPCAction, **kwargs: Any) -> Container:
    return Container(
        name="app",
        image=IMAGE,
        command=["serve"],
        **{probe: Probe(grpc=action, period_seconds=1, **kwargs)},  # type: ignore[arg-type]
    )


@pytest.mark.anyio
class TestOnTheFake:
    async def test_readiness_follows_the_serving_status(self, fake: FakeBackend) -> None:
        """SERVING is ready; NOT_SERVING is not, with the kubelet's reason in the event;
        the probe asks for the action's service."""
        status = {"shop": 1}
        seen: list[str] = []

        async def server(ctx: FakeContext) -> int:
            await ctx.serve(9000, lambda stream: serve_health(stream, status.get, seen))
            return 0

        fake.programs["app"] = server
        pod = Pod(
            name="p", containers=[_probed("readiness_probe", GRPCAction(port=9000, service="shop"))]
        )
        async with asyncpod.open_pod(pod, backend=fake) as running:
            with anyio.fail_after(30):
                await running.wait_ready()
                status["shop"] = 2
                assert await _unhealthy(running, 1) == [
                    'Readiness probe failed: service unhealthy (responded with "NOT_SERVING")'
                ]
                await _event(running, EventReason.NOT_READY)
                status["shop"] = 1
                await running.wait_ready()
        assert set(seen) == {"shop"}

    async def test_liveness_failures_say_why(self, fake: FakeBackend) -> None:
        """An unknown service, then nothing listening: each failure worded as the
        kubelet's; the failed liveness probe restarts the container."""
        runs = 0

        async def server(ctx: FakeContext) -> int:
            nonlocal runs
            runs += 1
            if runs == 1:
                await ctx.serve(9000, lambda stream: serve_health(stream, lambda _: None))
            await ctx.terminated.wait()
            return 0

        fake.programs["app"] = server
        action = GRPCAction(port=9000, service="nope")
        pod = Pod(name="p", containers=[_probed("liveness_probe", action, failure_threshold=3)])
        async with asyncpod.open_pod(pod, backend=fake) as running:
            with anyio.fail_after(60):
                messages = await _unhealthy(running, 6)
        assert (
            messages
            == [
                "Liveness probe failed: error: health rpc probe failed: "
                "rpc error: code = NotFound desc = unknown service"
            ]
            * 3
            + [
                'Liveness probe failed: error: failed to connect service at "localhost:9000": '
                "connection refused"
            ]
            * 3
        )

    async def test_a_server_that_is_no_health_server(self, fake: FakeBackend) -> None:
        """A server that does not speak HTTP/2 fails the probe, saying so."""

        async def http1(stream: anyio.abc.ByteStream) -> None:
            await stream.receive()
            await stream.send(b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n")

        async def server(ctx: FakeContext) -> int:
            async with anyio.create_task_group() as tg:
                tg.start_soon(ctx.serve, 9001, http1)
                await ctx.terminated.wait()
                tg.cancel_scope.cancel()
            return 0

        fake.programs["app"] = server
        pod = Pod(name="p", containers=[_probed("readiness_probe", GRPCAction(port=9001))])
        async with asyncpod.open_pod(pod, backend=fake) as running:
            with anyio.fail_after(30):
                (message,) = await _unhealthy(running, 1)
        assert message == (
            "Readiness probe failed: error: health rpc probe failed: "
            "rpc error: code = Unavailable desc = the server closed the connection"
        ), message
        assert not running.status().container("app").ready


@pytest.mark.anyio
@pytest.mark.podman
class TestOnPodman:
    @pytest.fixture(params=["asyncio", "trio"])
    def anyio_backend(self, request: pytest.FixtureRequest) -> str:
        return str(request.param)

    @pytest.fixture
    async def podman(self, podman_url: str, image: str) -> AsyncIterator[PodmanBackend]:
        async with PodmanBackend(podman_url) as backend:
            yield backend

    async def test_readiness_follows_a_health_server_on_the_host(
        self, podman: PodmanBackend, podman_client: Any
    ) -> None:
        """A hostNetwork pod shares the host's network: the probe, made in the pod's network
        namespace, reaches a health server this test runs on 127.0.0.1."""
        status = {"": 1}
        seen: list[str] = []
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        container = Container(
            name="app",
            image=TEST_IMAGE,
            command=["sleep", "1000"],
            readiness_probe=Probe(grpc=GRPCAction(port=port), period_seconds=1),
        )
        pod = Pod(
            name=f"grpc-{os.getpid()}",
            containers=[container],
            host_network=True,
            termination_grace_period_seconds=2,
        )
        async with listener, anyio.create_task_group() as tg:

            async def handle(stream: anyio.abc.SocketStream) -> None:
                async with stream:
                    await serve_health(stream, status.get, seen)

            tg.start_soon(listener.serve, handle)
            async with asyncpod.open_pod(pod, backend=podman) as running:
                with anyio.fail_after(60):
                    await running.wait_ready()
                    status[""] = 2
                    assert await _unhealthy(running, 1) == [
                        'Readiness probe failed: service unhealthy (responded with "NOT_SERVING")'
                    ]
                    await _event(running, EventReason.NOT_READY)
                run = running.run_id
            tg.cancel_scope.cancel()
        assert seen and set(seen) == {""}
        assert left_behind(podman_client, "io.asyncpod.run", run) == []
