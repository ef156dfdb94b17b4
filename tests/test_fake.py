"""The FakeBackend itself: what its own users rely on, beyond the conformance suite."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
import pytest

from asyncpod import ObjectNotFoundError
from asyncpod.backends import FakeBackend

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
