"""Timeline figures for the docs, drawn from real runs of asyncpod on the FakeBackend.

Each scenario runs a pod with :func:`asyncpod.open_pod` on a
:class:`~asyncpod.backends.FakeBackend` under virtual time
(:class:`asyncpod.testing.VirtualTimeEventLoop`), records the backend's events (create,
start, died, remove) and the probes' connection attempts as they happen, and draws them as
an SVG Gantt chart. The fake's operations take no time; every duration in a chart comes
from the stand-in programs below (a war copy that takes a second, a web server that boots)
or from asyncpod itself (probe periods, back-off, grace periods). Same code, same picture:
the docs build regenerates the charts, so they follow the supervisor's behaviour.

Run ``python docs/_ext/timelines.py OUTDIR`` to write the SVG files by hand.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel
import attrs

import asyncpod
from asyncpod.backends import FakeBackend, FakeContext, RuntimeState
from asyncpod.testing import virtual_time

__all__ = ["SCENARIOS", "Trace", "render", "write_all"]

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
LABEL_CONTAINER = "io.asyncpod.container"
WAR = b"PK\x03\x04 javaweb-2 stand-in war\n"
WEBAPPS = "/root/apache-tomcat-7.0/webapps"


# Recording


@dataclass
class Row:
    """One object of the pod: when it existed, ran, and was probed."""

    label: str
    kind: str  # "pod", "volume", "init", "sidecar", "app"
    created: float | None = None
    removed: float | None = None
    runs: list[tuple[float, float | None, int | None]] = field(default_factory=list)
    probes: list[tuple[float, bool]] = field(default_factory=list)
    stops: list[float] = field(default_factory=list)  # when a stop (SIGTERM) was asked for


@dataclass
class Trace:
    """What happened, in virtual seconds since the run began."""

    rows: dict[str, Row] = field(default_factory=dict)
    markers: list[tuple[float, str]] = field(default_factory=list)
    start: float = 0.0

    def now(self) -> float:
        return round(anyio.current_time() - self.start, 6)

    def mark(self, label: str) -> None:
        self.markers.append((self.now(), label))

    def row(self, key: str, label: str, kind: str) -> Row:
        if key not in self.rows:
            self.rows[key] = Row(label, kind)
        return self.rows[key]


class RecordingFakeBackend(FakeBackend):
    """A FakeBackend that also timestamps stop requests and probe connections.

    Events say when containers start and die; these two overrides add when asyncpod asked
    a container to stop, and when a TCP/HTTP probe of container *probed* tried to connect.
    """

    def __init__(self, trace: Trace, probed: str = "", **options: Any) -> None:
        super().__init__(**options)
        self.trace = trace
        self.probed = probed

    async def stop_container(self, container: str, *, grace: float) -> None:
        found = self.container(container)
        if found.state is RuntimeState.RUNNING:
            self.trace.rows[found.spec.labels[LABEL_CONTAINER]].stops.append(self.trace.now())
        await super().stop_container(container, grace=grace)

    async def connect(self, pod: str, port: int) -> anyio.abc.ByteStream:
        row = self.trace.rows[self.probed]
        try:
            stream = await super().connect(pod, port)
        except OSError:
            row.probes.append((self.trace.now(), False))
            raise
        row.probes.append((self.trace.now(), True))
        return stream


_KIND_NAMES = {"init": "init container", "sidecar": "sidecar", "app": "app container"}


def _label(name: str, kind: str) -> str:
    return f"{name} ({_KIND_NAMES[kind]})"


def _kinds(pod: asyncpod.Pod) -> dict[str, str]:
    kinds = {c.name: "app" for c in pod.containers}
    for c in pod.init_containers:
        kinds[c.name] = "sidecar" if c.restart_policy is asyncpod.RestartPolicy.ALWAYS else "init"
    return kinds


async def _record(backend: FakeBackend, pod: asyncpod.Pod, trace: Trace) -> None:
    kinds = _kinds(pod)
    volumes = {f"{pod.name}-{v.name}": v.name for v in pod.volumes}
    async with backend.events() as events:
        async for event in events:
            t = trace.now()
            if event.type == "pod":
                row = trace.row("pod", f"pod {event.name} (infra)", "pod")
            elif event.type == "volume":
                name = volumes.get(event.name, event.name)
                row = trace.row(f"volume:{name}", f"volume {name}", "volume")
            else:
                name = event.labels.get(LABEL_CONTAINER, event.name)
                row = trace.row(name, _label(name, kinds[name]), kinds[name])
            if event.action == "create":
                row.created = t
            elif event.action == "remove":
                row.removed = t
            elif event.action == "start":
                row.runs.append((t, None, None))
            elif event.action == "died" and row.runs:
                started, _, _ = row.runs[-1]
                row.runs[-1] = (started, t, event.exit_code)


Body = Callable[[asyncpod.RunningPod, Trace], Awaitable[None]]


@asynccontextmanager
async def _recording(backend: FakeBackend, pod: asyncpod.Pod, trace: Trace) -> AsyncIterator[None]:
    async with backend, anyio.create_task_group() as tg:
        trace.start = anyio.current_time()
        # Rows in spec order, before any event arrives.
        kinds = _kinds(pod)
        trace.row("pod", f"pod {pod.name} (infra)", "pod")
        for volume in pod.volumes:
            trace.row(f"volume:{volume.name}", f"volume {volume.name}", "volume")
        for container in pod.all_containers:
            kind = kinds[container.name]
            trace.row(container.name, _label(container.name, kind), kind)
        tg.start_soon(_record, backend, pod, trace)
        await anyio.lowlevel.checkpoint()  # let the recorder subscribe
        yield
        await anyio.lowlevel.checkpoint()  # let it see the last events
        tg.cancel_scope.cancel()


async def _run(backend: FakeBackend, pod: asyncpod.Pod, trace: Trace, body: Body) -> None:
    async with _recording(backend, pod, trace):
        async with asyncpod.open_pod(pod, backend=backend) as running:
            trace.mark("open_pod() yields: pod up")
            await body(running, trace)
            trace.mark("block exits: teardown")
        trace.mark("all removed")


# Stand-in programs


async def war_copy(ctx: FakeContext) -> int:
    """``cp /app.war /app``, taking a second (a big war on a slow disk)."""
    data = ctx.read_file("/app.war")
    await anyio.sleep(1.0)
    ctx.write_file("/app/app.war", data)
    return 0


def tomcat(boot: float) -> Callable[[FakeContext], Awaitable[int]]:
    """A web server that needs *boot* seconds before it serves, and one second to stop."""

    async def program(ctx: FakeContext) -> int:
        ctx.handle_term = True
        async with anyio.create_task_group() as tg:

            async def serve() -> None:
                await anyio.sleep(boot)
                await ctx.serve_files(8080, WEBAPPS)

            tg.start_soon(serve)
            await ctx.terminated.wait()
            await anyio.sleep(1.0)  # graceful shutdown
            tg.cancel_scope.cancel()
        return 0

    return program


async def log_writer(ctx: FakeContext) -> int:
    """The log-sidecar example's app: a line a second to the shared volume."""
    ctx.handle_term = True
    lines = b""
    with anyio.move_on_after(3600) as scope:
        async with anyio.create_task_group() as tg:

            async def stop() -> None:
                await ctx.terminated.wait()
                scope.cancel()

            tg.start_soon(stop)
            while True:
                lines += b"hello\n"
                ctx.write_file("/var/log/app/app.log", lines)
                await anyio.sleep(1.0)
    await anyio.sleep(0.5)  # finish the last line
    return 0


