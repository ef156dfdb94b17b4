"""The supervisor: brings a pod up along its plan, keeps it running, and tears it down.

Everything Kubernetes-specific happens here, identically for every backend: start order,
probes, restarts with back-off, phases, ordered teardown. The backend only runs
containers.
"""

from __future__ import annotations

import functools
import logging
import sys
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any, NoReturn, TypeVar

import anyio
import anyio.abc

from ._env import expand_all, resolve_env
from ._events import EventLog, EventReason, PodEvent, pod_event
from ._exceptions import (
    AsyncpodError,
    BackendError,
    ContainerFailedError,
    DependencyFailedError,
    ObjectNotFoundError,
)
from ._labels import (
    LABEL_CONTAINER,
    LABEL_DETACHED,
    LABEL_GRACE,
    LABEL_MARKER,
    LABEL_POD,
    LABEL_RUN,
    LABEL_STOP_RANK,
)
from ._lowlevel import bound_clock
from ._models import Condition, Container, LifecycleHandler, Pod, Probe, PullPolicy, RestartPolicy
from ._owner import owner_labels
from ._plan import PlanStep, StartupPlan, StepKind
from ._pool import Pool
from ._probes import check_exec, check_http, check_tcp
from ._signal import Signal
from ._status import (
    ContainerState,
    ContainerStatus,
    Phase,
    PodConditions,
    PodStatus,
    Running,
    Terminated,
    Waiting,
    compute_phase,
)
from .backends._base import (
    Backend,
    ContainerSpec,
    ExecResult,
    ExitWatcher,
    LogRecord,
    Mount,
    PodSpec,
    PortMapping,
    VolumeSpec,
)

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found,unused-ignore]

__all__ = [
    "RunningPod",
    "open_pod",
]

logger = logging.getLogger("asyncpod")

#: the kubelet never stops a container with less than this grace period
MIN_GRACE = 2.0
BACKOFF_INITIAL = 10.0
BACKOFF_MAX = 300.0
BACKOFF_RESET = 600.0
LOG_TAIL = 10

_T = TypeVar("_T")


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
            from .backends._podman import PodmanBackend

            backend = await stack.enter_async_context(PodmanBackend())
        supervisor = _Supervisor(
            pod, backend, detach=detach, kill_event=kill_event, on_event=on_event
        )
        try:
            async with anyio.create_task_group() as tg:
                left_running = False
                try:
                    await supervisor.bring_up(tg)
                    yield RunningPod(supervisor)
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
            _raise_single(group)


def _raise_single(group: BaseExceptionGroup[BaseException]) -> NoReturn:
    """Re-raise the one real exception of *group* (task groups wrap even a single one)."""
    leaves = list(_leaves(group))
    cancelled = anyio.get_cancelled_exc_class()
    real = [exc for exc in leaves if not isinstance(exc, cancelled)]
    if len(real) == 1:
        raise real[0] from real[0].__cause__
    if not real and leaves:
        raise leaves[0]
    raise group


