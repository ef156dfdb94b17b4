"""The facade of a pod run: :func:`open_pod` and the :class:`RunningPod` it yields."""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any, NoReturn

import anyio

from .._bundle import Bundle
from .._events import EventReason, PodEvent
from .._exceptions import SpecError
from .._models import Pod
from .._objects import ConfigMap, Secret
from .._plan import StartupPlan
from .._status import Phase, PodStatus
from ..backends._base import Backend, ExecResult, LogRecord
from ._config import PodContext
from ._core import Supervisor

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found,unused-ignore]

__all__ = ["RunningPod", "open_pod"]

logger = logging.getLogger("asyncpod")


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
    pod, context = _with_objects(pod, config_maps, secrets)
    async with AsyncExitStack() as stack:
        if backend is None:
            from ..backends._podman import PodmanBackend

            backend = await stack.enter_async_context(PodmanBackend())
        supervisor = Supervisor(
            pod,
            backend,
            detach=detach,
            kill_event=kill_event,
            on_event=on_event,
            context=context,
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
        pod = pod.pod
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