async def log_collector(ctx: FakeContext) -> int:
    """The log-sidecar example's ``tail -F``, which needs a second to flush when stopped."""
    ctx.handle_term = True
    await ctx.terminated.wait()
    await anyio.sleep(1.0)
    return 0


async def crashing_worker(ctx: FakeContext) -> int:
    """Runs for two seconds, then fails."""
    await anyio.sleep(2.0)
    return 1


# Scenarios


def javaweb2() -> asyncpod.Pod:
    return asyncpod.kube.load_pod(EXAMPLES / "javaweb-2.yaml")


def javaweb2_ready() -> asyncpod.Pod:
    """The seed pod with a readiness probe on Tomcat (as in the tutorial)."""
    pod = javaweb2()
    probe = asyncpod.Probe(
        http_get=asyncpod.HTTPGetAction(port=8080, path="/app.war"),
        initial_delay_seconds=1,
        period_seconds=1,
    )
    tomcat_container = attrs.evolve(pod.container("tomcat"), readiness_probe=probe)
    return attrs.evolve(pod, containers=[tomcat_container])


async def scenario_javaweb2(trace: Trace) -> None:
    """The seed's javaweb-2, verbatim; the block serves for three seconds."""
    pod = javaweb2()
    backend = RecordingFakeBackend(trace, programs={"war": war_copy, "tomcat": tomcat(boot=2.5)})
    backend.add_image("app:v2", {"/app.war": WAR})

    async def body(running: asyncpod.RunningPod, trace: Trace) -> None:
        await running.wait_ready()
        trace.mark("Ready")
        await anyio.sleep(3)

    await _run(backend, pod, trace, body)


