"""Pod fields honoured on real Podman, seen from inside the containers (issue #11): a
``medium: Memory`` emptyDir shared by every container for the pod's life, ``fsGroup``
ownership of emptyDir volumes, and ``status.podIP`` in the environment. Skipped without
Podman unless ASYNCPOD_REQUIRE_PODMAN=1; run rootless by the CI's rootless leg.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

import asyncpod
from asyncpod import (
    ConfigMap,
    ConfigMapVolumeSource,
    Container,
    EmptyDirVolumeSource,
    EnvVar,
    EnvVarSource,
    ObjectFieldSelector,
    Pod,
    PodSecurityContext,
    Secret,
    SecretVolumeSource,
    Volume,
    VolumeMount,
)
from asyncpod.backends import PodmanBackend
from asyncpod.kube import load
from podman_images import TEST_IMAGE, left_behind

pytestmark = [pytest.mark.podman, pytest.mark.anyio]

_SERVE = "trap 'exit 0' TERM; while true; do sleep 0.2; done"


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Real time: Podman does real work."""
    return str(request.param)


@pytest.fixture
async def podman(podman_url: str, image: str) -> AsyncIterator[PodmanBackend]:
    async with PodmanBackend(podman_url) as backend:
        yield backend


def _server(name: str, **kwargs: Any) -> Container:
    return Container(name=name, image=TEST_IMAGE, command=["sh", "-c", _SERVE], **kwargs)


async def _out(running: asyncpod.RunningPod, name: str, script: str) -> str:
    result = await running.exec(name, ["sh", "-c", script])
    assert result.exit_code == 0, (script, result.stdout, result.stderr)
    return result.stdout.decode()


async def test_memory_empty_dir_is_one_tmpfs_for_the_pod(
    podman: PodmanBackend, podman_client: Any, anyio_backend: str
) -> None:
    """What the init container wrote to a ``medium: Memory`` emptyDir is there for the app
    containers, even after a time when no container mounted it; they see each other's
    writes, on a tmpfs of the sizeLimit; nothing of it is left after the teardown."""
    mem = [VolumeMount(name="mem", mount_path="/mem")]
    pod = Pod(
        name=f"apt-memdir-{anyio_backend}",  # each loop's run may be at once
        init_containers=[
            Container(
                name="init",
                image=TEST_IMAGE,
                volume_mounts=mem,
                command=["sh", "-c", "echo from-init > /mem/seed"],
            ),
            # While nothing that mounts it runs, Podman would unmount a tmpfs volume.
            Container(name="pause", image=TEST_IMAGE, command=["sleep", "1"]),
        ],
        containers=[_server("a", volume_mounts=mem), _server("b", volume_mounts=mem)],
        volumes=[
            Volume(name="mem", empty_dir=EmptyDirVolumeSource(medium="Memory", size_limit="8Mi"))
        ],
        termination_grace_period_seconds=1,
    )
    async with asyncpod.open_pod(pod, backend=podman) as running:
        assert await _out(running, "a", "cat /mem/seed") == "from-init\n"
        assert await _out(running, "b", "cat /mem/seed") == "from-init\n"
        await _out(running, "a", "echo from-a > /mem/a")
        assert await _out(running, "b", "cat /mem/a") == "from-a\n"
        await _out(running, "b", "echo from-b > /mem/b")
        assert await _out(running, "a", "cat /mem/b") == "from-b\n"
        mounts = await _out(running, "a", "grep ' /mem ' /proc/mounts")
        assert mounts.split()[2] == "tmpfs", mounts
        blocks = (await _out(running, "a", "df -k /mem")).splitlines()[-1].split()
        assert blocks[1] == str(8 * 1024), blocks  # 1K-blocks: the sizeLimit
        run = running.run_id
    assert left_behind(podman_client, "io.asyncpod.run", run) == []


@pytest.mark.parametrize("medium", ["", "Memory"], ids=["disk", "memory"])
async def test_fs_group_owns_empty_dir(
    podman: PodmanBackend, podman_client: Any, medium: str, anyio_backend: str
) -> None:
    """With ``runAsUser: 1000`` and ``fsGroup: 2000``, an emptyDir is root's and group
    2000's, ``drwxrwsrwx``: the container writes to it, and what it makes is group
    2000's; 2000 is among the container's groups."""
    pod = Pod(
        name=f"apt-fsgroup-{medium.lower() or 'disk'}-{anyio_backend}",  # each may run at once
        containers=[_server("app", volume_mounts=[VolumeMount(name="data", mount_path="/data")])],
        volumes=[Volume(name="data", empty_dir=EmptyDirVolumeSource(medium=medium))],
        security_context=PodSecurityContext(run_as_user=1000, fs_group=2000),
        termination_grace_period_seconds=1,
    )
    async with asyncpod.open_pod(pod, backend=podman) as running:
        assert "2000" in (await _out(running, "app", "id -G")).split()
        assert await _out(running, "app", "stat -c '%u %g %A' /data") == "0 2000 drwxrwsrwx\n"
        await _out(running, "app", "mkdir /data/d && echo x > /data/d/f")
        made = await _out(running, "app", "stat -c '%u %g' /data/d /data/d/f")
        assert made == "1000 2000\n1000 2000\n"
        run = running.run_id
    assert left_behind(podman_client, "io.asyncpod.run", run) == []


