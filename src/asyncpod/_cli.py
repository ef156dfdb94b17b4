"""asyncpod: run Kubernetes Pod manifests on one machine, on Podman."""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import math
import os
import select
import signal
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
from anyio.streams.memory import MemoryObjectSendStream

from ._console import Console, format_duration, open_console, state_text
from ._events import EventReason, PodEvent
from ._exceptions import (
    AsyncpodError,
    BackendUnavailableError,
    ContainerFailedError,
    ImageError,
    ObjectExistsError,
    ObjectNotFoundError,
    PortInUseError,
    SpecError,
)
from ._images import stand_in
from ._labels import LABEL_CONTAINER, LABEL_POD, LABEL_RUN
from ._models import Pod
from ._owned import OwnedPod, describe, find_pods, remove_pod, stop_pod
from ._owner import OwnerState, hostname, signal_owner
from ._plan import StartupPlan, StepKind
from ._status import Phase, PodStatus, Running
from ._supervisor import RunningPod, open_pod
from .backends._base import Backend, ContainerInfo, OwnedObject, RuntimeState

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found,unused-ignore]

__all__ = ["main"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3
EXIT_NOT_FOUND = 4
EXIT_TIMEOUT = 5

EXIT_CODES = f"""\
exit codes:
  {EXIT_OK}    success (for up: the pod Succeeded, or --detach left it ready)
  {EXIT_FAILED}    the pod or a container failed, or a backend operation did
  {EXIT_USAGE}    bad command line or invalid manifest
  {EXIT_UNAVAILABLE}    the backend (Podman) cannot be reached
  {EXIT_NOT_FOUND}    no such pod or container
  {EXIT_TIMEOUT}    up: the pod was not ready within --timeout
  128+N  stopped by signal N: 130 for Ctrl-C (SIGINT), 143 for SIGTERM
"""

POLL = 0.25  # seconds between two refreshes of the status table
LOG_TAIL = 5  # log lines shown of a container that failed during bring-up


class CliError(Exception):
    """A failure the command line reports as one line, a hint and an exit code."""

    def __init__(self, message: str, code: int = EXIT_FAILED, hint: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.hint = hint


class Interrupted(Exception):
    """A signal stopped the command; the exit code is 128 + its number."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


# Command line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="asyncpod",
        description=__doc__,
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help="log everything, show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            help=help,
            description=help[0].upper() + help[1:] + ".",
            epilog=EXIT_CODES,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    def url(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--url",
            help="the Podman service (unix://, tcp:// or ssh://; default: CONTAINER_HOST, "
            "then this user's socket)",
        )

    manifest = "a Pod manifest (YAML or JSON), or a bundled example: javaweb-2, log-sidecar"

    up = command("up", "run a pod in the foreground until it ends or Ctrl-C")
    up.add_argument("file", metavar="FILE", help=manifest)
    up.add_argument("--backend", choices=["podman", "fake"], default="podman")
    url(up)
    up.add_argument(
        "--timeout",
        type=_seconds,
        metavar="SECONDS",
        help="fail unless the pod is ready within SECONDS (default: wait; 120 with --detach)",
    )
    up.add_argument(
        "-d",
        "--detach",
        action="store_true",
        help="return once the pod is ready and leave it running on Podman "
        "(stop it with 'asyncpod down NAME')",
    )
    up.add_argument(
        "-l", "--logs", action="store_true", help="follow every container's log, prefixed"
    )

    down = command("down", "stop a pod in reverse start order and remove its objects")
    down.add_argument("name", metavar="NAME", help="the pod's name")
    down.add_argument(
        "--grace",
        type=_seconds,
        metavar="SECONDS",
        help="the grace period for the whole stop (default: the pod's own)",
    )
    down.add_argument(
        "--force",
        action="store_true",
        help="also when a live process (an 'asyncpod up') runs the pod: stop it here",
    )
    url(down)

    ps = command("ps", "list the pods and containers asyncpod owns")
    url(ps)

    logs = command("logs", "print the logs of a pod's containers")
    logs.add_argument("name", metavar="NAME", help="the pod's name")
    logs.add_argument("container", metavar="CONTAINER", nargs="?", help="one container only")
    logs.add_argument("-f", "--follow", action="store_true", help="wait for new lines")
    url(logs)

    plan = command("plan", "print a manifest's startup plan (no side effects)")
    plan.add_argument("file", metavar="FILE", help=manifest)

    gc = command("gc", "remove objects whose owner process on this host is gone")
    gc.add_argument("names", metavar="NAME", nargs="*", help="only these pods")
    gc.add_argument("-n", "--dry-run", action="store_true", help="only say what would go")
    url(gc)

    demo = command(
        "demo", "bring up a bundled example, show it working, tear it down (the README's)"
    )
    demo.add_argument(
        "file",
        metavar="FILE",
        nargs="?",
        default="javaweb-2",
        help=manifest + " (default: javaweb-2)",
    )
    demo.add_argument(
        "--backend",
        choices=["auto", "podman", "fake"],
        default="auto",
        help="auto: Podman where it answers, else the in-memory fake (default)",
    )
    url(demo)
    return parser


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more: {text!r}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``asyncpod`` and ``python -m asyncpod``; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    commands: dict[str, Callable[[argparse.Namespace, _Stop], Awaitable[int]]] = {
        "up": _up,
        "down": _down,
        "ps": _ps,
        "logs": _logs,
        "gc": _gc,
        "demo": _demo,
    }
    try:
        try:
            if args.command == "plan":
                code = _plan(args)
            else:
                code = anyio.run(_run, commands[args.command], args)
            sys.stdout.flush()  # now, to see a closed pipe here
            return code
        except BrokenPipeError:
            if not _stdout_closed():
                raise
            return _stdout_gone()
    except Interrupted as exc:
        return 128 + exc.signum
    except KeyboardInterrupt:
        return 128 + signal.SIGINT
    except (AsyncpodError, CliError, OSError) as exc:
        if args.debug:
            raise
        _report(exc)
        return _exit_code(exc)


def _stdout_closed() -> bool:
    """Whether standard output is a pipe whose reader is gone."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, ValueError, OSError):  # replaced (tests) or closed
        return False
    try:
        poll = select.poll()
    except AttributeError:  # pragma: no cover - no poll() on this system
        return True
    poll.register(fd, select.POLLOUT)
    return any(event & select.POLLERR for _, event in poll.poll(0))


def _stdout_gone() -> int:
    """End quietly once the reader of standard output went away (``asyncpod ps | head -1``):
    no traceback, and exit code 141 (128 + SIGPIPE), as a process killed by SIGPIPE gives.
    What is still buffered goes to /dev/null, so that Python's flush at exit cannot fail."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)
    return 128 + signal.SIGPIPE


class _Stop:
    """What SIGINT and SIGTERM do while a command runs (the library installs no handlers).

    By default the first one cancels the whole command, whatever it is doing: setting up
    the backend too, which stops the private Podman service it may have started. A second
    one changes nothing: the clean-up left is short. A command with a graceful stop of its
    own (``up``, ``demo``) sets :attr:`handler` for the part it applies to.
    """

    def __init__(self) -> None:
        self.scope = anyio.CancelScope()
        #: the signals received, first first
        self.signals: list[int] = []
        #: called with (signum, count) instead of cancelling :attr:`scope`
        self.handler: Callable[[int, int], None] | None = None

    def __call__(self, signum: int, count: int) -> None:
        if count == 1:
            self.signals.append(signum)
        if self.handler is not None:
            self.handler(signum, count)
        else:
            self.scope.cancel()

    def interrupted(self) -> Interrupted | None:
        """The exception that ends a command a signal stopped, or ``None``."""
        return Interrupted(self.signals[0]) if self.signals else None


async def _run(
    command: Callable[[argparse.Namespace, _Stop], Awaitable[int]], args: argparse.Namespace
) -> int:
    """Run *command* with SIGINT and SIGTERM handled by a :class:`_Stop`, raising the one
    real error out of the groups task groups wrap it in."""
    stop = _Stop()
    try:
        async with _signals(stop):
            with stop.scope:
                return await command(args, stop)
        interrupted = stop.interrupted()
        assert interrupted is not None  # only a signal cancels stop.scope
        raise interrupted
    except BaseExceptionGroup as group:
        cancelled = anyio.get_cancelled_exc_class()
        exc: BaseException = group
        while isinstance(exc, BaseExceptionGroup):
            real = [e for e in exc.exceptions if not isinstance(e, cancelled)]
            if not real:
                raise
            # Several at once (Podman gone under a fan-out): report the first one.
            exc = real[0]
        raise exc from exc.__cause__


def _exit_code(exc: BaseException) -> int:
    if isinstance(exc, CliError):
        return exc.code
    if isinstance(exc, (SpecError, FileNotFoundError, IsADirectoryError)):
        return EXIT_USAGE
    if isinstance(exc, PermissionError):
        # A file named on the command line, else (a socket) the backend
        return EXIT_USAGE if exc.filename else EXIT_UNAVAILABLE
    if isinstance(exc, BackendUnavailableError):
        return EXIT_UNAVAILABLE
    if isinstance(exc, ObjectNotFoundError):
        return EXIT_NOT_FOUND
    return EXIT_FAILED


def _report(exc: BaseException) -> None:
    """One line (a failed container's last log lines under it), then a hint."""
    lines = str(exc).splitlines() or [type(exc).__name__]
    if isinstance(exc, OSError) and exc.strerror:
        lines = [f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror]
    if isinstance(exc, BackendUnavailableError):
        tried = [line.strip() for line in lines[1:] if line.startswith("  ")]
        message = lines[0].split(". Tried:")[0] + (f" (tried {'; '.join(tried)})" if tried else "")
        lines = [message]
    elif not isinstance(exc, (ContainerFailedError, CliError)):
        lines = lines[:1]
    print(f"asyncpod: error: {lines[0]}", file=sys.stderr)
    for line in lines[1:]:
        print(line, file=sys.stderr)
    hint = _hint(exc)
    if hint:
        print(f"asyncpod: hint: {hint}", file=sys.stderr)


_DENIED = (os.strerror(errno.EACCES), os.strerror(errno.EPERM))


def _hint(exc: BaseException) -> str:
    if isinstance(exc, CliError):
        return exc.hint
    if isinstance(exc, PermissionError) and exc.filename:
        return ""
    denied = isinstance(exc, PermissionError) or (
        isinstance(exc, BackendUnavailableError) and any(d in str(exc) for d in _DENIED)
    )
    if denied:
        return (
            "the Podman socket belongs to another user: run as that user (root's is "
            "/run/podman/podman.sock), or use your own, 'systemctl --user start podman.socket'"
        )
    if isinstance(exc, BackendUnavailableError):
        return (
            "install Podman and start its service (see 'asyncpod demo'), pass --url, "
            "or try '--backend fake'"
        )
    if isinstance(exc, ImageError):
        if stand_in(exc.image):
            return (
                f"{exc.image} is a stand-in image of the bundled examples: "
                "'asyncpod demo --backend podman FILE' builds it from busybox-static"
            )
        return "pull or build the image first, or check the name"
    if isinstance(exc, PortInUseError):
        return "another program or pod publishes that host port: 'asyncpod ps' lists pods"
    if isinstance(exc, ObjectExistsError):
        return "a pod of that name exists: 'asyncpod ps' lists pods, 'asyncpod down NAME'"
    if isinstance(exc, ObjectNotFoundError):
        return "'asyncpod ps' lists the pods asyncpod owns"
    return ""


# Backends


def _load(arg: str) -> Pod:
    from ._demo import resolve_manifest
    from .kube import load_pod

    return load_pod(resolve_manifest(arg))


@asynccontextmanager
async def _podman(url: str | None) -> AsyncIterator[Backend]:
    from .backends._podman import PodmanBackend

    async with PodmanBackend(url) as backend:
        yield backend


@asynccontextmanager
async def _backend(args: argparse.Namespace, pod: Pod) -> AsyncIterator[Backend]:
    if args.backend == "fake":
        from ._demo import fake_backend

        async with fake_backend(pod) as fake:
            yield fake
    else:
        from ._demo import ensure_stand_ins, is_bundled

        async with _podman(args.url) as podman:
            if is_bundled(pod):  # the examples' images are stand-ins built from busybox
                await ensure_stand_ins(podman, pod)
            yield podman


@asynccontextmanager
async def _signals(on_signal: Callable[[int, int], None]) -> AsyncIterator[None]:
    """Call *on_signal(signum, count)* for each SIGINT or SIGTERM while the block runs."""
    async with anyio.create_task_group() as tg:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as received:

            async def watch() -> None:
                count = 0
                async for signum in received:
                    count += 1
                    on_signal(signum, count)

            tg.start_soon(watch)
            try:
                yield
            finally:
                tg.cancel_scope.cancel()


# plan


def _plan(args: argparse.Namespace) -> int:
    pod = _load(args.file)
    for line in StartupPlan.from_pod(pod).describe():
        print(line)
    return EXIT_OK


# demo


async def _demo(args: argparse.Namespace, stop: _Stop) -> int:
    from ._demo import demo_backend, run_demo

    pod = _load(args.file)
    kill = anyio.Event()
    # Once the backend is up, only the demo is cancelled, not the backend: the fake's
    # containers must live on for the teardown to stop them.
    scope = anyio.CancelScope()

    def on_signal(signum: int, count: int) -> None:
        if count == 1:
            scope.cancel()
        else:
            kill.set()

    async with demo_backend(args.backend, args.url, pod) as backend:
        stop.handler = on_signal
        with scope:
            return await run_demo(pod, backend, kill_event=kill)
    raise stop.interrupted() or AssertionError("the demo was cancelled without a signal")


# up


async def _up(args: argparse.Namespace, stop: _Stop) -> int:
    pod = _load(args.file)
    if args.detach and args.backend != "podman":
        raise CliError(
            "--detach needs the podman backend: the fake's pods live in this process",
            EXIT_USAGE,
        )
    ready_within = args.timeout if args.timeout is not None else (120.0 if args.detach else None)
    console = open_console()
    kill = anyio.Event()
    main = anyio.CancelScope()
    code = EXIT_FAILED
    up = _Up(pod, console)

    def on_signal(signum: int, count: int) -> None:
        if count == 1:
            up.stopping = True
            up.refresh_now()
            console.message(f"{signal.Signals(signum).name}: stopping pod {pod.name} ...")
            main.cancel()
        else:
            kill.set()  # the supervisor logs that it kills

    try:
        async with _log_to(console), _backend(args, pod) as backend:
            # Until here a signal cancels everything (the backend's set-up too); from
            # here on the pod gets its graceful teardown, and a second signal kills.
            stop.handler = on_signal
            up.backend_name = backend.name
            async with anyio.create_task_group() as ui:
                await ui.start(up.show_events, backend)
                with main:
                    code = await up.run(backend, args, ready_within, kill, ui)
                ui.cancel_scope.cancel()
    finally:
        up.refresh_now()
        console.close()
    if up.outcome:
        console.message(up.outcome)
    interrupted = stop.interrupted()
    if interrupted is not None:
        raise interrupted
    return code


class _ConsoleHandler(logging.Handler):
    def __init__(self, console: Console) -> None:
        super().__init__()
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        self.console.message(f"asyncpod: {record.levelname.lower()}: {record.getMessage()}")


@asynccontextmanager
async def _log_to(console: Console) -> AsyncIterator[None]:
    """Show asyncpod's log records (warnings and up, or all with --debug) on *console*,
    above the live table instead of through it."""
    logger = logging.getLogger("asyncpod")
    handler = _ConsoleHandler(console)
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = True


#: events shown while a pod comes up, besides its containers' starts and exits
_SHOWN_DURING_BRING_UP = frozenset(
    {
        EventReason.BACK_OFF,
        EventReason.UNHEALTHY,
        EventReason.KILLING,
        EventReason.FAILED_POST_START_HOOK,
        EventReason.DEPENDENCY_FAILED,
    }
)


class _Up:
    """The state of one ``asyncpod up``: what is shown, and how the pod ended."""

    def __init__(self, pod: Pod, console: Console) -> None:
        self.pod = pod
        self.console = console
        self.running: RunningPod | None = None
        self.backend_name = ""
        self.stopping = False
        self.started = time.monotonic()
        #: log lines seen of each container that failed during bring-up
        self._shown: dict[str, int] = {}
        #: the pod's events during bring-up, from on_event to show_events
        self._events: MemoryObjectSendStream[PodEvent] | None = None
        #: said once the display is closed
        self.outcome = ""

    def refresh_now(self) -> None:
        if self.running is None:
            return
        if self.stopping:
            self.console.footer = "stopping (Ctrl-C again kills every container)"
        else:
            self.console.footer = "Ctrl-C stops the pod"
        info = f"{self.backend_name}, run {self.running.run_id}, up {self._age()}"
        self.console.status(self.running.status(), anyio.current_time(), info)

    def _age(self) -> str:
        return format_duration(time.monotonic() - self.started)

    def on_event(self, event: PodEvent) -> None:
        """Called by the supervisor with each event as it happens (see :meth:`show_events`)."""
        if self._events is not None and self.running is None:  # then the status tells
            with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
                self._events.send_nowait(event)  # unless the display is gone

    async def show_events(
        self,
        backend: Backend,
        *,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Until the pod is up, say when a container starts, exits or backs off.

        A container that exits with an error shows its last log lines.
        """
        send, receive = anyio.create_memory_object_stream[PodEvent](math.inf)
        with send, receive:
            self._events = send
            task_status.started()
            async for event in receive:
                await self._show(backend, event)

    async def _show(self, backend: Backend, event: PodEvent) -> None:
        name = event.container
        if self.running is not None or name is None:
            return
        if event.reason is EventReason.STARTED:
            self.console.message(f"{name}: started")
        elif event.reason is EventReason.EXITED:
            self.console.message(f"{name}: exited ({event.exit_code})")
            if event.exit_code:
                await self._show_tail(backend, name)
        elif event.reason in _SHOWN_DURING_BRING_UP:
            self.console.message(f"{name}: {event.message or event.reason.value}")

    async def _show_tail(self, backend: Backend, name: str) -> None:
        """The last log lines of a container that failed during bring-up."""
        labels = {LABEL_POD: self.pod.name, LABEL_CONTAINER: name}
        try:
            found = [o for o in await backend.list_objects(labels) if o.type == "container"]
            if not found:
                return
            container = found[0].id
            tail: deque[str] = deque(maxlen=LOG_TAIL)
            seen = 0
            with anyio.move_on_after(5):
                async with backend.logs(container) as lines:
                    async for record in lines:
                        seen += 1
                        if seen > self._shown.get(container, 0):  # not shown after an earlier exit
                            tail.append(record.text)
        except AsyncpodError as exc:  # the display is no reason to fail
            logging.getLogger("asyncpod").debug("logs of %s: %s", name, exc)
            return
        self._shown[container] = seen
        names = [c.name for c in self.pod.all_containers]
        index = names.index(name) if name in names else 0
        for line in tail:
            self.console.log(name, index, line)

    async def refresh(self) -> None:
        while True:
            self.refresh_now()
            await anyio.sleep(POLL)

    async def run(
        self,
        backend: Backend,
        args: argparse.Namespace,
        ready_within: float | None,
        kill: anyio.Event,
        ui: anyio.abc.TaskGroup,
    ) -> int:
        pod = self.pod
        self.console.message(f"bringing up pod {pod.name} on {backend.name} (Ctrl-C aborts)")
        deadline = anyio.CancelScope(
            deadline=anyio.current_time() + ready_within
            if ready_within is not None
            else float("inf")
        )
        failure = ""
        not_ready: PodStatus | None = None
        with deadline:
            async with open_pod(
                pod, backend=backend, detach=args.detach, kill_event=kill, on_event=self.on_event
            ) as r:
                self.running = r
                ui.start_soon(self.refresh)
                if args.logs:
                    ui.start_soon(_follow_logs, self, r)
                try:
                    await _first(r.wait_ready, r.wait)
                except anyio.get_cancelled_exc_class():
                    not_ready = r.status()  # before the teardown changes it
                    raise
                deadline.deadline = float("inf")
                if args.detach:
                    status = r.status()
                    if not status.conditions.ready:  # it ended instead: tear it down
                        raise CliError(
                            await _failure(r, status)
                            or f"pod {pod.name} is {status.phase.value}, never ready",
                            EXIT_FAILED,
                        )
                    self.outcome = (
                        f"pod {pod.name} is ready and left running on Podman; "
                        f"'asyncpod down {pod.name}' stops it"
                    )
                    return EXIT_OK
                final = await r.wait()
                if final.phase is not Phase.SUCCEEDED:
                    failure = await _failure(r, final)
        if deadline.cancelled_caught:
            raise CliError(
                f"pod {pod.name} was not ready within {ready_within:g}s: "
                + (_not_ready(not_ready) if not_ready is not None else "still bringing up"),
                EXIT_TIMEOUT,
                "'asyncpod up --logs' shows what the containers say; '--timeout' gives more time",
            )
        if failure:
            raise CliError(failure)
        self.outcome = f"pod {pod.name} succeeded"
        return EXIT_OK


async def _failure(running: RunningPod, final: PodStatus) -> str:
    """What failed in a pod that ended Failed: each failed container and its last log lines."""
    lines = [f"pod {final.name} failed"]
    for c in final.containers:
        if c.exit_code in (None, 0):
            continue
        lines[0] += f"{':' if len(lines) == 1 else ','} {c.name!r} exited with {c.exit_code}"
        tail: deque[str] = deque(maxlen=LOG_TAIL)
        try:
            with anyio.move_on_after(5):
                async with running.logs(c.name) as records:
                    async for record in records:
                        tail.append(record.text)
        except AsyncpodError:
            pass
        lines += [f"  {c.name} | {line}" for line in tail]
    return "\n".join(lines)


def _not_ready(status: PodStatus) -> str:
    waiting = [
        f"{c.name} ({state_text(c)}{', not ready' if isinstance(c.state, Running) else ''})"
        for c in status.containers
        if not c.ready and c.kind is not StepKind.INIT
    ]
    return ", ".join(waiting) or status.phase.value


async def _first(*waits: Callable[[], Awaitable[Any]]) -> None:
    """Wait until the first of *waits* returns."""
    async with anyio.create_task_group() as tg:

        async def one(wait: Callable[[], Awaitable[Any]]) -> None:
            await wait()
            tg.cancel_scope.cancel()

        for wait in waits:
            tg.start_soon(one, wait)


async def _follow_logs(up: _Up, running: RunningPod) -> None:
    """Print every container's log, prefixed, following it across restarts."""
    names = [c.name for c in running.pod.all_containers]
    width = max(len(n) for n in names)

    async def follow(index: int, name: str) -> None:
        printed = 0
        restarts = -1
        while True:
            status = running.status().container(name)
            if status.container_id is not None and status.restart_count != restarts:
                restarts = status.restart_count
                seen = 0
                try:
                    async with running.logs(name, follow=True) as lines:
                        async for record in lines:
                            seen += 1
                            if seen > printed:  # a restarted container's log starts over
                                printed = seen
                                up.console.log(name.ljust(width), index, record.text)
                except (AsyncpodError, LookupError):
                    pass
            await anyio.sleep(POLL)

    async with anyio.create_task_group() as tg:
        for index, name in enumerate(names):
            tg.start_soon(follow, index, name)


# down, ps, logs, gc


async def _find(backend: Backend, name: str) -> list[OwnedPod]:
    pods = await find_pods(backend, name, local=backend.is_local)
    if not pods:
        raise CliError(
            f"no pod named {name!r} is owned by asyncpod here",
            EXIT_NOT_FOUND,
            "'asyncpod ps' lists the pods asyncpod owns",
        )
    return pods


async def _down(args: argparse.Namespace, stop: _Stop) -> int:
    async with _podman(args.url) as backend:
        for pod in await _find(backend, args.name):
            state = pod.owner
            if not pod.detached and state is not OwnerState.GONE and not args.force:
                if state is OwnerState.ALIVE and await _stop_owner(backend, pod):
                    continue
                where = (
                    # a live pid without a matching start time may be anybody's
                    "on this host, which cannot be proven to be its owner (no start time)"
                    if state is OwnerState.ALIVE
                    else f"on {pod.owner_host}, which cannot be checked from here"
                )
                raise CliError(
                    f"pod {pod.name} is run by process {pod.owner_pid} {where}",
                    EXIT_FAILED,
                    "stop that process, or pass --force to stop the pod from here",
                )
            print(f"stopping pod {pod.name} (run {pod.run}) ...")
            await stop_pod(backend, pod, grace=args.grace)
            removed = await remove_pod(backend, pod)
            print(f"pod {pod.name} removed: {describe(removed)}")
    return EXIT_OK


async def _stop_owner(backend: Backend, pod: OwnedPod) -> bool:
    """Ask the live ``asyncpod up`` running *pod* to tear it down (SIGTERM), and wait.

    Returns ``False`` without sending anything unless that process is provably the owner
    (its start time matches the label): a pid from a label may have been reused by an
    unrelated process, which must not get the signal.
    """
    pid = int(pod.owner_pid)
    try:
        sent = signal_owner(pod.labels, signal.SIGTERM, local=pod.local)
    except PermissionError:
        raise CliError(
            f"pod {pod.name} is run by process {pid}, which belongs to another user",
            EXIT_FAILED,
            f"run 'asyncpod down {pod.name}' as that user, or pass --force to stop it from here",
        ) from None
    if not sent:
        return False
    print(f"pod {pod.name} is run by process {pid}: sent it SIGTERM ...")
    with anyio.move_on_after(pod.grace + 30) as scope:
        # Another process does the work: poll until its objects are gone.
        while await backend.list_objects({LABEL_RUN: pod.run}):  # noqa: ASYNC110
            await anyio.sleep(POLL)
    if scope.cancelled_caught:
        raise CliError(
            f"process {pid} did not remove pod {pod.name} within {pod.grace + 30:g}s",
            EXIT_FAILED,
            f"'asyncpod down --force {pod.name}' stops it from here",
        )
    print(f"pod {pod.name} stopped and removed by process {pid}")
    return True


def _owner_text(pod: OwnedPod) -> str:
    if pod.detached:
        return "detached"
    state = pod.owner
    # An owner that cannot be checked is named with its host, even one named like this one.
    here = state is not OwnerState.UNKNOWN and pod.owner_host == hostname()
    where = "" if here else f"@{pod.owner_host}"
    text = {OwnerState.ALIVE: "", OwnerState.GONE: " (gone)", OwnerState.UNKNOWN: " (unknown)"}
    detaching = " (detaching)" if pod.detaching and state is OwnerState.ALIVE else ""
    return f"pid {pod.owner_pid}{where}{text[state]}{detaching}"


async def _ps(args: argparse.Namespace, stop: _Stop) -> int:
    async with _podman(args.url) as backend:
        pods = await find_pods(backend, local=backend.is_local)
        rows: list[tuple[str, ...]] = [("POD", "RUN", "OWNER", "CONTAINER", "STATE")]
        for pod in pods:
            infos = await _inspect_all(backend, pod.containers)
            first = (pod.name, pod.run, _owner_text(pod))
            if not infos:
                rows.append((*first, "-", "(no containers)"))
            for i, (obj, info) in enumerate(infos):
                name = obj.labels.get(LABEL_CONTAINER, obj.name)
                rows.append((*(first if i == 0 else ("", "", "")), name, _state_text(info)))
    if len(rows) == 1:
        print("no pods owned by asyncpod")
        return EXIT_OK
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return EXIT_OK


async def _inspect_all(
    backend: Backend, containers: list[OwnedObject]
) -> list[tuple[OwnedObject, ContainerInfo | None]]:
    """Each container with its state (``None``: removed meanwhile), in the order they
    started; those never started last."""
    infos: dict[str, ContainerInfo | None] = {}

    async def inspect(obj: OwnedObject) -> None:
        try:
            infos[obj.id] = await backend.inspect_container(obj.id)
        except ObjectNotFoundError:
            infos[obj.id] = None

    async with anyio.create_task_group() as tg:
        for obj in containers:
            tg.start_soon(inspect, obj)

    def start_order(item: tuple[int, OwnedObject]) -> tuple[bool, float, int]:
        index, obj = item
        info = infos[obj.id]
        started = info.started_at if info is not None else None
        return (started is None, started or 0.0, -index)

    ordered = sorted(enumerate(containers), key=start_order)
    return [(obj, infos[obj.id]) for _, obj in ordered]


def _state_text(info: ContainerInfo | None) -> str:
    if info is None:
        return "removed"
    now = time.time()
    if info.state is RuntimeState.RUNNING:
        return "running" + (f" {format_duration(now - info.started_at)}" if info.started_at else "")
    if info.state is RuntimeState.EXITED:
        ago = f" {format_duration(now - info.finished_at)} ago" if info.finished_at else ""
        return f"exited ({info.exit_code}){ago}"
    return str(info.state.value)


async def _logs(args: argparse.Namespace, stop: _Stop) -> int:
    async with _podman(args.url) as backend:
        found = [c for pod in await _find(backend, args.name) for c in pod.containers]
        containers = [obj for obj, _ in await _inspect_all(backend, found)]
        if args.container is not None:
            containers = [c for c in containers if c.labels.get(LABEL_CONTAINER) == args.container]
            if not containers:
                raise CliError(
                    f"pod {args.name} has no container {args.container!r}",
                    EXIT_NOT_FOUND,
                    "'asyncpod ps' lists its containers",
                )
        console = open_console()
        prefixed = len(containers) > 1
        names = [c.labels.get(LABEL_CONTAINER, c.name) for c in containers]
        width = max((len(n) for n in names), default=0)

        async def show(index: int, obj: OwnedObject, name: str) -> None:
            try:
                async with backend.logs(obj.id, follow=args.follow) as lines:
                    async for record in lines:
                        if prefixed:
                            console.log(name.ljust(width), index, record.text)
                        else:
                            console.message(record.text)
            except ObjectNotFoundError:
                pass  # removed meanwhile

        if args.follow:
            async with anyio.create_task_group() as tg:
                for index, (obj, name) in enumerate(zip(containers, names, strict=True)):
                    tg.start_soon(show, index, obj, name)
        else:
            for index, (obj, name) in enumerate(zip(containers, names, strict=True)):
                await show(index, obj, name)
    return EXIT_OK


async def _gc(args: argparse.Namespace, stop: _Stop) -> int:
    async with _podman(args.url) as backend:
        found = await find_pods(backend, local=backend.is_local)
        pods = [p for p in found if not args.names or p.name in args.names]
        garbage = [p for p in pods if p.orphaned]

        async def collect(pod: OwnedPod) -> None:
            print(f"removing pod {pod.name} (run {pod.run}; pid {pod.owner_pid} is gone) ...")
            await stop_pod(backend, pod)
            removed = await remove_pod(backend, pod)
            print(f"removed pod {pod.name} (run {pod.run}): {describe(removed)}")

        async with anyio.create_task_group() as tg:
            for pod in garbage:
                if args.dry_run:
                    print(
                        f"would remove pod {pod.name} (run {pod.run}; pid {pod.owner_pid} "
                        f"is gone): {describe(pod.objects)}"
                    )
                else:
                    tg.start_soon(collect, pod)
        detached = [p.name for p in pods if p.detached]
        unknown = [
            f"{p.name} (pid {p.owner_pid}@{p.owner_host})"
            for p in pods
            if not p.detached and p.owner is OwnerState.UNKNOWN
        ]
    if not garbage:
        print("nothing to remove")
    if detached:
        print(f"left alone, detached on purpose: {', '.join(detached)} ('asyncpod down NAME')")
    if unknown:
        print(
            f"left alone, owner unknown (it cannot be checked from here): {', '.join(unknown)} "
            "('asyncpod down --force NAME' once it is garbage)"
        )
    return EXIT_OK
