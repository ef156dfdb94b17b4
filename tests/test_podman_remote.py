"""PodmanBackend and a remote service: ``ssh://`` URLs, Podman's connections, what stays local.

CI runs the conformance suite and the demo over ``ssh://`` (``.ci/remote-setup``); these
tests pin the parts that need no ssh server.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from asyncpod import BackendError
from asyncpod.backends import PodmanBackend
from asyncpod.backends._podman._service import candidate_urls
from asyncpod.backends._podman._ssh import SSHTunnel, connection_identity, default_connection

URL = "ssh://alice@build.example:2222/run/user/1000/podman/podman.sock"


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)  # real time: a real ssh process runs


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.delenv("CONTAINER_HOST", raising=False)
    monkeypatch.delenv("CONTAINER_SSHKEY", raising=False)
    (tmp_path / "containers").mkdir()
    return tmp_path / "containers"


def test_no_connection(config: Path) -> None:
    assert default_connection() is None
    urls, chosen = candidate_urls(None)
    assert len(urls) == 1  # the local socket only
    assert chosen is False  # nothing chosen: a service may be spawned


def test_podman5_default_connection(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (config / "podman-connections.json").write_text(
        json.dumps(
            {
                "Connection": {
                    "Default": "build",
                    "Connections": {
                        "machine": {"URI": "ssh://core@127.0.0.1:40000/run/podman/podman.sock"},
                        "build": {"URI": URL, "Identity": "/keys/build"},
                    },
                }
            }
        )
    )
    assert default_connection() == URL
    monkeypatch.setattr("sys.platform", "linux")
    urls, chosen = candidate_urls(None)
    # Linux: after the local socket (podman uses a connection only with --remote there)
    assert (urls[-1], len(urls), chosen) == (URL, 2, False)
    assert urls[0].startswith("unix://")
    monkeypatch.setattr("sys.platform", "darwin")
    assert candidate_urls(None)[0][0] == URL  # podman machine first
    assert candidate_urls("unix:///x.sock") == (["unix:///x.sock"], True)  # a URL still wins
    assert connection_identity(URL) == "/keys/build"
    assert SSHTunnel(URL).identity == "/keys/build"


def test_podman4_default_connection(config: Path) -> None:
    pytest.importorskip("tomllib")
    (config / "containers.conf").write_text(
        '[engine]\nactive_service = "build"\n'
        f'[engine.service_destinations.build]\nuri = "{URL}"\nidentity = "/keys/b"\n'
    )
    assert default_connection() == URL
    assert SSHTunnel(URL).identity == "/keys/b"


def test_container_host_wins(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (config / "podman-connections.json").write_text(
        json.dumps({"Connection": {"Default": "b", "Connections": {"b": {"URI": URL}}}})
    )
    monkeypatch.setenv("CONTAINER_HOST", "unix:///elsewhere.sock")
    assert candidate_urls(None) == (["unix:///elsewhere.sock"], True)


def test_tunnel_url(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tunnel = SSHTunnel(URL)
    assert (tunnel.user, tunnel.host, tunnel.port) == ("alice", "build.example", 2222)
    assert tunnel.remote_socket == "/run/user/1000/podman/podman.sock"
    assert tunnel.rootless
    assert tunnel.identity is None
    assert not SSHTunnel("ssh://root@h/run/podman/podman.sock").rootless
    monkeypatch.setenv("CONTAINER_SSHKEY", "/keys/env")
    assert SSHTunnel(URL).identity == "/keys/env"
    with pytest.raises(BackendError, match="not an ssh://"):
        SSHTunnel("ssh://host-without-a-socket-path")


@pytest.mark.anyio
async def test_unreachable_ssh(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An ssh:// service that cannot be reached: the backend says which and why, and is not
    local (no PID or path of this machine means anything there)."""
    monkeypatch.setenv("HOME", str(config))  # no ~/.ssh of the user running the tests
    backend = PodmanBackend("ssh://nobody@127.0.0.1:1/run/podman/podman.sock")
    with pytest.raises(BackendError, match=r"ssh://nobody@127\.0\.0\.1:1/.*ssh exited"):
        await backend.aopen()
    assert backend._tunnel is None
    assert not backend.is_local
