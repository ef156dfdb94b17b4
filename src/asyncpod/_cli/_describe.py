"""``asyncpod describe`` and ``asyncpod events``: a pod as the backend knows it, and what
happened to its objects, from the backend's event log (Podman's ``/events``).

The supervisor's own events (probe failures, back-off) live only in the process that runs
the pod (``RunningPod.diagnose()``, ``up``'s output): what these commands show is what the
engine saw -- creates, starts, exits with their codes, kills, OOM kills, removals.
"""

from __future__ import annotations

import argparse
import datetime
import json
import time
from typing import Any

import anyio

from .._console import format_duration
from .._exceptions import BackendError
from .._labels import LABEL_CONTAINER, LABEL_POD
from .._owned import OwnedPod, find_pods
from ..backends import Backend, BackendEvent, ContainerInfo, OwnedObject, RuntimeState
from . import _backends
from ._errors import EXIT_NOT_FOUND, EXIT_OK, CliError
from ._ps import _json as ps_json
from ._ps import _owner_text, _ports, in_start_order
from ._signals import Stop
from ._target import container_name, find_runs

__all__ = ["describe", "events"]

#: actions of Podman's that say nothing a user asked about
_NOISE = frozenset({"init", "cleanup", "mount", "unmount", "attach", "sync", "exec_died"})
#: the reason kubectl would show for an action
_REASONS = {
    "create": "Created",
    "start": "Started",
    "restart": "Restarted",
    "kill": "Killing",
    "stop": "Stopped",
    "oom": "OOMKilled",
    "remove": "Removed",
    "pause": "Paused",
    "unpause": "Unpaused",
    "exec": "Exec",
    "health_status": "Health",
}


def reason(event: BackendEvent) -> str:
    """``Started``, ``Completed`` (died with 0), ``Error`` (died otherwise), ``Killing``..."""
    if event.action == "died":
        return "Completed" if event.exit_code == 0 else "Error"
    return _REASONS.get(event.action, event.action.capitalize())


def detail(event: BackendEvent) -> str:
    if event.action == "died" and event.exit_code is not None:
        return f"exit code {event.exit_code}"
    return ""


def shown(event: BackendEvent) -> bool:
    return event.action not in _NOISE and LABEL_POD in event.labels


def event_json(event: BackendEvent) -> dict[str, Any]:
    return {
        "time": event.time,
        "pod": event.labels.get(LABEL_POD),
        "run": event.labels.get("io.asyncpod.run"),
        "type": event.type,
        "container": event.labels.get(LABEL_CONTAINER) if event.type == "container" else None,
        "object": _subject(event),
        "action": event.action,
        "reason": reason(event),
        "exit_code": event.exit_code,
        "id": event.id,
    }


def _subject(event: BackendEvent) -> str:
    """``app`` (a container), ``pod``, ``volume web-data``."""
    if event.type == "container":
        return str(event.labels.get(LABEL_CONTAINER, event.name))
    return "pod" if event.type == "pod" else f"{event.type} {event.name}"


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    moment = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


# describe


async def describe(args: argparse.Namespace, stop: Stop) -> int:
    async with _backends.podman(args.url) as backend:
        runs = await find_runs(backend, args.name)
        found = [await _gather(backend, run, args.events) for run in runs]
    if args.json:
        print(json.dumps(found if len(found) > 1 else found[0], indent=2))
        return EXIT_OK
    for i, pod in enumerate(found):
        if i:
            print()
        _print(pod, time.time())
    return EXIT_OK


async def _gather(backend: Backend, pod: OwnedPod, last: int) -> dict[str, Any]:
    containers = await in_start_order(backend, pod.containers)
    ports = await _ports(backend, pod)
    history = await backend.past_events({"io.asyncpod.run": pod.run})
    ip = await _ip(backend, pod)
    described = ps_json(pod, containers, ports)
    described["ip"] = ip
    described["owner"]["text"] = _owner_text(pod)
    described["containers"] = [_container(obj, info, history) for obj, info in containers]
    events = [event_json(e) for e in history if shown(e)]
    described["events"] = events[-last:] if last else []
    return described


async def _ip(backend: Backend, pod: OwnedPod) -> str | None:
    ids = [obj.id for obj in pod.objects if obj.type == "pod"]
    if not ids:
        return None
    try:
        return await backend.pod_ip(ids[0]) or None
    except BackendError:
        return None


