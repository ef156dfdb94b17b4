"""The management commands of what is left on Podman: ``down``, ``logs`` and ``gc`` for
pods, ``volumes`` for the volumes of persistent volume claims."""

from __future__ import annotations

import argparse
import datetime
import signal
import sys
import time

import anyio

from .._claims import list_claims, remove_claim
from .._console import open_console
from .._exceptions import ObjectNotFoundError
from .._labels import LABEL_CONTAINER, LABEL_RUN
from .._owned import OwnedPod, describe, find_pods, remove_pod, stop_pod
from .._owner import OwnerState, signal_owner
from ..backends import Backend, LogRecord, OwnedObject
from . import _backends
from ._errors import EXIT_FAILED, EXIT_NOT_FOUND, EXIT_OK, EXIT_USAGE, CliError
from ._ps import in_start_order
from ._signals import Stop
from ._target import find_runs

__all__ = ["down", "exec_", "gc", "logs", "volumes"]

POLL = 0.25  # seconds between two looks at whether another process removed a pod


async def down(args: argparse.Namespace, stop: Stop) -> int:
    """Stop and remove each named pod, one after the other; the names of no pod are
    reported at the end (exit code 4), once the others are down."""
    missing: list[str] = []
    async with _backends.podman(args.url) as backend:
        for name in dict.fromkeys(args.names):
            pods = await find_pods(backend, name, local=backend.is_local)
            if not pods:
                missing.append(name)
            for pod in pods:
                await _down(backend, pod, args)
    if missing:
        names = ", ".join(map(repr, missing))
        raise CliError(
            f"no pod named {names} is owned by asyncpod here"
            if len(missing) == 1
            else f"no pods named {names} are owned by asyncpod here",
            EXIT_NOT_FOUND,
            "'asyncpod ps' lists the pods asyncpod owns",
        )
    return EXIT_OK


async def _down(backend: Backend, pod: OwnedPod, args: argparse.Namespace) -> None:
    state = pod.owner
    if not pod.detached and state is not OwnerState.GONE and not args.force:
        if state is OwnerState.ALIVE and await _stop_owner(backend, pod):
            return
        where = (
            # a live pid without a matching start time may be anybody's
            "on this host, which cannot be proven to be its owner (no start time)"
            if state is OwnerState.ALIVE
            else f"on {pod.owner_host}, which cannot be checked from here"
        )
        raise CliError(
            f"pod {pod.name} is run by process {pod.owner_pid} {where}",
            EXIT_FAILED,
            "stop that process, or pass --force to stop the pod from here",
        )
    print(f"stopping pod {pod.name} (run {pod.run}) ...")
    await stop_pod(backend, pod, grace=args.grace)
    removed = await remove_pod(backend, pod)
    print(f"pod {pod.name} removed: {describe(removed)}")


async def _stop_owner(backend: Backend, pod: OwnedPod) -> bool:
    """Ask the live ``asyncpod up`` running *pod* to tear it down (SIGTERM), and wait.

    Returns ``False`` without sending anything unless that process is provably the owner
    (its start time matches the label): a pid from a label may have been reused by an
    unrelated process, which must not get the signal.
    """
    pid = int(pod.owner_pid)
    try:
        sent = signal_owner(pod.labels, signal.SIGTERM, local=pod.local)
    except PermissionError:
        raise CliError(
            f"pod {pod.name} is run by process {pid}, which belongs to another user",
            EXIT_FAILED,
            f"run 'asyncpod down {pod.name}' as that user, or pass --force to stop it from here",
        ) from None
    if not sent:
        return False
    print(f"pod {pod.name} is run by process {pid}: sent it SIGTERM ...")
    with anyio.move_on_after(pod.grace + 30) as scope:
        # Another process does the work: poll until its objects are gone.
        while await backend.list_objects({LABEL_RUN: pod.run}):  # noqa: ASYNC110
            await anyio.sleep(POLL)
    if scope.cancelled_caught:
        raise CliError(
            f"process {pid} did not remove pod {pod.name} within {pod.grace + 30:g}s",
            EXIT_FAILED,
            f"'asyncpod down --force {pod.name}' stops it from here",
        )
    print(f"pod {pod.name} stopped and removed by process {pid}")
    return True


