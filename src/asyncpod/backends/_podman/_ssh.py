"""A Podman service reached over ``ssh://`` (``podman machine``, a build server).

One ``ssh -N`` process per backend forwards a private local unix socket to the remote
service's socket, and is the control master of its connection: the backend talks plain
``unix://`` HTTP to the local end, while knowing that the service is remote. Probes reach a
pod through the same connection: a command on the remote host enters the pod's network
namespace (``nsenter``, as the local helper does) and relays one TCP connection over the
command's stdin and stdout with ``bash``'s ``/dev/tcp``. The remote host needs ``nsenter``
and ``bash``, as Fedora CoreOS (``podman machine``) and common Linux servers have.

Authentication is ssh's own (agent, ``~/.ssh/config``); the key of ``CONTAINER_SSHKEY`` or of
the Podman connection in use is added. A host key seen for the first time is accepted and
remembered (``StrictHostKeyChecking=accept-new``); a changed one is refused.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlparse

import anyio
import anyio.abc

from ..._exceptions import BackendError
from ._process import end_process

__all__ = ["SSHTunnel", "default_connection", "is_ssh"]

_START_TIMEOUT = 30.0
# $1: the port. "K" once connected, then bytes both ways; exit 7 when the connect fails.
# (fd 4: a background command of a non-interactive shell would get /dev/null as stdin.)
_RELAY = (
    'exec 3<>"/dev/tcp/127.0.0.1/$1" 4<&0 || exit 7; printf K; '
    "cat <&4 >&3 2>/dev/null & exec cat <&3"
)


def is_ssh(url: str) -> bool:
    return url.startswith(("ssh://", "http+ssh://"))


def _connections() -> tuple[str | None, dict[str, tuple[str, str | None]]]:
    """The user's Podman connections (``podman system connection``): the default's name, and
    every name's URI and identity. Podman 5 keeps them in ``podman-connections.json``, Podman 4
    in ``containers.conf`` (``[engine] active_service``, ``[engine.service_destinations]``)."""
    config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "containers"
    default: str | None = None
    found: dict[str, tuple[str, str | None]] = {}
    try:
        import tomllib  # type: ignore[import-not-found,unused-ignore]  # Python 3.11

        conf = tomllib.loads((config / "containers.conf").read_text())
        engine = conf.get("engine") or {}
        default = engine.get("active_service") or None
        for name, dest in (engine.get("service_destinations") or {}).items():
            if isinstance(dest, dict) and dest.get("uri"):
                found[name] = (str(dest["uri"]), dest.get("identity") or None)
    except (ImportError, OSError, ValueError):
        pass
    try:
        data = json.loads((config / "podman-connections.json").read_text())
        connection = data.get("Connection") or {}
        default = connection.get("Default") or default
        for name, dest in (connection.get("Connections") or {}).items():
            if isinstance(dest, dict) and dest.get("URI"):
                found[name] = (str(dest["URI"]), dest.get("Identity") or None)
    except (OSError, ValueError, AttributeError):
        pass
    return default, found


def default_connection() -> str | None:
    """The URI of the user's default Podman connection, if one is set."""
    default, found = _connections()
    return found[default][0] if default in found else None


def connection_identity(url: str) -> str | None:
    """The ssh key of the Podman connection with this URI, if any."""
    for uri, identity in _connections()[1].values():
        if uri == url:
            return identity
    return None


