"""The supervisor of one pod run: bring-up, status, retirement of sidecars, teardown.

It owns what is shared by the pod's containers: the plan's edges, the pool of backend
jobs, the exit watcher, the event log. Each container's own lifecycle is a
:class:`~._runner.Runner`, which reaches the supervisor only through the methods under
"For the runners" below.
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from typing import Any

import anyio
import anyio.abc
import attrs

from .._events import EventLog, EventReason, PodEvent, pod_event
from .._exceptions import (
    AsyncpodError,
    BackoffLimitExceededError,
    DeadlineExceededError,
    ObjectNotFoundError,
    PodVanishedError,
    PortInUseError,
)
from .._hostports import bind_error, port_holder
from .._labels import (
    LABEL_CONTAINER,
    LABEL_DETACHED,
    LABEL_GRACE,
    LABEL_MARKER,
    LABEL_POD,
    LABEL_RUN,
    LABEL_STOP_RANK,
)
from .._lowlevel import bound_clock
from .._models import Condition, Pod, PullPolicy
from .._owner import owner_labels
from .._plan import StartupPlan, StepKind
from .._pool import Pool
from .._signal import Signal
from .._status import Phase, PodConditions, PodStatus, PublishedPort, compute_phase
from ..backends._base import Backend, ContainerSpec, ExitWatcher, PortMapping, VolumeSpec
from ._config import PodContext, container_env, host_ip
from ._runner import Runner
from ._spec import container_spec, needs_image_user, pod_spec, volume_specs
from ._state import Stage
from ._stopper import Stopper

__all__ = ["Supervisor"]

logger = logging.getLogger("asyncpod")


class Supervisor:
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
        context: PodContext | None = None,
        backoff_limit: int | None = None,
    ) -> None:
        self.pod = pod
        #: a Job's backoffLimit, counted as container restarts (``None``: not a Job)
        self.backoff_limit = backoff_limit
        #: the restarts reached the backoffLimit: every container is stopped for good
        self.backoff_exceeded = False
        self.on_event = on_event
        self.backend = backend
        #: anyio.current_time, bound to the running loop (it is read for every event)
        self.now = bound_clock()
        self.plan = StartupPlan.from_pod(pod)
        uid = uuid.uuid4()
        self.run_id = uid.hex[:12]
        #: what the pod's ConfigMap, Secret and downward API references resolve against
        self.context = attrs.evolve(context or PodContext(), uid=str(uid))
        #: the volumes of PersistentVolumeClaims: they outlive the run
        self.claim_volumes: set[str] = set()
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
        #: the stoppers at work (a retirement, a teardown): killing hurries them
        self._stoppers: set[Stopper] = set()
        self.pod_id: str | None = None
        #: the host ports the pod publishes, as the backend published them
        self.ports: tuple[PublishedPort, ...] = ()
        self.volume_ids: dict[str, str] = {}
        #: the ``USER`` of each image whose user runAsNonRoot or runAsGroup needs
        self.image_users: dict[str, str | None] = {}
        self.runners: dict[str, Runner] = {s.name: Runner(self, s) for s in self.plan.steps}
        # Status lists containers in spec order: init containers, then app containers.
        self.ordered = [self.runners[c.name] for c in pod.all_containers]
        #: who waits for whom to start, and who must stop before whom, both in spec order
        self._dependents: dict[str, list[tuple[Runner, Condition]]] = {}
        self.stop_before: dict[str, list[Runner]] = {}
        for runner in self.ordered:
            for edge in runner.step.after:
                self._dependents.setdefault(edge.name, []).append((runner, edge.condition))
            for name in runner.step.stop_after:
                self.stop_before.setdefault(name, []).append(runner)
        self._by_cid: dict[str, Runner] = {}
        self.changed = Signal()
        #: the teardown has begun
        self.stopping = False
        #: the teardown is done: the status is final
        self.torn_down = False
        #: stopping the sidecars of a pod whose app containers are done
        self.retiring = False
        #: ``activeDeadlineSeconds`` ran out: every container is stopped for good
        self.deadline_exceeded = False
        #: why bring-up failed
        self.failure: AsyncpodError | None = None
        #: a regular init container failed for good: the pod has failed
        self._init_failed = False
        #: the pod was removed behind asyncpod's back: it has failed
        self.vanished: PodVanishedError | None = None
        #: when the bring-up began (``activeDeadlineSeconds`` counts from then)
        self.started_at = 0.0
        self._pending_create = len(self.runners)
        # Every container reaches its "up" milestone once: an init container by completing,
        # a sidecar or an app container by starting.
        self._pending_up = len(self.runners)
        self.is_up = False
        #: set once: the pod is up, or bring-up failed
        self.settled = anyio.Event()
        #: what on_event raised during the teardown that is no Exception, raised after it
        self.interrupted: BaseException | None = None
        self.events = EventLog()
        # Set by _serve, which runs the pod's jobs and tasks until the teardown.
        self._serving = False
        self._serve_scope = anyio.CancelScope()
        self._serve_done = anyio.Event()
        self._runs: anyio.abc.TaskGroup | None = None
        self._pool: Pool | None = None
        self._exits: ExitWatcher | None = None

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
        event = (self.now(), reason, container, message, exit_code, restart_count, time.time())
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

    # For the runners

    def submit(self, job: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Run ``job(*args)`` (a backend call) on the pod's pool."""
        assert self._pool is not None
        self._pool.submit(job, *args)

    def spawn(self, func: Callable[..., Coroutine[Any, Any, Any]], *args: Any, name: str) -> None:
        """Run ``func(*args)`` in a task of its own, until the teardown."""
        assert self._runs is not None
        self._runs.start_soon(func, *args, name=f"asyncpod:{name}")

    def watch_exit(self, cid: str) -> None:
        """Report the next exit of container *cid* to its runner."""
        assert self._exits is not None
        self._exits.watch(cid)

    def adopt(self, runner: Runner, cid: str, *, replaces: str | None = None) -> None:
        """*runner*'s container is *cid* now (instead of *replaces*, which vanished)."""
        if replaces is not None:
            self._by_cid.pop(replaces, None)
        self._by_cid[cid] = runner

    def dependents_of(self, name: str) -> Sequence[tuple[Runner, Condition]]:
        """The containers waiting for container *name*, with the condition each waits for."""
        return self._dependents.get(name, ())

    def container_spec(self, runner: Runner) -> ContainerSpec:
        """What to create for *runner*'s container."""
        name = runner.name
        return container_spec(
            self.pod,
            runner.container,
            pod_id=self.pod_id or "",
            volumes=self.volumes,
            volume_ids=self.volume_ids,
            labels={
                **self.container_labels,
                LABEL_CONTAINER: name,
                LABEL_STOP_RANK: str(self.stop_ranks[name]),
            },
            init=runner.kind is StepKind.INIT,
            image_user=self.image_users.get(runner.container.image),
            ctx=self.context,
        )

    def created(self) -> None:
        """One more container of the bring-up is created."""
        self._pending_create -= 1
        if self._pending_create == 0:
            # Every container exists: start those that wait for nothing.
            for runner in self.ordered:
                if runner.unmet == 0:
                    self.submit(runner.start)

    def reached_up_milestone(self) -> None:
        self._pending_up -= 1
        if self._pending_up == 0:
            self.is_up = True
            self.settled.set()
            if self._pool is not None:
                self._pool.trim()  # the bring-up's burst is over
            logger.info("pod %s is up", self.pod.name)
            self.emit(EventReason.UP)
        self.notify()

    def fail(self, error: AsyncpodError) -> None:
        """Bring-up cannot succeed: *error* says why (nothing once the pod is up)."""
        if self.failure is None and not self.is_up:
            self.failure = error
            self.settled.set()
            self.emit(EventReason.FAILED, message=str(error))
        self.notify()

    def port_in_use(self, error: PortInUseError) -> PortInUseError:
        """A host port of the pod is taken: bring-up fails once, with an error naming it
        (and who holds it, where this host can tell)."""
        if self.backend.is_local:
            error = _taken_port(self.pod, error)
        logger.info("%s", error)  # raised by bring-up: said once, there
        self.fail(error)
        return error

    def init_failed(self, error: AsyncpodError) -> None:
        """A regular init container failed for good: the pod has failed."""
        self._init_failed = True
        self.fail(error)

    async def check_pod_exists(self) -> bool:
        """Whether the pod is still there; if not, the pod has failed (it vanished)."""
        try:
            objects = await self.backend.list_objects({LABEL_RUN: self.run_id})
        except AsyncpodError as exc:
            logger.error("could not list the objects of pod %s: %s", self.pod.name, exc)
            return True  # not known to be gone
        if any(o.type == "pod" and o.id == self.pod_id for o in objects):
            return True
        if self.vanished is None:
            self.vanished = error = PodVanishedError(self.pod.name, self.pod_id or "")
            logger.error("%s", error)
            if self.is_up:
                self.emit(EventReason.FAILED, message=str(error))
            self.fail(error)
        return False

    def app_finished(self) -> None:
        """An app container exited for good; once all have, stop the sidecars (kubelet)."""
        if self.stopping or self.retiring or self.halted or self._runs is None:
            return
        if self.apps_finished() and any(r.kind is StepKind.SIDECAR for r in self.ordered):
            # As the kubelet does once every app container has terminated for good: stop
            # the sidecars like a teardown would (preStop hooks at once, stop signals last
            # declared first, one grace period), but keep them for status and logs.
            self.retiring = True
            sidecars = [r for r in self.ordered if r.kind is StepKind.SIDECAR]
            for runner in sidecars:
                runner.cancel_activity()
            self.spawn(self._retire, sidecars, name=f"{self.pod.name} retire")

    async def remove_quietly(self, call: Awaitable[None], what: str) -> None:
        """Await the removal *call*: a failure is logged (the teardown goes on)."""
        try:
            await call
        except ObjectNotFoundError as exc:  # gone already
            logger.debug("tearing down pod %s: %s is gone: %s", self.pod.name, what, exc)
        except AsyncpodError as exc:
            logger.error("tearing down pod %s: could not remove %s: %s", self.pod.name, what, exc)

    # Status

    def apps_finished(self) -> bool:
        """Whether no app container will run again."""
        return all(r.final for r in self.ordered if r.kind is StepKind.APP)

    def runner(self, name: str) -> Runner:
        try:
            return self.runners[name]
        except KeyError:
            raise LookupError(f"pod {self.pod.name!r} has no container {name!r}") from None

    async def wait_for(self, predicate: Callable[[PodStatus], bool]) -> PodStatus:
        """The first status that satisfies *predicate* (a vanished pod raises)."""
        while True:
            status = self.status()
            if predicate(status):
                return status
            if self.vanished is not None:
                raise self.vanished
            await self.changed.wait()

    def status(self) -> PodStatus:
        containers = tuple(r.snapshot() for r in self.ordered)
        initialized = all(
            r.satisfies(Condition.COMPLETED if r.kind is StepKind.INIT else Condition.STARTED)
            for r in self.ordered
            if r.kind is not StepKind.APP
        ) or any(r.satisfies(Condition.STARTED) for r in self.ordered if r.kind is StepKind.APP)
        final = self.torn_down
        phase = compute_phase(
            containers,
            restart_policy=self.pod.restart_policy.value,
            # A pod torn down before it was up has failed (as a deleted pod's phase ends
            # Failed unless its containers all exited 0).
            failed=self._init_failed
            or self.vanished is not None
            or self.halted
            or (final and self.failure is not None),
            initialized=initialized or final,
            restarting=()
            if self.stopping
            else [
                r.name
                for r in self.ordered
                if r.kind is StepKind.APP and r.container.restart_policy and not r.final
            ],
            all_final=final or (not self.stopping and self.apps_finished()),
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
            reason="DeadlineExceeded"
            if self.deadline_exceeded
            else "BackoffLimitExceeded"
            if self.backoff_exceeded
            else None,
            ports=self.ports,
            pod_ip=self.context.pod_ip,
        )

    # Bring-up

    async def bring_up(self, tg: anyio.abc.TaskGroup) -> None:
        pod = self.pod
        self.started_at = self.now()
        logger.info("bringing up pod %s (run %s)", pod.name, self.run_id)
        images = {
            c.image: c.image_pull_policy or PullPolicy.IF_NOT_PRESENT for c in pod.all_containers
        }
        for volume in pod.volumes:
            if volume.image is not None:
                policy = volume.image.pull_policy
                images.setdefault(
                    volume.image.reference,
                    PullPolicy(policy) if policy else PullPolicy.IF_NOT_PRESENT,
                )
        # Every reference to a ConfigMap, a Secret or a key is resolved before anything is
        # created: a missing one fails the run here (SpecError).
        volumes = volume_specs(pod, self.labels, self.context)
        for container in pod.all_containers:
            _, skipped = container_env(pod, container, self.context)
            if skipped:
                logger.warning(
                    "pod %s, container %s: envFrom keys skipped, not valid variable names: %s",
                    pod.name,
                    container.name,
                    ", ".join(skipped),
                )
                self.emit(
                    EventReason.INVALID_ENV_NAMES,
                    container.name,
                    f"keys skipped, not valid environment variable names: {', '.join(skipped)}",
                )
        await _gather(functools.partial(self.backend.ensure_image, i, p) for i, p in images.items())

        async def image_user(image: str) -> None:
            self.image_users[image] = await self.backend.image_user(image)

        await _gather(
            functools.partial(image_user, image)
            for image in {c.image for c in pod.all_containers if needs_image_user(pod, c)}
        )

        async def create_pod() -> None:
            held = tuple(self.volume_ids[name] for name in held_volumes)
            spec = attrs.evolve(pod_spec(pod, self.labels), volumes=held)
            try:
                self.pod_id = await self.backend.create_pod(spec)
            except PortInUseError as exc:  # a backend that publishes ports at creation
                raise self.port_in_use(exc)  # noqa: B904 - its cause is set
            if spec.ports:
                self.ports = published(pod, await self.backend.published_ports(self.pod_id))
            if _uses_pod_ip(pod):  # its containers' environment needs it now
                await self._learn_pod_ip()

        async def create_volume(name: str, spec: VolumeSpec) -> None:
            volume_id = await self.backend.create_volume(spec)
            if spec.claim:
                self.claim_volumes.add(name)
            self.volume_ids[name] = volume_id

        # The pod first: its name is the claim on every name of the run. Two runs of one
        # pod name at once must not each win a part (one the pod, the other a
        # "<pod>-<volume>"), and both fail: the one that wins the pod name goes on, the
        # other gets ObjectExistsError having created nothing of its own to remove.
        # But for the memory emptyDirs the pod holds (their data lives as long as the pod):
        # they are created before it, one by one, the first name being the claim then.
        held_volumes = [n for n, s in volumes.items() if s.memory and not s.files]
        for name in held_volumes:
            await create_volume(name, volumes[name])
        await create_pod()
        await _gather(
            functools.partial(create_volume, n, s)
            for n, s in volumes.items()
            if n not in held_volumes
        )
        await tg.start(self._serve, name=f"asyncpod:{pod.name}")
        # Every container is created before anything starts (init containers must exist
        # before anything in the pod runs); then each starts once its edges hold.
        for runner in self.ordered:
            self.submit(runner.create)
        await self.settled.wait()
        if self.failure is not None:
            raise self.failure
        if not self.context.pod_ip:  # for the status: the pod runs, its address is set
            try:
                await self._learn_pod_ip()
            except AsyncpodError as exc:
                logger.debug("pod %s: its address is unknown: %s", pod.name, exc)

    async def _learn_pod_ip(self) -> None:
        """Ask the backend the pod's address (``status.podIP``); a ``hostNetwork`` pod's
        is the host's, as the kubelet reports it."""
        assert self.pod_id is not None
        ip = (  # host_ip may ask the resolver: not on the event loop
            await anyio.to_thread.run_sync(host_ip)
            if self.pod.host_network
            else await self.backend.pod_ip(self.pod_id)
        )
        self.context = attrs.evolve(self.context, pod_ip=ip)

    async def _serve(self, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        """Run the pod's jobs and tasks, and hand each exit to its runner, until cancelled."""
        self._serving = True
        try:
            with self._serve_scope:
                async with self.backend.watch_exits() as exits, anyio.create_task_group() as runs:
                    self._exits, self._runs, self._pool = exits, runs, Pool(runs)
                    if self.pod.active_deadline_seconds is not None:
                        runs.start_soon(self._enforce_deadline, self.pod.active_deadline_seconds)
                    task_status.started()
                    by_cid = self._by_cid
                    async for ended in exits:
                        runner = by_cid.get(ended.container)
                        if runner is not None:
                            runner.on_exit(ended.exit_code)
        finally:
            self._serve_done.set()

    async def _enforce_deadline(self, seconds: int) -> None:
        """``activeDeadlineSeconds``, counted from the start of the bring-up: once it runs
        out, as the kubelet does, the pod has failed (reason ``DeadlineExceeded``) and
        every container is stopped for good, within the grace period, not restarted."""
        await anyio.sleep_until(self.started_at + seconds)
        message = f"Pod was active on the node longer than the specified deadline ({seconds} s)"
        logger.warning("pod %s: %s", self.pod.name, message)
        self.deadline_exceeded = True
        self.emit(EventReason.DEADLINE_EXCEEDED, message=message)
        self.fail(DeadlineExceededError(self.pod.name, seconds))
        for runner in self.ordered:
            runner.cancel_activity()
        with anyio.CancelScope(shield=True):  # a teardown waits for it
            await self._stop_for_good(self.ordered, remove=False, deadline=self.grace_deadline())
        self.notify()

    @property
    def halted(self) -> bool:
        """A pod-level limit (``activeDeadlineSeconds``, a Job's ``backoffLimit``) ran
        out: the pod has failed, every container is stopped for good."""
        return self.deadline_exceeded or self.backoff_exceeded

    def restarted(self) -> None:
        """A container restarted. A Job's pod whose restarts reach its ``backoffLimit``
        has failed (the Job controller's rule for ``restartPolicy: OnFailure``: restarts
        >= backoffLimit, or any restart for 0): reason ``BackoffLimitExceeded``."""
        limit = self.backoff_limit
        if limit is None or self.halted or self.stopping or self._runs is None:
            return
        count = sum(r.restart_count for r in self.ordered)
        if count >= max(limit, 1):
            self.backoff_exceeded = True
            self._runs.start_soon(self._exceed_backoff_limit, count, limit)

    async def _exceed_backoff_limit(self, count: int, limit: int) -> None:
        message = (
            f"Job has reached the specified backoff limit ({count} restarts, backoffLimit {limit})"
        )
        logger.warning("pod %s: %s", self.pod.name, message)
        self.emit(EventReason.BACKOFF_LIMIT_EXCEEDED, message=message)
        self.fail(BackoffLimitExceededError(self.pod.name, count, limit))
        for runner in self.ordered:
            runner.cancel_activity()
        with anyio.CancelScope(shield=True):  # a teardown waits for it
            await self._stop_for_good(self.ordered, remove=False, deadline=self.grace_deadline())
        self.notify()

    async def mark_detached(self) -> None:
        """Create the volume that marks this run as left running on purpose."""
        await self.backend.create_volume(
            VolumeSpec(
                name=f"asyncpod-detached-{self.run_id}",
                labels={**self.labels, LABEL_MARKER: "detached"},
            )
        )

    # Retirement and teardown

    def grace_deadline(self) -> float:
        """When a grace period starting now runs out."""
        return self.now() + self.pod.termination_grace_period_seconds

    async def _retire(self, sidecars: list[Runner]) -> None:
        with anyio.CancelScope(shield=True):  # a teardown waits for it
            await self._stop_for_good(sidecars, remove=False, deadline=self.grace_deadline())

    async def _stop_for_good(
        self, runners: Sequence[Runner], *, remove: bool, deadline: float
    ) -> None:
        stopper = Stopper(runners, self.stop_before, remove=remove, deadline=deadline)
        self._stoppers.add(stopper)
        try:
            if self.killing:
                stopper.hurry()
            await stopper.run()
        finally:
            self._stoppers.discard(stopper)

    async def teardown(self) -> None:
        """Stop in reverse plan order within one grace budget, then remove everything."""
        self.stopping = True
        deadline = self.grace_deadline()  # a retirement under way keeps its own
        self.emit(EventReason.TERMINATING)
        self.notify()
        async with anyio.create_task_group() as tg:
            if self.kill_event is not None:
                tg.start_soon(self._kill_when_set, self.kill_event)
            if self._serving:
                # Cancel bring-up, probes and back-offs; a start under way ends first, so
                # that what it did is known (a retirement under way finishes, shielded).
                self._serve_scope.cancel()
                await self._serve_done.wait()
            await self._stop_for_good(self.ordered, remove=True, deadline=deadline)
            tg.cancel_scope.cancel()
        if self.pod_id is not None:
            await self.remove_quietly(self.backend.remove_pod(self.pod_id), "pod")
        for name, vid in self.volume_ids.items():
            if name in self.claim_volumes:
                continue  # a claim's data outlives the run
            await self.remove_quietly(self.backend.remove_volume(vid), f"volume {name}")
        await self._sweep()
        self.torn_down = True
        self.notify()
        logger.info("pod %s is torn down", self.pod.name)
        self.emit(EventReason.TORN_DOWN)
        self.events.close()

    async def _kill_when_set(self, event: anyio.Event) -> None:
        """Once *event* is set, kill every container at once; the stoppers then remove them."""
        await event.wait()
        logger.warning("killing every container of pod %s", self.pod.name)
        self.killing = True
        for stopper in self._stoppers:
            stopper.hurry()

        async def kill(runner: Runner) -> None:
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
                if runner.cid is not None and runner.stage not in (Stage.STOPPED, Stage.REMOVED):
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
            await self.remove_quietly(self.backend.remove_objects(leftovers), "leftovers")


def published(pod: Pod, mappings: Iterable[PortMapping]) -> tuple[PublishedPort, ...]:
    """*mappings* (as the backend published them) by the container that declares each."""
    declared = {
        (port.container_port, port.protocol.value): container.name
        for container in pod.all_containers
        for port in container.ports
        if port.host_port is not None
    }
    return tuple(
        PublishedPort(
            container=declared.get((m.container_port, m.protocol.upper()), ""),
            container_port=m.container_port,
            host_port=m.host_port,
            host_ip=m.host_ip,
            protocol=m.protocol.upper(),
        )
        for m in mappings
    )


def _taken_port(pod: Pod, error: PortInUseError) -> PortInUseError:
    """*error* naming the host port that is taken and its holder, found by binding each."""
    for container in pod.all_containers:
        for port in container.ports:
            if not port.host_port:
                continue
            protocol = port.protocol.value.lower()
            if port.host_port != error.port and (
                error.port is not None
                or bind_error(port.host_ip or "", port.host_port, protocol) is None
            ):
                continue
            holder = port_holder(port.host_port, protocol)
            held = f" (held by {holder})" if holder else ""
            message = (
                f"pod {pod.name!r}: host port {port.host_port}/{protocol} of container "
                f"{container.name!r} is already in use{held}"
            )
            taken = PortInUseError(message, port=port.host_port, holder=holder)
            taken.__cause__ = error
            return taken
    return error


def _uses_pod_ip(pod: Pod) -> bool:
    """Whether an env variable of *pod* reads ``status.podIP``."""
    return any(
        var.value_from is not None
        and var.value_from.field_ref is not None
        and var.value_from.field_ref.field_path.startswith("status.podIP")
        for container in pod.all_containers
        for var in container.env
    )


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