async def logs(args: argparse.Namespace, stop: Stop) -> int:
    async with _backends.podman(args.url) as backend:
        found = [c for pod in await find_runs(backend, args.name) for c in pod.containers]
        containers = [obj for obj, _ in await in_start_order(backend, found)]
        if args.container is not None:
            containers = [c for c in containers if c.labels.get(LABEL_CONTAINER) == args.container]
            if not containers:
                raise CliError(
                    f"pod {args.name} has no container {args.container!r}",
                    EXIT_NOT_FOUND,
                    "'asyncpod ps' lists its containers",
                )
        console = open_console()
        prefixed = len(containers) > 1
        names = [c.labels.get(LABEL_CONTAINER, c.name) for c in containers]
        width = max((len(n) for n in names), default=0)

        since = None if args.since is None else time.time() - args.since
        if args.previous:
            # Podman restarts nothing, and where each run began is known only to the
            # process that supervised them (RunningPod.logs(previous=True)).
            raise CliError(
                "--previous is not known for a pod left running: its log holds every run",
                EXIT_USAGE,
            )

        async def show(index: int, obj: OwnedObject, name: str) -> None:
            try:
                async with backend.logs(
                    obj.id, follow=args.follow, tail=args.tail, since=since, timestamps=True
                ) as lines:
                    async for record in lines:
                        write(index, name, record)
            except ObjectNotFoundError:
                pass  # removed meanwhile

        def write(index: int, name: str, record: LogRecord) -> None:
            text = record.text
            if args.timestamps and record.timestamp is not None:
                text = f"{_rfc3339(record.timestamp)} {text}"
            if prefixed:
                console.log(name.ljust(width), index, text)
            else:
                console.message(text)

        if args.follow:
            async with anyio.create_task_group() as tg:
                for index, (obj, name) in enumerate(zip(containers, names, strict=True)):
                    tg.start_soon(show, index, obj, name)
        else:
            for index, (obj, name) in enumerate(zip(containers, names, strict=True)):
                await show(index, obj, name)
    return EXIT_OK


def _rfc3339(seconds: float) -> str:
    moment = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


async def exec_(args: argparse.Namespace, stop: Stop) -> int:
    """Run a command in a container of a pod asyncpod owns; exit with its exit code."""
    env: dict[str, str] = {}
    for item in args.env:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CliError(f"--env wants NAME=VALUE, not {item!r}", EXIT_USAGE)
        env[key] = value
    stdin = await anyio.to_thread.run_sync(sys.stdin.buffer.read) if args.stdin else None
    async with _backends.podman(args.url) as backend:
        found = [
            c
            for pod in await find_runs(backend, args.name)
            for c in pod.containers
            if c.labels.get(LABEL_CONTAINER) == args.container
        ]
        if not found:
            raise CliError(
                f"pod {args.name} has no container {args.container!r}",
                EXIT_NOT_FOUND,
                "'asyncpod ps' lists its containers",
            )

        def output(stream: str, data: bytes) -> None:
            target = sys.stderr if stream == "stderr" else sys.stdout
            target.buffer.write(data)
            target.flush()

        result = await backend.exec(
            found[0].id,
            tuple(args.argv),
            env=env,
            working_dir=args.workdir,
            user=args.user,
            stdin=stdin,
            output=output,
        )
    return result.exit_code


async def gc(args: argparse.Namespace, stop: Stop) -> int:
    async with _backends.podman(args.url) as backend:
        # What the backend itself started for owners that died (SIGKILL) without stopping
        # it; the objects of their pods are collected below, like any dead owner's.
        reaped = [] if args.dry_run else await backend.reap()
        for what in reaped:
            print(f"stopped {what}")
        found = await find_pods(backend, local=backend.is_local)
        pods = [p for p in found if not args.names or p.name in args.names]
        garbage = [p for p in pods if p.orphaned]

        async def collect(pod: OwnedPod) -> None:
            print(f"removing pod {pod.name} (run {pod.run}; pid {pod.owner_pid} is gone) ...")
            await stop_pod(backend, pod, grace=args.grace)
            removed = await remove_pod(backend, pod)
            print(f"removed pod {pod.name} (run {pod.run}): {describe(removed)}")

        async with anyio.create_task_group() as tg:
            for pod in garbage:
                if args.dry_run:
                    print(
                        f"would remove pod {pod.name} (run {pod.run}; pid {pod.owner_pid} "
                        f"is gone): {describe(pod.objects)}"
                    )
                else:
                    tg.start_soon(collect, pod)
        detached = [p.name for p in pods if p.detached]
        unknown = [
            f"{p.name} (pid {p.owner_pid}@{p.owner_host})"
            for p in pods
            if not p.detached and p.owner is OwnerState.UNKNOWN
        ]
    if not garbage and not reaped:
        print("nothing to remove")
    if detached:
        print(f"left alone, detached on purpose: {', '.join(detached)} ('asyncpod down NAME')")
    if unknown:
        print(
            f"left alone, owner unknown (it cannot be checked from here): {', '.join(unknown)} "
            "('asyncpod down --force NAME' once it is garbage)"
        )
    return EXIT_OK


async def volumes(args: argparse.Namespace, stop: Stop) -> int:
    """``volumes`` (or ``volumes ls``): the claims whose volumes exist, one a line;
    ``volumes rm NAME...``: remove them, data and all. A claim that has no volume is
    reported at the end (exit code 4), once the others are gone."""
    async with _backends.podman(args.url) as backend:
        if args.volumes_command != "rm":
            for claim in await list_claims(backend):
                print(claim)
            return EXIT_OK
        missing = []
        for claim in dict.fromkeys(args.claims):
            if await remove_claim(backend, claim):
                print(f"removed the volume of claim {claim}")
            else:
                missing.append(claim)
    if missing:
        raise CliError(
            f"no volume of claim {', '.join(map(repr, missing))} exists here",
            EXIT_NOT_FOUND,
            "'asyncpod volumes' lists the claims whose volumes exist",
        )
    return EXIT_OK
