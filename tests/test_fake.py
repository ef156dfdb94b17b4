"""The FakeBackend itself: what its own users rely on, beyond the conformance suite."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

import anyio
import pytest

from asyncpod import BackendError, ObjectNotFoundError
from asyncpod.backends import ContainerSpec, FakeBackend, PodSpec, Program, RuntimeState

pytestmark = pytest.mark.anyio

UNKNOWN = "no-such-container"

OPERATIONS: dict[str, Callable[[FakeBackend], Awaitable[object]]] = {
    "start_container": lambda b: b.start_container(UNKNOWN),
    "stop_container": lambda b: b.stop_container(UNKNOWN, grace=1),
    "kill_container": lambda b: b.kill_container(UNKNOWN),
    "wait_container": lambda b: b.wait_container(UNKNOWN),
    "inspect_container": lambda b: b.inspect_container(UNKNOWN),
    "exec": lambda b: b.exec(UNKNOWN, ("true",)),
}


async def _enter_logs(backend: FakeBackend) -> None:
    async with backend.logs(UNKNOWN):
        pass


async def _connect(backend: FakeBackend) -> None:
    await backend.connect(UNKNOWN, 80)


OPERATIONS["logs"] = _enter_logs
OPERATIONS["connect"] = _connect


@pytest.mark.parametrize("operation", OPERATIONS.values(), ids=OPERATIONS.keys())
async def test_an_unknown_id_is_a_checkpoint_and_recorded(
    fake: FakeBackend, operation: Callable[[FakeBackend], Awaitable[object]]
) -> None:
    """An unknown id checkpoints first (a cancelled caller sees the cancellation, not
    ObjectNotFoundError), is recorded in ``calls``, and only then raises."""
    with anyio.CancelScope() as scope:
        scope.cancel()
        await operation(fake)
    assert scope.cancelled_caught
    with pytest.raises(ObjectNotFoundError):
        await operation(fake)
    assert [target for _, target in fake.calls] == [UNKNOWN, UNKNOWN]


async def test_an_injected_fault_hits_an_unknown_id_by_name(fake: FakeBackend) -> None:
    fake.inject("inspect_container", target=UNKNOWN, error=RuntimeError("injected"))
    with pytest.raises(RuntimeError, match="injected"):
        await fake.inspect_container(UNKNOWN)
    with pytest.raises(ObjectNotFoundError):
        await fake.inspect_container(UNKNOWN)


# The shell: what it runs, it runs as busybox would; what it cannot, it refuses at create.


async def _get(fake: FakeBackend, pod: str, port: int, path: str = "/") -> bytes:
    stream = await fake.connect(pod, port)
    async with stream:
        await stream.send(f"GET {path} HTTP/1.0\r\n\r\n".encode())
        body = b""
        try:
            while True:
                body += await stream.receive()
        except anyio.EndOfStream:
            return body


async def _started(fake: FakeBackend, pod: str, name: str, *command: str) -> str:
    cid = await fake.create_container(
        ContainerSpec(name=f"{pod}-{name}", pod=pod, image="busybox", short_name=name,
                      command=command)
    )  # fmt: skip
    await fake.start_container(cid)
    return cid


@pytest.mark.parametrize(
    "command",
    [
        ("httpd", "-f", "-p", "8080", "-h", "/www"),
        ("sh", "-c", "httpd -f -p 8080 -h /www"),
        ("sh", "-c", "exec httpd -f -p 8080 -h /www"),
        ("sh", "-c", "httpd -p 8080 -h /www; sleep 1000"),  # httpd backgrounds itself
        ("sh", "-c", "httpd -f -p 8080 -h /www & wait"),
    ],
    ids=["bare", "script", "exec", "daemon", "job"],
)
async def test_httpd_serves_however_it_is_started(
    fake: FakeBackend, command: tuple[str, ...]
) -> None:
    fake.add_image("busybox", {"/www/index.html": "hello\n"})
    pod = await fake.create_pod(PodSpec(name="web", hostname="web"))
    cid = await _started(fake, pod, "web", *command)
    await anyio.sleep(1)
    body = await _get(fake, pod, 8080)
    assert body.startswith(b"HTTP/1.1 200") and body.endswith(b"\r\n\r\nhello\n"), body
    assert fake.container("web").state is RuntimeState.RUNNING
    await fake.remove_pod(pod)
    assert (await fake.list_objects({})) == []
    with pytest.raises(ObjectNotFoundError):
        await fake.inspect_container(cid)


async def test_a_background_httpd_dies_with_its_container(fake: FakeBackend) -> None:
    pod = await fake.create_pod(PodSpec(name="web", hostname="web"))
    cid = await _started(fake, pod, "web", "sh", "-c", "httpd -p 8080 -h /; sleep 5")
    await anyio.sleep(1)
    assert (await _get(fake, pod, 8080)).startswith(b"HTTP/1.1 ")
    assert await fake.wait_container(cid) == 0
    with pytest.raises(ConnectionRefusedError):
        await fake.connect(pod, 8080)
    await fake.remove_pod(pod)


async def test_scripts_loop_and_wait(fake: FakeBackend) -> None:
    pod = await fake.create_pod(PodSpec(name="p", hostname="p"))
    script = (
        "touch /n1; while test -f /n1; do test -f /n2 && rm /n1; touch /n2; echo turn; done; "
        "sleep 3 & wait; echo waited"
    )
    cid = await _started(fake, pod, "c", "sh", "-c", script)
    assert await fake.wait_container(cid) == 0
    assert [r.text for r in fake.container("c").logs] == ["turn", "turn", "waited"]
    await fake.remove_pod(pod)


@pytest.mark.parametrize(
    ("command", "missing"),
    [
        (("nginx", "-g", "daemon off;"), "nginx"),
        (("sh", "-c", "echo starting; /opt/app/run.sh --port 80"), "/opt/app/run.sh"),
        (("sh", "-c", "while true; do curl -s localhost; sleep 1; done"), "curl"),
        (("sh", "/start.sh"), "sh /start.sh"),
        (("sh", "-c", 'echo "$GREETING"'), "$GREETING"),
        (("sh", "-c", "while true; do sleep 1"), "while true; do sleep 1"),
    ],
)
async def test_what_the_fake_cannot_run_fails_at_create(
    fake: FakeBackend, command: tuple[str, ...], missing: str
) -> None:
    pod = await fake.create_pod(PodSpec(name="p", hostname="p"))
    expected = f"the fake cannot run {re.escape(repr(missing))}.*give it a Program"
    with pytest.raises(BackendError, match=expected):
        await _started(fake, pod, "app", *command)
    assert [o.type for o in fake.objects()] == ["pod"]
    fake.programs["app"] = Program(delay=None)  # with a program, it runs
    await _started(fake, pod, "app", *command)
    assert fake.container("app").state is RuntimeState.RUNNING
    await fake.remove_pod(pod)


async def test_an_image_without_a_command_runs_its_own_process(fake: FakeBackend) -> None:
    """No command: the image's own process, which the fake models as a server."""
    pod = await fake.create_pod(PodSpec(name="p", hostname="p"))
    cid = await _started(fake, pod, "app")
    assert (await fake.inspect_container(cid)).state is RuntimeState.RUNNING
    assert await fake.stop_container(cid, grace=1) == 143
    await fake.remove_pod(pod)


async def test_exec_of_an_unknown_tool_is_127_from_a_script_too(fake: FakeBackend) -> None:
    pod = await fake.create_pod(PodSpec(name="p", hostname="p"))
    cid = await _started(fake, pod, "c", "sleep", "1000")
    result = await fake.exec(cid, ("sh", "-c", "no-such-tool; echo after"))
    assert (result.exit_code, result.stdout) == (0, b"after\n"), result
    assert result.stderr == b"no-such-tool: command not found\n", result
    result = await fake.exec(cid, ("sh", "-c", "no-such-tool"))
    assert result.exit_code == 127, result
    await fake.remove_pod(pod)
