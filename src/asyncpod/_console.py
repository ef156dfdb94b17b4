"""What the command line shows: a live status table, prefixed coloured log lines, messages.

Three renderings of the same thing, picked by :func:`open_console`:

- on a terminal, with `rich <https://rich.readthedocs.io>`_ installed (``asyncpod[cli]``):
  a rich table redrawn in place, log lines and messages printed above it;
- on a terminal without rich: the same table in plain text, redrawn with ANSI escapes;
- elsewhere (a pipe, a file, CI): one line per change of a container or of the pod, and
  log lines, without colour.

Colour follows https://no-color.org: ``NO_COLOR`` turns it off. Only the command line
imports this module (and rich); the library never does.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
from collections.abc import Mapping
from typing import IO, Any

import attrs

from ._status import ContainerStatus, Phase, PodStatus, Running, Terminated, Waiting

__all__ = [
    "Console",
    "Terminating",
    "format_duration",
    "open_console",
    "state_text",
    "use_colour",
]

#: ANSI colours for container prefixes, and the rich names of the same
_PALETTE = (36, 33, 35, 32, 34, 96, 93, 95)
_RICH_PALETTE = (
    "cyan",
    "yellow",
    "magenta",
    "green",
    "blue",
    "bright_cyan",
    "bright_yellow",
    "bright_magenta",
)
_HEADERS = ("CONTAINER", "KIND", "STATE", "READY", "RESTARTS", "AGE")


def use_colour(stream: IO[str]) -> bool:
    """Whether to colour what goes to *stream*: a terminal, and no ``NO_COLOR``."""
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def format_duration(seconds: float) -> str:
    """``4s``, ``3m12s``, ``2h05m``, ``3d04h``."""
    s = max(int(seconds), 0)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def state_text(status: ContainerStatus) -> str:
    """``Running``, ``Waiting: CrashLoopBackOff``, ``Terminated: Completed (0)``."""
    state = status.state
    if isinstance(state, Running):
        return "Running"
    if isinstance(state, Terminated):
        return f"Terminated: {state.reason} ({state.exit_code})"
    assert isinstance(state, Waiting)
    return f"Waiting: {state.reason}"


@attrs.frozen
class Terminating:
    """What a pod's status does not say while the pod is stopped (its events do): shown
    as the state ``Terminating`` with a countdown to the kill."""

    #: when the pod's teardown began, and when its grace period runs out (on the status's
    #: clock); ``None``: no teardown, only containers stopped by the pod itself (a failed
    #: probe)
    since: float | None = None
    kill_at: float | None = None
    #: the containers being stopped (a ``Killing`` event and no exit since), and since when
    containers: Mapping[str, float] = attrs.field(factory=dict)
    #: every container is being killed now (a second Ctrl-C)
    killing: bool = False
    #: the teardown is over: every object is removed
    removed: bool = False

    @property
    def pod(self) -> bool:
        """Whether the whole pod is being torn down."""
        return self.since is not None

    def text(self, now: float) -> str:
        """``Terminating (kill in 25s)``, ``Terminating, killing``."""
        if self.removed:
            return "removed"
        if self.killing:
            return "Terminating, killing"
        if self.kill_at is None:
            return "Terminating"
        return f"Terminating (kill in {format_duration(math.ceil(self.kill_at - now))})"

    def stopping(self, status: ContainerStatus) -> bool:
        """Whether *status*'s container is being stopped (and still runs)."""
        return status.name in self.containers and isinstance(status.state, Running)


_NOT_TERMINATING = Terminating()


def _state(status: ContainerStatus, now: float, terminating: Terminating) -> str:
    if terminating.stopping(status):
        return terminating.text(now)
    return state_text(status)


def _changed_at(status: ContainerStatus, now: float) -> float:
    """When *status*'s container last changed, as far as its status says."""
    state = status.state
    if isinstance(state, Terminated):
        return state.finished_at
    if isinstance(state, Running):
        return state.started_at
    return now


def _age(status: ContainerStatus, now: float) -> str:
    state = status.state
    if isinstance(state, Running):
        return format_duration(now - state.started_at)
    if isinstance(state, Terminated):
        return format_duration(now - state.finished_at)
    return "-"


