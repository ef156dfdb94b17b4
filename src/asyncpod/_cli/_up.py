"""``asyncpod up``: bring a pod up and show it until it ends, or a signal tears it down."""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
from anyio.streams.memory import MemoryObjectSendStream

from .._console import Console, Terminating, format_duration, open_console, state_text
from .._events import EventReason, PodEvent
from .._exceptions import AsyncpodError, BackoffLimitExceededError, ContainerFailedError
from .._labels import LABEL_CONTAINER, LABEL_POD
from .._logread import LogMark, last_lines, mark_now
from .._models import Pod
from .._plan import StepKind
from .._status import Phase, PodStatus, Running
from .._supervisor import RunningPod, job_retry_delay, open_pod
from ..backends import Backend
from . import _backends
from ._errors import EXIT_FAILED, EXIT_OK, EXIT_TIMEOUT, EXIT_USAGE, CliError
from ._signals import Stop

__all__ = ["POLL", "up"]

POLL = 0.25  # seconds between two refreshes of the status table
LOG_TAIL = 5  # log lines shown of a container that failed during bring-up


async def up(args: argparse.Namespace, stop: Stop) -> int:
    pod: Pod = args.pod
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
    shown = _Up(pod, console)

    def on_signal(signum: int, count: int) -> None:
        if count == 1:
            shown.stopping = True
            shown.refresh_now()
            console.message(f"{signal.Signals(signum).name}: stopping pod {pod.name} ...")
            main.cancel()
        elif not kill.is_set():
            shown.killing = True
            kill.set()  # the supervisor logs that it kills
            shown.refresh_now()

    try:
        async with _log_to(console), _backends.up_backend(args.backend, args.url, pod) as backend:
            # Until here a signal cancels everything (the backend's set-up too); from
            # here on the pod gets its graceful teardown, and a second signal kills.
            stop.handler = on_signal
            shown.backend_name = backend.name
            async with anyio.create_task_group() as ui:
                await ui.start(shown.show_events, backend)
                with main:
                    code = await _run_retrying(shown, backend, args, ready_within, kill, ui)
                ui.cancel_scope.cancel()
    finally:
        shown.refresh_now()
        console.close()
        if shown.torn_down:
            console.message(f"pod {pod.name} removed")
    if shown.outcome:
        console.message(shown.outcome)
    interrupted = stop.interrupted()
    if interrupted is not None:
        raise interrupted
    return code


