"""resources and securityContext on real Podman, observed from inside the containers.

Skipped without Podman unless ASYNCPOD_REQUIRE_PODMAN=1. Where the service cannot enforce
cgroup limits (rootless on cgroup v1), the tests check that the pod runs without them and
says so once; elsewhere they read the limits in the container's cgroup files.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import asyncpod
from asyncpod import (
    Capabilities,
    Container,
    Pod,
    PodSecurityContext,
    ResourceRequirements,
    SeccompProfile,
    SecurityContext,
    Sysctl,
)
from asyncpod.backends import PodmanBackend
from podman_images import TEST_IMAGE, left_behind

pytestmark = [pytest.mark.podman, pytest.mark.anyio]

_SCRIPT = "trap 'exit 0' TERM; while true; do sleep 0.2; done"


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Real time: Podman does real work."""
    return str(request.param)


@pytest.fixture
async def podman(podman_url: str, image: str) -> AsyncIterator[PodmanBackend]:
    async with PodmanBackend(podman_url) as backend:
        yield backend


@pytest.fixture(scope="session")
def host(podman_client: Any) -> dict[str, Any]:
    info: dict[str, Any] = podman_client.api.get("/info").json()["host"]
    return info


def _enforces_limits(host: dict[str, Any]) -> bool:
    return not (host["security"]["rootless"] and host["cgroupVersion"] != "v2")


def _server(name: str, **kwargs: Any) -> Container:
    return Container(name=name, image=TEST_IMAGE, command=["sh", "-c", _SCRIPT], **kwargs)


def _status_field(status: str, name: str) -> str:
    for line in status.splitlines():
        key, _, value = line.partition(":")
        if key == name:
            return value.strip()
    raise AssertionError(f"{name} not in /proc/self/status:\n{status}")


async def test_user_groups_and_privileges(podman: PodmanBackend) -> None:
    """runAsUser/runAsGroup, supplementalGroups and fsGroup in `id`; capabilities, no new
    privileges, seccomp and a read-only root in /proc/self/status and a failing write."""
    pod = Pod(
        name=f"sec-user-{uuid.uuid4().hex[:8]}",  # unique: tests run in parallel
        containers=[
            _server(
                "user",
                security_context=SecurityContext(
                    run_as_user=1000,
                    run_as_group=2000,
                    run_as_non_root=True,
                    allow_privilege_escalation=False,
                ),
            ),
            _server(
                "caps",
                security_context=SecurityContext(
                    capabilities=Capabilities(drop=["ALL"], add=["NET_BIND_SERVICE"]),
                    read_only_root_filesystem=True,
                    seccomp_profile=SeccompProfile(type="Unconfined"),
                ),
            ),
            _server("privileged", security_context=SecurityContext(privileged=True)),
            _server("plain"),
        ],
        security_context=PodSecurityContext(
            supplemental_groups=[3000],
            fs_group=4000,
            sysctls=[Sysctl(name="kernel.shm_rmid_forced", value="1")],
        ),
    )
    async with asyncpod.open_pod(pod, backend=podman) as running:
        ids = await running.exec("user", ["id"])
        assert ids.stdout.decode().split() == [
            "uid=1000(1000)",
            "gid=2000(2000)",
            "groups=3000,4000",
        ]
        status = (await running.exec("user", ["cat", "/proc/self/status"])).stdout.decode()
        assert _status_field(status, "NoNewPrivs") == "1"
        assert _status_field(status, "CapEff") == "0000000000000000"
        assert _status_field(status, "Seccomp") == "2"  # the runtime's default profile

        status = (await running.exec("caps", ["cat", "/proc/self/status"])).stdout.decode()
        assert _status_field(status, "CapEff") == f"{1 << 10:016x}"  # CAP_NET_BIND_SERVICE
        assert _status_field(status, "CapBnd") == f"{1 << 10:016x}"
        assert _status_field(status, "Seccomp") == "0"
        assert _status_field(status, "NoNewPrivs") == "0"
        write = await running.exec("caps", ["touch", "/written"])
        assert write.exit_code != 0
        assert b"Read-only file system" in write.stderr
        assert (await running.exec("plain", ["touch", "/written"])).exit_code == 0

        plain = (await running.exec("plain", ["cat", "/proc/self/status"])).stdout.decode()
        privileged = (
            await running.exec("privileged", ["cat", "/proc/self/status"])
        ).stdout.decode()
        plain_caps = int(_status_field(plain, "CapEff"), 16)
        privileged_caps = int(_status_field(privileged, "CapEff"), 16)
        assert plain_caps & ~privileged_caps == 0 and privileged_caps > plain_caps
        assert _status_field(privileged, "Seccomp") == "0"
        sysctl = await running.exec("plain", ["cat", "/proc/sys/kernel/shm_rmid_forced"])
        assert sysctl.stdout.decode().strip() == "1"


