"""Open TCP connections inside a pod's network namespace (rootful and rootless alike).

A rootless pod's address is not routable from the host, so asyncpod does not connect to it
from outside. Instead a tiny helper process enters the namespace of the pod's infra
container with ``nsenter``, creates an (unconnected) TCP socket there and hands it back
over a unix socketpair with ``SCM_RIGHTS``. A socket stays in the namespace it was created
in, so connecting it from this process reaches ``127.0.0.1:<port>`` *inside the pod*.

As root, ``nsenter --target PID --net`` is enough. As a regular user the namespace belongs
to the rootless user namespace, which the user owns, so ``--user --preserve-credentials``
is added. No shell is ever involved: argv lists only, with nothing from the caller but the
PID (an int).
"""

from __future__ import annotations

import errno
import os
import shutil
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


def _helper_argv(pid: int) -> list[str]:
    nsenter = shutil.which("nsenter") or "/usr/bin/nsenter"
    argv = [nsenter, f"--target={pid}", "--net"]
    if os.geteuid() != 0:
        argv[2:2] = ["--user", "--preserve-credentials"]
    return [*argv, "--", sys.executable, "-I", "-S", "-c", _HELPER]


async def open_socket_in_netns(pid: int) -> socket.socket:
    """A new, unconnected TCP socket living in the network namespace of process *pid*."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with theirs:
            result = await anyio.run_process(
                _helper_argv(pid),
                stdin=theirs.fileno(),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                check=False,
            )
        if result.returncode != 0:
            message = result.stderr.decode("utf-8", "replace").strip()
            raise BackendError(
                f"cannot enter the network namespace of process {pid}: "
                f"{message or f'nsenter exited with code {result.returncode}'}"
            )
        ours.setblocking(False)
        try:
            _msg, fds, _flags, _addr = socket.recv_fds(ours, 16, 1)
        except BlockingIOError:
            fds = []
        if not fds:
            raise BackendError(f"the netns helper for process {pid} sent no socket")
        return socket.socket(fileno=fds[0])
    finally:
        ours.close()


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
