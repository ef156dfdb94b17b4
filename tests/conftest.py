"""Shared fixtures: every async test runs on asyncio and on trio."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from asyncpod.backends import FakeBackend
from asyncpod.testing import virtual_time


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    """Fake-backend tests run on a virtual clock: sleeps and timeouts cost no real time."""
    return virtual_time(request.param)


@pytest.fixture
async def fake() -> AsyncIterator[FakeBackend]:
    """An open FakeBackend; it must hold no objects when the test ends."""
    async with FakeBackend() as backend:
        yield backend
        assert backend.objects() == []
