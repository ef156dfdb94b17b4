"""The facade of a pod run: :func:`open_pod` and the :class:`RunningPod` it yields."""

from __future__ import annotations

import logging
import re
import sys
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any, NoReturn

import anyio

from .._diagnosis import Diagnosis
from .._events import EventReason, PodEvent
from .._exceptions import AsyncpodError, PodTimeoutError
from .._models import Pod
from .._plan import StartupPlan
from .._status import Phase, PodStatus
from ..backends._base import Backend, ExecResult, LogRecord
from ._core import Supervisor

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found,unused-ignore]

__all__ = ["RunningPod", "open_pod"]

logger = logging.getLogger("asyncpod")

#: how often the waits for a port and a command try again, in seconds
_POLL = 0.5


async def _log_tail(backend: Backend, cid: str, lines: int) -> tuple[str, ...]:
    """The last *lines* log lines of container *cid* (none if they cannot be read)."""
    tail: deque[str] = deque(maxlen=lines)
    try:
        with anyio.move_on_after(5):
            async with backend.logs(cid) as records:
                async for record in records:
                    tail.append(record.text)
    except AsyncpodError as exc:
        logger.debug("could not read the log of %s: %s", cid, exc)
    return tuple(tail)


@asynccontextmanager
async def open_pod(
    pod: Pod,
    *,
    backend: Backend | None = None,
    detach: bool = False,
    kill_event: anyio.Event | None = None,
    on_event: Callable[[PodEvent], object] | None = None,
) -> AsyncIterator[RunningPod]:
    """Run *pod* for the duration of the ``async with`` block.

    Creates the pod's objects, starts its containers along the startup plan (independent
    branches in parallel) and yields a :class:`RunningPod` once the pod is up: every init
    step done and every app container started. Leaving the block, normally, by an
    exception or by cancellation, stops the containers in reverse plan order within the
    pod's grace period and removes every object that was created, shielded from
    cancellation.

    A failure during bring-up raises after clean-up: :class:`~asyncpod.ContainerFailedError`
    (naming the container, its exit code and last log lines),
    :class:`~asyncpod.ImageError`, or another :class:`~asyncpod.BackendError`.

    Without *backend*, a :class:`~asyncpod.backends.PodmanBackend` is opened and closed
    around the pod.

    With *detach*, leaving the block without an exception leaves the pod running: its
    containers go on under the backend (Podman), but nothing supervises them any more (no
    probes, no restarts). Its objects carry ``io.asyncpod.detached=true`` and, once it is
    left running, a marker volume (``io.asyncpod.marker=detached``) says so, so that
    ``asyncpod gc`` leaves them alone; ``asyncpod down NAME`` stops and removes them. A
    failure, an exception or a cancellation still tears the pod down, and a run whose
    owner died before leaving the block has no marker: ``asyncpod gc`` collects it.

    Setting *kill_event* makes a teardown, in progress or to come, stop waiting: every
    container is killed at once (no preStop hook, no grace period), then removed. Set it
    when a graceful teardown takes too long, e.g. on a second Ctrl-C; one event may serve
    many pods.

    *on_event* is called with each :class:`~asyncpod.PodEvent` as it happens, from the first
    ``Created`` to ``TornDown`` (or ``Detached``): what :meth:`RunningPod.events` yields,
    but from the start of bring-up, so that a slow or failing bring-up can be followed. It
    is called synchronously, so it must not block. An :class:`Exception` it raises is
    logged and changes nothing; any other (``KeyboardInterrupt``...) ends the run as if
    raised in the block, and one raised during the teardown is raised once it is done.
    """
    async with AsyncExitStack() as stack:
        if backend is None:
            from ..backends._podman import PodmanBackend

            backend = await stack.enter_async_context(PodmanBackend())
        supervisor = Supervisor(
            pod, backend, detach=detach, kill_event=kill_event, on_event=on_event
        )
        raised: BaseException | None = None  # by the block itself
        try:
            async with anyio.create_task_group() as tg:
                left_running = False
                try:
                    await supervisor.bring_up(tg)
                    try:
                        yield RunningPod(supervisor)
                    except BaseException as exc:
                        raised = exc
                        raise
                    if detach:  # the block ended without an exception
                        await supervisor.mark_detached()
                        left_running = True
                finally:
                    if left_running:
                        logger.info("pod %s left running (detached)", pod.name)
                        supervisor.emit(EventReason.DETACHED)
                        supervisor.events.close()
                    else:
                        with anyio.CancelScope(shield=True):
                            await supervisor.teardown()
                    tg.cancel_scope.cancel()
                    if supervisor.interrupted is not None:
                        raise supervisor.interrupted
        except BaseExceptionGroup as group:
            _raise_single(group, raised)