async def test_fs_group_owns_config_map_and_secret_files(
    podman: PodmanBackend, podman_client: Any, anyio_backend: str
) -> None:
    """With ``fsGroup: 2000``, a ConfigMap's and a Secret's files of mode 0400 are root's
    and group 2000's, readable by the group: a container running as 1000 reads them."""
    mounts = [
        VolumeMount(name="conf", mount_path="/conf"),
        VolumeMount(name="creds", mount_path="/creds"),
    ]
    pod = Pod(
        name=f"apt-fsgroup-files-{anyio_backend}",
        containers=[_server("app", volume_mounts=mounts)],
        volumes=[
            Volume(name="conf", config_map=ConfigMapVolumeSource(name="conf", default_mode=0o400)),
            Volume(
                name="creds", secret=SecretVolumeSource(secret_name="creds", default_mode=0o400)
            ),
        ],
        security_context=PodSecurityContext(run_as_user=1000, fs_group=2000),
        termination_grace_period_seconds=1,
    )
    async with asyncpod.open_pod(
        pod,
        backend=podman,
        config_maps=[ConfigMap(name="conf", data={"a.txt": "config"})],
        secrets=[Secret(name="creds", data={"token": b"s3cret"})],
    ) as running:
        assert await _out(running, "app", "cat /conf/a.txt /creds/token") == "configs3cret"
        owners = await _out(running, "app", "stat -L -c '%u %g %a' /conf/a.txt /creds/token")
        assert owners == "0 2000 440\n0 2000 440\n"
        run = running.run_id
    assert left_behind(podman_client, "io.asyncpod.run", run) == []


async def test_pod_ip_in_environment_and_status(podman: PodmanBackend, anyio_backend: str) -> None:
    """``status.podIP``, ``status.podIPs`` and ``status.hostIP`` in the environment: the
    pod's address is what the status reports and what the container has; the host's is
    not loopback."""
    env = [
        EnvVar(name=name, value_from=EnvVarSource(field_ref=ObjectFieldSelector(field_path=path)))
        for name, path in (
            ("POD_IP", "status.podIP"),
            ("POD_IPS", "status.podIPs"),
            ("HOST_IP", "status.hostIP"),
        )
    ]
    pod = Pod(
        name=f"apt-podip-{anyio_backend}",
        containers=[_server("app", env=env)],
        termination_grace_period_seconds=1,
    )
    async with asyncpod.open_pod(pod, backend=podman) as running:
        pod_ip = running.status().pod_ip
        assert pod_ip and not pod_ip.startswith("127."), pod_ip
        assert await _out(running, "app", 'echo "$POD_IP $POD_IPS"') == f"{pod_ip} {pod_ip}\n"
        inside = await _out(running, "app", "ip -4 -o addr show scope global")
        assert f" {pod_ip}/" in inside, inside
        host = (await _out(running, "app", 'echo "$HOST_IP"')).strip()
        assert host and not host.startswith("127."), host


async def test_job_backoff_limit(
    podman: PodmanBackend, podman_client: Any, anyio_backend: str
) -> None:
    """A Job whose pod fails, backoffLimit 1: with Never, two pods run and the job fails
    with BackoffLimitExceeded; with OnFailure, one pod whose container restarts once."""
    for policy, pods in (("Never", 2), ("OnFailure", 1)):
        job = f"apt-job-{anyio_backend}"
        bundle = load(
            _JOB.replace("POLICY", policy).replace("IMAGE", TEST_IMAGE).replace("apt-job", job)
        )
        created: list[str] = []

        def on_event(event: asyncpod.PodEvent, created: list[str] = created) -> None:
            if event.reason is asyncpod.EventReason.CREATED and event.container == "work":
                created.append(event.container)

        with pytest.raises(asyncpod.BackoffLimitExceededError) as caught:
            await asyncpod.run_job(bundle, backend=podman, on_event=on_event)
        assert (caught.value.count, caught.value.limit) == (pods if policy == "Never" else 1, 1)
        assert len(created) == pods, policy
        assert left_behind(podman_client, "io.asyncpod.pod", job) == []


_JOB = """
apiVersion: batch/v1
kind: Job
metadata: {name: apt-job}
spec:
  backoffLimit: 1
  template:
    spec:
      restartPolicy: POLICY
      terminationGracePeriodSeconds: 1
      containers:
      - {name: work, image: IMAGE, command: [sh, -c, 'exit 1']}
"""
