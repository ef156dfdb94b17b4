"""One container's run: create, start, exit, restart with back-off, stop for good, remove.

The lifecycle is the state machine of :mod:`._state`; the probes and hooks of a run are in
:mod:`._health`. A runner talks to its supervisor only through the supervisor's public
methods (see :class:`~._core.Supervisor`).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import anyio

from .._events import EventReason
from .._exceptions import (
    AsyncpodError,
    BackendError,
    ContainerFailedError,
    CreateContainerConfigError,
    DependencyFailedError,
    ObjectNotFoundError,
    PortInUseError,
)
from .._logread import LogMark, last_lines, mark_now
from .._models import Condition, RestartPolicy
from .._plan import PlanStep, StepKind
from .._status import ContainerState, ContainerStatus, Running, Terminated, Waiting
from . import _health, _termination
from ._faults import engine_failure
from ._kubelet import BACKOFF_INITIAL, BACKOFF_MAX, BACKOFF_RESET, LOG_TAIL, MIN_GRACE
from ._state import FINAL, STOPPED_FOR_GOOD, Stage, check_transition

if TYPE_CHECKING:
    from ._core import Supervisor

__all__ = ["Runner"]

logger = logging.getLogger("asyncpod")

#: the first state of every container: shared, as frozen values may be
_POD_INITIALIZING = Waiting("PodInitializing")
_CONTAINER_CREATING = Waiting("ContainerCreating")
#: what a container that vanished (or could not be found to start) is reported as
_GONE = (137, "ContainerStatusUnknown")


class Runner:
    """One container's state and lifecycle.

    Its methods run as pool jobs (:meth:`create`, :meth:`start`, :meth:`stop`,
    :meth:`remove`), from the exit watcher (:meth:`on_exit`), or in a task of its own while
    it has something to wait for (its *activity*: hooks and probes, a back-off, reading its
    last logs).
    """

    __slots__ = (
        "activity", "activity_ended", "backoff", "cid", "container", "kind", "last_state",
        "log_marks", "log_tail", "name", "reached", "reading_exit", "ready", "restart_count",
        "restarting", "run_started_at", "runs", "stage", "started", "state", "step", "sup",
        "unmet",
    )  # fmt: skip

    def __init__(self, supervisor: Supervisor, step: PlanStep) -> None:
        self.sup = supervisor
        self.step = step
        self.name = step.name
        self.kind = step.kind
        self.container = step.container
        self.stage = Stage.NEW
        self.cid: str | None = None
        # What its status shows (ContainerStatus): state, last state, ready, started.
        self.state: ContainerState = (
            _POD_INITIALIZING
            if step.kind is StepKind.APP and supervisor.pod.init_containers
            else _CONTAINER_CREATING
        )
        self.last_state: Terminated | None = None
        self.ready = False
        #: the current run passed its startup probe (or has none)
        self.started = False
        #: the start conditions it has reached once (what its dependents wait for)
        self.reached: set[Condition] = set()
        self.restart_count = 0
        self.backoff = 0.0  # the next back-off delay
        self.run_started_at = 0.0
        #: start edges that do not hold yet
        self.unmet = len(step.after)
        #: the task the container has while it waits for something (see the class doc)
        self.activity: anyio.CancelScope | None = None
        self.activity_ended: anyio.Event | None = None
        self.log_tail: tuple[str, ...] = ()
        #: where the previous run and the current one begin in the container's log
        #: (``None``: at its beginning)
        self.log_marks: tuple[LogMark | None, LogMark | None] = (None, None)
        #: how many runs have been started
        self.runs = 0
        #: a restart was asked for (:meth:`restart`): the next exit restarts it at once
        self.restarting = False
        #: set while the exit of the current run is seen and its termination message read
        self.reading_exit: object | None = None

    # The state machine

    def _enter(self, stage: Stage) -> None:
        """Go to *stage*: the only place a runner's stage changes."""
        check_transition(self.name, self.stage, stage)
        self.stage = stage

    @property
    def final(self) -> bool:
        """It will not run again: exited for good, never to start, or stopped for good."""
        return self.stage in FINAL

    def _being_stopped(self) -> bool:
        """Stopped for good, or about to be: no start, no restart."""
        sup = self.sup
        return (
            sup.stopping
            or sup.halted
            or (self.kind is StepKind.SIDECAR and sup.retiring)
            or self.stage in STOPPED_FOR_GOOD
        )

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
        return condition in self.reached

    def restarts_after(self, exit_code: int) -> bool:
        """Whether the container is started again after exiting with *exit_code*.

        Native sidecars always are; otherwise the first matching restart rule (KEP-5307)
        says restart; without one, the container's restart policy, else the pod's, decides
        (``Always`` means ``OnFailure`` for a regular init container).
        """
        if self._being_stopped() or self.sup.vanished is not None:
            return False  # e.g. a sidecar stopped because the app containers are done
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

    # Activity

    def spawn(self, activity: Callable[..., Awaitable[None]], *args: Any) -> None:
        """Run *activity* in a task of its own, cancelled by :meth:`cancel_activity`."""
        self.activity = scope = anyio.CancelScope()
        self.activity_ended = ended = anyio.Event()
        self.sup.spawn(
            self._run_activity,
            scope,
            ended,
            activity,
            args,
            name=f"{self.sup.pod.name}/{self.name}",
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

    # Bring-up

    async def create(self) -> None:
        """Job: create the container."""
        sup = self.sup
        try:
            spec = sup.container_spec(self)
        except CreateContainerConfigError as exc:
            # The kubelet's CreateContainerConfigError: the container is never created.
            logger.warning("container %s/%s cannot be created: %s", sup.pod.name, self.name, exc)
            self._enter(Stage.DONE)
            self.state = Waiting("CreateContainerConfigError", exc.reason)
            self.emit(EventReason.FAILED, str(exc))
            self.notify()
            sup.fail(exc)
            return
        try:
            cid = await sup.backend.create_container(spec)
        except AsyncpodError as exc:
            sup.fail(exc)
            return
        self.cid = cid
        self._enter(Stage.CREATED)
        sup.adopt(self, cid)
        self.emit(EventReason.CREATED)
        sup.created()

    def edge_met(self) -> None:
        """One of its start edges holds now: start it once the last one does."""
        self.unmet -= 1
        if self.unmet == 0 and not self.final and not self.sup.stopping:
            self.sup.submit(self.start)

    def _satisfied(self, condition: Condition) -> None:
        """This container reached *condition*: start whoever waited only for that."""
        if condition in self.reached:
            return
        self.reached.add(condition)
        for dependent, wanted in self.sup.dependents_of(self.name):
            if wanted is condition:
                dependent.edge_met()

    def _fail_dependents(self) -> None:
        """This container will not run again: so will not those that wait for it in vain."""
        failed = deque([self])
        while failed:
            target = failed.popleft()
            for dependent, condition in self.sup.dependents_of(target.name):
                if dependent.final or dependent.unmet == 0 or target.satisfies(condition):
                    continue
                exit_code = target.state.exit_code if isinstance(target.state, Terminated) else None
                dependent.dependency_failed(
                    DependencyFailedError(
                        target.name,
                        exit_code,
                        f"will never be {condition.value}, which {dependent.name!r} waits for",
                        target.log_tail,
                        dependent=dependent.name,
                    )
                )
                failed.append(dependent)

    def dependency_failed(self, error: DependencyFailedError) -> None:
        """A container it waits for will never reach the condition: it will never start."""
        self._enter(Stage.DONE)
        self.state = Waiting("DependencyFailed", str(error))
        self.emit(EventReason.DEPENDENCY_FAILED, str(error))
        self.notify()
        self.sup.fail(error)

    # A run

    async def start(self) -> None:
        """Job: start the container; its exit comes back through :meth:`on_exit`."""
        sup = self.sup
        if self._being_stopped() or sup.vanished is not None:
            return
        assert self.cid is not None
        # Where this run's lines will begin in the log, which goes on across runs.
        mark = await mark_now(sup.backend, self.cid) if self.runs else None
        if self._being_stopped() or sup.vanished is not None:
            return
        self.log_marks = (self.log_marks[1], mark)
        self.runs += 1
        self.reading_exit = None
        self._enter(Stage.STARTING)
        self.run_started_at = sup.now()
        failure: tuple[int, str] | None = None
        try:
            failure = await self._start_container()
        finally:
            sup.notify()  # a retirement may wait for this start to end
        if failure is not None:
            self._exited(*failure)
        elif self._being_stopped():
            # Retired meanwhile: the container may run, its stop will see to it.
            self._enter(Stage.UNSURE)
        else:
            self._running()

    async def _start_container(self) -> tuple[int, str] | None:
        """Start the container, or a new one if it vanished; an exit code and reason if
        that failed. Cancelled, it leaves the container :attr:`Stage.UNSURE`."""
        sup = self.sup
        assert self.cid is not None
        done = False
        try:
            try:
                await sup.backend.start_container(self.cid)
            except ObjectNotFoundError:
                # Gone behind asyncpod's back: as the kubelet does for every restart, run a
                # new container from the same spec.
                failure = await self._recreate()
                if failure is not None:
                    done = True
                    return failure
                await sup.backend.start_container(self.cid)
        except ObjectNotFoundError:
            done = True
            return _GONE
        except PortInUseError as exc:
            # The pod's ports are the pod's: no restart of this container can free them.
            done = True
            error = sup.port_in_use(exc)
            self.log_tail = (str(error),)
            return (128, "StartError")
        except BackendError as exc:
            if engine_failure(exc):
                # Not the container's failure: no StartError, no back-off. It ends the run
                # (the container may or may not have started: UNSURE, stopped if it can be).
                logger.error("starting %s/%s: %s", sup.pod.name, self.name, exc)
                raise
            done = True
            logger.warning("container %s/%s failed to start: %s", sup.pod.name, self.name, exc)
            self.log_tail = (str(exc),)
            return (128, "StartError")
        else:
            done = True
            return None
        finally:
            if not done:  # cancelled: it may or may not have started
                self._enter(Stage.UNSURE)

    async def _recreate(self) -> tuple[int, str] | None:
        """Create the container again; an exit code and reason if that failed."""
        sup = self.sup
        logger.warning("container %s/%s vanished: creating it again", sup.pod.name, self.name)
        try:
            cid = await sup.backend.create_container(sup.container_spec(self))
        except AsyncpodError as exc:
            if engine_failure(exc):
                raise
            if await sup.check_pod_exists():
                logger.warning(
                    "container %s/%s could not be created again: %s", sup.pod.name, self.name, exc
                )
                self.log_tail = (str(exc),)
                return (128, "StartError")
            return _GONE  # the pod is gone: check_pod_exists has failed it
        old, self.cid = self.cid, cid
        self.log_marks = (None, None)  # a new log: its first run
        self.runs = 1
        sup.adopt(self, cid, replaces=old)
        self.emit(EventReason.CREATED)
        return None

    def _running(self) -> None:
        sup = self.sup
        assert self.cid is not None
        self._enter(Stage.RUNNING)
        logger.debug("container %s/%s started", sup.pod.name, self.name)
        self.state = Running(sup.now())
        self.emit(EventReason.STARTED)
        sup.watch_exit(self.cid)
        if self.container.has_hooks_or_probes:
            self.spawn(_health.after_start, self)
        else:
            self.mark_started()

    def mark_started(self) -> None:
        """The run counts as started: its postStart hook and startup probe passed."""
        self.started = True
        if Condition.STARTED not in self.reached:
            if self.kind is not StepKind.INIT:
                self.sup.reached_up_milestone()
            self._satisfied(Condition.STARTED)
        if self.container.readiness_probe is None and self.kind is not StepKind.INIT:
            self.set_ready(True)
        else:
            self.notify()

    def set_ready(self, ready: bool) -> None:
        if ready != self.ready:
            self.ready = ready
            self.emit(EventReason.READY if ready else EventReason.NOT_READY)
            if ready:
                self._satisfied(Condition.READY)
            self.notify()

    def on_exit(self, exit_code: int | None) -> None:
        """The exit watcher saw the container exit (``None``: it is gone)."""
        if self.stage is not Stage.RUNNING or self._being_stopped():
            return  # a stop is recording this exit
        if exit_code is None:
            self._exited(*_GONE)
        elif self.reading_exit is None:
            # As the kubelet does, the status shows the exit with its termination message.
            self.reading_exit = reading = object()
            name = f"{self.sup.pod.name}/{self.name} exit"
            seen_at = self.sup.now()
            self.sup.spawn(self._exit_with_message, exit_code, reading, seen_at, name=name)

    async def _exit_with_message(self, exit_code: int, reading: object, seen_at: float) -> None:
        """Record the exit seen by *reading* at *seen_at*, once its termination message is
        read."""
        assert self.cid is not None
        message = await _termination.termination_message(
            self.sup.backend, self.cid, self.container, exit_code, log_start=self.log_marks[1]
        )
        if self.reading_exit is reading:
            self.reading_exit = None
            if self.stage is Stage.RUNNING and not self._being_stopped():
                self._exited(exit_code, None, message, seen_at)

    def _exited(
        self, code: int, reason: str | None, message: str = "", seen_at: float | None = None
    ) -> None:
        """Record an exit (seen at *seen_at*, or now), then restart the container, or let
        it be final."""
        sup = self.sup
        self._enter(Stage.EXITED)
        # Its hooks and probes end; a probe's kill may still be under way (a stop that the
        # backend finishes though cancelled): the restart waits, lest the kill hit it.
        unwinding = self.cancel_activity()
        started_at = self.run_started_at
        finished_at = sup.now() if seen_at is None else seen_at
        terminated = Terminated(
            exit_code=code,
            reason=reason or ("Completed" if code == 0 else "Error"),
            started_at=started_at,
            finished_at=finished_at,
            message=message,
        )
        self.state = terminated
        self.ready = False
        self.started = False
        self.emit(EventReason.EXITED, terminated.reason, code)
        if code == 0 and Condition.COMPLETED not in self.reached:
            if self.kind is StepKind.INIT:
                self.ready = True
                sup.reached_up_milestone()
            self._satisfied(Condition.COMPLETED)
        self.notify()
        if sup.stopping:
            return
        forced, self.restarting = self.restarting, False
        if forced and not self._being_stopped() and sup.vanished is None:
            self._enter(Stage.BACKING_OFF)
            self.last_state = terminated
            self.spawn(self._back_off, 0.0, unwinding)
            return
        if not self.restarts_after(code):
            if code != 0:
                # Read the logs before anyone can see this container as final, so that the
                # error naming it (not a dependent's) is the one bring-up reports.
                self.spawn(self._finish_with_logs, code, reason)
            else:
                self._finish(code, reason)
            return
        self._enter(Stage.BACKING_OFF)
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
            self.spawn(self._back_off, delay, unwinding)
        elif unwinding is not None:
            self.spawn(self._back_off, 0.0, unwinding)
        else:
            self._restart()

    async def _back_off(self, delay: float, unwinding: anyio.Event | None) -> None:
        """Restart after *delay*, and once the activity of the last run has ended.

        A long wait first checks that the pod is still there: a pod removed behind
        asyncpod's back fails now, not once the back-off is over.
        """
        if delay:
            if await self._pod_vanished():
                assert self.last_state is not None
                self.state = self.last_state
                self._enter(Stage.DONE)
                self.notify()
                return
            await anyio.sleep(delay)
        if unwinding is not None:
            await unwinding.wait()
        self._restart()

    async def _pod_vanished(self) -> bool:
        """Whether the container is gone, and the pod with it."""
        sup = self.sup
        assert self.cid is not None
        try:
            await sup.backend.inspect_container(self.cid)
        except ObjectNotFoundError:
            return not await sup.check_pod_exists()
        except AsyncpodError as exc:
            logger.debug("could not inspect %s/%s: %s", sup.pod.name, self.name, exc)
        return False

    async def restart(self, grace: float) -> None:
        """Stop the running container within *grace* seconds and start it again at once
        (no back-off, whatever its restart policy); one backing off restarts now."""
        if self.final or self._being_stopped() or self.sup.vanished is not None:
            raise RuntimeError(f"container {self.name!r} will not run again")
        if self.stage is Stage.BACKING_OFF:
            ended = self.cancel_activity()  # the back-off's wait
            if ended is not None:
                await ended.wait()
            if not self._being_stopped() and self.stage in (Stage.BACKING_OFF,):
                self._restart()
            return
        if self.stage is not Stage.RUNNING:
            return  # starting already
        self.restarting = True
        self.emit(EventReason.KILLING, f"Stopping container {self.name}: restart asked for")
        await self.stop_container(grace)

    def _restart(self) -> None:
        self.restart_count += 1
        self.emit(EventReason.RESTARTING)
        self.sup.submit(self.start)
        self.sup.restarted()

    async def _finish_with_logs(self, code: int, reason: str | None) -> None:
        await self._collect_log_tail()
        self._finish(code, reason)

    def _finish(self, code: int, reason: str | None) -> None:
        """The container exited and will not run again."""
        sup = self.sup
        if code != 0 and self.kind is StepKind.INIT:
            sup.init_failed(
                ContainerFailedError(self.name, code, "init container failed", self.log_tail)
            )
        elif Condition.STARTED not in self.reached:
            # It will never start, so the pod can never come up.
            why = "failed to start" if reason == "StartError" else "exited before it started"
            sup.fail(ContainerFailedError(self.name, code, why, self.log_tail))
        self._enter(Stage.DONE)
        self.notify()
        if self.kind is StepKind.APP:
            sup.app_finished()
        self._fail_dependents()

    async def _collect_log_tail(self) -> None:
        if self.cid is None:
            return
        tail = await last_lines(self.sup.backend, self.cid, LOG_TAIL, start=self.log_marks[1])
        self.log_tail = tuple(self.log_tail) + tail if self.log_tail else tail

    async def stop_container(self, grace: float) -> int | None:
        """Stop the container; its exit code, or ``None`` if that failed (logged)."""
        assert self.cid is not None
        try:
            return await self.sup.backend.stop_container(self.cid, grace=grace)
        except AsyncpodError as exc:
            logger.error("stopping %s/%s: %s", self.sup.pod.name, self.name, exc)
            return None

    # Stopping for good

    def has_pre_stop(self) -> bool:
        """Whether stopping the container for good runs its preStop hook first."""
        lifecycle = self.container.lifecycle
        sup = self.sup
        return (
            self.stage is Stage.RUNNING
            and lifecycle is not None
            and lifecycle.pre_stop is not None
            and sup.pod.termination_grace_period_seconds > 0
            and not sup.killing
        )

    async def pre_stop(self, deadline: float) -> None:
        """The preStop hook of a teardown or retirement, within the grace period."""
        lifecycle = self.container.lifecycle
        assert lifecycle is not None
        assert lifecycle.pre_stop is not None
        await _health.pre_stop(self, lifecycle.pre_stop, deadline)

    async def stop(self, deadline: float) -> None:
        """Job: stop the container for good (teardown, or a sidecar retired).

        The stopper has seen to the order. A running container is stopped within what is
        left of the grace period, until *deadline*; one that is not running (waiting to
        start or to restart, or exited) has nothing to stop.
        """
        sup = self.sup
        while self.stage is Stage.STARTING:  # a retirement met a start under way: let it end
            await sup.changed.wait()
        was = self.stage
        if was in STOPPED_FOR_GOOD:
            return
        self._enter(Stage.STOPPING)
        try:
            if was is Stage.RUNNING:
                await self._stop_running(deadline)
            elif was is Stage.UNSURE:
                # Cancelled (or retired) while starting: it may run; stop it, quietly (no
                # status change).
                await self.stop_container(self.grace_left(deadline))
            elif was is Stage.BACKING_OFF and self.last_state is not None:
                self.state = self.last_state  # its last run stands
            self.ready = self.started = False
        finally:
            self._enter(Stage.STOPPED)
            self.notify()

    def grace_left(self, deadline: float) -> float:
        """The grace period of a stop for good: what is left until *deadline*, or none."""
        if self.sup.killing:
            return 0.0
        return max(deadline - self.sup.now(), MIN_GRACE)

    async def _stop_running(self, deadline: float) -> None:
        assert self.cid is not None
        assert isinstance(self.state, Running)
        sup = self.sup
        grace = self.grace_left(deadline)
        why = "" if sup.stopping else ": the app containers exited"
        self.emit(EventReason.KILLING, f"Stopping container {self.name}{why}")
        started_at = self.state.started_at
        exit_code = await self.stop_container(grace)
        code = 137 if exit_code is None else exit_code
        reason = "Completed" if code == 0 else "Error"
        finished_at = sup.now()
        message = ""
        if exit_code is not None and not sup.killing:
            # bounded tighter than after an exit of its own: a teardown waits for it
            with anyio.move_on_after(_termination.TEARDOWN_READ_LIMIT):
                message = await _termination.termination_message(
                    sup.backend, self.cid, self.container, code, log_start=self.log_marks[1]
                )
        self.state = Terminated(code, reason, started_at, finished_at, message)
        self.emit(EventReason.EXITED, reason, code)

    async def remove(self) -> None:
        """Job: remove the container, stopped for good (teardown)."""
        if self.stage is Stage.REMOVED:
            return
        self._enter(Stage.REMOVED)
        if self.cid is not None:
            await self.sup.remove_quietly(self.sup.backend.remove_container(self.cid), self.name)