def _raise_single(
    group: BaseExceptionGroup[BaseException], raised: BaseException | None
) -> NoReturn:
    """Re-raise the one real exception of *group*, as it was raised.

    Task groups wrap even a single exception, ours included: those groups are unwrapped.
    What the block itself *raised* comes out untouched, a group staying a group.
    """
    leaves = list(_leaves(group, raised))
    cancelled = anyio.get_cancelled_exc_class()
    real = [exc for exc in leaves if not isinstance(exc, cancelled)]
    if len(real) == 1:
        _reraise(real[0])
    if not real and leaves:
        _reraise(leaves[0])
    raise group


def _leaves(exc: BaseException, raised: BaseException | None) -> Iterable[BaseException]:
    """The exceptions in *exc*, groups unwrapped but for what the block *raised*."""
    if not isinstance(exc, BaseExceptionGroup):
        yield exc
    elif exc is raised or (isinstance(raised, BaseExceptionGroup) and _copy_of(exc, raised)):
        yield raised  # as raised, not the copy a trio nursery makes as it filters Cancelled
    else:
        for inner in exc.exceptions:
            yield from _leaves(inner, raised)


def _copy_of(group: BaseExceptionGroup[Any], original: BaseExceptionGroup[Any]) -> bool:
    """Whether *group* is *original* rebuilt (``split``, ``derive``): the same leaves."""

    def ids(exc: BaseException) -> set[int]:
        if isinstance(exc, BaseExceptionGroup):
            return set().union(*map(ids, exc.exceptions))
        return {id(exc)}

    return group.message == original.message and ids(group) == ids(original)


def _reraise(exc: BaseException) -> NoReturn:
    """Raise *exc* again, keeping its context (``raise`` would make it the group)."""
    context = exc.__context__
    try:
        raise exc
    finally:
        exc.__context__ = context
        del exc


