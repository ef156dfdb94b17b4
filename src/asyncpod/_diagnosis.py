"""Why a pod is not ready, in one piece: its status, last events and last log lines."""

from __future__ import annotations

import attrs

from ._events import PodEvent
from ._status import PodStatus, Running, Terminated, Waiting

__all__ = ["Diagnosis"]


def _same(a: PodEvent, b: PodEvent) -> bool:
    return (a.container, a.reason, a.message, a.exit_code) == (
        b.container,
        b.reason,
        b.message,
        b.exit_code,
    )


@attrs.frozen(kw_only=True)
class Diagnosis:
    """A pod's status, its last events and each container's last log lines.

    What :meth:`RunningPod.diagnose() <asyncpod.RunningPod.diagnose>` returns and what a
    :class:`~asyncpod.PodTimeoutError` carries; ``str()`` renders it for people.
    """

    status: PodStatus
    #: the last events, oldest first
    events: tuple[PodEvent, ...]
    #: each container's last log lines (those that have any), by name
    logs: dict[str, tuple[str, ...]] = attrs.field(factory=dict)
    #: when it was taken (``anyio.current_time()``, the clock of the events' *time*)
    taken_at: float = 0.0

    @property
    def not_ready(self) -> tuple[str, ...]:
        """The containers that are not ready (init containers are never ready)."""
        return tuple(
            c.name for c in self.status.containers if not c.ready and c.kind.value != "init"
        )

    def __str__(self) -> str:
        status = self.status
        ready = "ready" if status.conditions.ready else "not ready"
        lines = [f"pod {status.name!r}: {status.phase.value}, {ready}"]
        for c in status.containers:
            state = c.state
            if isinstance(state, Running):
                what = "running" + (", ready" if c.ready else ", not ready")
            elif isinstance(state, Waiting):
                what = f"waiting ({state.reason})" + (f": {state.message}" if state.message else "")
            else:
                assert isinstance(state, Terminated)
                what = f"terminated ({state.reason}, exit code {state.exit_code})"
            if c.restart_count:
                what += f", {c.restart_count} restart(s)"
            if c.last_state is not None:
                what += f", last exit code {c.last_state.exit_code}"
            lines.append(f"  {c.kind.value} container {c.name!r}: {what}")
        if self.events:
            lines.append("last events (seconds ago):")
            # As kubectl describe does: a run of the same event is one line, counted.
            runs: list[tuple[PodEvent, int]] = []
            for e in self.events:
                if runs and _same(runs[-1][0], e):
                    runs[-1] = (e, runs[-1][1] + 1)
                else:
                    runs.append((e, 1))
            for e, count in runs:
                where = e.container or "(pod)"
                text = f"  {max(self.taken_at - e.time, 0):6.1f}  {where}  {e.reason.value}"
                if e.exit_code is not None:
                    text += f" (exit code {e.exit_code})"
                text = f"{text}  {e.message}".rstrip()
                lines.append(f"{text} (x{count})" if count > 1 else text)
        for name, tail in self.logs.items():
            lines.append(f"last log lines of {name!r}:")
            lines += [f"  | {line}" for line in tail]
        return "\n".join(lines)
