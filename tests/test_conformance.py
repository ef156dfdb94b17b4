"""The conformance suite on the FakeBackend (tests/test_podman_conformance.py runs it on Podman)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from asyncpod.backends import FakeBackend
from asyncpod.testing import CONFORMANCE_CHECKS, BackendFixture, run_check

pytestmark = pytest.mark.anyio

IMAGE = "localhost/busybox:latest"


@pytest.mark.parametrize("check", CONFORMANCE_CHECKS.values(), ids=CONFORMANCE_CHECKS.keys())
async def test_fake_backend_conforms(check: Callable[[BackendFixture], Awaitable[None]]) -> None:
    """FakeBackend passes each conformance check and leaves nothing behind."""
    async with FakeBackend(images=[IMAGE], registry=[]) as backend:
        await run_check(check, BackendFixture(backend, IMAGE))
        assert backend.objects() == []
