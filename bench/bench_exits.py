"""How PodmanBackend watches the exits of many running containers: threads and latency.

Targets (issue #10): 200 running containers (50 pods x 4) are watched with at most 32
threads in the process, and each exit is noticed within 0.2 s (p95).

Each pod gets its own exit watcher (``Backend.watch_exits()``, as the supervisor opens one
per pod); every container runs ``sleep`` under a shell that exits with code 3 on SIGTERM.
Once all are running and watched, they are sent SIGTERM one after another, every
``--interval`` seconds. The latency of an exit is the moment the watcher reported it minus
the moment Podman says the container finished (``State.FinishedAt``, same host clock);
the thread count (``threading.active_count()``) is sampled every 10 ms from before the
first watch to the last report.

``--breakdown`` also reads the died events on a subscription of its own, and splits each
latency into: exit to event (Podman writes the event: its cleanup process), event to
delivery (the event reaches a subscriber: the file event logger's tail), and delivery to
report (the watcher).

``--poll SECONDS`` sets how often the watcher lists the watched containers that have
exited (0: never, events only); the result gives the number of list requests a second and
the CPU the service used (``--service-pid``, by default every ``podman system service``
on the socket of ``--url``, read from /proc) while the containers were watched: from the
last watch until the first kill (idle, ``--settle`` seconds), and over the kills; and the
CPU of this process while idle (the exit dir's listings, the sampler).

``--no-exit-files`` leaves conmon's exit files unread (the watcher's default for a local
service is to read them besides the events); the result counts the exits reported from a
file.

``--watcher threads`` measures the default of the contract instead (a task, and a thread
blocked in ``POST /wait``, per running container), for comparison.

Run as root next to the rootful service: ``python bench/bench_exits.py [--pods 50]
[--per-pod 4] [--interval 0.02] [--watcher events|threads] [--backend asyncio|trio]``.
Every object is named ``asyncpod-bench-exits...`` and removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import threading
import time
from typing import Any

import anyio
import anyio.abc

from asyncpod.backends import Backend, ContainerSpec, ExitWatcher, PodmanBackend, PodSpec

PREFIX = "asyncpod-bench-exits"
LABELS = {"io.asyncpod.bench": "exits"}
IMAGE = "localhost/busybox:latest"
SCRIPT = "trap 'exit 3' TERM; sleep 100000 & wait"


def _service_pids(url: str) -> list[int]:
    """Every ``podman system service`` process serving *url* (read from /proc)."""
    pids = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as file:
                argv = file.read().split(b"\0")
        except (OSError, ValueError):
            continue
        if b"service" in argv and url.encode() in argv:
            pids.append(int(entry))
    return pids


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of *pids* so far."""
    ticks = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as file:
                fields = file.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def _each(limit: int, items: list[Any], job: Any) -> list[Any]:
    """``job(item)`` for every item, *limit* at a time; the results in order."""
    results: list[Any] = [None] * len(items)
    semaphore = anyio.Semaphore(limit)

    async def one(index: int) -> None:
        async with semaphore:
            results[index] = await job(items[index])

    async with anyio.create_task_group() as tg:
        for index in range(len(items)):
            tg.start_soon(one, index)
    return results


async def _remove_leftovers(backend: PodmanBackend) -> None:
    with anyio.CancelScope(shield=True):
        pods = [o.id for o in await backend.list_objects(LABELS) if o.type == "pod"]
        await _each(8, pods, backend.remove_pod)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    async with PodmanBackend(
        args.url, exit_poll_interval=args.poll or None, exit_files=not args.no_exit_files
    ) as backend:
        await _remove_leftovers(backend)
        try:
            return await _measure(backend, args)
        finally:
            await _remove_leftovers(backend)


