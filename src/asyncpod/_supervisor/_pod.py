"""The facade of a pod run: :func:`open_pod` and the :class:`RunningPod` it yields."""

from __future__ import annotations

import logging
import re
import sys
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack, aclosing, asynccontextmanager
from typing import Any, NoReturn

import anyio
import attrs

from .._bundle import Bundle
from .._diagnosis import Diagnosis
from .._events import EventReason, PodEvent
from .._exceptions import AsyncpodError, ObjectNotFoundError, PodTimeoutError, SpecError
from .._logread import RunReader, last_lines
from .._models import Pod
from .._objects import ConfigMap, Secret
from .._plan import StartupPlan
from .._status import Phase, PodStatus
from ..backends._base import Backend, ContainerStats, ExecResult, LogRecord
from ..backends._registry import get_backend
from ._config import PodContext
from ._core import Supervisor
from ._faults import engine_failure
from ._runner import Runner

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found,unused-ignore]

__all__ = ["RunningPod", "open_pod"]

logger = logging.getLogger("asyncpod")

#: how often the waits for a port and a command try again, in seconds
_POLL = 0.5
_JOB_KINDS = frozenset({"Job", "CronJob"})


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
    pod: Pod | Bundle,
    *,
    config_maps: Iterable[ConfigMap] = (),
    secrets: Iterable[Secret] = (),
    backend: Backend | None = None,
    detach: bool = False,
    kill_event: anyio.Event | None = None,
    on_event: Callable[[PodEvent], object] | None = None,
) -> AsyncIterator[RunningPod]:
    """Run *pod* for the duration of the ``async with`` block.

    *pod* is a :class:`~asyncpod.Pod`, or a :class:`~asyncpod.kube.Bundle` read by
    :func:`asyncpod.kube.load`, whose ConfigMaps and Secrets the pod then reads.
    *config_maps* and *secrets* give more (or, by name, other) such objects from Python.
    A reference to a ConfigMap, a Secret or a key that is not given fails the run with
    :class:`~asyncpod.SpecError` before anything is created, unless it is ``optional``.

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
    backoff_limit = job_backoff_limit(pod)
    pod, context = _with_objects(pod, config_maps, secrets)
    async with AsyncExitStack() as stack:
        if backend is None:
            backend = await stack.enter_async_context(get_backend("podman"))
        supervisor = Supervisor(
            pod,
            backend,
            detach=detach,
            kill_event=kill_event,
            on_event=on_event,
            context=context,
            backoff_limit=backoff_limit,
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


def job_backoff_limit(pod: Pod | Bundle) -> int | None:
    """The backoffLimit a Job's pod enforces itself, as container restarts: a Job's
    (or CronJob's) with ``restartPolicy: OnFailure``; ``None`` for any other pod (with
    ``Never``, :func:`~asyncpod.run_job` counts the failed pods)."""
    if not isinstance(pod, Bundle) or pod.kind not in _JOB_KINDS:
        return None
    if pod.pod.restart_policy.value != "OnFailure":
        return None
    return 6 if pod.backoff_limit is None else pod.backoff_limit  # Kubernetes' default


def _with_objects(
    pod: Pod | Bundle, config_maps: Iterable[ConfigMap], secrets: Iterable[Secret]
) -> tuple[Pod, PodContext]:
    """The pod to run, and the ConfigMaps and Secrets it reads, by name."""
    from .._serde import structure_object

    maps: dict[str, ConfigMap] = {}
    secret_objects: dict[str, Secret] = {}
    if isinstance(pod, Bundle):
        for kept in (*pod.config_maps, *pod.secrets):
            try:
                obj = structure_object(_thaw(kept.document))
            except SpecError as exc:
                raise exc.with_prefix(str(kept)) from None
            if isinstance(obj, Secret):
                secret_objects[obj.name] = obj
            else:
                maps[obj.name] = obj
        job_deadline = pod.active_deadline_seconds if pod.kind in _JOB_KINDS else None
        pod = pod.pod
        if job_deadline is not None and (
            pod.active_deadline_seconds is None or job_deadline < pod.active_deadline_seconds
        ):
            # A Job's deadline bounds its pod's (and, in run_job, every retry's).
            pod = attrs.evolve(pod, active_deadline_seconds=job_deadline)
    for config_map in config_maps:
        if not isinstance(config_map, ConfigMap):
            raise TypeError(f"config_maps must hold ConfigMaps, not {type(config_map).__name__}")
        maps[config_map.name] = config_map
    for secret in secrets:
        if not isinstance(secret, Secret):
            raise TypeError(f"secrets must hold Secrets, not {type(secret).__name__}")
        secret_objects[secret.name] = secret
    return pod, PodContext(config_maps=maps, secrets=secret_objects)


def _thaw(document: Any) -> Any:
    from .. import _cluster

    return _cluster.thaw(document)


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
    if real and all(engine_failure(exc) for exc in real):
        # The service went: every task that was talking to it says so. One error.
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
        self,
        name: str,
        *,
        follow: bool = False,
        tail: int | None = None,
        since: float | None = None,
        previous: bool = False,
        timestamps: bool = False,
    ) -> AbstractAsyncContextManager[AsyncIterator[LogRecord]]:
        """Open the log of container *name*'s current run, as ``kubectl logs`` shows it::

            async with running.logs("web", tail=10) as lines:
                async for line in lines:
                    print(line.stream, line.text)

        The current run is the last one started (during a back-off, the one that
        exited). *previous* reads the run before it instead (``kubectl logs --previous``);
        :class:`LookupError` if there was none. *tail* keeps the last *tail* lines there
        are now, *since* (seconds since the epoch) the lines logged then or later; with
        *timestamps*, each record has its :attr:`~asyncpod.backends.LogRecord.timestamp`.

        With *follow*, new lines come as they are logged, across restarts, until the
        container has exited for good (or the pod is torn down).
        """
        runner = self._sup.runner(name)
        self.container_id(name)  # created, or LookupError
        if previous and runner.runs < 2:
            raise LookupError(f"container {name!r} has no previous run")
        return self._logs(runner, follow, tail, since, previous, timestamps)

    @asynccontextmanager
    async def _logs(
        self,
        runner: Runner,
        follow: bool,
        tail: int | None,
        since: float | None,
        previous: bool,
        timestamps: bool,
    ) -> AsyncIterator[AsyncIterator[LogRecord]]:
        lines = self._lines(runner, follow and not previous, tail, since, previous)
        if not timestamps:
            lines = _without_timestamps(lines)
        try:
            yield lines
        finally:
            await lines.aclose()

    async def _lines(
        self,
        runner: Runner,
        follow: bool,
        tail: int | None,
        since: float | None,
        previous: bool,
    ) -> AsyncGenerator[LogRecord, None]:
        sup = self._sup
        cid = runner.cid
        assert cid is not None
        runs = runner.runs
        if previous:
            reader = RunReader(
                sup.backend, cid, start=runner.log_marks[0], end=runner.log_marks[1], since=since
            )
        else:
            reader = RunReader(sup.backend, cid, start=runner.log_marks[1], since=since)
        if tail is not None:
            kept: deque[LogRecord] = deque(maxlen=max(tail, 0))
            async with aclosing(reader.records()) as records:
                async for record in records:
                    kept.append(record)
            for record in kept:
                yield record
            if not follow:
                return
            reader = RunReader(sup.backend, cid, start=reader.position, since=since)
        while True:
            try:
                async with aclosing(reader.records(follow=follow)) as records:
                    async for record in records:
                        yield record
            except ObjectNotFoundError:
                if runner.cid == cid:
                    return  # removed
            if not follow:
                return
            # The container exited: wait for its next run, or for the end.
            while (
                runner.runs == runs and runner.cid == cid and not runner.final and not sup.stopping
            ):
                await sup.changed.wait()
            if runner.cid != cid and runner.cid is not None:  # created anew: a new log
                cid, runs = runner.cid, runner.runs
                reader = RunReader(sup.backend, cid, start=runner.log_marks[1], since=since)
            elif runner.runs != runs:
                runs = runner.runs
                reader = RunReader(sup.backend, cid, start=reader.position, since=since)
            else:
                return  # it will not run again

    async def log_tail(self, name: str, lines: int = 10) -> tuple[str, ...]:
        """The last *lines* lines of container *name*'s current run, as text.

        For messages: bounded in time, and never failing (an unreadable log gives what
        could be read, a container never created nothing).
        """
        runner = self._sup.runner(name)
        if runner.cid is None:
            return ()
        return await last_lines(self._sup.backend, runner.cid, lines, start=runner.log_marks[1])

    async def exec(
        self,
        name: str,
        argv: Iterable[str],
        *,
        env: Mapping[str, str] | None = None,
        working_dir: str | None = None,
        user: str | None = None,
        stdin: bytes | None = None,
        output: Callable[[str, bytes], object] | None = None,
    ) -> ExecResult:
        """Run *argv* (no shell) in container *name*; return its exit code and output.

        *env* adds to its environment, *working_dir* and *user* replace its own, *stdin*
        is the command's standard input; with *output*, the output goes to
        ``output(stream, data)`` as it comes instead of into the result (see
        :meth:`~asyncpod.backends.Backend.exec`).
        """
        return await self._sup.backend.exec(
            self.container_id(name),
            tuple(argv),
            env=env,
            working_dir=working_dir,
            user=user,
            stdin=stdin,
            output=output,
        )

    async def put_archive(self, name: str, path: str, tarball: bytes) -> None:
        """Unpack *tarball* into directory *path* of container *name* (made if missing)."""
        await self._sup.backend.put_archive(self.container_id(name), path, tarball)

    async def get_archive(self, name: str, path: str) -> bytes:
        """*path* of container *name* (a file, or a directory and all in it) as a tar."""
        return await self._sup.backend.get_archive(self.container_id(name), path)

    async def restart(self, name: str, *, grace: float | None = None) -> None:
        """Restart container *name* now: stop it (within *grace* seconds, by default the
        pod's grace period) and start it again, without back-off and whatever its
        restart policy says. A container backing off is started at once. Returns once it
        is stopped; its restart count goes up by one.

        Raises :class:`RuntimeError` for a container that will not run again (exited for
        good, or being torn down).
        """
        if grace is None:
            grace = self._sup.pod.termination_grace_period_seconds
        await self._sup.runner(name).restart(grace)

    async def kill(self, name: str, signal: int = 15) -> None:
        """Send *signal* (default SIGTERM) to the main process of container *name*.

        What follows is what follows any exit: a restart as its restart policy says, with
        back-off.
        """
        await self._sup.backend.kill_container(self.container_id(name), signal=signal)

    async def stats(self, name: str) -> ContainerStats | None:
        """What container *name* uses (CPU, memory); ``None`` where the backend cannot
        tell (rootless Podman on cgroup v1)."""
        return await self._sup.backend.stats(self.container_id(name))


async def _without_timestamps(
    records: AsyncGenerator[LogRecord, None],
) -> AsyncGenerator[LogRecord, None]:
    async with aclosing(records):
        async for record in records:
            yield attrs.evolve(record, timestamp=None)