async def scenario_javaweb2_ready(trace: Trace) -> None:
    """javaweb-2 with a readiness probe: Ready waits until Tomcat serves the war."""
    pod = javaweb2_ready()
    backend = RecordingFakeBackend(
        trace, "tomcat", programs={"war": war_copy, "tomcat": tomcat(boot=2.5)}
    )
    backend.add_image("app:v2", {"/app.war": WAR})

    async def body(running: asyncpod.RunningPod, trace: Trace) -> None:
        await running.wait_ready()
        trace.mark("Ready")
        await anyio.sleep(2)

    await _run(backend, pod, trace, body)


async def scenario_log_sidecar(trace: Trace) -> None:
    """The log-sidecar example: the sidecar starts first and stops last."""
    pod = asyncpod.kube.load_pod(EXAMPLES / "log-sidecar.yaml")
    backend = RecordingFakeBackend(
        trace, programs={"app": log_writer, "log-collector": log_collector}
    )

    async def body(running: asyncpod.RunningPod, trace: Trace) -> None:
        await running.wait_ready()
        await anyio.sleep(3.2)

    await _run(backend, pod, trace, body)


async def scenario_crash_loop(trace: Trace) -> None:
    """A container that fails every two seconds, restarted with the kubelet's back-off."""
    pod = asyncpod.Pod(
        name="crash-loop",
        containers=[asyncpod.Container(name="worker", image="busybox:1.36")],
    )
    backend = RecordingFakeBackend(trace, programs={"worker": crashing_worker})

    async def body(running: asyncpod.RunningPod, trace: Trace) -> None:
        await anyio.sleep(85)

    await _run(backend, pod, trace, body)


@dataclass(frozen=True)
class Scenario:
    run: Callable[[Trace], Awaitable[None]]
    title: str


SCENARIOS: dict[str, Scenario] = {
    "javaweb-2-timeline": Scenario(scenario_javaweb2, "javaweb-2: bring-up and teardown"),
    "javaweb-2-ready-timeline": Scenario(
        scenario_javaweb2_ready, "javaweb-2 with a readiness probe on tomcat"
    ),
    "log-sidecar-timeline": Scenario(scenario_log_sidecar, "log-sidecar: a native sidecar"),
    "crash-loop-timeline": Scenario(
        scenario_crash_loop, "A container that keeps failing (restartPolicy: Always)"
    ),
}


def record(name: str) -> Trace:
    """Run scenario *name* on virtual time and return its trace."""
    trace = Trace()
    backend, options = virtual_time("asyncio")
    anyio.run(SCENARIOS[name].run, trace, backend=backend, backend_options=options)
    return trace


# Drawing

_COLORS = {
    "pod": "#7b8494",
    "volume": "#7b8494",
    "init": "#7048e8",
    "sidecar": "#0c8599",
    "app": "#1c7ed6",
}
_FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"
_WIDTH = 780
_LEFT = 190  # the row labels' column
_RIGHT = 40
_ROW = 34
_MARKER_LINE = 15


def _ticks(end: float) -> float:
    for step in (0.5, 1, 2, 5, 10, 20, 30, 60):
        if end / step <= 12:
            return step
    return 120


def _fmt(t: float) -> str:
    return f"{t:g}"


