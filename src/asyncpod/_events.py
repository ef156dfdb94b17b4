"""Lifecycle events: what happened to a pod and its containers, in order.

Reasons are Kubernetes' event reasons where Kubernetes has one (``Created``, ``Started``,
``Killing``, ``BackOff``, ``Unhealthy``, ``FailedPostStartHook``...), so that a Kubernetes
user reads them as ``kubectl get events`` prints them; asyncpod adds a few it needs
(``Exited``, ``Ready``, ``Up``, ``TornDown``...).
"""

from __future__ import annotations

import datetime
import enum
from collections import deque
from collections.abc import AsyncIterator
from typing import TypeAlias

import anyio.lowlevel
import attrs

from ._signal import Signal

__all__ = ["EventLog", "EventReason", "PodEvent", "pod_event"]

#: events a pod keeps for late subscribers; older ones are dropped
EVENT_LOG_SIZE = 1000


class EventReason(str, enum.Enum):
    """Why an event was emitted (``PodEvent.reason``)."""

    #: the container was created (it is not running yet)
    CREATED = "Created"
    #: the container was started (again, after a restart)
    STARTED = "Started"
    #: the container passed its readiness probe, or has none (init containers: never)
    READY = "Ready"
    #: a ready container failed its readiness probe
    NOT_READY = "NotReady"
    #: the container exited; ``exit_code`` says how
    EXITED = "Exited"
    #: the container is waiting out its restart back-off (``CrashLoopBackOff``)
    BACK_OFF = "BackOff"
    #: the container is being started again; ``restart_count`` is its new count
    RESTARTING = "Restarting"
    #: a probe failed once (``message`` names the probe)
    UNHEALTHY = "Unhealthy"
    #: the container is being stopped: a failed liveness/startup probe or hook, or teardown
    KILLING = "Killing"
    #: the postStart hook failed; the container is killed
    FAILED_POST_START_HOOK = "FailedPostStartHook"
    #: the preStop hook failed; termination goes on
    FAILED_PRE_STOP_HOOK = "FailedPreStopHook"
    #: keys of an ``envFrom`` source were skipped: not valid variable names (``message``)
    INVALID_ENV_NAMES = "InvalidEnvironmentVariableNames"
    #: a container this one depends on will never reach the condition it waits for
    DEPENDENCY_FAILED = "DependencyFailed"
    #: pod: every init step done and every app container started
    UP = "Up"
    #: pod: bring-up failed (it is torn down), or the pod vanished; ``message`` says why;
    #: container: it cannot be created as configured (``CreateContainerConfigError``)
    FAILED = "Failed"
    #: pod: ``activeDeadlineSeconds`` ran out; every container is stopped, the pod failed
    DEADLINE_EXCEEDED = "DeadlineExceeded"
    #: pod: a Job's pod restarted as often as its ``backoffLimit`` allows; every
    #: container is stopped, the pod failed
    BACKOFF_LIMIT_EXCEEDED = "BackoffLimitExceeded"
    #: pod: teardown began
    TERMINATING = "Terminating"
    #: pod: every object is removed; the last event of a run
    TORN_DOWN = "TornDown"
    #: pod: left running, unsupervised (``open_pod(detach=True)``); the last event of a run
    DETACHED = "Detached"


@attrs.frozen(kw_only=True)
class PodEvent:
    """One thing that happened to a pod or one of its containers."""

    #: ``anyio.current_time()`` when it happened (the clock of :class:`~asyncpod.PodStatus`)
    time: float
    reason: EventReason
    #: the container's name, or ``None`` for an event of the whole pod
    container: str | None = None
    message: str = ""
    #: set for ``Exited``
    exit_code: int | None = None
    #: the container's restart count when the event happened
    restart_count: int = 0
    #: :func:`time.time` when it happened (wall-clock seconds since the epoch), for
    #: logs and people; *time* is for arithmetic with the pod's other times
    wall_time: float = 0.0

    @property
    def timestamp(self) -> datetime.datetime:
        """*wall_time* as an aware UTC :class:`~datetime.datetime`."""
        return datetime.datetime.fromtimestamp(self.wall_time, datetime.timezone.utc)


#: a :class:`PodEvent`'s fields, in order; what the log keeps (a tuple of plain values is
#: cheap, and the garbage collector stops tracking it)
EventTuple: TypeAlias = "tuple[float, EventReason, str | None, str, int | None, int, float]"


def pod_event(fields: EventTuple) -> PodEvent:
    time, reason, container, message, exit_code, restart_count, wall_time = fields
    return PodEvent(
        time=time,
        reason=reason,
        container=container,
        message=message,
        exit_code=exit_code,
        restart_count=restart_count,
        wall_time=wall_time,
    )


class EventLog:
    """The events of one pod run: a bounded history plus waiters for new ones."""

    __slots__ = ("_closed", "_count", "_events", "_signal")

    def __init__(self, size: int = EVENT_LOG_SIZE) -> None:
        self._events: deque[EventTuple] = deque(maxlen=size)
        self._count = 0  # events ever appended
        self._signal = Signal()
        self._closed = False

    def append(self, event: EventTuple) -> None:
        """Record *event* (a :class:`PodEvent`'s fields) and wake the readers."""
        self._events.append(event)
        self._count += 1
        self._signal.fire()

    def close(self) -> None:
        """No more events: readers end once they have read what is left."""
        self._closed = True
        self._signal.fire()

    def snapshot(self) -> tuple[PodEvent, ...]:
        """The events kept so far, oldest first."""
        return tuple(map(pod_event, self._events))

    def follow(self) -> AsyncIterator[PodEvent]:
        """Every kept event, oldest first, then each new one until :meth:`close`.

        A reader that falls more than the log's size behind skips what was dropped. The
        iterator holds nothing to clean up: dropping it unfinished is fine.
        """
        return _Follower(self)


class _Follower:
    """An iterator over an :class:`EventLog` (not an async generator, which trio wants
    closed explicitly)."""

    __slots__ = ("_log", "_position")

    def __init__(self, log: EventLog) -> None:
        self._log = log
        self._position = log._count - len(log._events)

    def __aiter__(self) -> _Follower:
        return self

    async def __anext__(self) -> PodEvent:
        log = self._log
        await anyio.lowlevel.checkpoint()  # before taking an event: a cancellation loses none
        while True:
            first = log._count - len(log._events)
            self._position = max(self._position, first)
            if self._position < log._count:
                event = log._events[self._position - first]
                self._position += 1
                return pod_event(event)
            if log._closed:
                raise StopAsyncIteration
            await log._signal.wait()
