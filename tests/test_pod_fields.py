"""Pod fields of issue #11 without Podman: a ``medium: Memory`` emptyDir held by the pod,
``fsGroup`` ownership of emptyDir volumes and ``status.podIP``, as spec building, the
fake and the Podman backend's create mapping see them. Their Podman tests are in
tests/test_podman_pod_fields.py."""

from __future__ import annotations

import io
import tarfile
from typing import Any

import pytest

import asyncpod
from asyncpod import (
    BackendError,
    ConfigMap,
    ConfigMapVolumeSource,
    Container,
    EmptyDirVolumeSource,
    EnvVar,
    EnvVarSource,
    ObjectFieldSelector,
    Pod,
    PodSecurityContext,
    Volume,
    VolumeMount,
)
from asyncpod._supervisor._config import PodContext, host_ip
from asyncpod._supervisor._spec import volume_specs
from asyncpod.backends import FakeBackend, PodmanBackend, PodSpec, VolumeFile, VolumeSpec
from asyncpod.backends._podman._mapping import (
    HELD_VOLUMES_DIR,
    files_tarball,
    group_dir_tarball,
    infra_address,
    local_addresses,
    pod_body,
)

IMAGE = "busybox:latest"


def _pod(**kwargs: Any) -> Pod:
    mounts = [VolumeMount(name="mem", mount_path="/mem"), VolumeMount(name="disk", mount_path="/d")]
    return Pod(
        name="p",
        containers=[Container(name="app", image=IMAGE, volume_mounts=mounts)],
        volumes=[
            Volume(name="mem", empty_dir=EmptyDirVolumeSource(medium="Memory")),
            Volume(name="disk", empty_dir=EmptyDirVolumeSource()),
        ],
        **kwargs,
    )


def test_empty_dirs_are_the_fs_groups() -> None:
    specs = volume_specs(_pod(security_context=PodSecurityContext(fs_group=2000)), {})
    assert (specs["mem"].group, specs["disk"].group) == (2000, 2000)
    assert specs["mem"].memory and not specs["disk"].memory
    plain = volume_specs(_pod(security_context=PodSecurityContext(run_as_user=1000)), {})
    assert (plain["mem"].group, plain["disk"].group) == (None, None)


def test_the_infra_container_holds_the_pods_volumes_read_only() -> None:
    body = pod_body(PodSpec(name="p", hostname="p", volumes=("p-mem",)))
    assert body["volumes"] == [
        {"Name": "p-mem", "Dest": f"{HELD_VOLUMES_DIR}/p-mem", "Options": ["ro"]}
    ]
    assert "volumes" not in pod_body(PodSpec(name="p", hostname="p"))


def test_group_dir_tarball_is_one_setgid_directory() -> None:
    with tarfile.open(fileobj=io.BytesIO(group_dir_tarball(2000))) as archive:
        [entry] = archive.getmembers()
    assert (entry.name, entry.isdir(), entry.mode, entry.uid, entry.gid) == (
        ".",
        True,
        0o2777,
        0,
        2000,
    )


_FIB_TRIE = """Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 10.0.2.0/24 2 0 1
        |-- 10.0.2.0
           /24 link UNICAST
        |-- 10.0.2.100
           /32 host LOCAL
     +-- 127.0.0.0/8 2 0 2
        |-- 127.0.0.1
           /32 host LOCAL
Local:
  +-- 0.0.0.0/0 3 0 5
        |-- 10.0.2.100
           /32 host LOCAL
"""


def test_files_tarball_of_a_group() -> None:
    """With a group, files and directories are root's and the group's, readable by it,
    directories set-group-ID; without, as before."""
    files = [VolumeFile(path="d/f", data=b"x", mode=0o400)]
    with tarfile.open(fileobj=io.BytesIO(files_tarball(files, group=2000))) as archive:
        entries = {e.name: (e.mode, e.uid, e.gid) for e in archive.getmembers()}
    assert entries == {"d": (0o2755, 0, 2000), "d/f": (0o440, 0, 2000)}
    with tarfile.open(fileobj=io.BytesIO(files_tarball(files))) as archive:
        entries = {e.name: (e.mode, e.uid, e.gid) for e in archive.getmembers()}
    assert entries == {"d": (0o755, 0, 0), "d/f": (0o400, 0, 0)}


def test_config_map_files_are_the_fs_groups() -> None:
    pod = Pod(
        name="p",
        containers=[Container(name="app", image=IMAGE)],
        volumes=[Volume(name="conf", config_map=ConfigMapVolumeSource(name="conf"))],
        security_context=PodSecurityContext(fs_group=2000),
    )
    context = PodContext(config_maps={"conf": ConfigMap(name="conf", data={"a": "1"})})
    assert volume_specs(pod, {}, context)["conf"].group == 2000


def test_addresses_of_a_network_namespace() -> None:
    assert local_addresses(_FIB_TRIE) == ["10.0.2.100"]
    assert local_addresses("") == []


