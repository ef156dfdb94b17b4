"""Who owns a pod's objects: the process that created them, named by labels.

Every object of a run carries the owner's pid, host name and, where ``/proc`` tells it,
the process start time (clock ticks since boot). The start time tells a live owner from
an unrelated process that got the same pid later. The host name is trusted only for the
objects of a local service: a remote one (``ssh://``, ``tcp://``) may serve another
machine of the same name.
"""

from __future__ import annotations

import enum
import os
import signal
import socket
from collections.abc import Mapping

from ._labels import LABEL_OWNER_HOST, LABEL_OWNER_PID, LABEL_OWNER_START

__all__ = [
    "OwnerState",
    "owner_labels",
    "owner_state",
    "process_start",
    "signal_owner",
]


def hostname() -> str:
    """This host's name, as the owner-host label holds it (at most 63 characters)."""
    return socket.gethostname()[:63]


def process_start(pid: int) -> str | None:
    """The start time of process *pid* in clock ticks since boot, or ``None`` if unknown.

    Read from ``/proc/PID/stat`` (field 22); ``None`` where there is no such process, no
    ``/proc``, or only what is left of an exited process (a zombie not yet reaped).
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            data = stat.read()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces and parentheses.
    fields = data[data.rfind(b")") + 2 :].split()
    if len(fields) <= 19 or fields[0] in (b"Z", b"X"):
        return None
    return fields[19].decode()


def owner_labels() -> dict[str, str]:
    """The owner labels of this process."""
    labels = {LABEL_OWNER_PID: str(os.getpid()), LABEL_OWNER_HOST: hostname()}
    start = process_start(os.getpid())
    if start is not None:
        labels[LABEL_OWNER_START] = start
    return labels


class OwnerState(str, enum.Enum):
    """Whether the process that owns an object still runs."""

    #: it runs on this machine
    ALIVE = "alive"
    #: it ran on this machine and is gone (or its pid now belongs to another process)
    GONE = "gone"
    #: it runs, or ran, on another machine, or the labels do not say
    UNKNOWN = "unknown"


def _owner_pid(labels: Mapping[str, str], *, local: bool) -> int | None:
    """The owner's pid if the owner ran on this machine, else ``None``.

    That is known only for the objects of a *local* service (a unix socket here) whose
    owner-host label names this host: a remote service (``ssh://``, ``tcp://``) may hold
    objects of another machine with the same name, whose pids mean nothing here.
    """
    value = labels.get(LABEL_OWNER_PID, "")
    # Linux pids are at most 2**22 (pid_max's limit): 7 digits
    if not (value.isascii() and value.isdigit() and len(value) <= 7):
        return None
    pid = int(value)
    if not local or pid <= 0 or labels.get(LABEL_OWNER_HOST) != hostname():
        return None
    return pid


def _start_label(labels: Mapping[str, str]) -> str | None:
    """The owner-start label, if it is a sane value (decimal clock ticks)."""
    value = labels.get(LABEL_OWNER_START)
    if value is None or not (value.isascii() and value.isdigit() and len(value) <= 20):
        return None
    return value


def _is_ours(pid: int) -> bool:
    """Whether process *pid* runs as this process's effective user."""
    try:
        return os.stat(f"/proc/{pid}").st_uid == os.geteuid()
    except OSError:
        return False


def owner_state(labels: Mapping[str, str], *, local: bool = True) -> OwnerState:
    """Whether the owner named by *labels* still runs.

    Only an owner on this machine can be checked: the objects must be those of a *local*
    backend, and their owner-host label must name this host. A pid that exists
    but started at another time than the label says was reused: the owner is gone.
    Without a start label (an owner on a system without ``/proc``), a reused pid counts as
    alive.
    """
    pid = _owner_pid(labels, local=local)
    if pid is None:
        return OwnerState.UNKNOWN
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return OwnerState.GONE
    except PermissionError:
        pass  # it exists, owned by another user
    expected = _start_label(labels)
    if expected is not None:
        actual = process_start(pid)
        if actual is not None and actual != expected:
            return OwnerState.GONE
    return OwnerState.ALIVE


def signal_owner(labels: Mapping[str, str], signum: int, *, local: bool = True) -> bool:
    """Send *signum* to the owner named by *labels* if it provably is that process.

    Proof is the owner-start label matching the start time of the process with that pid
    now, on this machine, and the process running as this process's user: labels are
    only the say-so of whoever could write them, and a start time is world-readable, so
    a process of another user is never signalled, root's included. Without a start time
    (no ``/proc``, labels without one) nothing is sent: the pid may belong to an unrelated
    process. Where the system has pidfds, the process is pinned before its owner and start
    time are read, so that it cannot be replaced between the check and the signal.
    Returns whether the signal was sent.
    """
    pid = _owner_pid(labels, local=local)
    expected = _start_label(labels)
    if pid is None or expected is None:
        return False
    pidfd_open = getattr(os, "pidfd_open", None)
    send = getattr(signal, "pidfd_send_signal", None)
    if pidfd_open is None or send is None:  # pragma: no cover - Linux before 5.3
        if process_start(pid) != expected or not _is_ours(pid):
            return False
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            return False
        return True
    try:
        fd = pidfd_open(pid)
    except ProcessLookupError:
        return False
    try:
        if process_start(pid) != expected or not _is_ours(pid):
            return False
        try:
            send(fd, signum)
        except ProcessLookupError:
            return False
        return True
    finally:
        os.close(fd)
