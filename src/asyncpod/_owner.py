"""Who owns a pod's objects: the process that created them, named by labels.

Every object of a run carries the owner's pid, host name and, where ``/proc`` tells it,
the process start time (clock ticks since boot). The start time tells a live owner from
an unrelated process that got the same pid later.
"""

from __future__ import annotations

import enum
import os
import socket
from collections.abc import Mapping

__all__ = [
    "LABEL_OWNER_HOST",
    "LABEL_OWNER_PID",
    "LABEL_OWNER_START",
    "OwnerState",
    "owner_labels",
    "owner_state",
    "process_start",
]

LABEL_OWNER_PID = "io.asyncpod.owner-pid"
LABEL_OWNER_HOST = "io.asyncpod.owner-host"
LABEL_OWNER_START = "io.asyncpod.owner-start"


def hostname() -> str:
    """This host's name, as the owner-host label holds it (at most 63 characters)."""
    return socket.gethostname()[:63]


def process_start(pid: int) -> str | None:
    """The start time of process *pid* in clock ticks since boot, or ``None`` if unknown.

    Read from ``/proc/PID/stat`` (field 22); ``None`` where there is no such process or
    no ``/proc``.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            data = stat.read()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces and parentheses.
    fields = data[data.rfind(b")") + 2 :].split()
    return fields[19].decode() if len(fields) > 19 else None


def owner_labels() -> dict[str, str]:
    """The owner labels of this process."""
    labels = {LABEL_OWNER_PID: str(os.getpid()), LABEL_OWNER_HOST: hostname()}
    start = process_start(os.getpid())
    if start is not None:
        labels[LABEL_OWNER_START] = start
    return labels


class OwnerState(str, enum.Enum):
    """Whether the process that owns an object still runs."""

    #: it runs on this host
    ALIVE = "alive"
    #: it ran on this host and is gone (or its pid now belongs to another process)
    GONE = "gone"
    #: it runs, or ran, on another host, or the labels do not say
    UNKNOWN = "unknown"


def owner_state(labels: Mapping[str, str]) -> OwnerState:
    """Whether the owner named by *labels* still runs.

    Only an owner on this host can be checked. A pid that exists but started at another
    time than the label says was reused: the owner is gone. Without a start label (an
    owner on a system without ``/proc``), a reused pid counts as alive.
    """
    try:
        pid = int(labels[LABEL_OWNER_PID])
    except (KeyError, ValueError):
        return OwnerState.UNKNOWN
    if labels.get(LABEL_OWNER_HOST) != hostname() or pid <= 0:
        return OwnerState.UNKNOWN
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return OwnerState.GONE
    except PermissionError:
        pass  # it exists, owned by another user
    expected = labels.get(LABEL_OWNER_START)
    if expected is not None:
        actual = process_start(pid)
        if actual is not None and actual != expected:
            return OwnerState.GONE
    return OwnerState.ALIVE
