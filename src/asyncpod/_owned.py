"""The pods asyncpod owns on a backend, found by label: listing, ordered stop, clean-up.

This is what ``asyncpod ps``, ``down`` and ``gc`` work on. It needs no manifest: every
object of a run carries the pod's name, the run id and its owner, and every container its
stop rank and the pod's grace period (see :mod:`asyncpod._supervisor`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

import anyio
import attrs

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

__all__ = ["DEFAULT_GRACE", "OwnedPod", "find_pods", "remove_pod", "stop_pod"]

logger = logging.getLogger("asyncpod")

#: Kubernetes' default terminationGracePeriodSeconds, for objects without the label
DEFAULT_GRACE = 30.0


@attrs.frozen
class OwnedPod:
    """The objects of one run of a pod, as found on the backend."""

    name: str
    run: str
    objects: tuple[OwnedObject, ...]
    #: whether the backend is a service on this machine (see :func:`owner_state`)
    local: bool = True

    @property
    def labels(self) -> Mapping[str, str]:
        """The labels of the run (those of its pod object, else of any object)."""
        for obj in self.objects:
            if obj.type == "pod":
                return obj.labels
        return self.objects[0].labels

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
        return any(o.labels.get(LABEL_MARKER) == "detached" for o in self.objects)

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
            try:
                return float(obj.labels[LABEL_GRACE])
            except (KeyError, ValueError):
                continue
        return DEFAULT_GRACE


def _rank(obj: OwnedObject) -> int:
    try:
        return int(obj.labels[LABEL_STOP_RANK])
    except (KeyError, ValueError):
        return 0


async def find_pods(
    backend: Backend, name: str | None = None, *, local: bool = True
) -> list[OwnedPod]:
    """Every run of a pod that asyncpod created on *backend* (of pod *name* only, if given),
    sorted by pod name. *local* says whether *backend* is a service on this machine."""
    objects = await backend.list_objects({LABEL_POD: name} if name else {})
    runs: dict[tuple[str, str], list[OwnedObject]] = {}
    for obj in objects:
        pod, run = obj.labels.get(LABEL_POD), obj.labels.get(LABEL_RUN)
        if pod and run:
            runs.setdefault((pod, run), []).append(obj)
    return [OwnedPod(pod, run, tuple(objs), local) for (pod, run), objs in sorted(runs.items())]


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
    objects = await backend.list_objects({LABEL_POD: pod.name, LABEL_RUN: pod.run})
    await backend.remove_objects(objects)
    return objects


def describe(objects: Iterable[OwnedObject]) -> str:
    """``2 containers, 1 pod, 1 volume`` (a detached pod's marker volume not counted)."""
    counts: dict[str, int] = {}
    for obj in objects:
        if LABEL_MARKER in obj.labels:  # not the pod's own
            continue
        counts[obj.type] = counts.get(obj.type, 0) + 1
    parts = [f"{n} {kind}{'s' if n != 1 else ''}" for kind, n in sorted(counts.items())]
    return ", ".join(parts) or "nothing"
