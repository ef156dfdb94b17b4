"""Host namespaces, names and terminals on real Podman, observed from inside the
containers (rootful, and rootless when the suite runs as an unprivileged user)."""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

import asyncpod
from asyncpod import Container, Pod
from asyncpod.backends import PodmanBackend
from podman_images import TEST_IMAGE, left_behind

pytestmark = [pytest.mark.podman, pytest.mark.anyio]

#: rootless Podman bind-mounts the host's /dev/mqueue for ipc=host
_NO_ROOTLESS_IPC = os.getuid() != 0 and not os.path.isdir("/dev/mqueue")


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def podman(podman_url: str, image: str) -> AsyncIterator[PodmanBackend]:
    async with PodmanBackend(podman_url) as backend:
        yield backend


def _pod(name: str, *containers: Container, **kwargs: Any) -> Pod:
    return Pod(
        name=f"{name}-{os.getpid()}",
        containers=containers or [_sleeper("main")],
        termination_grace_period_seconds=2,
        **kwargs,
    )


def _sleeper(name: str, **kwargs: Any) -> Container:
    return Container(name=name, image=TEST_IMAGE, command=["sleep", "1000"], **kwargs)


async def _sh(running: asyncpod.RunningPod, script: str, container: str = "main") -> str:
    result = await running.exec(container, ["sh", "-c", script])
    assert result.exit_code == 0, result
    return result.stdout.decode()


async def test_host_network_sees_the_hosts_interfaces_and_name(
    podman: PodmanBackend, podman_client: Any
) -> None:
    """hostNetwork: the host's name, and a port the container listens on is the host's."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = Container(
        name="main",
        image=TEST_IMAGE,
        command=[
            "sh",
            "-c",
            f"echo on-the-host > /tmp/i.html; httpd -f -p 127.0.0.1:{port} -h /tmp",
        ],
        ports=[asyncpod.ContainerPort(container_port=port)],
    )
    pod = _pod("hostnet", server, host_network=True, hostname="ignored")
    async with asyncpod.open_pod(pod, backend=podman) as running:
        assert (await _sh(running, "hostname")).strip() == socket.gethostname()
        body = b""
        with anyio.fail_after(20):
            while b"on-the-host" not in body:
                try:
                    stream = await anyio.connect_tcp("127.0.0.1", port)
                except OSError:
                    await anyio.sleep(0.1)
                    continue
                async with stream:
                    await stream.send(b"GET /i.html HTTP/1.0\r\n\r\n")
                    try:
                        while True:
                            body += await stream.receive()
                    except anyio.EndOfStream:
                        pass
        run = running.run_id
    assert left_behind(podman_client, "io.asyncpod.run", run) == []


async def test_host_network_keeps_aliases_and_resolver(podman: PodmanBackend) -> None:
    """hostNetwork pods still get hostAliases and dnsConfig, as the kubelet gives them."""
    pod = _pod(
        "hostnetdns",
        host_network=True,
        host_aliases=[asyncpod.HostAlias(ip="10.9.8.7", hostnames=["aliased"])],
        dns_policy="None",
        dns_config=asyncpod.PodDNSConfig(nameservers=["192.0.2.77"]),
    )
    async with asyncpod.open_pod(pod, backend=podman) as running:
        hosts = await _sh(running, "cat /etc/hosts")
        assert "10.9.8.7\taliased" in hosts, hosts
        resolv = await _sh(running, "cat /etc/resolv.conf")
        assert [line for line in resolv.splitlines() if line.startswith("nameserver")] == [
            "nameserver 192.0.2.77"
        ], resolv


async def test_host_pid_sees_the_hosts_processes(podman: PodmanBackend) -> None:
    """hostPID: this test's own process is visible in the container's /proc."""
    pod = _pod("hostpid", host_pid=True)
    async with asyncpod.open_pod(pod, backend=podman) as running:
        assert await _sh(running, f"test -d /proc/{os.getpid()} && echo yes") == "yes\n"
    private = _pod("privpid")
    async with asyncpod.open_pod(private, backend=podman) as running:
        seen = await running.exec("main", ["test", "-d", f"/proc/{os.getpid()}"])
        assert seen.exit_code == 1, seen  # (this pid is never 1 or the sleeper's)


async def test_host_ipc_shares_the_hosts_shared_memory(podman: PodmanBackend) -> None:
    """hostIPC: a file in the host's /dev/shm is the container's."""
    if _NO_ROOTLESS_IPC:
        pytest.skip("rootless hostIPC needs the host's /dev/mqueue, which this host lacks")
    with tempfile.NamedTemporaryFile(dir="/dev/shm", prefix="asyncpod-ipc-") as shm:
        shm.write(b"shared")
        shm.flush()
        os.chmod(shm.name, 0o644)
        pod = _pod("hostipc", host_ipc=True)
        async with asyncpod.open_pod(pod, backend=podman) as running:
            assert await _sh(running, f"cat {shm.name}") == "shared"
        async with asyncpod.open_pod(_pod("privipc"), backend=podman) as running:
            seen = await running.exec("main", ["test", "-e", shm.name])
            assert seen.exit_code == 1, seen


async def test_share_process_namespace(podman: PodmanBackend) -> None:
    """shareProcessNamespace: one container sees the other's processes; without it, not."""
    for shared in (True, False):
        pod = _pod(
            f"sharepid{int(shared)}",
            _sleeper("main"),
            Container(name="other", image=TEST_IMAGE, command=["sleep", "4242"]),
            share_process_namespace=shared,
        )
        async with asyncpod.open_pod(pod, backend=podman) as running:
            found = await running.exec(
                "main", ["sh", "-c", "cat /proc/*/cmdline | grep -c '424[2]'"]
            )
            assert (found.exit_code == 0) is shared, found


