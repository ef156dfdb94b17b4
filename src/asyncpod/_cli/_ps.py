"""``asyncpod ps``: the pods asyncpod owns, as a table or as JSON."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import anyio

from .._console import format_duration
from .._exceptions import BackendError, ObjectNotFoundError
from .._labels import LABEL_CONTAINER
from .._owned import OwnedPod, find_pods
from .._owner import OwnerState, hostname
from .._status import Phase
from ..backends import Backend, ContainerInfo, OwnedObject, PortMapping, RuntimeState
from . import _backends
from ._errors import EXIT_OK
from ._signals import Stop

__all__ = ["in_start_order", "ps"]

_HEADERS = ("POD", "RUN", "OWNER", "PHASE", "AGE", "CONTAINER", "STATE", "PORTS")

Containers = list[tuple[OwnedObject, ContainerInfo | None]]


async def ps(args: argparse.Namespace, stop: Stop) -> int:
    async with _backends.podman(args.url) as backend:
        pods = await find_pods(backend, local=backend.is_local)
        found = [(pod, await in_start_order(backend, pod.containers)) for pod in pods]
        ports = {pod.run: await _ports(backend, pod) for pod in pods}
    now = time.time()
    if args.json:
        print(
            json.dumps(
                [_json(pod, containers, ports[pod.run]) for pod, containers in found], indent=2
            )
        )
        return EXIT_OK
    if not found:
        print("no pods owned by asyncpod")
        return EXIT_OK
    rows: list[tuple[str, ...]] = [_HEADERS]
    for pod, containers in found:
        started = _started(containers)
        age = format_duration(now - started) if started is not None else "-"
        first = (pod.name, pod.run, _owner_text(pod), _phase(containers).value, age)
        blank = ("",) * len(first)
        published = ", ".join(
            f"{p.host_ip or '0.0.0.0'}:{p.host_port}->{p.container_port}/{p.protocol}"
            for p in ports[pod.run]
        )
        if not containers:
            rows.append((*first, "-", "(no containers)", published))
        for i, (obj, info) in enumerate(containers):
            row = (*(first if i == 0 else blank), _name(obj), _state_text(info, now))
            rows.append((*row, published if i == 0 else ""))
    widths = [max(len(r[i]) for r in rows) for i in range(len(_HEADERS))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return EXIT_OK


async def in_start_order(backend: Backend, containers: list[OwnedObject]) -> Containers:
    """Each container with its state (``None``: removed meanwhile), in the order they
    started; those never started last."""
    infos: dict[str, ContainerInfo | None] = {}

    async def inspect(obj: OwnedObject) -> None:
        try:
            infos[obj.id] = await backend.inspect_container(obj.id)
        except ObjectNotFoundError:
            infos[obj.id] = None

    async with anyio.create_task_group() as tg:
        for obj in containers:
            tg.start_soon(inspect, obj)

    def start_order(item: tuple[int, OwnedObject]) -> tuple[bool, float, int]:
        index, obj = item
        info = infos[obj.id]
        started = info.started_at if info is not None else None
        return (started is None, started or 0.0, -index)

    ordered = sorted(enumerate(containers), key=start_order)
    return [(obj, infos[obj.id]) for _, obj in ordered]


async def _ports(backend: Backend, pod: OwnedPod) -> list[PortMapping]:
    """The ports the pod publishes, as the engine published them (none if it is gone)."""
    ids = [obj.id for obj in pod.objects if obj.type == "pod"]
    if not ids:
        return []
    try:
        return list(await backend.published_ports(ids[0]))
    except BackendError:
        return []


def _name(obj: OwnedObject) -> str:
    return str(obj.labels.get(LABEL_CONTAINER, obj.name))


def _phase(containers: Containers) -> Phase:
    """The pod's phase as its containers' states on the engine tell it: Running while one
    runs; once none does, Failed if one exited with an error, Succeeded if all exited
    with 0; else (created, not started) Pending."""
    infos = [info for _, info in containers if info is not None]
    states = {info.state for info in infos}
    if RuntimeState.RUNNING in states:
        return Phase.RUNNING
    exited = [info for info in infos if info.state is RuntimeState.EXITED]
    if any(info.exit_code for info in exited):
        return Phase.FAILED
    if exited and len(exited) == len(infos):
        return Phase.SUCCEEDED
    return Phase.PENDING


def _started(containers: Containers) -> float | None:
    """When the pod's first container started (wall clock), or ``None``."""
    times = [info.started_at for _, info in containers if info is not None and info.started_at]
    return min(times, default=None)


def _owner_text(pod: OwnedPod) -> str:
    if pod.detached:
        return "detached"
    state = pod.owner
    # An owner that cannot be checked is named with its host, even one named like this one.
    here = state is not OwnerState.UNKNOWN and pod.owner_host == hostname()
    where = "" if here else f"@{pod.owner_host}"
    text = {OwnerState.ALIVE: "", OwnerState.GONE: " (gone)", OwnerState.UNKNOWN: " (unknown)"}
    detaching = " (detaching)" if pod.detaching and state is OwnerState.ALIVE else ""
    return f"pid {pod.owner_pid}{where}{text[state]}{detaching}"


def _state_text(info: ContainerInfo | None, now: float) -> str:
    if info is None:
        return "removed"
    if info.state is RuntimeState.RUNNING:
        return "running" + (f" {format_duration(now - info.started_at)}" if info.started_at else "")
    if info.state is RuntimeState.EXITED:
        ago = f" {format_duration(now - info.finished_at)} ago" if info.finished_at else ""
        return f"exited ({info.exit_code}){ago}"
    return str(info.state.value)


def _json(pod: OwnedPod, containers: Containers, ports: list[PortMapping]) -> dict[str, Any]:
    """A pod as ``ps --json`` prints it: times are seconds since the epoch."""
    return {
        "name": pod.name,
        "run": pod.run,
        "phase": _phase(containers).value,
        "started_at": _started(containers),
        "owner": {
            "pid": pod.owner_pid,
            "host": pod.owner_host,
            "state": pod.owner.value,
            "detached": pod.detached,
        },
        "ports": [
            {
                "container_port": p.container_port,
                "host_port": p.host_port,
                "host_ip": p.host_ip,
                "protocol": p.protocol,
            }
            for p in ports
        ],
        "containers": [
            {
                "name": _name(obj),
                "id": obj.id,
                "state": info.state.value if info is not None else "removed",
                "exit_code": info.exit_code if info is not None else None,
                "started_at": info.started_at if info is not None else None,
                "finished_at": info.finished_at if info is not None else None,
            }
            for obj, info in containers
        ],
    }
