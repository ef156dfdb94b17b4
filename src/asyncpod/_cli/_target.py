"""Finding what a command names: a pod asyncpod owns, and a container of it."""

from __future__ import annotations

from .._labels import LABEL_CONTAINER
from .._owned import OwnedPod, find_pods
from ..backends import Backend, OwnedObject
from ._errors import EXIT_NOT_FOUND, EXIT_USAGE, CliError

__all__ = ["container_name", "find_container", "find_runs"]


def container_name(obj: OwnedObject) -> str:
    """The container's name in its pod."""
    return str(obj.labels.get(LABEL_CONTAINER, obj.name))


async def find_runs(backend: Backend, name: str) -> list[OwnedPod]:
    """The runs of pod *name* on *backend* (exit code 4 if none)."""
    pods = await find_pods(backend, name, local=backend.is_local)
    if not pods:
        raise CliError(
            f"no pod named {name!r} is owned by asyncpod here",
            EXIT_NOT_FOUND,
            "'asyncpod ps' lists the pods asyncpod owns",
        )
    return pods


async def find_container(
    backend: Backend, pod: str, container: str | None
) -> tuple[OwnedPod, OwnedObject]:
    """Container *container* of pod *pod*, and the run it belongs to. Without a name, the
    pod's one container (a usage error if it has several)."""
    runs = await find_runs(backend, pod)
    found = [
        (run, obj)
        for run in runs
        for obj in run.containers
        if container is None or container_name(obj) == container
    ]
    names = sorted({container_name(obj) for run in runs for obj in run.containers})
    if container is None and len(names) > 1:
        raise CliError(
            f"pod {pod} has several containers: name one of {', '.join(names)}", EXIT_USAGE
        )
    if not found:
        raise CliError(
            f"pod {pod} has no container {container!r}"
            if container is not None
            else f"pod {pod} has no containers",
            EXIT_NOT_FOUND,
            "'asyncpod ps' lists its containers",
        )
    return found[0]