async def test_stdin_and_tty(podman: PodmanBackend) -> None:
    """stdin keeps standard input open (``cat`` waits on it); tty gives a terminal."""
    interactive = Container(
        name="main",
        image=TEST_IMAGE,
        command=["sh", "-c", "test -t 0 && test -t 1 && echo tty > /tmp/t; cat; exit 3"],
        stdin=True,
        tty=True,
    )
    async with asyncpod.open_pod(_pod("tty", interactive), backend=podman) as running:
        for _ in range(100):
            if (await running.exec("main", ["cat", "/tmp/t"])).stdout == b"tty\n":
                break
            await anyio.sleep(0.1)
        else:
            raise AssertionError("the container found no terminal on its stdin and stdout")
        await anyio.sleep(1)  # cat would have read the end of a closed stdin by now
        status = running.status().container("main")
        assert isinstance(status.state, asyncpod.Running), status
        assert status.restart_count == 0, status


async def test_mount_propagation_and_recursive_read_only(
    podman: PodmanBackend, tmp_path: Any
) -> None:
    """HostToContainer and None are accepted bind options; IfPossible mounts read-only;
    Enabled is refused with the reason."""
    os.chmod(tmp_path, 0o755)
    volume = asyncpod.Volume(
        name="host", host_path=asyncpod.HostPathVolumeSource(path=str(tmp_path))
    )

    def mounted(**options: Any) -> Pod:
        mount = asyncpod.VolumeMount(name="host", mount_path="/h", **options)
        return _pod("propagation", _sleeper("main", volume_mounts=[mount]), volumes=[volume])

    for propagation in ("None", "HostToContainer"):
        async with asyncpod.open_pod(
            mounted(mount_propagation=propagation), backend=podman
        ) as running:
            assert (await running.exec("main", ["touch", "/h/w"])).exit_code == 0
    if_possible = mounted(read_only=True, recursive_read_only="IfPossible")
    async with asyncpod.open_pod(if_possible, backend=podman) as running:
        assert (await running.exec("main", ["touch", "/h/x"])).exit_code != 0
    enabled = mounted(read_only=True, recursive_read_only="Enabled")
    with pytest.raises(asyncpod.AsyncpodError, match="recursiveReadOnly: Enabled"):
        async with asyncpod.open_pod(enabled, backend=podman):
            pass
