"""Control of one container of a pod left running or run by another process: ``restart``,
``kill`` (a signal) and ``stats`` (CPU and memory), through the backend by label.

A pod that a live process supervises (an ``asyncpod up`` in a terminal) is that process's
to restart: ``restart`` and ``kill`` only make the container exit, and its supervisor does
what its restart policy says, as after any exit. A pod nobody supervises (``up
--detach``, or an owner that is gone) restarts nothing by itself: ``restart`` then starts
the container again itself.
"""

from __future__ import annotations

import argparse
import json
import signal
import time
from typing import Any

import anyio

from .._exceptions import BackendError, ObjectNotFoundError
from .._labels import LABEL_GRACE, LABEL_RUN
from .._owned import OwnedPod, find_pods
from .._owner import OwnerState
from ..backends import Backend, ContainerStats, OwnedObject, RuntimeState
from . import _backends
from ._errors import EXIT_FAILED, EXIT_OK, CliError
from ._ps import in_start_order
from ._signals import Stop
from ._target import container_name, find_container, find_runs

__all__ = ["kill", "parse_signal", "restart", "stats"]

#: the clock CPU use is measured by
_now = time.monotonic

#: how long a container may take to exit after SIGKILL
KILL_WAIT = 30.0

#: the grace period of a container without the label (Kubernetes' default)
DEFAULT_GRACE = 30.0


def parse_signal(text: str) -> int:
    """A signal given by name (``TERM``, ``SIGTERM``, ``term``) or number (``15``)."""
    if text.isdigit():
        number = int(text)
        if not 0 < number < signal.NSIG:
            raise argparse.ArgumentTypeError(f"no such signal: {text}")
        return number
    name = text.upper()
    if not name.startswith("SIG"):
        name = f"SIG{name}"
    try:
        return int(signal.Signals[name])
    except KeyError:
        raise argparse.ArgumentTypeError(f"no such signal: {text}") from None


def supervisor(pod: OwnedPod) -> str | None:
    """The process that supervises *pod* (``pid N``), or ``None`` where none does: it was
    detached, or its owner is gone. An owner that cannot be checked counts as one."""
    if pod.detached or pod.owner is OwnerState.GONE:
        return None
    return f"process {pod.owner_pid}"


async def _running(backend: Backend, obj: OwnedObject, pod: OwnedPod) -> None:
    info = await backend.inspect_container(obj.id)
    if info.state is not RuntimeState.RUNNING:
        raise CliError(
            f"container {container_name(obj)} of pod {pod.name} is not running "
            f"({info.state.value})",
            EXIT_FAILED,
        )


async def restart(args: argparse.Namespace, stop: Stop) -> int:
    """Stop the container within its grace period; start it again unless a live process
    supervises the pod, whose restart policy then decides."""
    async with _backends.podman(args.url) as backend:
        pod, obj = await find_container(backend, args.name, args.container)
        name = container_name(obj)
        grace = args.grace
        if grace is None:
            try:
                grace = float(obj.labels.get(LABEL_GRACE, DEFAULT_GRACE))
            except ValueError:
                grace = DEFAULT_GRACE
        owner = supervisor(pod)
        if owner is not None:
            await _running(backend, obj, pod)
        print(f"stopping container {name} of pod {pod.name} (grace {grace:g}s) ...")
        if owner is None:
            code = await backend.stop_container(obj.id, grace=grace)
        else:
            code = await _stop_once(backend, obj, grace)
        if owner is not None:
            print(
                f"container {name} stopped (exit code {code}); pod {pod.name} is supervised by "
                f"{owner}, which restarts it as the pod's restart policy says"
            )
            return EXIT_OK
        await backend.start_container(obj.id)
        print(f"container {name} of pod {pod.name} restarted")
    return EXIT_OK


async def _stop_once(backend: Backend, obj: OwnedObject, grace: float) -> int | None:
    """Stop a container a supervisor may start again at once: its stop signal (the one
    ``stop_container`` sends), SIGKILL after *grace*, and its exit code from its "died"
    event -- the state alone may already be that of its next run, which must not be
    killed (as ``stop_container`` would)."""
    run = obj.labels.get(LABEL_RUN)
    async with backend.events({LABEL_RUN: run} if run else {}) as events:

        async def died() -> int | None:
            async for event in events:
                if event.id == obj.id and event.action == "died":
                    return event.exit_code
            raise AssertionError("unreachable: events never end")  # pragma: no cover

        await backend.kill_container(obj.id, signal=await backend.stop_signal(obj.id))
        with anyio.move_on_after(grace):
            return await died()
        await backend.kill_container(obj.id, signal=signal.SIGKILL)
        with anyio.move_on_after(KILL_WAIT):
            return await died()
    raise CliError(f"container {container_name(obj)} did not exit after SIGKILL", EXIT_FAILED)