async def _measure(backend: PodmanBackend, args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.perf_counter()
    pods = await _each(
        8,
        list(range(args.pods)),
        lambda i: backend.create_pod(
            PodSpec(name=f"{PREFIX}-{i}", hostname=f"p{i}", labels=LABELS)
        ),
    )
    specs = [
        ContainerSpec(
            name=f"{PREFIX}-{i}-{j}",
            pod=pod,
            image=IMAGE,
            command=("sh", "-c", SCRIPT),
            labels=LABELS,
        )
        for i, pod in enumerate(pods)
        for j in range(args.per_pod)
    ]
    ids: list[str] = await _each(8, specs, backend.create_container)
    await _each(8, ids, backend.start_container)
    bring_up = time.perf_counter() - t0

    service = args.service_pid or _service_pids(args.url)
    reported: dict[str, tuple[float, int | None]] = {}
    delivered: dict[str, tuple[float, float]] = {}  # id -> (event's stamp, received)
    threads: list[int] = []
    done = anyio.Event()

    async def read_died_events() -> None:
        # Diagnostics only: a raw subscription, as the watcher's (private API).
        from asyncpod.backends._podman._events import EventStream

        stream = EventStream(backend._transport(), {"type": ["container"], "event": ["died"]})
        try:
            await stream.subscribe()
            while True:
                raw = await stream.next()
                ident = raw.get("Actor", {}).get("ID", "")
                delivered.setdefault(ident, (raw["timeNano"] / 1e9, time.time()))
        finally:
            stream.close()

    async def sample() -> None:
        while not done.is_set():
            threads.append(threading.active_count())
            await anyio.sleep(0.01)

    async def watch_pod(pod_index: int, task_status: anyio.abc.TaskStatus[None]) -> None:
        mine = ids[pod_index * args.per_pod : (pod_index + 1) * args.per_pod]
        watcher_cm = (
            backend.watch_exits()
            if args.watcher == "events"
            else Backend.watch_exits(backend)  # the contract's default: a wait per container
        )
        async with watcher_cm as watcher:
            for cid in mine:
                watcher.watch(cid)
            task_status.started()
            await _collect(watcher, len(mine), reported)

    async with anyio.create_task_group() as tg:
        tg.start_soon(sample)
        if args.breakdown:
            tg.start_soon(read_died_events)
        async with anyio.create_task_group() as watchers:
            for i in range(len(pods)):
                await watchers.start(watch_pod, i)
            await anyio.sleep(1.0)  # every watcher has looked at its containers
            lists0, cpu0, t1 = backend._exits._lists, _cpu_seconds(service), time.perf_counter()
            own0 = time.process_time()
            await anyio.sleep(args.settle)
            lists1, cpu1, t2 = backend._exits._lists, _cpu_seconds(service), time.perf_counter()
            own1 = time.process_time()
            for cid in ids:
                await backend.kill_container(cid, signal=15)
                await anyio.sleep(args.interval)
            cpu2, t3 = _cpu_seconds(service), time.perf_counter()
        done.set()
        tg.cancel_scope.cancel()

    infos = await _each(8, ids, backend.inspect_container)
    latencies = []
    parts: dict[str, list[float]] = {"exit_to_event": [], "event_to_delivery": [], "to_report": []}
    wrong_codes = 0
    for cid, info in zip(ids, infos, strict=True):
        noticed, code = reported[cid]
        assert info.finished_at is not None, info
        latencies.append(noticed - info.finished_at)
        wrong_codes += code != 3
        if cid in delivered:
            stamp, received = delivered[cid]
            parts["exit_to_event"].append(stamp - info.finished_at)
            parts["event_to_delivery"].append(received - stamp)
            parts["to_report"].append(noticed - received)
    breakdown = {
        f"{name}_p50_p95_s": [round(statistics.median(v), 3), round(percentile(v, 0.95), 3)]
        for name, v in parts.items()
        if v
    }
    return {
        "watcher": args.watcher,
        "containers": len(ids),
        "bring_up_s": round(bring_up, 1),
        "threads_max": max(threads),
        "latency_p50_s": round(statistics.median(latencies), 3),
        "latency_p95_s": round(percentile(latencies, 0.95), 3),
        "latency_max_s": round(max(latencies), 3),
        "wrong_exit_codes": wrong_codes,
        "poll_s": args.poll,
        "exit_files": not args.no_exit_files,
        "reported_from_files": backend._exits._file_exits,
        "lists_per_s": round((lists1 - lists0) / (t2 - t1), 1),
        "service_cpu_idle_pct": round(100 * (cpu1 - cpu0) / (t2 - t1)),
        "service_cpu_kills_pct": round(100 * (cpu2 - cpu1) / (t3 - t2)),
        "own_cpu_idle_pct": round(100 * (own1 - own0) / (t2 - t1)),
        "load_average": os.getloadavg()[0],
        **breakdown,
    }


async def _collect(
    watcher: ExitWatcher, count: int, reported: dict[str, tuple[float, int | None]]
) -> None:
    for _ in range(count):
        exit = await watcher.__anext__()
        reported[exit.container] = (time.time(), exit.exit_code)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="unix:///run/podman/podman.sock")
    parser.add_argument("--pods", type=int, default=50)
    parser.add_argument("--per-pod", type=int, default=4)
    parser.add_argument("--interval", type=float, default=0.02)
    parser.add_argument("--settle", type=float, default=3.0)
    parser.add_argument("--breakdown", action="store_true")
    parser.add_argument("--poll", type=float, default=0.0, help="seconds; 0: events only")
    parser.add_argument("--no-exit-files", action="store_true", help="events only")
    parser.add_argument("--service-pid", type=int, action="append")
    parser.add_argument("--watcher", choices=["events", "threads"], default="events")
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    args = parser.parse_args()
    result = anyio.run(run, args, backend=args.backend)
    result["backend"] = args.backend
    print(json.dumps(result))
    ok = result["threads_max"] <= 32 and result["latency_p95_s"] <= 0.2
    return 0 if ok and not result["wrong_exit_codes"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