async def _run_retrying(
    shown: _Up,
    backend: Backend,
    args: argparse.Namespace,
    ready_within: float | None,
    kill: anyio.Event,
    ui: anyio.abc.TaskGroup,
) -> int:
    """Run the pod; a Job's pod with ``restartPolicy: Never`` again after a failure, as
    the Job controller does, until the failures exceed its ``backoffLimit`` (the pod of
    any other file, or one left running, runs once)."""
    bundle = getattr(args, "bundle", None)
    limit = None
    if (
        bundle is not None
        and bundle.kind in ("Job", "CronJob")
        and bundle.pod.restart_policy.value == "Never"
        and not args.detach
    ):
        limit = bundle.backoff_limit if bundle.backoff_limit is not None else 6
    failures = 0
    while True:
        try:
            return await shown.run(backend, args, ready_within, kill, ui)
        except (CliError, ContainerFailedError) as exc:
            if limit is None or (isinstance(exc, CliError) and exc.code != EXIT_FAILED):
                raise
            failures += 1
            if failures > limit:
                error = BackoffLimitExceededError(shown.pod.name, failures, limit)
                raise CliError(f"{error}\n{exc}") from exc
            delay = job_retry_delay(failures)
            shown.console.message(
                f"pod {shown.pod.name} failed; running it again in {delay:g} s "
                f"({failures} of at most {limit} retries: the job's backoffLimit)"
            )
            await anyio.sleep(delay)


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
        #: a first signal came: the teardown runs; a second: every container is killed
        self.stopping = False
        self.killing = False
        self.started = time.monotonic()
        #: the teardown's start and end, and the containers being stopped, from the events
        self._terminating_since: float | None = None
        self._stopping: dict[str, float] = {}
        self.torn_down = False
        #: log lines seen of each container that failed during bring-up
        #: where the log of a container whose failure was shown ended then
        self._shown: dict[str, LogMark] = {}
        #: the pod's events during bring-up, from on_event to show_events
        self._events: MemoryObjectSendStream[PodEvent] | None = None
        #: said once the display is closed
        self.outcome = ""
        self._refreshing = False

    def refresh_now(self) -> None:
        if self.running is None:
            return
        if self.torn_down:
            self.console.footer = ""
        elif self.killing:
            self.console.footer = "killing every container"
        elif self.stopping:
            self.console.footer = "stopping (Ctrl-C again kills every container)"
        else:
            self.console.footer = "Ctrl-C stops the pod"
        info = f"{self.backend_name}, run {self.running.run_id}, up {self._age()}"
        now = anyio.current_time()
        self.console.status(self.running.status(), now, info, self._terminating())

    def _terminating(self) -> Terminating:
        since = self._terminating_since
        grace = self.pod.termination_grace_period_seconds
        return Terminating(
            since=since,
            kill_at=None if since is None else since + grace,
            containers=dict(self._stopping),
            killing=self.killing,
            removed=self.torn_down,
        )

    def _age(self) -> str:
        return format_duration(time.monotonic() - self.started)

    def on_event(self, event: PodEvent) -> None:
        """Called by the supervisor with each event as it happens: the teardown is
        noted for the table, and until the pod is up the event is shown (see
        :meth:`show_events`)."""
        name = event.reason
        if name is EventReason.TERMINATING:
            self._terminating_since = event.time
        elif name is EventReason.TORN_DOWN:
            self.torn_down = True
        elif event.container is not None:
            if name is EventReason.KILLING:
                self._stopping[event.container] = event.time
            elif name in (EventReason.EXITED, EventReason.STARTED):
                self._stopping.pop(event.container, None)
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
            # Not what was shown after an earlier exit.
            tail = await last_lines(backend, container, LOG_TAIL, start=self._shown.get(container))
            self._shown[container] = await mark_now(backend, container)
        except AsyncpodError as exc:  # the display is no reason to fail
            logging.getLogger("asyncpod").debug("logs of %s: %s", name, exc)
            return
        names = [c.name for c in self.pod.all_containers]
        index = names.index(name) if name in names else 0
        for line in tail:
            self.console.log(name, index, line)

    async def refresh(self) -> None:
        if self._refreshing:  # a Job's pod run again: the first run's refresh goes on
            return
        self._refreshing = True
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
        why: tuple[PodEvent, ...] = ()
        with deadline:
            async with open_pod(
                args.bundle,
                config_maps=args.config_maps,
                secrets=args.secrets,
                backend=backend,
                detach=args.detach,
                kill_event=kill,
                on_event=self.on_event,
            ) as r:
                self.running = r
                ui.start_soon(self.refresh)
                if args.logs:
                    ui.start_soon(_follow_logs, self, r)
                try:
                    await _first(r.wait_ready, r.wait)
                except anyio.get_cancelled_exc_class():
                    not_ready = r.status()  # before the teardown changes it
                    with anyio.CancelScope(shield=True):
                        why = (await r.diagnose(log_lines=0)).events
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
                + (_not_ready(not_ready, why) if not_ready is not None else "still bringing up"),
                EXIT_TIMEOUT,
                "'asyncpod up --logs' shows what the containers say; '--timeout' gives more time",
            )
        if failure:
            raise CliError(failure)
        self.outcome = f"pod {pod.name} succeeded"
        return EXIT_OK


async def _failure(running: RunningPod, final: PodStatus) -> str:
    """What failed in a pod that ended Failed: each failed container and its last log lines."""
    lines = [f"pod {final.name} failed" + (f" ({final.reason})" if final.reason else "")]
    for c in final.containers:
        if c.exit_code in (None, 0):
            continue
        lines[0] += f"{':' if len(lines) == 1 else ','} {c.name!r} exited with {c.exit_code}"
        tail = await running.log_tail(c.name, LOG_TAIL)
        lines += [f"  {c.name} | {line}" for line in tail]
    return "\n".join(lines)


def _not_ready(status: PodStatus, events: Sequence[PodEvent] = ()) -> str:
    """The containers that are not ready, each with its last probe failure (as the kubelet
    words it) if it had one."""
    failed = {e.container: e.message for e in events if e.reason is EventReason.UNHEALTHY}
    waiting = [
        f"{c.name} ({state_text(c)}{', not ready' if isinstance(c.state, Running) else ''}"
        + (f"; {failed[c.name]}" if c.name in failed else "")
        + ")"
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


async def _follow_logs(shown: _Up, running: RunningPod) -> None:
    """Print every container's log, prefixed, following it across restarts."""
    names = [c.name for c in running.pod.all_containers]
    width = max(len(n) for n in names)

    async def follow(index: int, name: str) -> None:
        while True:
            try:
                async with running.logs(name, follow=True) as lines:
                    async for record in lines:
                        shown.console.log(name.ljust(width), index, record.text)
                return  # it will not run again
            except LookupError:  # not created yet
                await anyio.sleep(POLL)
            except AsyncpodError:
                return

    async with anyio.create_task_group() as tg:
        for index, name in enumerate(names):
            tg.start_soon(follow, index, name)
