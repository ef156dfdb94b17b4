"""The conformance suite: on the FakeBackend, on Podman (``-m podman``), and the suite's
own teeth: each of its guarantees fails on a backend that breaks it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import anyio.lowlevel
import attrs
import pytest

from asyncpod import ObjectNotFoundError
from asyncpod.backends import Backend, ContainerSpec, FakeBackend, PodmanBackend, VolumeSpec
from asyncpod.testing import (
    CONFORMANCE_CHECKS,
    CONTRACT_CHECKS,
    SCENARIO_CHECKS,
    BackendFixture,
    check_backend,
    run_check,
)
from podman_images import TEST_IMAGE, left_behind

pytestmark = pytest.mark.anyio

IMAGE = "localhost/busybox:latest"

Check = Callable[[BackendFixture], Awaitable[None]]


def test_the_suite_comes_in_two_parts() -> None:
    assert CONFORMANCE_CHECKS == {**CONTRACT_CHECKS, **SCENARIO_CHECKS}
    assert not CONTRACT_CHECKS.keys() & SCENARIO_CHECKS.keys()
    assert list(CONFORMANCE_CHECKS)[: len(CONTRACT_CHECKS)] == list(CONTRACT_CHECKS)


@pytest.mark.parametrize("check", CONFORMANCE_CHECKS.values(), ids=CONFORMANCE_CHECKS.keys())
async def test_fake_backend_conforms(check: Check) -> None:
    """FakeBackend passes each conformance check and leaves nothing behind."""
    async with FakeBackend(images=[IMAGE], registry=[]) as backend:
        await run_check(check, BackendFixture(backend, IMAGE))
        assert backend.objects() == []


# On Podman: real time, real containers.


@pytest.fixture
async def podman(podman_url: str, image: str) -> AsyncIterator[PodmanBackend]:
    async with PodmanBackend(podman_url) as backend:
        yield backend


@pytest.mark.podman
@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
@pytest.mark.parametrize("check", CONFORMANCE_CHECKS.values(), ids=CONFORMANCE_CHECKS.keys())
async def test_podman_backend_conforms(
    check: Check, podman: PodmanBackend, podman_client: Any
) -> None:
    """PodmanBackend passes each conformance check, as the FakeBackend does."""
    fixture = BackendFixture(podman, TEST_IMAGE)
    await run_check(check, fixture)
    assert left_behind(podman_client, "io.asyncpod.run", fixture.run) == []


# The suite's teeth


async def _leaves_a_volume(fx: BackendFixture) -> None:
    await fx.backend.create_volume(VolumeSpec(name=fx.name("kept"), labels=fx.labels))


async def test_run_check_fails_a_check_that_leaves_objects_behind() -> None:
    async with FakeBackend() as backend:
        with pytest.raises(AssertionError, match=r"left 1 object\(s\) behind: volume conf-"):
            await run_check(_leaves_a_volume, BackendFixture(backend, IMAGE))
        assert backend.objects() == []  # and removed them


async def _leaves_a_volume_and_fails(fx: BackendFixture) -> None:
    await _leaves_a_volume(fx)
    raise AssertionError("the check's own failure")


async def test_run_check_raises_the_checks_own_failure_first() -> None:
    async with FakeBackend() as backend:
        with pytest.raises(AssertionError, match="the check's own failure"):
            await run_check(_leaves_a_volume_and_fails, BackendFixture(backend, IMAGE))
        assert backend.objects() == []


async def test_check_backend_names_the_failing_check() -> None:
    with pytest.raises(AssertionError, match="conformance check 'leaky' failed: the check left"):
        await check_backend(FakeBackend, IMAGE, checks={"leaky": _leaves_a_volume})


class _RaisesBeforeCheckpoint(FakeBackend):
    """The defect the fake had: an unknown id raised before the checkpoint."""

    async def inspect_container(self, container: str) -> Any:
        if self._find_container(container) is None:
            raise ObjectNotFoundError(f"no such container: {container}")
        return await super().inspect_container(container)


class _ReturnsWithoutCheckpoint(FakeBackend):
    """Starting a running container returns at once: no checkpoint."""

    async def start_container(self, container: str) -> None:
        found = self._find_container(container)
        if found is not None and found.context is not None and found.starts:
            return
        await super().start_container(container)


@pytest.mark.parametrize("broken", [_RaisesBeforeCheckpoint, _ReturnsWithoutCheckpoint])
async def test_the_checkpoint_check_fails_a_method_that_is_none(broken: type[FakeBackend]) -> None:
    async with broken(images=[IMAGE]) as backend:
        with pytest.raises(AssertionError, match="no checkpoint"):
            await run_check(
                CONTRACT_CHECKS["every_method_is_a_checkpoint"], BackendFixture(backend, IMAGE)
            )


class _UnlabelledOnCancel(FakeBackend):
    """A create that, cancelled after its engine call, leaves an unlabelled container."""

    async def create_container(self, spec: ContainerSpec) -> str:
        await anyio.lowlevel.checkpoint()
        cid = await super().create_container(
            ContainerSpec(**{**_fields(spec), "labels": {}})  # the labels got lost
        )
        await anyio.sleep(0.02)  # cancelled here by the check's shortest timeouts
        return cid


def _fields(spec: ContainerSpec) -> dict[str, Any]:
    return attrs.asdict(spec, recurse=False)


async def test_the_cancelled_create_check_fails_an_unlabelled_leftover() -> None:
    async with _UnlabelledOnCancel(images=[IMAGE]) as backend:
        with pytest.raises(Exception, match="already exists"):
            await run_check(
                CONTRACT_CHECKS["cancelled_create_is_findable"], BackendFixture(backend, IMAGE)
            )
        await backend.remove_objects(backend.objects())


class _CannotImport(FakeBackend):
    import_image = Backend.import_image  # the default: "cannot import images"


async def test_the_import_check_passes_a_backend_that_cannot_import() -> None:
    async with _CannotImport(images=[IMAGE]) as backend:
        await run_check(CONTRACT_CHECKS["import_image"], BackendFixture(backend, IMAGE))
        assert not await backend.image_exists("localhost/asyncpod-conformance-import:latest")