def test_infra_address_from_inspect() -> None:
    bridge = {
        "NetworkSettings": {"IPAddress": "", "Networks": {"podman": {"IPAddress": "10.88.0.7"}}}
    }
    assert infra_address(bridge) == "10.88.0.7"
    assert infra_address({"NetworkSettings": {"IPAddress": "10.88.0.8"}}) == "10.88.0.8"
    assert infra_address({"NetworkSettings": {"Networks": {}}}) == ""
    assert infra_address({}) == ""


class _Reply:
    status = 201

    def json(self) -> dict[str, str]:
        return {"Name": "v"}


@pytest.mark.parametrize(
    ("spec", "options"),
    [
        (VolumeSpec(name="v", group=2000), {"o": "uid=0,gid=2000"}),
        (
            VolumeSpec(name="v", memory=True, size_bytes=8 << 20, group=2000),
            {"type": "tmpfs", "device": "tmpfs", "o": "size=8388608,uid=0,gid=2000,mode=2777"},
        ),
        (VolumeSpec(name="v"), None),
    ],
    ids=["disk", "memory", "no-group"],
)
@pytest.mark.anyio
async def test_podman_volume_of_a_group(
    spec: VolumeSpec, options: dict[str, str] | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The owner of a Podman volume with a group: a tmpfs takes uid, gid and mode as mount
    options; a volume on disk gets uid and gid, and its mode through the first container
    that mounts it (see the Podman tests)."""
    backend = PodmanBackend("tcp://podman.invalid:1")
    backend._version = (5, 4, 2)
    bodies: list[Any] = []

    async def call(method: str, path: str, *, body: Any = None, **kw: Any) -> _Reply:
        bodies.append(body)
        return _Reply()

    monkeypatch.setattr(backend, "_call", call)
    await backend.create_volume(spec)
    assert bodies[0].get("Options") == options


class _Recording(FakeBackend):
    """A FakeBackend that records the order of pod and volume creation."""

    def __init__(self) -> None:
        super().__init__()
        self.made: list[str] = []
        self.pod_specs: list[PodSpec] = []

    async def create_pod(self, spec: PodSpec) -> str:
        pod = await super().create_pod(spec)
        self.made.append(f"pod {spec.name}")
        self.pod_specs.append(spec)
        return pod

    async def create_volume(self, spec: VolumeSpec) -> str:
        volume = await super().create_volume(spec)
        self.made.append(f"volume {spec.name}")
        return volume


pytestmark = pytest.mark.anyio


async def test_memory_empty_dir_is_made_before_the_pod_which_holds_it() -> None:
    async with _Recording() as fake:
        async with asyncpod.open_pod(_pod(), backend=fake) as running:
            assert fake.made[:2] == ["volume p-mem", "pod p"]
            assert fake.made[2:] == ["volume p-disk"]
            [spec] = fake.pod_specs
            held = running._sup.volume_ids["mem"]
            assert spec.volumes == (held,)
            # Held by the pod, it cannot go before the pod does.
            with pytest.raises(BackendError, match="in use"):
                await fake.remove_volume(held)
        assert fake.objects() == []


async def test_fake_pod_needs_its_held_volumes(fake: FakeBackend) -> None:
    with pytest.raises(asyncpod.ObjectNotFoundError):
        await fake.create_pod(PodSpec(name="p", hostname="p", volumes=("nope",)))


def _env_pod(**kwargs: Any) -> Pod:
    env = [
        EnvVar(name=name, value_from=EnvVarSource(field_ref=ObjectFieldSelector(field_path=path)))
        for name, path in (("POD_IP", "status.podIP"), ("HOST_IP", "status.hostIP"))
    ]
    return Pod(name="p", containers=[Container(name="app", image=IMAGE, env=env)], **kwargs)


async def test_pod_ip_in_status_and_environment(fake: FakeBackend) -> None:
    async with asyncpod.open_pod(_env_pod(), backend=fake) as running:
        status = running.status()
        assert status.pod_ip == await fake.pod_ip(running.id)
        assert status.pod_ip.startswith("10.88.")
        env = dict(fake.container("p-app").spec.env)
        assert (env["POD_IP"], env["HOST_IP"]) == (status.pod_ip, host_ip())


async def test_pod_ip_is_known_without_an_env_reference(fake: FakeBackend) -> None:
    pod = Pod(name="p", containers=[Container(name="app", image=IMAGE)])
    async with asyncpod.open_pod(pod, backend=fake) as running:
        assert running.status().pod_ip == await fake.pod_ip(running.id)


async def test_host_network_pod_ip_is_the_hosts(fake: FakeBackend) -> None:
    async with asyncpod.open_pod(_env_pod(host_network=True), backend=fake) as running:
        assert running.status().pod_ip == host_ip()
        assert dict(fake.container("p-app").spec.env)["POD_IP"] == host_ip()