class RunningPod:
    """A pod brought up by :func:`open_pod`. Valid inside the ``async with`` block."""

    def __init__(self, supervisor: Supervisor) -> None:
        self._sup = supervisor

    @property
    def pod(self) -> Pod:
        """The pod description."""
        return self._sup.pod

    @property
    def plan(self) -> StartupPlan:
        """The startup plan being followed."""
        return self._sup.plan

    @property
    def backend(self) -> Backend:
        """The backend running the pod."""
        return self._sup.backend

    @property
    def id(self) -> str:
        """The backend's id of the pod."""
        assert self._sup.pod_id is not None
        return self._sup.pod_id

    @property
    def run_id(self) -> str:
        """This run's id, the value of the ``io.asyncpod.run`` label on every object."""
        return self._sup.run_id

    @property
    def labels(self) -> dict[str, str]:
        """The labels every object of this run carries."""
        return dict(self._sup.labels)

    def status(self) -> PodStatus:
        """A snapshot of the pod's phase, conditions and containers.

        After the ``async with`` block, the final status: every container terminated, and
        the phase as Kubernetes ends a deleted pod's (``Succeeded`` if every app container
        exited 0, else ``Failed``).
        """
        return self._sup.status()

    @property
    def error(self) -> AsyncpodError | None:
        """What failed the pod after it came up (:class:`~asyncpod.PodVanishedError`),
        or ``None``."""
        return self._sup.vanished

    async def diagnose(self, *, events: int = 15, log_lines: int = 10) -> Diagnosis:
        """Why the pod is (not) ready, in one piece: its status, its last *events* and
        each container's last *log_lines*; ``print()`` it.

        Valid after the block too, from what was kept: the events, and the last log
        lines of the containers that failed.
        """
        sup = self._sup
        logs: dict[str, tuple[str, ...]] = {}
        for runner in sup.ordered:
            tail: tuple[str, ...] = runner.log_tail
            if runner.cid is not None and not sup.torn_down and log_lines > 0:
                tail = await _log_tail(sup.backend, runner.cid, log_lines) or tail
            if tail and log_lines > 0:
                logs[runner.name] = tail[-log_lines:]
        kept = sup.events.snapshot()
        return Diagnosis(
            status=sup.status(),
            events=kept[-events:] if events else (),
            logs=logs,
            taken_at=sup.now(),
        )

    def host_port(self, name: str, port: int | str, protocol: str = "TCP") -> int:
        """The host port that publishes *port* (a number or a port's name) of container
        *name*: the one the engine picked for a ``hostPort: 0``::

            url = f"http://localhost:{running.host_port('web', 8080)}/"

        Raises :class:`LookupError` if the container does not publish that port.
        """
        container = self._sup.runner(name).container
        number = port
        if isinstance(port, str):
            named = [p.container_port for p in container.ports if p.name == port]
            if not named:
                raise LookupError(f"container {name!r} has no port named {port!r}")
            number = named[0]
        for published in self._sup.ports:
            if (published.container, published.container_port, published.protocol) == (
                name,
                number,
                protocol.upper(),
            ):
                return published.host_port
        raise LookupError(f"container {name!r} does not publish port {port}/{protocol.upper()}")

    def container_id(self, name: str) -> str:
        """The backend's id of container *name*."""
        cid = self._sup.runner(name).cid
        if cid is None:
            raise LookupError(f"container {name!r} has not been created")
        return cid

    async def wait_ready(self) -> PodStatus:
        """Wait until the pod is Ready; bound it with :meth:`fail_after` to be told why
        it is not, should it run out of time."""
        return await self._sup.wait_for(lambda s: s.conditions.ready)

    async def wait_for_log(self, name: str, pattern: str | re.Pattern[str]) -> re.Match[str]:
        """Wait until a log line of container *name* matches the regular expression
        *pattern* (:func:`re.search`); return the match. Lines logged before the call
        count too."""
        return await self._log_match(name, re.compile(pattern))

    async def wait_for_port(self, port: int) -> None:
        """Wait until something in the pod accepts TCP connections on *port* (a
        container port, reached inside the pod as the probes reach it)."""
        while True:
            try:
                stream = await self.backend.connect(self.id, port)
            except (OSError, AsyncpodError):
                await anyio.sleep(_POLL)
                continue
            with anyio.CancelScope(shield=True):
                await stream.aclose()
            return

    async def wait_for_command(self, name: str, argv: Iterable[str]) -> ExecResult:
        """Run *argv* in container *name* until it exits 0 (every half second); return
        that run's result."""
        command = tuple(argv)
        self._sup.runner(name)  # a LookupError for a container the pod does not have
        while True:
            try:
                result = await self.exec(name, command)
            except (LookupError, AsyncpodError) as exc:  # not created, or not running
                logger.debug("waiting for %r in %s: %s", command, name, exc)
            else:
                if result.exit_code == 0:
                    return result
            await anyio.sleep(_POLL)

    @asynccontextmanager
    async def fail_after(self, delay: float) -> AsyncIterator[anyio.CancelScope]:
        """:func:`anyio.fail_after` that says why: a block still running after *delay*
        seconds is cancelled and raises :class:`~asyncpod.PodTimeoutError` (a
        :class:`TimeoutError`) carrying the pod's :meth:`diagnose`::

            async with running.fail_after(30):
                await running.wait_ready()
                await running.wait_for_log("web", r"listening on")
        """
        with anyio.move_on_after(delay) as scope:
            yield scope
        if scope.cancelled_caught:
            diagnosis = await self.diagnose()
            raise PodTimeoutError(
                f"pod {self.pod.name!r}: still waiting after {delay:g} s", diagnosis
            )

    async def _log_match(self, name: str, regex: re.Pattern[str]) -> re.Match[str]:
        seen = 0  # lines read by earlier passes (the log of a restarted container grows)
        while True:
            self._sup.runner(name)  # a LookupError for a container the pod does not have
            cid = self._sup.runners[name].cid
            if cid is not None:
                try:
                    async with self.backend.logs(cid, follow=True) as records:
                        index = 0
                        async for record in records:
                            index += 1
                            if index <= seen:
                                continue
                            seen = index
                            match = regex.search(record.text)
                            if match is not None:
                                return match
                except AsyncpodError as exc:
                    logger.debug("reading the log of %s: %s", name, exc)
            # The log ended (the container exited): wait for it to run again.
            await self._sup.changed.wait()
            if self._sup.vanished is not None:
                raise self._sup.vanished

    async def wait(self) -> PodStatus:
        """Wait until the pod has Succeeded or Failed, and return its final status."""
        return await self._sup.wait_for(lambda s: s.phase in (Phase.SUCCEEDED, Phase.FAILED))

    def events(self) -> AsyncIterator[PodEvent]:
        """The lifecycle events of this run, oldest first, as they happen.

        Replays the events kept so far (the last 1,000, from ``Created`` of the first
        container on), then yields each new one, and ends after ``TornDown`` (or
        ``Detached``). Iterate in a task of a task group that outlives the ``async with``
        block to see the teardown, or inside it and cancel when done::

            async for event in running.events():
                print(event.reason, event.container, event.message)
        """
        return self._sup.events.follow()

    def logs(
        self, name: str, *, follow: bool = False
    ) -> AbstractAsyncContextManager[AsyncIterator[LogRecord]]:
        """Open the log of container *name*: ``async with running.logs("web") as lines:``."""
        return self._sup.backend.logs(self.container_id(name), follow=follow)

    async def exec(self, name: str, argv: Iterable[str]) -> ExecResult:
        """Run *argv* (no shell) in container *name*; return its exit code and output."""
        return await self._sup.backend.exec(self.container_id(name), tuple(argv))