def render(trace: Trace, title: str) -> str:
    """The SVG of *trace*."""
    end = max(
        [t for t, _ in trace.markers]
        + [r.removed or 0 for r in trace.rows.values()]
        + [e or s for r in trace.rows.values() for s, e, _ in r.runs]
    )
    step = _ticks(end)
    span = step * -(-end // step) or step  # round up to a tick
    plot = _WIDTH - _LEFT - _RIGHT

    def x(t: float) -> float:
        return round(_LEFT + plot * t / span, 2)

    # Marker labels: on the first line where they overlap no other label; a label that
    # would run past the right edge ends at its line instead of starting there.
    lines: list[list[tuple[float, float]]] = []
    placed = []
    for t, label in sorted(trace.markers, key=lambda m: m[0]):
        width = 6.4 * len(label) + 8
        left = x(t) + 4 if x(t) + width < _WIDTH - 8 else x(t) - 4 - width
        start, end = left - 6, left + width + 6  # the label's extent, with a margin
        line = next(
            (
                i
                for i, taken in enumerate(lines)
                if all(end <= lo or start >= hi for lo, hi in taken)
            ),
            len(lines),
        )
        if line == len(lines):
            lines.append([])
        lines[line].append((start, end))
        placed.append((t, label, line, left >= x(t)))
    top = 44 + _MARKER_LINE * max(len(lines), 1)
    rows = list(trace.rows.values())
    axis = top + _ROW * len(rows) + 8
    height = axis + 74

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_WIDTH} {height}" '
        f'width="{_WIDTH}" height="{height}" font-family="{_FONT}" font-size="12" '
        f'role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<rect width="{_WIDTH}" height="{height}" rx="8" fill="#ffffff"/>',
        '<defs><pattern id="backoff" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect width="6" height="6" fill="#fff4e6"/>'
        '<line x1="0" y1="0" x2="0" y2="6" stroke="#f08c00" stroke-width="2"/></pattern></defs>',
        f'<text x="16" y="24" font-size="14" font-weight="600" fill="#212529">'
        f"{escape(title)}</text>",
    ]
    # Grid and axis.
    t = 0.0
    while t <= span + 1e-9:
        out.append(
            f'<line x1="{x(t)}" y1="{top - 4}" x2="{x(t)}" y2="{axis}" stroke="#e9ecef"/>'
            f'<text x="{x(t)}" y="{axis + 16}" text-anchor="middle" fill="#495057">'
            f"{_fmt(t)}</text>"
        )
        t += step
    out.append(
        f'<line x1="{_LEFT}" y1="{axis}" x2="{_WIDTH - _RIGHT}" y2="{axis}" stroke="#868e96"/>'
        f'<text x="{_WIDTH - _RIGHT}" y="{axis + 32}" text-anchor="end" fill="#495057">'
        "seconds (virtual time)</text>"
    )
    # Rows.
    for index, row in enumerate(rows):
        y = top + _ROW * index + _ROW / 2
        color = _COLORS[row.kind]
        out.append(
            f'<text x="{_LEFT - 12}" y="{y + 4}" text-anchor="end" fill="#212529">'
            f"{escape(row.label)}</text>"
        )
        if row.created is not None:
            gone = row.removed if row.removed is not None else span
            out.append(
                f'<line x1="{x(row.created)}" y1="{y}" x2="{x(gone)}" y2="{y}" '
                f'stroke="{color}" stroke-width="2" stroke-opacity="0.45"/>'
                f'<circle cx="{x(row.created)}" cy="{y}" r="3" fill="{color}"/>'
            )
            if row.removed is not None:
                out.append(
                    f'<line x1="{x(gone)}" y1="{y - 6}" x2="{x(gone)}" y2="{y + 6}" '
                    f'stroke="{color}" stroke-width="2"/>'
                )
            if row.kind in ("pod", "volume"):
                out.append(
                    f'<rect x="{x(row.created)}" y="{y - 5}" width="{x(gone) - x(row.created)}" '
                    f'height="10" rx="2" fill="{color}" fill-opacity="0.18"/>'
                )
        previous_end: float | None = None
        label_end = -1.0  # right edge of the last exit label drawn on this row
        for started, ended, code in row.runs:
            if previous_end is not None and started - previous_end > 1e-6:
                out.append(
                    f'<rect x="{x(previous_end)}" y="{y - 7}" '
                    f'width="{x(started) - x(previous_end)}" height="14" '
                    'fill="url(#backoff)" stroke="#f08c00" stroke-width="0.8"/>'
                )
                if x(started) - x(previous_end) > 40:
                    out.append(
                        f'<text x="{(x(started) + x(previous_end)) / 2}" y="{y - 11}" '
                        f'text-anchor="middle" font-size="11" fill="#d9480f">'
                        f"{_fmt(started - previous_end)} s</text>"
                    )
            stop = ended if ended is not None else span
            out.append(
                f'<rect x="{x(started)}" y="{y - 7}" width="{max(x(stop) - x(started), 2)}" '
                f'height="14" rx="3" fill="{color}" stroke="#ffffff" stroke-width="1"/>'
            )
            if code is not None:
                text = f"exit {code}"
                lx = x(stop) - 6.2 * len(text) / 2 if len(row.runs) > 1 else x(stop) + 4
                if lx > label_end + 4:
                    out.append(
                        f'<text x="{lx}" y="{y + 20}" font-size="10.5" fill="#495057">{text}</text>'
                    )
                    label_end = lx + 6.2 * len(text)
            previous_end = ended
        for when in row.stops:
            tip = f"M {x(when) - 5} {y - 16} L {x(when) + 5} {y - 16} L {x(when)} {y - 9} Z"
            out.append(
                f'<path d="{tip}" fill="#212529"/>'
                f'<text x="{x(when) + 7}" y="{y - 11}" font-size="10.5" fill="#212529">'
                "SIGTERM</text>"
            )
        for when, ok in row.probes:
            mark = "#2b8a3e" if ok else "#e03131"
            out.append(
                f'<circle cx="{x(when)}" cy="{y}" r="4.5" fill="#ffffff" stroke="{mark}" '
                f'stroke-width="2"/>'
            )
    # Markers.
    for t, label, line, rightwards in placed:
        ly = 44 + _MARKER_LINE * line
        anchor = "start" if rightwards else "end"
        tx = x(t) + 4 if rightwards else x(t) - 4
        out.append(
            f'<line x1="{x(t)}" y1="{ly - 10}" x2="{x(t)}" y2="{axis}" stroke="#c92a2a" '
            'stroke-dasharray="4 3" stroke-width="1.2"/>'
            f'<text x="{tx}" y="{ly}" text-anchor="{anchor}" font-size="11.5" fill="#c92a2a">'
            f"{escape(label)}</text>"
        )
    # Legend.
    ly = axis + 50
    legend: list[tuple[str, str]] = [
        ("exists", "exists (created → removed)"),
        ("run", "running"),
    ]
    if any(len(r.runs) > 1 for r in rows):
        legend.append(("backoff", "waiting to restart"))
    if any(r.probes for r in rows):
        legend += [("fail", "probe failed"), ("ok", "probe passed")]
    lx = 16.0
    for key, text in legend:
        if key == "exists":
            out.append(
                f'<line x1="{lx}" y1="{ly - 4}" x2="{lx + 22}" y2="{ly - 4}" stroke="#495057" '
                'stroke-width="2" stroke-opacity="0.45"/>'
            )
        elif key == "run":
            out.append(
                f'<rect x="{lx}" y="{ly - 11}" width="22" height="14" rx="3" fill="#1c7ed6"/>'
            )
        elif key == "backoff":
            out.append(
                f'<rect x="{lx}" y="{ly - 11}" width="22" height="14" fill="url(#backoff)" '
                'stroke="#f08c00" stroke-width="0.8"/>'
            )
        else:
            mark = "#2b8a3e" if key == "ok" else "#e03131"
            out.append(
                f'<circle cx="{lx + 11}" cy="{ly - 4}" r="4.5" fill="#ffffff" stroke="{mark}" '
                'stroke-width="2"/>'
            )
        out.append(f'<text x="{lx + 28}" y="{ly}" fill="#495057">{escape(text)}</text>')
        lx += 28 + 6.4 * len(text) + 22
    swatches = [
        (kind, _COLORS[kind])
        for kind in ("init", "sidecar", "app")
        if any(r.kind == kind for r in rows)
    ]
    lx += 12
    for kind, color in swatches:
        out.append(
            f'<rect x="{lx}" y="{ly - 11}" width="10" height="14" rx="2" fill="{color}"/>'
            f'<text x="{lx + 14}" y="{ly}" fill="#495057">{kind}</text>'
        )
        lx += 14 + 6.4 * len(kind) + 16
    out.append("</svg>")
    return "\n".join(out) + "\n"


def write_all(directory: Path) -> list[Path]:
    """Record every scenario and write ``<name>.svg`` files into *directory*."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, scenario in SCENARIOS.items():
        path = directory / f"{name}.svg"
        svg = render(record(name), scenario.title)
        if not path.exists() or path.read_text(encoding="utf-8") != svg:
            path.write_text(svg, encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for written_path in write_all(Path(sys.argv[1] if len(sys.argv) > 1 else ".")):
        print(written_path)