async def test_run_as_non_root_refuses_a_root_image(
    podman: PodmanBackend, podman_client: Any
) -> None:
    """The test image runs as root: runAsNonRoot refuses it with the kubelet's message, and
    nothing is left behind."""
    pod = Pod(
        name="sec-nonroot",
        containers=[_server("app")],
        security_context=PodSecurityContext(run_as_non_root=True),
    )
    with pytest.raises(asyncpod.CreateContainerConfigError) as caught:
        async with asyncpod.open_pod(pod, backend=podman):
            pass  # pragma: no cover - bring-up fails
    assert caught.value.container == "app"
    assert caught.value.reason == "container has runAsNonRoot and image will run as root"
    assert left_behind(podman_client, "io.asyncpod.pod", "sec-nonroot") == []


async def test_resources_in_the_cgroup(
    podman: PodmanBackend, host: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """limits.cpu as a CFS quota, requests.cpu as shares, limits.memory and requests.memory
    in the memory cgroup, for app and init containers and the pod. A host that cannot
    enforce them runs the pod anyway and says so once."""
    resources = ResourceRequirements(
        limits={"cpu": "500m", "memory": "64Mi"}, requests={"cpu": "250m", "memory": "32Mi"}
    )
    v1 = host["cgroupVersion"] == "v1"
    files = (
        "/sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.shares "
        "/sys/fs/cgroup/memory/memory.limit_in_bytes "
        "/sys/fs/cgroup/memory/memory.soft_limit_in_bytes"
        if v1
        else "/sys/fs/cgroup/cpu.max /sys/fs/cgroup/cpu.weight /sys/fs/cgroup/memory.max "
        "/sys/fs/cgroup/memory.low"
    )
    pod = Pod(
        name="sec-limits",
        init_containers=[
            Container(
                name="init",
                image=TEST_IMAGE,
                command=["sh", "-c", f"cat {files} > /shared/init"],
                resources=resources,
                volume_mounts=[asyncpod.VolumeMount(name="shared", mount_path="/shared")],
            )
        ],
        containers=[
            _server(
                "app",
                resources=resources,
                volume_mounts=[asyncpod.VolumeMount(name="shared", mount_path="/shared")],
            )
        ],
        volumes=[asyncpod.Volume(name="shared", empty_dir=asyncpod.EmptyDirVolumeSource())],
        resources=ResourceRequirements(limits={"memory": "128Mi"}),
    )
    caplog.set_level(logging.WARNING, logger="asyncpod")
    async with asyncpod.open_pod(pod, backend=podman) as running:
        app = (await running.exec("app", ["sh", "-c", f"cat {files}"])).stdout.decode().split()
        init = (await running.exec("app", ["cat", "/shared/init"])).stdout.decode().split()
        cgroup = (await running.exec("app", ["cat", "/proc/self/cgroup"])).stdout.decode()
        pod_limit = _pod_memory_limit(cgroup) if v1 else None
    warnings = [r.getMessage() for r in caplog.records if "not enforced" in r.getMessage()]
    if not _enforces_limits(host):
        assert len(warnings) == 1, warnings
        assert "sec-limits" in warnings[0] and "memory" in warnings[0]
        assert app[0] in ("-1", "max")  # no quota
        return
    assert warnings == []
    if v1:
        expected = ["50000", "256", str(64 << 20), str(32 << 20)]
    else:
        expected = ["50000 100000", app[1], str(64 << 20), str(32 << 20)]
    assert app == expected
    assert init == expected
    if v1 and not host["security"]["rootless"]:
        assert pod_limit == str(128 << 20)


def _pod_memory_limit(cgroup: str) -> str | None:
    """The memory limit of the pod's cgroup (host side, on cgroup v1): the parent of its
    containers' cgroup; ``None`` where this process cannot see it."""
    path = next(line for line in cgroup.splitlines() if ":memory:" in line)
    parent = Path("/sys/fs/cgroup/memory", path.split(":", 2)[2].lstrip("/")).parent
    try:
        return (parent / "memory.limit_in_bytes").read_text().strip()
    except OSError:
        return None
