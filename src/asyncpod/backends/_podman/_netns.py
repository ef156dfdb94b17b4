"""Open TCP connections inside a pod's network namespace (rootful and rootless alike).

A rootless pod's address is not routable from the host, so asyncpod does not connect to it
from outside. Instead a tiny helper process enters the namespace of the pod's infra
container with ``nsenter``, creates an (unconnected) TCP socket there and hands it back
over a unix socketpair with ``SCM_RIGHTS``. A socket stays in the namespace it was created
in, so connecting it from this process reaches ``127.0.0.1:<port>`` *inside the pod*.

The PID comes from the service (the infra container's ``State.Pid``), and may have been
reused by the time it is used: it is pinned with a pidfd, the namespaces are opened from
``/proc/PID/ns`` while it is, and the process is checked to be still alive afterwards, so
that the namespace files are that process's. ``nsenter`` gets those files (``--net=`` the
inherited fd), never the PID. As root the network namespace is enough; as a regular user
it belongs to the rootless user namespace, which the user owns, so that user namespace
and ``--preserve-credentials`` are added. ``nsenter`` is taken from a fixed path, never
from ``PATH``; without it, connecting is refused. No shell is ever involved: argv lists
only, with nothing from the caller.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import sys

import anyio
import anyio.abc

from ..._exceptions import BackendError

__all__ = ["open_socket_in_netns", "connect_in_netns"]

# Run with ``python -I -S -c``; stdin is our end of the socketpair.
_HELPER = """\
import socket, sys
channel = socket.socket(fileno=0)
sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
socket.send_fds(channel, [b"ok"], [sock.fileno()])
"""


#: where ``nsenter`` may be (util-linux); never looked up on ``PATH``
NSENTER_PATHS = ("/usr/bin/nsenter", "/bin/nsenter")


def _nsenter() -> str:
    for path in NSENTER_PATHS:
        if os.access(path, os.X_OK):
            return path
    raise BackendError(
        f"cannot connect inside the pod: no nsenter at {' or '.join(NSENTER_PATHS)} "
        "(install util-linux)"
    )


def _pinned_namespaces(pid: int, kinds: tuple[str, ...]) -> list[int]:
    """File descriptors of the namespaces *kinds* of process *pid*, checked to be that
    process's: it is pinned with a pidfd while they are opened, and must still run after."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        raise BackendError(f"the pod's infra process {pid} is gone") from None
    except OSError as exc:
        raise BackendError(f"cannot pin the pod's infra process {pid}: {exc}") from exc
    fds: list[int] = []
    try:
        for kind in kinds:
            fds.append(os.open(f"/proc/{pid}/ns/{kind}", os.O_RDONLY | os.O_CLOEXEC))
        signal.pidfd_send_signal(pidfd, 0)  # still the process pinned: the files are its
    except (ProcessLookupError, FileNotFoundError):
        for fd in fds:
            os.close(fd)
        raise BackendError(f"the pod's infra process {pid} is gone") from None
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    finally:
        os.close(pidfd)
    return fds


def _helper_argv(nsenter: str, fds: list[int]) -> list[str]:
    """argv of the helper, entering the namespaces opened as *fds* (net, then user)."""
    argv = [nsenter, f"--net=/proc/self/fd/{fds[0]}"]
    if len(fds) > 1:
        argv += [f"--user=/proc/self/fd/{fds[1]}", "--preserve-credentials"]
    return [*argv, "--", sys.executable, "-I", "-S", "-c", _HELPER]


async def open_socket_in_netns(pid: int) -> socket.socket:
    """A new, unconnected TCP socket living in the network namespace of process *pid*."""
    nsenter = _nsenter()
    kinds = ("net",) if os.geteuid() == 0 else ("net", "user")
    fds = _pinned_namespaces(pid, kinds)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with theirs:
            result = await anyio.run_process(
                _helper_argv(nsenter, fds),
                stdin=theirs.fileno(),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                check=False,
                pass_fds=fds,
            )
        if result.returncode != 0:
            message = result.stderr.decode("utf-8", "replace").strip()
            raise BackendError(
                f"cannot enter the network namespace of process {pid}: "
                f"{message or f'nsenter exited with code {result.returncode}'}"
            )
        ours.setblocking(False)
        try:
            _msg, received, _flags, _addr = socket.recv_fds(ours, 16, 1)
        except BlockingIOError:
            received = []
        if not received:
            raise BackendError(f"the netns helper for process {pid} sent no socket")
        return socket.socket(fileno=received[0])
    finally:
        ours.close()
        for fd in fds:
            os.close(fd)


async def connect_in_netns(pid: int, port: int) -> anyio.abc.SocketStream:
    """Connect to ``127.0.0.1:port`` in the network namespace of process *pid*."""
    sock = await open_socket_in_netns(pid)
    try:
        sock.setblocking(False)
        code = sock.connect_ex(("127.0.0.1", port))
        if code in (errno.EINPROGRESS, errno.EAGAIN, errno.EALREADY):
            await anyio.wait_writable(sock)
            code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        _raise_for_errno(code, port)
        return await anyio.abc.SocketStream.from_socket(sock)
    except BaseException:
        sock.close()
        raise


def _raise_for_errno(code: int, port: int) -> None:
    if code:
        raise OSError(code, f"connect to 127.0.0.1:{port} in the pod: {os.strerror(code)}")
