"""What differs between the Podman versions asyncpod supports (CI: 4.3.1 and 5.4.x).

The gates: ``SubPath`` in a named-volume mount needs 4.4; a tmpfs volume's ``size=`` option
reaches tmpfs from 4.8 on (before, ``nr_blocks``). A version asyncpod has never seen is
treated as the newest it knows.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import pytest

from asyncpod import BackendError
from asyncpod.backends import ContainerSpec, Mount, PodmanBackend, PodSpec, VolumeSpec
from asyncpod.backends._podman._mapping import parse_version as _parse_version
from podman_images import TEST_IMAGE, left_behind

LABEL = "asyncpod-test-versions"


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def labels(podman_client: Any) -> Iterator[dict[str, str]]:
    value = uuid.uuid4().hex[:12]
    yield {LABEL: value}
    paths = {"pod": "/pods/", "container": "/containers/", "volume": "/volumes/"}
    for thing in left_behind(podman_client, LABEL, value):  # pods first, then the rest
        kind, name = thing.split(" ", 1)
        podman_client.api.delete(paths[kind] + name, params={"force": "true", "timeout": 0})


@pytest.fixture
async def backend(podman_url: str, image: str) -> AsyncIterator[PodmanBackend]:
    async with PodmanBackend(podman_url) as opened:
        yield opened


async def _run(
    backend: PodmanBackend, pod: str, name: str, labels: dict[str, str], script: str, *mounts: Mount
) -> tuple[int, list[str]]:
    ident = await backend.create_container(
        ContainerSpec(
            name=name,
            pod=pod,
            image=TEST_IMAGE,
            labels=labels,
            command=("sh", "-c", script),
            mounts=mounts,
        )
    )
    await backend.start_container(ident)
    code = await backend.wait_container(ident)
    async with backend.logs(ident) as records:
        return code, [r.text async for r in records]


@pytest.mark.podman
@pytest.mark.anyio
async def test_server_version(backend: PodmanBackend, podman_client: Any) -> None:
    """The version the gates compare is the server's own."""
    version = str(podman_client.version()["Version"])
    assert backend.server_version == version
    assert backend._version == _parse_version(version) >= (4, 3)


@pytest.mark.podman
@pytest.mark.anyio
@pytest.mark.parametrize("memory", [False, True], ids=["disk", "tmpfs"])
async def test_volume_sub_path(
    backend: PodmanBackend, labels: dict[str, str], memory: bool
) -> None:
    """subPath into a volume (Podman >= 4.4; refused before, with the version in the message)."""
    prefix = f"apv-{labels[LABEL]}"
    pod = await backend.create_pod(PodSpec(name=f"{prefix}-pod", hostname="v", labels=labels))
    volume = await backend.create_volume(
        VolumeSpec(
            name=f"{prefix}-vol", labels=labels, memory=memory, size_bytes=(8 << 20) * memory
        )
    )
    # The writer keeps running: a tmpfs volume is mounted only while a container uses it
    # (Podman unmounts it, contents and all, when the last one stops).
    writer = await backend.create_container(
        ContainerSpec(
            name=f"{prefix}-w",
            pod=pod,
            image=TEST_IMAGE,
            labels=labels,
            command=("sh", "-c", "mkdir /v/x && echo hi >/v/x/f && exec sleep 1000"),
            mounts=(Mount(target="/v", volume=volume),),
        )
    )
    await backend.start_container(writer)
    with anyio.fail_after(20):
        while (await backend.exec(writer, ("test", "-f", "/v/x/f"))).exit_code != 0:  # noqa: ASYNC110
            await anyio.sleep(0.1)
    part = Mount(target="/m", volume=volume, sub_path="x", read_only=True)
    if backend._version < (4, 4):
        with pytest.raises(BackendError, match=r"subPath, which needs Podman 4\.4"):
            await _run(backend, pod, f"{prefix}-r", labels, "true", part)
        return
    code, out = await _run(backend, pod, f"{prefix}-r", labels, "cat /m/f; ls /m", part)
    assert (code, out) == (0, ["hi", "f"])  # the subdirectory only, not the whole volume


def test_version_parsing() -> None:
    assert _parse_version("4.3.1") == (4, 3, 1)
    assert _parse_version("5.4.2") == (5, 4, 2)
    assert _parse_version("6.0.0-rc1") == (6, 0, 0)
    assert _parse_version("5.10") == (5, 10)
    assert _parse_version("5.10") > (5, 4, 2)


class _Reply:
    status = 201

    def json(self) -> dict[str, str]:
        return {"Name": "v"}


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("version", "option"),
    [((4, 3, 1), "nr_blocks=2048"), ((5, 4, 2), "size=8388608"), ((7, 0, 0), "size=8388608")],
)
async def test_tmpfs_size_option(
    version: tuple[int, ...], option: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tmpfs size option a server of *version* gets, a future one included."""
    backend = PodmanBackend("tcp://podman.invalid:1")  # not local: 4 KiB pages assumed
    backend._version = version
    bodies: list[Any] = []

    async def call(method: str, path: str, *, body: Any = None, **kw: Any) -> _Reply:
        bodies.append((method, path, body))
        return _Reply()

    monkeypatch.setattr(backend, "_call", call)
    await backend.create_volume(VolumeSpec(name="v", labels={}, memory=True, size_bytes=8 << 20))
    [(method, path, body)] = bodies
    assert (method, path) == ("POST", "/volumes/create")
    assert body["Options"] == {"type": "tmpfs", "device": "tmpfs", "o": option}