def _rows(status: PodStatus, now: float, terminating: Terminating) -> list[tuple[str, ...]]:
    return [
        (
            c.name,
            c.kind.value,
            _state(c, now, terminating),
            "yes" if c.ready and not terminating.stopping(c) else "no",
            str(c.restart_count),
            _age(c, now),
        )
        for c in status.containers
    ]


def _join(row: tuple[str, ...], widths: list[int]) -> str:
    return "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()


def _torn_down(status: PodStatus, terminating: Terminating) -> bool:
    """Whether *status*'s pod is being torn down with containers left to stop (a pod
    that Succeeded or Failed has none: its phase says more)."""
    return terminating.pod and status.phase in (Phase.PENDING, Phase.RUNNING)


def _title(status: PodStatus, info: str, now: float, terminating: Terminating) -> str:
    if _torn_down(status, terminating):
        state = terminating.text(now)
    else:
        state = f"{status.phase.value}, {'Ready' if status.conditions.ready else 'not ready'}"
    return f"pod {status.name}: {state}" + (f"  ({info})" if info else "")


class Console:
    """Plain lines: one per change, for pipes, files and CI logs."""

    def __init__(self, stream: IO[str], *, colour: bool = False) -> None:
        self.stream = stream
        self.colour = colour
        self._seen: dict[str, tuple[str, bool, int]] = {}
        self._pod_seen: tuple[str, bool, bool, bool] | None = None
        #: shown under the table, e.g. "Ctrl-C stops the pod"
        self.footer = ""

    def _write(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def _paint(self, text: str, index: int) -> str:
        if not self.colour:
            return text
        return f"\x1b[{_PALETTE[index % len(_PALETTE)]}m{text}\x1b[0m"

    def message(self, text: str) -> None:
        """An informational line."""
        self._write(text)

    def log(self, prefix: str, index: int, text: str) -> None:
        """A log line of a container: *prefix* in the container's colour (*index*)."""
        self._write(f"{self._paint(prefix, index)} | {text}")

    def status(
        self,
        status: PodStatus,
        now: float,
        info: str = "",
        terminating: Terminating = _NOT_TERMINATING,
    ) -> None:
        """Show *status* (the time is *now*, on the status's clock); *terminating* says
        what is being stopped.

        A line for each change since the last call, in the order they happened: a pod's
        containers stop in reverse order, which is not the order of its status.
        """
        changes: list[tuple[float, str]] = []
        for c in status.containers:
            stopping = terminating.stopping(c)
            # The countdown is not a change: a container being stopped is said once.
            state = "Terminating" if stopping else state_text(c)
            ready = c.ready and isinstance(c.state, Running) and not stopping
            seen = (state, ready, c.restart_count)
            if self._seen.get(c.name) != seen:
                self._seen[c.name] = seen
                flags = (", ready" if ready else "") + (
                    f", restarts {c.restart_count}" if c.restart_count else ""
                )
                text = f"{c.name}: {_state(c, now, terminating)}{flags}"
                at = terminating.containers[c.name] if stopping else _changed_at(c, now)
                changes.append((at, text))
        torn_down = _torn_down(status, terminating)
        pod = (
            status.phase.value,
            status.conditions.ready,
            torn_down,
            torn_down and terminating.killing,
        )
        if pod != self._pod_seen:
            self._pod_seen = pod
            # A teardown is said when it began (before a stop at the same time); any other
            # change of the pod comes last.
            title = _title(status, "", now, terminating)
            if torn_down and terminating.since is not None:
                changes.insert(0, (terminating.since, title))
            else:
                changes.append((math.inf, title))
        for _, text in sorted(changes, key=lambda change: change[0]):
            self._write(text)

    def close(self) -> None:
        """Leave the last table on the screen."""


class _AnsiConsole(Console):
    """A plain-text table redrawn in place on a terminal."""

    def __init__(self, stream: IO[str], *, colour: bool) -> None:
        super().__init__(stream, colour=colour)
        self._table: list[str] = []
        self._drawn = 0

    def _erase(self) -> None:
        if self._drawn:
            self.stream.write(f"\x1b[{self._drawn}F\x1b[J")
            self._drawn = 0

    def _draw(self) -> None:
        width = shutil.get_terminal_size().columns
        for line in self._table:
            self.stream.write(line[: max(width - 1, 20)] + "\n")
        self._drawn = len(self._table)
        self.stream.flush()

    def _write(self, text: str) -> None:
        self._erase()
        self.stream.write(text + "\n")
        self._draw()

    def status(
        self,
        status: PodStatus,
        now: float,
        info: str = "",
        terminating: Terminating = _NOT_TERMINATING,
    ) -> None:
        rows = [_HEADERS, *_rows(status, now, terminating)]
        widths = [max(len(row[i]) for row in rows) for i in range(len(_HEADERS))]
        lines = [
            "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
            for row in rows
        ]
        if self.colour:
            lines[0] = f"\x1b[1m{lines[0]}\x1b[0m"
        self._table = [_title(status, info, now, terminating), *lines]
        if self.footer:
            self._table.append(self.footer)
        self._erase()
        self._draw()

    def close(self) -> None:
        self._drawn = 0
        self._table = []  # lines written after it go below, and it is not drawn again


class _RichConsole(Console):
    """A rich table redrawn in place; lines are printed above it."""

    def __init__(self, stream: IO[str]) -> None:
        super().__init__(stream, colour=True)
        from rich.console import Console as RichConsole

        self._console = RichConsole(file=stream, highlight=False, emoji=False)
        self._live: Any = None

    def _write(self, text: str) -> None:
        self._console.print(text, markup=False, highlight=False, soft_wrap=True)

    def log(self, prefix: str, index: int, text: str) -> None:
        from rich.text import Text

        line = Text.assemble((prefix, _RICH_PALETTE[index % len(_RICH_PALETTE)]), " | ", text)
        self._console.print(line, soft_wrap=True)

    def status(
        self,
        status: PodStatus,
        now: float,
        info: str = "",
        terminating: Terminating = _NOT_TERMINATING,
    ) -> None:
        from rich.console import Group
        from rich.live import Live
        from rich.table import Table
        from rich.text import Text

        phase_style = {"Running": "green", "Pending": "yellow", "Succeeded": "blue"}.get(
            status.phase.value, "red"
        )
        if _torn_down(status, terminating):
            phase_style = "yellow"
        table = Table()
        for header in _HEADERS:
            table.add_column(header, no_wrap=True)
        for c, row in zip(status.containers, _rows(status, now, terminating), strict=True):
            style = "yellow" if terminating.stopping(c) else _state_style(c)
            table.add_row(row[0], row[1], Text(row[2], style=style), *row[3:])
        footer = " · ".join(part for part in (info, self.footer) if part)
        shown = Group(
            Text(_title(status, "", now, terminating), style=f"bold {phase_style}"),
            table,
            Text(footer, style="dim"),
        )
        if self._live is None:
            self._live = Live(
                shown, console=self._console, auto_refresh=False, redirect_stdout=False
            )
            self._live.start()
        self._live.update(shown, refresh=True)

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None


def _state_style(status: ContainerStatus) -> str:
    state = status.state
    if isinstance(state, Running):
        return "green" if status.ready else "yellow"
    if isinstance(state, Terminated):
        return "blue" if state.exit_code == 0 else "red"
    return "red" if state.reason == "CrashLoopBackOff" else "yellow"


def open_console(stream: IO[str] | None = None) -> Console:
    """The right console for *stream* (standard output by default)."""
    stream = stream if stream is not None else sys.stdout
    isatty = getattr(stream, "isatty", None)
    if not (isatty and isatty()) or os.environ.get("TERM") == "dumb":
        return Console(stream)  # a line per change: no cursor movement
    if use_colour(stream):
        try:
            import rich  # noqa: F401
        except ImportError:
            pass
        else:
            return _RichConsole(stream)
    return _AnsiConsole(stream, colour=use_colour(stream))