def _leaves(exc: BaseException) -> Iterable[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from _leaves(inner)
    else:
        yield exc


class RunningPod:
    """A pod brought up by :func:`open_pod`. Valid inside the ``async with`` block."""

    def __init__(self, supervisor: _Supervisor) -> None:
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
        """A snapshot of the pod's phase, conditions and containers."""
        return self._sup.status()

    def container_id(self, name: str) -> str:
        """The backend's id of container *name*."""
        cid = self._sup.runner(name).cid
        if cid is None:
            raise LookupError(f"container {name!r} has not been created")
        return cid

    async def wait_ready(self) -> PodStatus:
        """Wait until the pod is Ready (bound it with :func:`anyio.fail_after`)."""
        return await self._sup.wait_for(lambda s: s.conditions.ready)

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


class _Supervisor:
    """Runs one pod: state, the plan's bookkeeping, bring-up and teardown.

    No task waits on an idle container. Backend calls (create, start, stop, remove) are
    jobs for a :class:`~asyncpod._pool.Pool`; a container's start is submitted once its
    last start edge holds (the edges are counted, not awaited); exits arrive through one
    :class:`~asyncpod.backends.ExitWatcher`. A container only gets a task of its own while
    it has something to wait for: hooks and probes, a back-off, reading its last logs.
    """

    def __init__(
        self,
        pod: Pod,
        backend: Backend,
        *,
        detach: bool = False,
        kill_event: anyio.Event | None = None,
        on_event: Callable[[PodEvent], object] | None = None,
    ) -> None:
        self.pod = pod
        self.on_event = on_event
        self.backend = backend
        #: anyio.current_time, bound to the running loop (it is read for every event)
        self.now = bound_clock()
        self.plan = StartupPlan.from_pod(pod)
        self.run_id = uuid.uuid4().hex[:12]
        self.labels = {LABEL_POD: pod.name, LABEL_RUN: self.run_id, **owner_labels()}
        if detach:
            self.labels[LABEL_DETACHED] = "true"
        self.stop_ranks = self.plan.stop_ranks()
        self.container_labels = {
            **self.labels,
            LABEL_GRACE: f"{pod.termination_grace_period_seconds:g}",
        }
        self.volumes = {v.name: v for v in pod.volumes}
        self.kill_event = kill_event
        #: the teardown kills instead of stopping gracefully
        self.killing = False
        #: cancelled when killing starts: preStop hooks
        self.grace_scopes: set[anyio.CancelScope] = set()
        #: the stoppers at work (a retirement, a teardown): killing hurries them
        self.stoppers: set[_Stopper] = set()
        self.pod_id: str | None = None
        self.volume_ids: dict[str, str] = {}
        self.runners: dict[str, _Runner] = {s.name: _Runner(self, s) for s in self.plan.steps}
        # Status lists containers in spec order: init containers, then app containers.
        self.ordered = [self.runners[c.name] for c in pod.all_containers]
        #: who waits for whom to start, and who must stop before whom, both in spec order
        self.dependents: dict[str, list[tuple[_Runner, Condition]]] = {}
        self.stop_before: dict[str, list[_Runner]] = {}
        for runner in self.ordered:
            for edge in runner.step.after:
                self.dependents.setdefault(edge.name, []).append((runner, edge.condition))
            for name in runner.step.stop_after:
                self.stop_before.setdefault(name, []).append(runner)
        self.by_cid: dict[str, _Runner] = {}
        self.changed = Signal()
        self.stopping = False
        self.failure: AsyncpodError | None = None
        self.pending_create = len(self.runners)
        # Every container reaches its "up" milestone once: an init container by completing,
        # a sidecar or an app container by starting.
        self.pending_up = len(self.runners)
        self.is_up = False
        #: set once: the pod is up, or bring-up failed
        self.settled = anyio.Event()
        self.init_failed = False
        self.retiring = False  # stopping the sidecars of a finished pod
        #: what on_event raised during the teardown that is no Exception, raised after it
        self.interrupted: BaseException | None = None
        self.events = EventLog()
        # Set by _serve, which runs the pod's jobs and tasks until the teardown.
        self.serving = False
        self.serve_scope = anyio.CancelScope()
        self.serve_done = anyio.Event()
        self.runs: anyio.abc.TaskGroup | None = None
        self.pool: Pool | None = None
        self.exits: ExitWatcher | None = None

    # Notifications

    def notify(self) -> None:
        self.changed.fire()

    def emit(
        self,
        reason: EventReason,
        container: str | None = None,
        message: str = "",
        *,
        exit_code: int | None = None,
        restart_count: int = 0,
    ) -> None:
        event = (self.now(), reason, container, message, exit_code, restart_count)
        self.events.append(event)
        if self.on_event is not None:
            try:
                self.on_event(pod_event(event))
            except Exception:
                logger.exception("on_event raised on %s; ignored", reason.value)
            except BaseException as exc:  # KeyboardInterrupt, SystemExit...
                if not self.stopping:
                    raise  # as from anywhere else in the supervisor: the pod is torn down
                # Not from the middle of the teardown: once it is done.
                self.interrupted = self.interrupted or exc

    def created(self) -> None:
        self.pending_create -= 1
        if self.pending_create == 0:
            # Every container exists: start those that wait for nothing.
            assert self.pool is not None
            for runner in self.ordered:
                if runner.unmet == 0:
                    self.pool.submit(runner.start)

    def reached_up_milestone(self) -> None:
        self.pending_up -= 1
        if self.pending_up == 0:
            self.is_up = True
            self.settled.set()
            if self.pool is not None:
                self.pool.trim()  # the bring-up's burst is over
            logger.info("pod %s is up", self.pod.name)
            self.emit(EventReason.UP)
        self.notify()

    def apps_finished(self) -> bool:
        """Whether no app container will run again."""
        return all(r.final for r in self.ordered if r.kind is StepKind.APP)

    def app_finished(self) -> None:
        """An app container exited for good; once all have, stop the sidecars (kubelet)."""
        if self.stopping or self.retiring or self.runs is None:
            return
        if self.apps_finished() and any(r.kind is StepKind.SIDECAR for r in self.ordered):
            # As the kubelet does once every app container has terminated for good: stop
            # the sidecars like a teardown would (preStop hooks at once, stop signals last
            # declared first, one grace period), but keep them for status and logs.
            self.retiring = True
            sidecars = [r for r in self.ordered if r.kind is StepKind.SIDECAR]
            for runner in sidecars:
                runner.retired = True
                runner.cancel_activity()
            self.runs.start_soon(self._retire, sidecars, name=f"asyncpod:{self.pod.name} retire")

    async def _retire(self, sidecars: list[_Runner]) -> None:
        with anyio.CancelScope(shield=True):  # a teardown waits for it
            await _Stopper(self, sidecars, remove=False, deadline=self.grace_deadline()).run()

    def grace_deadline(self) -> float:
        """When a grace period starting now runs out."""
        return self.now() + self.pod.termination_grace_period_seconds

    def fail(self, error: AsyncpodError) -> None:
        if self.failure is None and not self.is_up:
            self.failure = error
            self.settled.set()
            self.emit(EventReason.FAILED, message=str(error))
        self.notify()

    def runner(self, name: str) -> _Runner:
        try:
            return self.runners[name]
        except KeyError:
            raise LookupError(f"pod {self.pod.name!r} has no container {name!r}") from None

    async def wait_for(self, predicate: Callable[[PodStatus], bool]) -> PodStatus:
        while True:
            status = self.status()
            if predicate(status):
                return status
            await self.changed.wait()

    # Bring-up

    async def bring_up(self, tg: anyio.abc.TaskGroup) -> None:
        pod = self.pod
        logger.info("bringing up pod %s (run %s)", pod.name, self.run_id)
        images = {
            c.image: c.image_pull_policy or PullPolicy.IF_NOT_PRESENT for c in pod.all_containers
        }
        await _gather(functools.partial(self.backend.ensure_image, i, p) for i, p in images.items())

        ports = tuple(
            PortMapping(
                container_port=port.container_port,
                host_port=port.host_port,
                host_ip=port.host_ip or "",
                protocol=port.protocol.value.lower(),
            )
            for c in pod.all_containers
            for port in c.ports
            if port.host_port is not None
        )
        pod_spec = PodSpec(
            name=pod.name,
            hostname=pod.hostname or pod.name.split(".")[0],
            labels=self.labels,
            ports=ports,
            share_pid=pod.share_process_namespace,
        )

        async def create_pod() -> None:
            self.pod_id = await self.backend.create_pod(pod_spec)

        async def create_volume(name: str, spec: VolumeSpec) -> None:
            self.volume_ids[name] = await self.backend.create_volume(spec)

        # The pod and its volumes do not depend on each other: create them together.
        await _gather(
            [
                create_pod,
                *(
                    functools.partial(
                        create_volume,
                        v.name,
                        VolumeSpec(
                            name=f"{pod.name}-{v.name}",
                            labels=self.labels,
                            memory=v.empty_dir.medium == "Memory",
                            size_bytes=v.empty_dir.size_bytes,
                        ),
                    )
                    for v in pod.volumes
                    if v.empty_dir is not None
                ),
            ]
        )
        await tg.start(self._serve, name=f"asyncpod:{pod.name}")
        # Every container is created before anything starts (init containers must exist
        # before anything in the pod runs); then each starts once its edges hold.
        assert self.pool is not None
        for runner in self.ordered:
            self.pool.submit(runner.create)
        await self.settled.wait()
        if self.failure is not None:
            raise self.failure

    async def _serve(self, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        """Run the pod's jobs and tasks, and hand each exit to its runner, until cancelled."""
        self.serving = True
        try:
            with self.serve_scope:
                async with self.backend.watch_exits() as exits, anyio.create_task_group() as runs:
                    self.exits, self.runs, self.pool = exits, runs, Pool(runs)
                    task_status.started()
                    by_cid = self.by_cid
                    async for ended in exits:
                        runner = by_cid.get(ended.container)
                        if runner is not None:
                            runner.on_exit(ended.exit_code)
        finally:
            self.serve_done.set()

    def container_spec(self, container: Container, init: bool) -> ContainerSpec:
        env = resolve_env(container.env) if container.env else {}
        mounts = []
        volumes = self.volumes
        for mount in container.volume_mounts:
            volume = volumes[mount.name]
            if volume.host_path is not None:
                mounts.append(
                    Mount(
                        target=mount.mount_path,
                        host_path=volume.host_path.path,
                        host_path_type=volume.host_path.type,
                        read_only=mount.read_only,
                        sub_path=mount.sub_path,
                    )
                )
            else:
                mounts.append(
                    Mount(
                        target=mount.mount_path,
                        volume=self.volume_ids[mount.name],
                        read_only=mount.read_only,
                        sub_path=mount.sub_path,
                    )
                )
        return ContainerSpec(
            name=f"{self.pod.name}-{container.name}",
            pod=self.pod_id or "",
            image=container.image,
            short_name=container.name,
            command=expand_all(container.command, env) if container.command else None,
            args=expand_all(container.args, env) if container.args else None,
            env=tuple(env.items()),
            working_dir=container.working_dir,
            mounts=tuple(mounts),
            init=init,
            labels={
                **self.container_labels,
                LABEL_CONTAINER: container.name,
                LABEL_STOP_RANK: str(self.stop_ranks[container.name]),
            },
        )

    # Status

    def status(self) -> PodStatus:
        containers = tuple(r.snapshot() for r in self.ordered)
        initialized = all(
            r.completed if r.kind is StepKind.INIT else r.ever_started
            for r in self.ordered
            if r.kind is not StepKind.APP
        ) or any(r.ever_started for r in self.ordered if r.kind is StepKind.APP)
        phase = compute_phase(
            containers,
            restart_policy=self.pod.restart_policy.value,
            init_failed=self.init_failed,
            initialized=initialized,
            restarting=()
            if self.stopping
            else [
                r.name
                for r in self.ordered
                if r.kind is StepKind.APP and r.container.restart_policy and not r.final
            ],
            all_final=not self.stopping and self.apps_finished(),
        )
        containers_ready = all(
            s.ready for s in containers if s.kind is not StepKind.INIT
        ) and phase in (Phase.RUNNING, Phase.PENDING)
        ready = containers_ready and initialized and not self.stopping
        return PodStatus(
            name=self.pod.name,
            phase=phase,
            conditions=PodConditions(
                initialized=initialized, containers_ready=containers_ready, ready=ready
            ),
            containers=containers,
        )

    async def mark_detached(self) -> None:
        """Create the volume that marks this run as left running on purpose."""
        await self.backend.create_volume(
            VolumeSpec(
                name=f"asyncpod-detached-{self.run_id}",
                labels={**self.labels, LABEL_MARKER: "detached"},
            )
        )

    # Teardown

    async def teardown(self) -> None:
        """Stop in reverse plan order within one grace budget, then remove everything."""
        self.stopping = True
        deadline = self.grace_deadline()  # a retirement under way keeps its own
        self.emit(EventReason.TERMINATING)
        self.notify()
        async with anyio.create_task_group() as tg:
            if self.kill_event is not None:
                tg.start_soon(self._kill_when_set, self.kill_event)
            if self.serving:
                # Cancel bring-up, probes and back-offs; a start under way ends first, so
                # that what it did is known (a retirement under way finishes, shielded).
                self.serve_scope.cancel()
                await self.serve_done.wait()
            await _Stopper(self, self.ordered, remove=True, deadline=deadline).run()
            tg.cancel_scope.cancel()
        if self.pod_id is not None:
            await self._quietly(self.backend.remove_pod(self.pod_id), "pod")
        for name, vid in self.volume_ids.items():
            await self._quietly(self.backend.remove_volume(vid), f"volume {name}")
        await self._sweep()
        self.notify()
        logger.info("pod %s is torn down", self.pod.name)
        self.emit(EventReason.TORN_DOWN)
        self.events.close()

    async def _kill_when_set(self, event: anyio.Event) -> None:
        """Once *event* is set, kill every container at once; the stoppers then remove them."""
        await event.wait()
        logger.warning("killing every container of pod %s", self.pod.name)
        self.killing = True
        for scope in self.grace_scopes:
            scope.cancel()
        for stopper in self.stoppers:
            stopper.hurry()

        async def kill(runner: _Runner) -> None:
            assert runner.cid is not None
            try:
                await self.backend.kill_container(runner.cid)
            except ObjectNotFoundError:
                pass
            except AsyncpodError as exc:
                logger.error("killing %s/%s: %s", self.pod.name, runner.name, exc)

        async with anyio.create_task_group() as tg:
            pool = Pool(tg)
            for runner in self.ordered:
                if runner.cid is not None and runner.stop_state < 2:
                    pool.submit(kill, runner)
            pool.close()

    async def _sweep(self) -> None:
        """Remove anything of this run a cancelled create left behind."""
        try:
            leftovers = await self.backend.list_objects({LABEL_RUN: self.run_id})
        except AsyncpodError as exc:
            logger.error("could not list leftovers of pod %s: %s", self.pod.name, exc)
            return
        if leftovers:
            logger.debug("removing leftovers of pod %s: %s", self.pod.name, leftovers)
            await self._quietly(self.backend.remove_objects(leftovers), "leftovers")

    async def _quietly(self, call: Awaitable[None], what: str) -> None:
        try:
            await call
        except AsyncpodError as exc:
            logger.error("tearing down pod %s: could not remove %s: %s", self.pod.name, what, exc)


async def _gather(calls: Iterable[Callable[[], Awaitable[Any]]]) -> None:
    """Run *calls* concurrently; re-raise the first asyncpod error, cancelling the rest.

    They are functions, not coroutines, so that one cancelled before it ran leaves no
    never-awaited coroutine behind.
    """
    failure: list[BaseException] = []

    async def one(call: Callable[[], Awaitable[Any]], scope: anyio.CancelScope) -> None:
        try:
            await call()
        except AsyncpodError as exc:
            if not failure:
                failure.append(exc)
            scope.cancel()

    async with anyio.create_task_group() as tg:
        for call in calls:
            tg.start_soon(one, call, tg.cancel_scope)
    if failure:
        raise failure[0]


class _Stopper:
    """Stops a group of containers in teardown order, and in a teardown removes them.

    Every running container's preStop hook starts at once; a container's stop signal is
    sent once its hook is done and every container of the group it must stop after
    (its ``stop_after``) has stopped. Independent containers stop in parallel, as jobs of
    one pool; only the hooks get tasks of their own.
    """

    def __init__(
        self, supervisor: _Supervisor, runners: list[_Runner], *, remove: bool, deadline: float
    ) -> None:
        self.sup = supervisor
        self.runners = runners
        self.remove = remove
        #: when the grace period of these stops runs out
        self.deadline = deadline
        self.members = {r.name for r in runners}
        self.pending = len(runners)
        self.done = anyio.Event()
        self.pool: Pool | None = None

    async def run(self) -> None:
        sup = self.sup
        if not self.runners:
            return
        # A container that has stopped already (exited for good, or retired) owes its
        # successors nothing; the others let them go on once stopped.
        for runner in self.runners:
            runner.owes = not runner.has_stopped
            runner.stop_submitted = False
        members, runners = self.members, sup.runners
        for runner in self.runners:
            runner.blockers = sum(
                1 for name in runner.step.stop_after if name in members and runners[name].owes
            )
        async with anyio.create_task_group() as tg:
            self.pool = Pool(tg)
            sup.stoppers.add(self)
            try:
                for runner in self.runners:
                    runner.hook_pending = runner.has_pre_stop()
                    if runner.hook_pending:
                        tg.start_soon(self._pre_stop, runner)
                    else:
                        self._ready(runner)
                await self.done.wait()
            finally:
                sup.stoppers.discard(self)
            tg.cancel_scope.cancel()

    def hurry(self) -> None:
        """Killing: stop every container now, whatever the order (hooks are cancelled)."""
        for runner in self.runners:
            self._ready(runner)

    def _ready(self, runner: _Runner) -> None:
        if runner.stop_submitted or runner.hook_pending:
            return
        if runner.blockers == 0 or self.sup.killing:
            runner.stop_submitted = True
            assert self.pool is not None
            self.pool.submit(self._stop, runner)

    async def _pre_stop(self, runner: _Runner) -> None:
        sup = self.sup
        with anyio.CancelScope() as graceful:
            sup.grace_scopes.add(graceful)
            try:
                if not sup.killing:
                    await runner.pre_stop(self.deadline)
            finally:
                sup.grace_scopes.discard(graceful)
        runner.hook_pending = False
        self._ready(runner)

    async def _stop(self, runner: _Runner) -> None:
        await runner.stop(self.deadline)
        if runner.owes:
            runner.owes = False
            for successor in self.sup.stop_before.get(runner.name, ()):
                if successor.name in self.members:
                    successor.blockers -= 1
                    self._ready(successor)
        if self.remove:
            await runner.remove()
        self.pending -= 1
        if self.pending == 0:
            self.done.set()


#: the first state of every container: shared, as frozen values may be
_POD_INITIALIZING = Waiting("PodInitializing")
_CONTAINER_CREATING = Waiting("ContainerCreating")


class _Runner:
    """One container's state and lifecycle: start, probes, restarts, stop.

    Its methods run as pool jobs (create, start, stop, remove), from the exit watcher
    (:meth:`on_exit`), or in a task of its own while it has something to wait for (its
    *activity*: hooks and probes, a back-off, reading its last logs).
    """

    __slots__ = (
        "activity", "activity_ended", "backoff", "blockers", "cid", "completed", "container",
        "ever_ready", "ever_started", "final", "hook_pending", "kind", "last_state", "log_tail",
        "name", "owes", "ready", "removed", "restart_count", "retired", "run_started_at",
        "start_pending", "started", "starting", "state", "step", "stop_state",
        "stop_submitted", "sup", "unmet",
    )  # fmt: skip

    def __init__(self, supervisor: _Supervisor, step: PlanStep) -> None:
        self.sup = supervisor
        self.step = step
        self.name = step.name
        self.kind = step.kind
        self.container = step.container
        self.cid: str | None = None
        self.state: ContainerState = (
            _POD_INITIALIZING
            if step.kind is StepKind.APP and supervisor.pod.init_containers
            else _CONTAINER_CREATING
        )
        self.last_state: Terminated | None = None
        self.ready = False
        self.started = False
        self.ever_started = False
        self.ever_ready = False
        self.completed = False  # exited 0 at least once
        self.final = False  # terminated and will not run again
        #: a sidecar stopped because every app container exited: it is not restarted
        self.retired = False
        self.removed = False
        #: the container may have been started by a start that was cancelled
        self.starting = False
        #: a start job is under way
        self.start_pending = False
        self.restart_count = 0
        self.backoff = 0.0  # the next back-off delay
        self.run_started_at = 0.0
        #: start edges that do not hold yet
        self.unmet = len(step.after)
        #: the task the container has while it waits for something (see the class doc)
        self.activity: anyio.CancelScope | None = None
        self.activity_ended: anyio.Event | None = None
        #: teardown progress: 0 not begun, 1 stopping, 2 stopped (successors may go on)
        self.stop_state = 0
        # A stopper's bookkeeping: containers it waits for, a preStop hook under way,
        # the stop submitted, successors to release once stopped.
        self.blockers = 0
        self.hook_pending = False
        self.stop_submitted = False
        self.owes = False
        self.log_tail: tuple[str, ...] = ()

    # Bookkeeping

    def notify(self) -> None:
        self.sup.notify()

    def emit(self, reason: EventReason, message: str = "", exit_code: int | None = None) -> None:
        self.sup.emit(
            reason, self.name, message, exit_code=exit_code, restart_count=self.restart_count
        )

    def snapshot(self) -> ContainerStatus:
        return ContainerStatus(
            name=self.name,
            kind=self.kind,
            image=self.container.image,
            state=self.state,
            last_state=self.last_state,
            ready=self.ready,
            started=self.started,
            restart_count=self.restart_count,
            container_id=self.cid,
        )

    def satisfies(self, condition: Condition) -> bool:
        if condition is Condition.STARTED:
            return self.ever_started
        if condition is Condition.READY:
            return self.ever_ready
        return self.completed

    @property
    def has_stopped(self) -> bool:
        """Stopped by a teardown or retirement, or exited for good on its own."""
        return self.stop_state == 2 or (self.final and not isinstance(self.state, Running))

    def restarts_after(self, exit_code: int) -> bool:
        """Whether the container is started again after exiting with *exit_code*.

        Native sidecars always are; otherwise the first matching restart rule (KEP-5307)
        says restart; without one, the container's restart policy, else the pod's, decides
        (``Always`` means ``OnFailure`` for a regular init container).
        """
        if self.retired:  # a sidecar stopped because the app containers are done
            return False
        if self.kind is StepKind.SIDECAR:
            return True
        container = self.container
        if any(rule.exit_codes.matches(exit_code) for rule in container.restart_policy_rules):
            return True
        policy = container.restart_policy or self.sup.pod.restart_policy
        if self.kind is StepKind.INIT and policy is RestartPolicy.ALWAYS:
            policy = RestartPolicy.ON_FAILURE
        return policy is RestartPolicy.ALWAYS or (
            policy is RestartPolicy.ON_FAILURE and exit_code != 0
        )

    # Lifecycle

    def _spawn(self, activity: Callable[..., Awaitable[None]], *args: Any) -> None:
        """Run *activity* in a task of its own, cancelled by :meth:`cancel_activity`."""
        sup = self.sup
        assert sup.runs is not None
        self.activity = scope = anyio.CancelScope()
        self.activity_ended = ended = anyio.Event()
        sup.runs.start_soon(
            self._run_activity,
            scope,
            ended,
            activity,
            args,
            name=f"asyncpod:{sup.pod.name}/{self.name}",
        )

    async def _run_activity(
        self,
        scope: anyio.CancelScope,
        ended: anyio.Event,
        activity: Callable[..., Awaitable[None]],
        args: Any,
    ) -> None:
        try:
            with scope:
                await activity(*args)
        finally:
            ended.set()
            if self.activity is scope:
                self.activity = self.activity_ended = None

    def cancel_activity(self) -> anyio.Event | None:
        """Cancel the activity; an event set once it has ended, if it has not yet."""
        ended = self.activity_ended
        if self.activity is not None:
            self.activity.cancel()
        self.activity = self.activity_ended = None
        return ended

    async def create(self) -> None:
        """Job: create the container."""
        sup = self.sup
        try:
            spec = sup.container_spec(self.container, init=self.kind is StepKind.INIT)
            self.cid = await sup.backend.create_container(spec)
        except AsyncpodError as exc:
            sup.fail(exc)
            return
        sup.by_cid[self.cid] = self
        self.emit(EventReason.CREATED)
        sup.created()

    def _satisfied(self, condition: Condition) -> None:
        """This container reached *condition*: start whoever waited only for that."""
        sup = self.sup
        for dependent, wanted in sup.dependents.get(self.name, ()):
            if wanted is condition:
                dependent.unmet -= 1
                if dependent.unmet == 0 and not dependent.final and not sup.stopping:
                    assert sup.pool is not None
                    sup.pool.submit(dependent.start)

    def _fail_dependents(self) -> None:
        """This container will not run again: so will not those that wait for it in vain."""
        sup = self.sup
        failed = deque([self])
        while failed:
            target = failed.popleft()
            for dependent, condition in sup.dependents.get(target.name, ()):
                if dependent.final or dependent.unmet == 0 or target.satisfies(condition):
                    continue
                exit_code = target.state.exit_code if isinstance(target.state, Terminated) else None
                error = DependencyFailedError(
                    target.name,
                    exit_code,
                    f"will never be {condition.value}, which {dependent.name!r} waits for",
                    target.log_tail,
                    dependent=dependent.name,
                )
                dependent.final = True
                dependent.state = Waiting("DependencyFailed", str(error))
                dependent.emit(EventReason.DEPENDENCY_FAILED, str(error))
                dependent.notify()
                sup.fail(error)
                failed.append(dependent)

    def _being_stopped(self) -> bool:
        """Stopped for good, or about to be (teardown, retirement)."""
        return self.sup.stopping or self.retired or self.stop_state != 0

    async def start(self) -> None:
        """Job: start the container; its exit comes back through :meth:`on_exit`."""
        sup = self.sup
        if self._being_stopped():
            return
        assert self.cid is not None
        self.start_pending = True
        self.starting = True  # if cancelled meanwhile, it may or may not have started
        self.run_started_at = self.sup.now()
        try:
            await sup.backend.start_container(self.cid)
        except ObjectNotFoundError:
            self.starting = False
            self._exited(137, "ContainerStatusUnknown")
            return
        except BackendError as exc:
            self.starting = False
            logger.warning("container %s/%s failed to start: %s", sup.pod.name, self.name, exc)
            self.log_tail = (str(exc),)
            self._exited(128, "StartError")
            return
        finally:
            self.start_pending = False
            sup.notify()  # a retirement may wait for this start to end
        if self._being_stopped():
            return  # retired meanwhile: the container may run, its stop will see to it
        self.starting = False
        logger.debug("container %s/%s started", sup.pod.name, self.name)
        self.state = Running(self.sup.now())
        self.emit(EventReason.STARTED)
        assert sup.exits is not None
        sup.exits.watch(self.cid)
        if self.container.has_hooks_or_probes:
            self._spawn(self._after_start)
        else:
            self._mark_started()

    def on_exit(self, exit_code: int | None) -> None:
        """The exit watcher saw the container exit (``None``: it is gone)."""
        if (
            not isinstance(self.state, Running)
            or self.stop_state
            or self.retired
            or self.sup.stopping
        ):
            return  # a stop is recording this exit
        if exit_code is None:
            self._exited(137, "ContainerStatusUnknown")
        else:
            self._exited(exit_code, None)

    def _exited(self, code: int, reason: str | None) -> None:
        """Record an exit, then restart the container, or let it be final."""
        sup = self.sup
        # Its hooks and probes end; a probe's kill may still be under way (a stop that the
        # backend finishes though cancelled): the restart waits, lest the kill hit it.
        unwinding = self.cancel_activity()
        started_at = self.run_started_at
        finished_at = self.sup.now()
        terminated = Terminated(
            exit_code=code,
            reason=reason or ("Completed" if code == 0 else "Error"),
            started_at=started_at,
            finished_at=finished_at,
        )
        self.state = terminated
        self.ready = False
        self.started = False
        self.emit(EventReason.EXITED, terminated.reason, code)
        if code == 0 and not self.completed:
            self.completed = True
            if self.kind is StepKind.INIT:
                self.ready = True
                sup.reached_up_milestone()
            self._satisfied(Condition.COMPLETED)
        self.notify()
        if sup.stopping:
            return
        if not self.restarts_after(code):
            if code != 0:
                # Read the logs before anyone can see this container as final, so that the
                # error naming it (not a dependent's) is the one bring-up reports.
                self._spawn(self._finish_with_logs, code, reason)
            else:
                self._finish(code, reason)
            return
        if finished_at - started_at >= BACKOFF_RESET:
            self.backoff = 0.0
        delay = self.backoff
        self.backoff = BACKOFF_INITIAL if delay == 0 else min(delay * 2, BACKOFF_MAX)
        self.last_state = terminated
        if delay > 0:
            self.state = Waiting(
                "CrashLoopBackOff",
                f"back-off {delay:g}s restarting failed container {self.name}",
            )
            self.notify()
            logger.info("container %s/%s: back-off %gs", sup.pod.name, self.name, delay)
            self.emit(EventReason.BACK_OFF, self.state.message)
            self._spawn(self._back_off, delay, unwinding)
        elif unwinding is not None:
            self._spawn(self._back_off, 0.0, unwinding)
        else:
            self._restart()

    async def _back_off(self, delay: float, unwinding: anyio.Event | None) -> None:
        """Restart after *delay*, and once the activity of the last run has ended."""
        if delay:
            await anyio.sleep(delay)
        if unwinding is not None:
            await unwinding.wait()
        self._restart()

    def _restart(self) -> None:
        self.restart_count += 1
        self.emit(EventReason.RESTARTING)
        assert self.sup.pool is not None
        self.sup.pool.submit(self.start)

    async def _finish_with_logs(self, code: int, reason: str | None) -> None:
        await self._collect_log_tail()
        self._finish(code, reason)

    def _finish(self, code: int, reason: str | None) -> None:
        """The container exited and will not run again."""
        sup = self.sup
        if code != 0 and self.kind is StepKind.INIT:
            sup.init_failed = True
            sup.fail(ContainerFailedError(self.name, code, "init container failed", self.log_tail))
        elif not self.ever_started:
            # It will never start, so the pod can never come up.
            why = "failed to start" if reason == "StartError" else "exited before it started"
            sup.fail(ContainerFailedError(self.name, code, why, self.log_tail))
        self.final = True
        self.notify()
        if self.kind is StepKind.APP:
            sup.app_finished()
        self._fail_dependents()

    def _mark_started(self) -> None:
        self.started = True
        if not self.ever_started:
            self.ever_started = True
            if self.kind is not StepKind.INIT:
                self.sup.reached_up_milestone()
            self._satisfied(Condition.STARTED)
        if self.container.readiness_probe is None and self.kind is not StepKind.INIT:
            self._set_ready(True)
        else:
            self.notify()

    async def _after_start(self) -> None:
        """postStart, then startup probe, then readiness and liveness probes."""
        container = self.container
        post_start = container.lifecycle.post_start if container.lifecycle is not None else None
        if post_start is not None and not await self._run_hook(post_start):
            logger.warning("postStart hook of %s/%s failed", self.sup.pod.name, self.name)
            self.emit(EventReason.FAILED_POST_START_HOOK, "postStart hook failed")
            await self._kill(None, "failed its postStart hook")
            return
        startup = container.startup_probe
        if startup is not None and not await self._probe_until_threshold(startup):
            await self._kill(startup, "failed its startup probe")
            return
        self._mark_started()
        async with anyio.create_task_group() as tg:
            if container.readiness_probe is not None:
                tg.start_soon(self._readiness_loop, container.readiness_probe)
            if container.liveness_probe is not None:
                tg.start_soon(self._liveness_loop, container.liveness_probe)

    def _set_ready(self, ready: bool) -> None:
        if ready != self.ready:
            self.ready = ready
            self.emit(EventReason.READY if ready else EventReason.NOT_READY)
            if ready and not self.ever_ready:
                self.ever_ready = True
                self._satisfied(Condition.READY)
            self.notify()

    async def _probe(self, probe: Probe) -> bool:
        backend, sup = self.sup.backend, self.sup
        assert self.cid is not None
        assert sup.pod_id is not None
        passed = False
        with anyio.move_on_after(probe.timeout_seconds):
            if probe.exec is not None:
                passed = await check_exec(backend, self.cid, probe.exec)
            elif probe.http_get is not None:
                passed = await check_http(backend, sup.pod_id, self.container, probe.http_get)
            elif probe.tcp_socket is not None:
                passed = await check_tcp(backend, sup.pod_id, self.container, probe.tcp_socket)
        if not passed:
            kind = self._probe_kind(probe)
            logger.info("%s probe of %s/%s failed", kind, self.sup.pod.name, self.name)
            self.emit(EventReason.UNHEALTHY, f"{kind.capitalize()} probe failed")
        return passed

    def _probe_kind(self, probe: Probe) -> str:
        container = self.container
        if probe is container.startup_probe:
            return "startup"
        return "readiness" if probe is container.readiness_probe else "liveness"

    async def _probe_until_threshold(self, probe: Probe) -> bool:
        """Probe every period until one success (True) or *failure_threshold* failures."""
        await anyio.sleep(probe.initial_delay_seconds)
        failures = 0
        while True:
            if await self._probe(probe):
                return True
            failures += 1
            if failures >= probe.failure_threshold:
                return False
            await anyio.sleep(probe.period_seconds)

    async def _readiness_loop(self, probe: Probe) -> None:
        await anyio.sleep(probe.initial_delay_seconds)
        successes = failures = 0
        while True:
            if await self._probe(probe):
                successes, failures = successes + 1, 0
                if successes >= probe.success_threshold:
                    self._set_ready(True)
            else:
                successes, failures = 0, failures + 1
                if failures >= probe.failure_threshold or not self.ever_ready:
                    if self.ready:
                        logger.info("container %s/%s is not ready", self.sup.pod.name, self.name)
                    self._set_ready(False)
            await anyio.sleep(probe.period_seconds)

    async def _liveness_loop(self, probe: Probe) -> None:
        if not await self._probe_until_failed(probe):
            return
        logger.warning("liveness probe of %s/%s failed: restarting", self.sup.pod.name, self.name)
        await self._kill(probe, "failed its liveness probe")

    async def _probe_until_failed(self, probe: Probe) -> bool:
        await anyio.sleep(probe.initial_delay_seconds)
        failures = 0
        while True:
            if await self._probe(probe):
                failures = 0
            else:
                failures += 1
                if failures >= probe.failure_threshold:
                    return True
            await anyio.sleep(probe.period_seconds)

    async def _kill(self, probe: Probe | None, why: str) -> None:
        """Stop the container (it failed a probe or a hook); the run loop may restart it.

        As the kubelet does: preStop first (a failed liveness or startup probe is a
        "management event"), then the stop signal, all within the probe's grace period (or
        the pod's), never less than 2 s for the stop itself.
        """
        grace: float = self.sup.pod.termination_grace_period_seconds
        if probe is not None and probe.termination_grace_period_seconds is not None:
            grace = probe.termination_grace_period_seconds
        assert self.cid is not None
        self.emit(EventReason.KILLING, f"Container {self.name} {why}, will be stopped")
        self._set_ready(False)
        self.notify()
        deadline = self.sup.now() + grace
        pre_stop = self.container.lifecycle.pre_stop if self.container.lifecycle else None
        if pre_stop is not None and probe is not None and grace > 0:
            await self._pre_stop(pre_stop, deadline)
        # On a failure the run loop sees whatever state the container is in.
        await self._stop_container(max(deadline - self.sup.now(), MIN_GRACE))

    async def _stop_container(self, grace: float) -> int | None:
        """Stop the container; its exit code, or ``None`` if that failed (logged)."""
        assert self.cid is not None
        try:
            return await self.sup.backend.stop_container(self.cid, grace=grace)
        except AsyncpodError as exc:
            logger.error("stopping %s/%s: %s", self.sup.pod.name, self.name, exc)
            return None

    async def _run_hook(self, handler: LifecycleHandler) -> bool:
        backend, sup = self.sup.backend, self.sup
        assert self.cid is not None
        assert sup.pod_id is not None
        if handler.exec is not None:
            return await check_exec(backend, self.cid, handler.exec)
        if handler.http_get is not None:
            return await check_http(backend, sup.pod_id, self.container, handler.http_get)
        if handler.sleep is not None:
            await anyio.sleep(handler.sleep.seconds)
        return True

    def has_pre_stop(self) -> bool:
        """Whether stopping the container for good runs its preStop hook first."""
        lifecycle = self.container.lifecycle
        return (
            self.stop_state == 0
            and self.cid is not None
            and isinstance(self.state, Running)
            and lifecycle is not None
            and lifecycle.pre_stop is not None
            and self.sup.pod.termination_grace_period_seconds > 0
            and not self.sup.killing
        )

    async def pre_stop(self, deadline: float) -> None:
        """The preStop hook of a teardown or retirement, within the grace period."""
        lifecycle = self.container.lifecycle
        assert lifecycle is not None
        assert lifecycle.pre_stop is not None
        await self._pre_stop(lifecycle.pre_stop, deadline)

    async def stop(self, deadline: float) -> None:
        """Job: stop the container for good (teardown, or a sidecar retired).

        The stopper has seen to the order. A running container is stopped within what is
        left of the grace period, until *deadline*; one that is not running (waiting to
        start or to restart, or exited) has nothing to stop.
        """
        sup = self.sup
        if self.stop_state:
            return
        self.stop_state = 1
        try:
            while self.start_pending:  # a retirement met a start under way: let it end
                await sup.changed.wait()
            if self.cid is not None and isinstance(self.state, Running):
                await self._stop_running(deadline)
            elif self.cid is not None and self.starting:
                # Cancelled (or retired) while starting: it may run; stop it, quietly (no
                # status change).
                await self._stop_container(self._grace_left(deadline))
            elif isinstance(self.state, Waiting) and self.last_state is not None:
                self.state = self.last_state  # it was backing off: its last run stands
            self.ready = self.started = False
            self.final = True
        finally:
            self.stop_state = 2
            self.notify()

    def _grace_left(self, deadline: float) -> float:
        """The grace period of a stop for good: what is left until *deadline*, or none."""
        if self.sup.killing:
            return 0.0
        return max(deadline - self.sup.now(), MIN_GRACE)

    async def remove(self) -> None:
        """Job: remove the stopped container (teardown)."""
        if not self.removed:
            self.removed = True
            if self.cid is not None:
                await self.sup._quietly(self.sup.backend.remove_container(self.cid), self.name)

    async def _stop_running(self, deadline: float) -> None:
        assert self.cid is not None
        assert isinstance(self.state, Running)
        sup = self.sup
        grace = self._grace_left(deadline)
        why = "" if sup.stopping else ": the app containers exited"
        self.emit(EventReason.KILLING, f"Stopping container {self.name}{why}")
        started_at = self.state.started_at
        exit_code = await self._stop_container(grace)
        code = 137 if exit_code is None else exit_code
        reason = "Completed" if code == 0 else "Error"
        self.state = Terminated(code, reason, started_at, self.sup.now())
        self.emit(EventReason.EXITED, reason, code)

    async def _pre_stop(self, handler: LifecycleHandler, deadline: float) -> None:
        """Run the preStop hook until it ends or *deadline* (+2 s, as the kubelet grants)."""
        failure = "preStop hook failed"
        with anyio.move_on_after(max(deadline - self.sup.now(), 0) + MIN_GRACE) as scope:
            try:
                if await self._run_hook(handler):
                    return
            except AsyncpodError as exc:
                failure = f"preStop hook failed: {exc}"
        if scope.cancelled_caught:
            failure = "preStop hook did not finish within the grace period"
        logger.warning("%s/%s: %s", self.sup.pod.name, self.name, failure)
        self.emit(EventReason.FAILED_PRE_STOP_HOOK, failure)

    async def _collect_log_tail(self) -> None:
        if self.cid is None:
            return
        tail: deque[str] = deque(maxlen=LOG_TAIL)
        try:
            with anyio.move_on_after(5):
                async with self.sup.backend.logs(self.cid) as records:
                    async for record in records:
                        tail.append(record.text)
        except AsyncpodError as exc:
            logger.debug("could not read logs of %s: %s", self.name, exc)
        self.log_tail = tuple(self.log_tail) + tuple(tail) if self.log_tail else tuple(tail)