async def kill(args: argparse.Namespace, stop: Stop) -> int:
    """Send a signal to the container's main process (it must be running)."""
    async with _backends.podman(args.url) as backend:
        pod, obj = await find_container(backend, args.name, args.container)
        await _running(backend, obj, pod)
        await backend.kill_container(obj.id, signal=args.signal)
        name = signal.Signals(args.signal).name if _named(args.signal) else str(args.signal)
        print(f"sent {name} to container {container_name(obj)} of pod {pod.name}")
    return EXIT_OK


def _named(number: int) -> bool:
    try:
        signal.Signals(number)
    except ValueError:
        return False
    return True


_HEADERS = ("POD", "CONTAINER", "CPU %", "CPU TIME", "MEM USAGE / LIMIT", "MEM %")


async def stats(args: argparse.Namespace, stop: Stop) -> int:
    """CPU (over --interval seconds) and memory of each container of the pods."""
    async with _backends.podman(args.url) as backend:
        if args.name is not None:
            pods = await find_runs(backend, args.name)
        else:
            pods = await find_pods(backend, local=backend.is_local)
        rows: list[dict[str, Any]] = []
        for pod in pods:
            for obj, info in await in_start_order(backend, pod.containers):
                state = info.state.value if info is not None else "removed"
                rows.append(
                    {
                        "pod": pod.name,
                        "container": container_name(obj),
                        "state": state,
                        "id": obj.id,
                    }
                )
        await _measure(backend, rows, args.interval)
    if args.json:
        for row in rows:
            del row["id"], row["known"]
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    if not rows:
        print("no containers owned by asyncpod" if args.name is None else "no containers")
        return EXIT_OK
    table = [_HEADERS, *(_row(row) for row in rows)]
    widths = [max(len(r[i]) for r in table) for i in range(len(_HEADERS))]
    for line in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
    return EXIT_OK


async def _sample(backend: Backend, cid: str) -> tuple[ContainerStats | None, float] | None:
    """The container's stats and when they were taken; ``None`` if it stopped or went."""
    try:
        return await backend.stats(cid), _now()
    except (ObjectNotFoundError, BackendError):
        return None  # stopped or removed meanwhile


async def _measure(backend: Backend, rows: list[dict[str, Any]], interval: float) -> None:
    """Fill each running container's row: CPU % is the CPU time used over *interval*."""
    running = [row for row in rows if row["state"] == RuntimeState.RUNNING.value]
    for row in rows:
        row.update(
            cpu_percent=None,
            cpu_seconds=None,
            memory_bytes=None,
            memory_limit_bytes=None,
            known=row in running,
        )
    first: dict[str, tuple[ContainerStats | None, float] | None] = {}
    second: dict[str, tuple[ContainerStats | None, float] | None] = {}

    async def sample_all(into: dict[str, tuple[ContainerStats | None, float] | None]) -> None:
        async def one(cid: str) -> None:
            into[cid] = await _sample(backend, cid)

        async with anyio.create_task_group() as tg:
            for row in running:
                tg.start_soon(one, row["id"])

    await sample_all(first)
    if not running:
        return
    await anyio.sleep(interval)
    await sample_all(second)
    for row in running:
        before, after = first[row["id"]], second[row["id"]]
        if before is None or after is None:
            row["known"] = False  # it stopped meanwhile
            continue
        (old, t0), (new, t1) = before, after
        if old is None or new is None:
            continue  # the backend cannot tell: n/a
        row.update(
            cpu_seconds=new.cpu_seconds,
            memory_bytes=new.memory_bytes,
            memory_limit_bytes=new.memory_limit_bytes,
        )
        if t1 > t0:
            row["cpu_percent"] = round(
                max(new.cpu_seconds - old.cpu_seconds, 0.0) / (t1 - t0) * 100, 2
            )


def _row(row: dict[str, Any]) -> tuple[str, ...]:
    if not row.pop("known"):
        dash = f"- ({row['state']})"
        return (row["pod"], row["container"], dash, "-", "-", "-")
    if row["memory_bytes"] is None:
        return (row["pod"], row["container"], "n/a", "n/a", "n/a", "n/a")
    limit = row["memory_limit_bytes"]
    usage = f"{_bytes(row['memory_bytes'])} / {_bytes(limit) if limit else 'no limit'}"
    percent = f"{row['memory_bytes'] / limit * 100:.2f}%" if limit else "-"
    cpu = "n/a" if row["cpu_percent"] is None else f"{row['cpu_percent']:.2f}%"
    return (row["pod"], row["container"], cpu, f"{row['cpu_seconds']:.2f}s", usage, percent)


def _bytes(count: int) -> str:
    """``512B``, ``1.5KiB``, ``12.3MiB``, ``2.0GiB``."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{count}B" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover
