"""The container lifecycle as the supervisor drives it: one state machine.

A container's :class:`Stage` says what the supervisor does with it; the Kubernetes-facing
:class:`~asyncpod.ContainerState` (waiting, running, terminated) is what its status shows.
Every change of stage goes through :func:`check_transition`, against the one table of
allowed transitions below: an illegal one is a bug, and raises.

A run::

    NEW ─► CREATED ─► STARTING ─► RUNNING ─► EXITED ─► DONE
    EXITED ─► BACKING_OFF ─► STARTING    (a restart)
    STARTING ─► EXITED                   (the start failed)
    STARTING ─► UNSURE                   (cancelled, or to stop for good meanwhile)
    CREATED ─► DONE                      (a dependency failed)
    BACKING_OFF ─► DONE                  (the pod vanished)
    NEW ─► DONE                          (its config cannot be honoured: never created)

A stop for good (teardown, retirement), from any stage but STARTING (it waits)::

    ─► STOPPING ─► STOPPED ─► REMOVED
"""

from __future__ import annotations

import enum

__all__ = ["Stage", "check_transition"]


class Stage(enum.Enum):
    """Where a container is in its lifecycle."""

    #: not created yet
    NEW = "new"
    #: created; waiting for its start edges
    CREATED = "created"
    #: a start job is under way (it creates the container again if it vanished)
    STARTING = "starting"
    #: a start was cancelled, or went through once the container was to stop for good:
    #: it may run, unsupervised; its stop stops it quietly
    UNSURE = "unsure"
    #: started; its exit comes through the exit watcher
    RUNNING = "running"
    #: exited (or failed to start); whether it runs again is being decided
    EXITED = "exited"
    #: exited, and will be started again once its back-off is over
    BACKING_OFF = "backing-off"
    #: will not run again: exited for good, or can never start (a dependency failed)
    DONE = "done"
    #: being stopped for good (teardown, or a sidecar retired)
    STOPPING = "stopping"
    #: stopped for good: whoever stops after it may go on
    STOPPED = "stopped"
    #: removed (teardown)
    REMOVED = "removed"


#: stages in which the container will not run again
FINAL = frozenset({Stage.DONE, Stage.STOPPED, Stage.REMOVED})
#: stages of a stop for good
STOPPED_FOR_GOOD = frozenset({Stage.STOPPING, Stage.STOPPED, Stage.REMOVED})

_S = Stage
#: the allowed transitions, all of them
_TRANSITIONS: dict[Stage, frozenset[Stage]] = {
    _S.NEW: frozenset({_S.CREATED, _S.DONE, _S.STOPPING}),
    _S.CREATED: frozenset({_S.STARTING, _S.DONE, _S.STOPPING}),
    # A stop waits for a start under way to end: STARTING never goes to STOPPING.
    _S.STARTING: frozenset({_S.RUNNING, _S.UNSURE, _S.EXITED}),
    _S.UNSURE: frozenset({_S.STOPPING}),
    _S.RUNNING: frozenset({_S.EXITED, _S.STOPPING}),
    _S.EXITED: frozenset({_S.BACKING_OFF, _S.DONE, _S.STOPPING}),
    _S.BACKING_OFF: frozenset({_S.STARTING, _S.DONE, _S.STOPPING}),
    _S.DONE: frozenset({_S.STOPPING}),
    _S.STOPPING: frozenset({_S.STOPPED}),
    _S.STOPPED: frozenset({_S.REMOVED}),
    _S.REMOVED: frozenset(),
}


def check_transition(name: str, old: Stage, new: Stage) -> None:
    """Raise :class:`AssertionError` unless container *name* may go from *old* to *new*."""
    if new not in _TRANSITIONS[old]:
        raise AssertionError(
            f"asyncpod bug: container {name!r} cannot go from {old.name} to {new.name}"
        )
