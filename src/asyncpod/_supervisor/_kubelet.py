"""The kubelet's numbers that the supervisor reproduces."""

from __future__ import annotations

__all__ = ["BACKOFF_INITIAL", "BACKOFF_MAX", "BACKOFF_RESET", "LOG_TAIL", "MIN_GRACE"]

#: the kubelet never stops a container with less than this grace period
MIN_GRACE = 2.0
#: the restart back-off: the first restart at once, then 10 s doubling to 300 s, back to
#: none after 10 minutes of running
BACKOFF_INITIAL = 10.0
BACKOFF_MAX = 300.0
BACKOFF_RESET = 600.0
#: log lines a :class:`~asyncpod.ContainerFailedError` keeps
LOG_TAIL = 10
