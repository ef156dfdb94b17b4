"""What the conformance checks share: the fixture, the registries, small helpers."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

import anyio
import attrs

from .._labels import LABEL_CONFORMANCE, LABEL_RUN
from ..backends._base import Backend, ContainerSpec, PodSpec

__all__ = ["CONTRACT_CHECKS", "SCENARIO_CHECKS", "BackendFixture", "Check"]

Check = Callable[["BackendFixture"], Awaitable[None]]
_F = TypeVar("_F", bound=Callable[..., Awaitable[None]])


@attrs.frozen
class BackendFixture:
    """What a check needs: an open backend, and an image with busybox-compatible tools."""

    backend: Backend
    image: str
    #: a unique label value per check; everything a check creates carries it
    run: str = attrs.field(factory=lambda: uuid.uuid4().hex[:10])
    #: every name :meth:`name` gave out: :func:`run_check` looks for leftovers by them too
    names: set[str] = attrs.field(factory=set, eq=False, repr=False)

    @property
    def labels(self) -> dict[str, str]:
        return {LABEL_RUN: self.run, LABEL_CONFORMANCE: "1"}

    def name(self, suffix: str) -> str:
        """A name unique to this check's run (an object's, or an asyncpod pod's)."""
        name = f"conf-{self.run}-{suffix}"
        self.names.add(name)
        return name


#: the backend contract: what a backend must pass, by name
CONTRACT_CHECKS: dict[str, Check] = {}
#: the supervisor scenarios, run on each backend, by name
SCENARIO_CHECKS: dict[str, Check] = {}


def contract_check(fn: _F) -> _F:
    CONTRACT_CHECKS[fn.__name__.removeprefix("check_")] = fn
    return fn


def scenario(fn: _F) -> _F:
    SCENARIO_CHECKS[fn.__name__.removeprefix("check_")] = fn
    return fn


@asynccontextmanager
async def _pod(fx: BackendFixture, suffix: str = "pod", **kwargs: object) -> AsyncIterator[str]:
    pod = await fx.backend.create_pod(
        PodSpec(name=fx.name(suffix), hostname="conf", labels=fx.labels, **kwargs)  # type: ignore[arg-type]
    )
    try:
        yield pod
    finally:
        with anyio.CancelScope(shield=True):
            await fx.backend.remove_pod(pod)


def _spec(
    fx: BackendFixture, pod: str, suffix: str, script: str, **kwargs: object
) -> ContainerSpec:
    return ContainerSpec(
        name=fx.name(suffix),
        pod=pod,
        image=fx.image,
        short_name=suffix,
        command=("sh", "-c", script),
        labels=fx.labels,
        **kwargs,  # type: ignore[arg-type]
    )


async def _run(fx: BackendFixture, pod: str, suffix: str, script: str, **kwargs: object) -> str:
    cid = await fx.backend.create_container(_spec(fx, pod, suffix, script, **kwargs))
    await fx.backend.start_container(cid)
    return cid


async def _log_text(fx: BackendFixture, cid: str) -> dict[str, str]:
    lines: dict[str, list[str]] = {"stdout": [], "stderr": []}
    async with fx.backend.logs(cid) as records:
        async for record in records:
            lines[record.stream].append(record.text)
    return {stream: "\n".join(text) for stream, text in lines.items()}
