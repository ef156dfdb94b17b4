"""Host ports: whether one is free, who holds it, and a free one to publish.

Best effort and Linux-only where the answer comes from ``/proc``: elsewhere, or for a
socket of a process this user cannot see, the holder is unknown (``None``).
"""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path

__all__ = ["bind_error", "describe", "free_port", "port_holder"]

_PROC = Path("/proc")
#: /proc/net tables per protocol, and the state of a listening TCP socket in them
_TABLES = {"tcp": ("tcp", "tcp6"), "udp": ("udp", "udp6"), "sctp": ()}
_TCP_LISTEN = "0A"


def _socket_type(protocol: str) -> int:
    return socket.SOCK_DGRAM if protocol == "udp" else socket.SOCK_STREAM


def bind_error(host_ip: str, port: int, protocol: str = "tcp") -> OSError | None:
    """Why *port* cannot be bound on *host_ip* ("" for every address), or ``None``.

    A bind attempt, as the engine would make: a socket bound by any process of this
    host (asyncpod's own included) is found.
    """
    family = socket.AF_INET6 if ":" in host_ip else socket.AF_INET
    with socket.socket(family, _socket_type(protocol)) as probe:
        if protocol != "udp":
            # As a listening engine does: a port in TIME_WAIT is not in use.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host_ip or ("::" if family == socket.AF_INET6 else "0.0.0.0"), port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return exc
            return None  # not ours to judge (an address this host does not have, say)
    return None


def free_port(host_ip: str = "", protocol: str = "tcp") -> int:
    """A port that is free now on *host_ip* (it may be taken before it is used)."""
    family = socket.AF_INET6 if ":" in host_ip else socket.AF_INET
    with socket.socket(family, _socket_type(protocol)) as probe:
        probe.bind((host_ip or ("::" if family == socket.AF_INET6 else "0.0.0.0"), 0))
        return int(probe.getsockname()[1])


def _inodes(port: int, protocol: str) -> set[str]:
    """The inodes of the sockets bound to *port* (listening, for TCP)."""
    found: set[str] = set()
    for table in _TABLES.get(protocol, ()):
        try:
            lines = (_PROC / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10:
                continue
            local, state, inode = fields[1], fields[3], fields[9]
            if int(local.rpartition(":")[2], 16) != port or inode == "0":
                continue
            if protocol == "tcp" and state != _TCP_LISTEN:
                continue
            found.add(inode)
    return found


def port_holder(port: int, protocol: str = "tcp") -> str | None:
    """Who holds host *port*: ``"pid 1234 (nginx)"``, or ``None`` if this host cannot tell."""
    inodes = _inodes(port, protocol)
    if not inodes:
        return None
    wanted = {f"socket:[{inode}]" for inode in inodes}
    try:
        pids = [entry for entry in os.listdir(_PROC) if entry.isdigit()]
    except OSError:
        return None
    for pid in pids:
        fd_dir = _PROC / pid / "fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue  # gone, or not ours to see
        for fd in fds:
            try:
                target = os.readlink(fd_dir / fd)
            except OSError:
                continue
            if target in wanted:
                try:
                    name = (_PROC / pid / "comm").read_text().strip()
                except OSError:
                    name = "?"
                return f"pid {pid} ({name})"
    return None


def describe(port: int, protocol: str = "tcp") -> str:
    """``"host port 8080/tcp is already in use"``, naming the holder where the host can tell."""
    holder = port_holder(port, protocol)
    text = f"host port {port}/{protocol} is already in use"
    return f"{text} (held by {holder})" if holder else text
