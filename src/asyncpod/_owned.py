"""The pods asyncpod owns on a backend, found by label: listing, ordered stop, clean-up.

This is what ``asyncpod ps``, ``down`` and ``gc`` work on. It needs no manifest: every
object of a run carries the pod's name, the run id and its owner, and every container its
stop rank and the pod's grace period (see :mod:`asyncpod._supervisor`).

What it trusts: the labels of pod and volume objects, which only their creator sets.
Containers get their image's labels too (Podman copies an image's ``LABEL`` instructions onto every
container made from it), so a container's labels never say whose it is: a container
belongs to a run only by being in the run's pod. Labels read back are untrusted input:
each is validated, and one that is not a sane value counts as absent.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

import anyio
import attrs

from . import backends
from ._exceptions import AsyncpodError, ObjectNotFoundError
from ._labels import (
    LABEL_CONTAINER,
    LABEL_DETACHED,
    LABEL_GRACE,
    LABEL_MARKER,
    LABEL_OWNER_HOST,
    LABEL_OWNER_PID,
    LABEL_POD,
    LABEL_RUN,
    LABEL_STOP_RANK,
)
from ._owner import OwnerState, owner_state
from ._supervisor import MIN_GRACE
from .backends._base import Backend, OwnedObject

__all__ = [
    "DEFAULT_GRACE",
    "OwnedPod",
    "find_pods",
    "remove_orphans",
    "remove_pod",
    "stop_pod",
]

logger = logging.getLogger("asyncpod")

#: Kubernetes' default terminationGracePeriodSeconds, for objects without the label
DEFAULT_GRACE = 30.0
#: the longest grace period a label read back is believed (an hour): a longer or
#: unreadable one (``nan``, ``inf``, ``-1``) counts as absent
MAX_GRACE = 3600.0


@attrs.frozen
class OwnedPod:
    """The objects of one run of a pod, as found on the backend."""

    name: str
    run: str
    #: (spelt through the public module, where get_type_hints looks once re-homed)
    objects: tuple[backends.OwnedObject, ...]
    #: whether the backend is local and this user's (:attr:`~asyncpod.backends.Backend.is_local`):
    #: only then can the owner be checked
    local: bool = True

    @property
    def labels(self) -> Mapping[str, str]:
        """The labels of the run: those of its pod object, else of one of its volumes
        (never a container's, which its image may have set)."""
        for kind in ("pod", "volume"):
            for obj in self.objects:
                if obj.type == kind:
                    return obj.labels
        return {}

    @property
    def containers(self) -> list[OwnedObject]:
        """The app and init containers, in stop order (stop rank, then name)."""
        return sorted(
            (o for o in self.objects if o.type == "container"),
            key=lambda o: (_rank(o), o.labels.get(LABEL_CONTAINER, o.name)),
        )

    @property
    def detached(self) -> bool:
        """Whether it was left running on purpose (``open_pod(..., detach=True)``): its
        marker volume exists."""
        return any(
            o.type == "volume" and o.labels.get(LABEL_MARKER) == "detached" for o in self.objects
        )

    @property
    def detaching(self) -> bool:
        """Whether it is meant to be left running but was not (yet): its owner is still
        bringing it up, or died doing so."""
        return self.labels.get(LABEL_DETACHED) == "true" and not self.detached

    @property
    def owner(self) -> OwnerState:
        """Whether the process that created it still runs."""
        return owner_state(self.labels, local=self.local)

    @property
    def owner_pid(self) -> str:
        return self.labels.get(LABEL_OWNER_PID, "?")

    @property
    def owner_host(self) -> str:
        return self.labels.get(LABEL_OWNER_HOST, "?")

    @property
    def orphaned(self) -> bool:
        """Whether it is garbage: not detached (a detached run that never got its marker
        is), and its owner on this machine is gone."""
        return not self.detached and self.owner is OwnerState.GONE

    @property
    def grace(self) -> float:
        """The pod's termination grace period (from its containers' labels)."""
        for obj in self.objects:
            grace = _grace(obj.labels.get(LABEL_GRACE))
            if grace is not None:
                return grace
        return DEFAULT_GRACE


def _grace(value: str | None) -> float | None:
    """A grace-period label's value in seconds, if it is a sane one (0 to :data:`MAX_GRACE`)."""
    if value is None or len(value) > 32:
        return None
    try:
        grace = float(value)
    except ValueError:
        return None
    return grace if 0.0 <= grace <= MAX_GRACE else None  # False for nan


def _rank(obj: OwnedObject) -> int:
    value = obj.labels.get(LABEL_STOP_RANK, "")
    # at most 6 digits: a pod has at most a few thousand containers
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 6 else 0


async def find_pods(
    backend: Backend, name: str | None = None, *, local: bool = True
) -> list[OwnedPod]:
    """Every run of a pod that asyncpod created on *backend* (of pod *name* only, if given),
    sorted by pod name. *local* says whether *backend* is a service on this machine."""
    objects = await backend.list_objects({LABEL_POD: name} if name else {})
    return [
        OwnedPod(pod, run, tuple(objs), local)
        for (pod, run), objs in sorted(_runs(objects).items())
    ]


def _runs(objects: Iterable[OwnedObject]) -> dict[tuple[str, str], list[OwnedObject]]:
    """*objects* by run (pod name, run id): pods and volumes by their labels, containers by
    the pod they are in. A container outside every such pod is no run's, whatever its
    labels say."""
    objects = list(objects)
    runs: dict[tuple[str, str], list[OwnedObject]] = {}
    run_of_pod: dict[str, tuple[str, str]] = {}
    for obj in objects:
        if obj.type == "container":
            continue
        pod, run = obj.labels.get(LABEL_POD), obj.labels.get(LABEL_RUN)
        if pod and run:
            runs.setdefault((pod, run), []).append(obj)
            if obj.type == "pod":
                run_of_pod[obj.id] = (pod, run)
    for obj in objects:
        if obj.type == "container" and obj.pod in run_of_pod:
            runs[run_of_pod[obj.pod]].append(obj)
    return runs


async def stop_pod(backend: Backend, pod: OwnedPod, *, grace: float | None = None) -> None:
    """Stop *pod*'s containers rank by rank (each rank in parallel) within one grace budget.

    The budget is *grace*, else the pod's own grace period; like the kubelet, each stop
    gets at least two seconds. preStop hooks are not run: they live in the manifest.
    """
    budget = pod.grace if grace is None else grace
    deadline = anyio.current_time() + budget
    ranks: dict[int, list[OwnedObject]] = {}
    for obj in pod.containers:
        ranks.setdefault(_rank(obj), []).append(obj)

    async def stop(obj: OwnedObject) -> None:
        timeout = max(deadline - anyio.current_time(), 0.0 if budget == 0 else MIN_GRACE)
        try:
            await backend.stop_container(obj.id, grace=timeout)
        except ObjectNotFoundError:
            pass
        except AsyncpodError as exc:
            logger.error("stopping %s: %s", obj.name, exc)

    for rank in sorted(ranks):
        async with anyio.create_task_group() as tg:
            for obj in ranks[rank]:
                tg.start_soon(stop, obj)


async def remove_pod(backend: Backend, pod: OwnedPod) -> list[OwnedObject]:
    """Remove every object of *pod*'s run (found again, in case some were added) and return
    them; containers first, then the pod, then volumes."""
    found = await backend.list_objects({LABEL_POD: pod.name, LABEL_RUN: pod.run})
    objects = _runs(found).get((pod.name, pod.run), [])
    await backend.remove_objects(objects)
    return objects


async def remove_orphans(backend: Backend) -> list[OwnedPod]:
    """Stop and remove every run on *backend* whose owner process is gone, as ``asyncpod
    gc`` does, and return them.

    Left alone: pods left running on purpose (``open_pod(..., detach=True)``), runs whose
    owner still runs, and runs whose owner cannot be checked from here (another machine's,
    or the objects of a backend that is not :attr:`~asyncpod.backends.Backend.is_local`).
    Each run is stopped in its stop order within its grace period (believed up to an
    hour), then removed; the runs are collected in parallel.
    """
    for what in await backend.reap():
        logger.info("stopped %s", what)
    found = await find_pods(backend, local=backend.is_local)
    garbage = [pod for pod in found if pod.orphaned]

    async def collect(pod: OwnedPod) -> None:
        await stop_pod(backend, pod)
        await remove_pod(backend, pod)
        logger.info("removed the orphaned pod %s (run %s)", pod.name, pod.run)

    async with anyio.create_task_group() as tg:
        for pod in garbage:
            tg.start_soon(collect, pod)
    return garbage


def describe(objects: Iterable[OwnedObject]) -> str:
    """``2 containers, 1 pod, 1 volume`` (a detached pod's marker volume not counted)."""
    counts: dict[str, int] = {}
    for obj in objects:
        if LABEL_MARKER in obj.labels:  # not the pod's own
            continue
        counts[obj.type] = counts.get(obj.type, 0) + 1
    parts = [f"{n} {kind}{'s' if n != 1 else ''}" for kind, n in sorted(counts.items())]
    return ", ".join(parts) or "nothing"