def _container(
    obj: OwnedObject, info: ContainerInfo | None, history: list[BackendEvent]
) -> dict[str, Any]:
    starts = sum(1 for e in history if e.id == obj.id and e.action == "start")
    described: dict[str, Any] = {
        "name": container_name(obj),
        "id": obj.id,
        "image": info.image if info is not None else None,
        "state": info.state.value if info is not None else "removed",
        "reason": None,
        "exit_code": None,
        "oom_killed": False,
        "started_at": None,
        "finished_at": None,
        # every start after the first, as far as the event log goes back
        "restarts": max(starts - 1, 0),
    }
    if info is not None:
        described.update(
            exit_code=info.exit_code,
            oom_killed=info.oom_killed,
            started_at=info.started_at,
            finished_at=info.finished_at,
        )
        if info.state is RuntimeState.EXITED:
            described["reason"] = (
                "OOMKilled" if info.oom_killed else "Completed" if info.exit_code == 0 else "Error"
            )
    return described


def _print(pod: dict[str, Any], now: float) -> None:
    def ago(seconds: float | None) -> str:
        if seconds is None:
            return "-"
        return f"{_clock(seconds)} ({format_duration(now - seconds)} ago)"

    ports = ", ".join(
        f"{p['host_ip'] or '0.0.0.0'}:{p['host_port']}->{p['container_port']}/{p['protocol']}"
        for p in pod["ports"]
    )
    lines = [
        ("Name:", pod["name"]),
        ("Run:", pod["run"]),
        ("Owner:", pod["owner"]["text"]),
        ("Phase:", pod["phase"]),
        ("IP:", pod["ip"] or "-"),
        ("Started:", ago(pod["started_at"])),
        ("Ports:", ports or "-"),
    ]
    for label, value in lines:
        print(f"{label:<10}{value}")
    print("Conditions: not known here: readiness is judged by the process that supervises the pod")
    print("Containers:")
    for c in pod["containers"]:
        print(f"  {c['name']}:")
        print(f"    Image:      {c['image'] or '-'}")
        if c["state"] == "running":
            print("    State:      Running")
            print(f"      Started:  {ago(c['started_at'])}")
        elif c["state"] == "exited":
            print("    State:      Terminated")
            print(f"      Reason:   {c['reason']}")
            print(f"      Exit Code: {c['exit_code']}")
            print(f"      Started:  {ago(c['started_at'])}")
            print(f"      Finished: {ago(c['finished_at'])}")
        else:
            print(f"    State:      {c['state'].capitalize()}")
        print(f"    Restarts:   {c['restarts']}")
    if not pod["events"]:
        print("Events:   <none>")
        return
    print("Events:")
    rows = [("AGE", "OBJECT", "REASON", "DETAIL")]
    for e in pod["events"]:
        age = format_duration(now - e["time"]) if e["time"] is not None else "-"
        rows.append((age, e["object"], e["reason"], _detail_json(e)))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        print("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _detail_json(event: dict[str, Any]) -> str:
    if event["action"] == "died" and event["exit_code"] is not None:
        return f"exit code {event['exit_code']}"
    return ""


# events


async def events(args: argparse.Namespace, stop: Stop) -> int:
    labels = {LABEL_POD: args.name} if args.name is not None else {}
    since = None if args.since is None else time.time() - args.since
    async with _backends.podman(args.url) as backend:
        if not args.follow:
            past = [e for e in await backend.past_events(labels, since=since) if shown(e)]
            if not past and args.name is not None:
                await _exists(backend, args.name)
            for event in past:
                _show(event, args.json)
            return EXIT_OK
        with anyio.CancelScope() as following:
            # Ctrl-C ends following: that is how it is meant to end (exit code 0).
            stop.handler = lambda signum, count: following.cancel()
            async with backend.events(labels) as live:
                past = [e for e in await backend.past_events(labels, since=since) if shown(e)]
                seen = {(e.id, e.action, e.time) for e in past}
                for event in past:
                    _show(event, args.json)
                async for event in live:
                    if shown(event) and (event.id, event.action, event.time) not in seen:
                        _show(event, args.json)
        stop.handler = None
    return EXIT_OK


async def _exists(backend: Backend, name: str) -> None:
    if not await find_pods(backend, name, local=backend.is_local):
        raise CliError(
            f"no pod named {name!r} is owned by asyncpod here, nor are events of one known",
            EXIT_NOT_FOUND,
            "'asyncpod ps' lists the pods asyncpod owns",
        )


def _show(event: BackendEvent, as_json: bool) -> None:
    if as_json:
        print(json.dumps(event_json(event)), flush=True)
        return
    pod = event.labels.get(LABEL_POD, "?")
    text = f"{_clock(event.time)}  {pod}  {_subject(event)}  {reason(event)}"
    extra = detail(event)
    print(f"{text}  {extra}" if extra else text, flush=True)