class SSHTunnel:
    """The ssh connection to one remote Podman service (see the module docstring)."""

    def __init__(self, url: str, identity: str | None = None) -> None:
        parsed = urlparse(url.removeprefix("http+"))
        if not parsed.hostname or not parsed.path:
            raise BackendError(f"not an ssh://[user@]host[:port]/path/to/podman.sock URL: {url}")
        self.url = url
        self.user = unquote(parsed.username) if parsed.username else None
        self.host = parsed.hostname
        self.port = parsed.port
        self.remote_socket = unquote(parsed.path)
        self.identity = (
            identity or os.environ.get("CONTAINER_SSHKEY") or connection_identity(url) or None
        )
        self._dir: Path | None = None
        self._process: anyio.abc.Process | None = None

    @property
    def rootless(self) -> bool:
        """Whether the remote user is not root (its pods' namespaces are in its user namespace)."""
        return self.user not in (None, "root") or "/run/user/" in self.remote_socket

    def _ssh(self, *options: str) -> list[str]:
        ssh = shutil.which("ssh")
        if ssh is None:
            raise BackendError(f"{self.url}: no 'ssh' executable on PATH")
        assert self._dir is not None
        argv = [ssh, "-S", str(self._dir / "control"), "-o", "BatchMode=yes"]
        argv += ["-o", "StrictHostKeyChecking=accept-new", *options]
        if self.port:
            argv += ["-p", str(self.port)]
        if self.identity:
            argv += ["-i", str(Path(self.identity).expanduser())]
        return [*argv, f"{self.user}@{self.host}" if self.user else self.host]

    async def open(self) -> str:
        """Start the forwarding master; the ``unix://`` URL of its local end."""
        self._dir = Path(tempfile.mkdtemp(prefix="asyncpod-ssh-"))
        local = self._dir / "podman.sock"
        argv = self._ssh("-N", "-M", "-o", "ExitOnForwardFailure=yes", "-o", "ControlPersist=no")
        argv[-1:-1] = ["-L", f"{local}:{self.remote_socket}"]
        errors = self._dir / "ssh.log"
        try:
            with errors.open("wb") as log:
                self._process = await anyio.open_process(
                    argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
                )
            with anyio.move_on_after(_START_TIMEOUT) as scope:
                while not local.exists() and self._process.returncode is None:  # noqa: ASYNC110
                    await anyio.sleep(0.05)  # (ssh makes the socket: nothing to wait on)
        except BaseException:
            await self.aclose()
            raise
        if not local.exists():
            why = "timed out" if scope.cancelled_caught else "ssh exited"
            text = errors.read_text(errors="replace").strip()[-1000:]
            await self.aclose()
            raise BackendError(f"{self.url}: {why}: {text}")
        return f"unix://{local}"

    async def aclose(self) -> None:
        process, directory = self._process, self._dir
        self._process = self._dir = None
        if process is not None:
            await end_process(process)
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)

    async def connect(self, pid: int, port: int) -> anyio.abc.ByteStream:
        """Connect to ``127.0.0.1:port`` in the network namespace of remote process *pid*."""
        if self._process is None:
            raise BackendError(f"{self.url}: the ssh connection is closed")
        enter = f"nsenter --target={int(pid)} --net"
        if self.rootless:
            enter = f"nsenter --target={int(pid)} --user --preserve-credentials --net"
        remote = f"{enter} -- bash -c '{_RELAY}' relay {int(port)}"
        process = await anyio.open_process(
            [*self._ssh(), remote],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            connected, data = await _handshake(process)
        except BaseException:
            await _end(process)
            raise
        if connected:
            return _ProcessStream(process, data)
        await _end(process)
        text = data.decode("utf-8", "replace").strip()
        if process.returncode == 7:
            raise ConnectionRefusedError(
                errno.ECONNREFUSED, f"connect to 127.0.0.1:{port} in the pod: {text}"
            )
        raise BackendError(
            f"cannot enter the network namespace of process {pid} on {self.host}: "
            f"{text or f'ssh exited with code {process.returncode}'}"
        )


async def _handshake(process: anyio.abc.Process) -> tuple[bool, bytes]:
    """``(True, bytes after the "K")`` once the relay is connected, else ``(False, stderr)``."""
    assert process.stdout is not None
    assert process.stderr is not None
    try:
        first = await process.stdout.receive()
    except (anyio.EndOfStream, anyio.BrokenResourceError):
        first = b""
    if first[:1] == b"K":
        return True, first[1:]
    await process.wait()
    message = b""
    with contextlib.suppress(anyio.EndOfStream, anyio.ClosedResourceError):
        while True:
            message += await process.stderr.receive()
    return False, message


async def _end(process: anyio.abc.Process) -> None:
    with anyio.CancelScope(shield=True):
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
        await process.aclose()


class _ProcessStream(anyio.abc.ByteStream):
    """A byte stream over a process's stdout (receive) and stdin (send)."""

    def __init__(self, process: anyio.abc.Process, pending: bytes) -> None:
        assert process.stdin is not None
        assert process.stdout is not None
        self._process = process
        self._stdin = process.stdin
        self._stdout = process.stdout
        self._pending = pending

    async def receive(self, max_bytes: int = 65536) -> bytes:
        if self._pending:
            data, self._pending = self._pending[:max_bytes], self._pending[max_bytes:]
            return data
        return await self._stdout.receive(max_bytes)

    async def send(self, item: bytes) -> None:
        await self._stdin.send(item)

    async def send_eof(self) -> None:
        await self._stdin.aclose()

    async def aclose(self) -> None:
        await _end(self._process)
