"""Bring-up and teardown of one real pod on Podman: asyncpod against the usual tools.

The pod (``bench/podman/pod.yaml``) is the seed's javaweb-2 shape plus two sidecars: an
init container copies ``/app.war`` into an emptyDir volume, a web server serves that volume
on container port 8080 (published on a host port), a log collector tails a shared log
volume and an adapter idles. Measured for each variant, from nothing to "an HTTP GET from
the host returns the war bytes" (bring-up), and from then until every object is removed
(teardown):

a  asyncpod: ``open_pod(pod, backend=PodmanBackend())``; teardown = leaving the block
b  ``podman-compose up -d`` of ``bench/podman/compose.yaml``; teardown = ``down -v``
c  ``podman kube play`` of the same pod, sidecars as ordinary containers (kube play has no
   native sidecars); teardown = ``podman kube down`` (plus removing its volumes, if left)
d  the hand-written optimum: raw libpod REST calls over the unix socket, parallel where
   Podman allows (create pod and volumes, then the containers; start the init, poll its
   state until it exited, start the rest at once); teardown = pod stop, pod rm, volume rm
e  (diagnostic, not run by default) the REST calls asyncpod makes, in its order, with no
   library in between: sidecars started one after another (Kubernetes' init order),
   stops in reverse order, each container removed once stopped, then pod and volumes
f  (diagnostic, not run by default) e with two changes suggested for PodmanBackend: an
   exit is seen by polling the state every 10 ms, not by ``POST /wait``; a stop is
   ``kill`` SIGTERM and the same polling, not ``POST /stop`` (see bench/README.md)

Run: ``python bench/bench_podman.py [--runs 5] [--variants a b c d]`` as root next to the
rootful Podman service (``--url``, default ``$ASYNCPOD_PODMAN_URL`` or the rootful socket; for
another Podman put its ``podman`` first on PATH); the podman CLI variants get ``CONTAINERS_CONF``
(``.ci/containers.conf`` unless set). Every object is named ``asyncpod-bench...`` and is
removed on exit, failure or Ctrl-C; the two small images it builds are kept (``--rmi``
removes them). Prints medians and ratios to variant d.
"""

from __future__ import annotations

import argparse
import functools
import http.client
import importlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlencode, urlparse

import anyio
import yaml

import asyncpod
from asyncpod.backends import PodmanBackend
from asyncpod.kube import load_pod

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
POD_YAML = HERE / "podman" / "pod.yaml"
COMPOSE_YAML = HERE / "podman" / "compose.yaml"

PREFIX = "asyncpod-bench"
LABEL = "io.asyncpod.bench"
APP_IMAGE = "localhost/asyncpod-bench-app:v2"
BUSYBOX_IMAGE = "localhost/asyncpod-bench-busybox:v1"
WAR = b"PK\x03\x04 asyncpod-bench stand-in war\n" + bytes(range(256)) * 256  # ~64 KiB
API = "/v4.0.0/libpod"

NAMES = {
    "a": f"{PREFIX}-asyncpod",
    "b": f"{PREFIX}-compose",
    "c": f"{PREFIX}-kube",
    "d": f"{PREFIX}-raw",
    "e": f"{PREFIX}-rawseq",
    "f": f"{PREFIX}-rawfast",
}
TITLES = {
    "a": "asyncpod open_pod",
    "b": "podman-compose up -d / down -v",
    "c": "podman kube play / kube down",
    "d": "raw REST, optimal (reference)",
    "e": "raw REST, asyncpod's calls",
    "f": "raw REST, asyncpod's order, fast",
}
TARGET_VS_OPTIMUM = 1.2
TARGET_VS_COMPOSE = 4.0


class BenchError(Exception):
    """A variant failed; the message says how."""


# The pod


@dataclass
class Ctr:
    name: str
    image: str
    command: list[str]
    mounts: list[tuple[str, str, bool]]  # (volume, mount path, read-only)
    kind: str  # "init", "sidecar" or "app"


@dataclass
class Shape:
    """The pod of pod.yaml, as the raw REST variants need it."""

    name: str
    port: int
    volumes: list[str]
    containers: list[Ctr]

    def of_kind(self, kind: str) -> list[Ctr]:
        return [c for c in self.containers if c.kind == kind]

    def volume(self, volume: str) -> str:
        return f"{self.name}-{volume}"

    def ctr(self, c: Ctr) -> str:
        return f"{self.name}-{c.name}"


def manifest(name: str, port: int) -> dict[str, Any]:
    """pod.yaml with the pod's name and the web container's host port filled in."""
    doc: dict[str, Any] = yaml.safe_load(POD_YAML.read_text())
    doc["metadata"]["name"] = name
    for c in doc["spec"]["containers"]:
        for p in c.get("ports", []):
            p["hostPort"] = port
    return doc


def kube_play_manifest(name: str, port: int) -> dict[str, Any]:
    """The same pod with its native sidecars moved to ``spec.containers``.

    Its init container is of Podman's type "always", not the default "once": with "once",
    kube play on Podman 4.3.1 mostly fails ("failed to remove once init container ...: it
    is running") after the 20 s stall described in bench/README.md.
    """
    doc = manifest(name, port)
    spec = doc["spec"]
    sidecars = [c for c in spec["initContainers"] if c.get("restartPolicy") == "Always"]
    spec["initContainers"] = [c for c in spec["initContainers"] if c not in sidecars]
    for c in sidecars:
        del c["restartPolicy"]
    spec["containers"] = sidecars + spec["containers"]
    doc["metadata"]["annotations"] = {"io.podman.annotations.init.container.type": "always"}
    # kube play names an emptyDir's volume after the manifest's volume: prefix it, as
    # asyncpod does, so that no volume of someone else is ever used or removed
    names = {v["name"]: f"{name}-{v['name']}" for v in spec["volumes"]}
    for v in spec["volumes"]:
        v["name"] = names[v["name"]]
    for c in spec["initContainers"] + spec["containers"]:
        for m in c.get("volumeMounts", []):
            m["name"] = names[m["name"]]
    return doc


def shape(name: str, port: int) -> Shape:
    spec = manifest(name, port)["spec"]
    containers = []
    for key in ("initContainers", "containers"):
        for c in spec.get(key, []):
            kind = "app"
            if key == "initContainers":
                kind = "sidecar" if c.get("restartPolicy") == "Always" else "init"
            mounts = [
                (m["name"], m["mountPath"], bool(m.get("readOnly")))
                for m in c.get("volumeMounts", [])
            ]
            containers.append(Ctr(c["name"], c["image"], list(c["command"]), mounts, kind))
    return Shape(name, port, [v["name"] for v in spec["volumes"]], containers)


def check_compose_matches() -> None:
    """compose.yaml must run the same images and commands as pod.yaml (fairness)."""
    services = yaml.safe_load(COMPOSE_YAML.read_text())["services"]
    for c in shape("x", 0).containers:
        service = services.get(c.name) or {}
        command = [part.replace("$$", "$") for part in service.get("command", [])]
        if service.get("image") != c.image or command != c.command:
            raise BenchError(f"compose.yaml's service {c.name!r} differs from pod.yaml")


# A minimal libpod REST client (variants d and e, images, clean-up)


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


class Rest:
    """libpod over a unix socket with http.client: one keep-alive connection per thread."""

    def __init__(self, path: str, timeout: float = 120.0) -> None:
        self.path = path
        self.timeout = timeout
        self.calls: list[tuple[str, float, float]] = []  # (request, start, end)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._conns: list[_UnixConnection] = []

    def _conn(self) -> _UnixConnection:
        conn: _UnixConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = _UnixConnection(self.path, self.timeout)
            self._local.conn = conn
            with self._lock:
                self._conns.append(conn)
        return conn

    def call(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None = None,
        body: Any = None,
        ok: Sequence[int] = (),
    ) -> tuple[int, Any]:
        url = API + path + ("?" + urlencode(params, doseq=True) if params else "")
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        conn = self._conn()
        start = time.perf_counter()
        for attempt in (1, 2):
            try:
                conn.request(method, url, body=data, headers=headers)
                response = conn.getresponse()
                raw = response.read()
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                conn.close()  # a stale keep-alive connection: reconnect once
                if attempt == 2:
                    raise
        self.calls.append((f"{method} {path}", start, time.perf_counter()))
        if response.status >= 400 and response.status not in ok:
            text = raw.decode(errors="replace").strip()
            raise BenchError(f"{method} {path}: HTTP {response.status}: {text[:300]}")
        text = raw.decode(errors="replace").strip()
        try:
            return response.status, json.loads(text) if text else None
        except ValueError:
            return response.status, text

    def close(self) -> None:
        with self._lock:
            for conn in self._conns:
                conn.close()


def _all(pool: ThreadPoolExecutor, calls: Sequence[Callable[[], Any]]) -> list[Any]:
    """Run *calls* in parallel; their results in order, or the first failure."""
    futures = [pool.submit(call) for call in calls]
    errors = [f.exception() for f in futures]
    for error in errors:
        if error is not None:
            raise error
    return [f.result() for f in futures]


# Variant d (and e): raw REST


def _labels(s: Shape) -> dict[str, str]:
    return {LABEL: s.name}


def _create_pod(rest: Rest, s: Shape) -> None:
    body = {
        "name": s.name,
        "hostname": s.name,
        "labels": _labels(s),
        "no_infra": False,
        "shared_namespaces": ["ipc", "net", "uts"],
        "portmappings": [{"container_port": 8080, "host_port": s.port, "protocol": "tcp"}],
    }
    rest.call("POST", "/pods/create", body=body)


def _create_volume(rest: Rest, s: Shape, volume: str) -> None:
    body = {"Name": s.volume(volume), "Driver": "local", "Label": _labels(s)}
    rest.call("POST", "/volumes/create", body=body)


def _create_container(rest: Rest, s: Shape, c: Ctr) -> str:
    body: dict[str, Any] = {
        "name": s.ctr(c),
        "pod": s.name,
        "image": c.image,
        "labels": _labels(s),
        "entrypoint": c.command,
        "command": [],
        "log_configuration": {"driver": "k8s-file"},
        "volumes": [
            {"Name": s.volume(v), "Dest": dest, "Options": ["ro" if ro else "rw"]}
            for v, dest, ro in c.mounts
        ],
    }
    if c.kind == "init":
        body["init_container_type"] = "once"
    return str(rest.call("POST", "/containers/create", body=body)[1]["Id"])


def _start(rest: Rest, cid: str) -> None:
    rest.call("POST", f"/containers/{cid}/start")


def _wait(rest: Rest, cid: str) -> int:
    """Wait for an exit as asyncpod does: ``POST /wait`` (answers ~0.25 s after the exit)."""
    params = {"condition": ["stopped", "exited"]}
    return int(rest.call("POST", f"/containers/{cid}/wait", params=params)[1])


def _state(rest: Rest, ctr: str) -> dict[str, Any]:
    """The ``State`` of a container. Inspecting one in the instant it exits can fail
    (Podman 4.3: HTTP 500 "read /proc/PID/cgroup: no such process"): then ask again."""
    for _ in range(50):
        status, data = rest.call("GET", f"/containers/{ctr}/json", ok=(500,))
        if status != 500:
            return dict(data["State"])
        if "no such process" not in str(data):
            raise BenchError(f"inspect {ctr}: {data}")
        time.sleep(0.005)
    raise BenchError(f"inspect {ctr} keeps failing: {data}")


def _poll_exit(rest: Rest, cid: str) -> int:
    """Wait for an exit by inspecting every 10 ms: Podman 4.3 reports "stopped" and the
    exit code within ~10 ms of the exit, while ``POST /wait`` answers only ~0.25 s later."""
    while True:
        state = _state(rest, cid)
        if state["Status"] in ("stopped", "exited"):
            return int(state["ExitCode"])
        time.sleep(0.01)


def raw_up(rest: Rest, pool: ThreadPoolExecutor, s: Shape) -> None:
    _all(
        pool,
        [lambda: _create_pod(rest, s)] + [_bind(_create_volume, rest, s, v) for v in s.volumes],
    )
    ids = _all(pool, [_bind(_create_container, rest, s, c) for c in s.containers])
    cid = dict(zip([c.name for c in s.containers], ids, strict=True))
    for c in s.of_kind("init"):
        _start(rest, cid[c.name])
        if (code := _poll_exit(rest, cid[c.name])) != 0:
            raise BenchError(f"init container {c.name} exited {code}")
    later = s.of_kind("sidecar") + s.of_kind("app")
    _all(pool, [_bind(_start, rest, cid[c.name]) for c in later])


def raw_down(rest: Rest, pool: ThreadPoolExecutor, s: Shape) -> None:
    # pod stop (every container at once, gracefully) then rm beats rm --force alone
    # (~0.45 s against ~0.65 s here), which stops the containers one by one
    rest.call("POST", f"/pods/{s.name}/stop")
    _, data = rest.call("DELETE", f"/pods/{s.name}", params={"force": "true"})
    if isinstance(data, dict) and data.get("Err"):
        raise BenchError(f"pod rm: {data['Err']}")
    _all(pool, [_bind(_remove_volume, rest, s.volume(v)) for v in s.volumes])


def _remove_volume(rest: Rest, volume: str) -> None:
    rest.call("DELETE", f"/volumes/{volume}", ok=(404,))


def rawseq_up(rest: Rest, pool: ThreadPoolExecutor, s: Shape, fast: bool = False) -> None:
    """The REST calls asyncpod's supervisor makes for this pod, in its order (variant e).

    With *fast* (variant f), the init container's exit is seen by polling its state
    instead of ``POST /wait`` (see :func:`_poll_exit`).
    """
    images = sorted({c.image for c in s.containers})
    _all(pool, [_bind(rest.call, "GET", f"/images/{quote(i, safe='/:')}/exists") for i in images])
    _create_pod(rest, s)
    _all(pool, [_bind(_create_volume, rest, s, v) for v in s.volumes])
    ids = _all(pool, [_bind(_create_container, rest, s, c) for c in s.containers])
    cid = dict(zip([c.name for c in s.containers], ids, strict=True))
    for c in s.of_kind("init") + s.of_kind("sidecar") + s.of_kind("app"):
        _start(rest, cid[c.name])
        if c.kind != "init":  # the runner's wait_container inspects it, concurrently
            pool.submit(rest.call, "GET", f"/containers/{cid[c.name]}/json")
        elif fast:
            if (code := _poll_exit(rest, cid[c.name])) != 0:
                raise BenchError(f"init container {c.name} exited {code}")
        else:
            rest.call("GET", f"/containers/{cid[c.name]}/json")
            if (code := _wait(rest, cid[c.name])) != 0:
                raise BenchError(f"init container {c.name} exited {code}")
            rest.call("GET", f"/containers/{cid[c.name]}/exists")


def rawseq_down(rest: Rest, pool: ThreadPoolExecutor, s: Shape, fast: bool = False) -> None:
    """asyncpod's teardown: stop the app, then the sidecars in reverse order, each runner
    removing its container once stopped; then the pod, the volumes, and a sweep (variant e).

    With *fast* (variant f), a stop is ``kill`` SIGTERM then polling the state every 10 ms
    (see :func:`_stop_fast`), and the infra container is stopped that way before pod rm.
    """

    def remove(c: Ctr) -> None:
        path = f"/containers/{s.ctr(c)}"
        rest.call("DELETE", path, params={"force": "true", "timeout": 0}, ok=(404,))

    removals = [pool.submit(remove, c) for c in s.of_kind("init")]
    for c in [*reversed(s.of_kind("app")), *reversed(s.of_kind("sidecar"))]:
        if fast:
            _stop_fast(rest, s.ctr(c))
        else:
            rest.call("POST", f"/containers/{s.ctr(c)}/stop", params={"timeout": 10})
        removals.append(pool.submit(remove, c))
    for future in removals:
        future.result()
    if fast:
        infra = rest.call("GET", f"/pods/{s.name}/json")[1]["InfraContainerID"]
        _stop_fast(rest, infra)
    rest.call("DELETE", f"/pods/{s.name}", params={"force": "true", "timeout": 0}, ok=(404,))
    for v in s.volumes:
        _remove_volume(rest, s.volume(v))
    filters = json.dumps({"label": [f"{LABEL}={s.name}"]})
    rest.call("GET", "/pods/json", params={"filters": filters})
    rest.call("GET", "/containers/json", params={"filters": filters, "all": "true"})
    rest.call("GET", "/volumes/json", params={"filters": filters})


def _stop_fast(rest: Rest, ctr: str, grace: float = 10.0) -> None:
    """Stop as ``POST /stop`` does, but notice the exit within ~10 ms: ``POST /stop`` takes
    0.1-0.3 s here even for a container that exits at once on SIGTERM."""
    rest.call("POST", f"/containers/{ctr}/kill", params={"signal": "TERM"}, ok=(409, 500))
    deadline = time.monotonic() + grace
    while _state(rest, ctr)["Status"] not in (
        "stopped",
        "exited",
        "configured",
        "created",
    ):
        if time.monotonic() > deadline:
            rest.call("POST", f"/containers/{ctr}/kill", params={"signal": "KILL"}, ok=(409, 500))
            break
        time.sleep(0.01)


def _bind(fn: Callable[..., Any], *args: Any) -> Callable[[], Any]:
    return lambda: fn(*args)


# Waiting for the web server


def wait_http(port: int, limit: float = 60.0) -> None:
    """Poll ``GET http://127.0.0.1:port/app.war`` every 10 ms until it returns the war."""
    deadline = time.monotonic() + limit
    last = "no answer"
    while True:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1.0)
        try:
            conn.request("GET", "/app.war")
            response = conn.getresponse()
            body = response.read()
            if response.status == 200 and body == WAR:
                return
            last = f"HTTP {response.status}, {len(body)} bytes"
        except (OSError, http.client.HTTPException) as exc:
            last = repr(exc)
        finally:
            conn.close()
        if time.monotonic() > deadline:
            raise BenchError(f"the web server did not serve the war within {limit} s: {last}")
        time.sleep(0.01)


# Variant a: asyncpod


class TracingBackend(PodmanBackend):
    """A PodmanBackend that records when each backend operation and HTTP request ran."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.ops: list[tuple[str, float, float]] = []
        self.requests: list[tuple[str, float, float]] = []
        self.names: dict[str, str] = {}

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return await super()._call(method, path, **kwargs)
        finally:
            self.requests.append((f"{method} {path}", start, time.perf_counter()))


def _traced(name: str) -> Callable[..., Any]:
    async def method(self: TracingBackend, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        what = getattr(args[0], "name", args[0]) if args else ""
        what = self.names.get(what, what) if isinstance(what, str) else what
        try:
            result = await getattr(PodmanBackend, name)(self, *args, **kwargs)
        finally:
            self.ops.append((f"{name}({str(what)[:40]})", start, time.perf_counter()))
        if name == "create_container":
            self.names[result] = args[0].name
        return result

    return method


for _name in (
    "image_exists",
    "create_pod",
    "create_volume",
    "create_container",
    "start_container",
    "wait_container",
    "stop_container",
    "remove_container",
    "remove_pod",
    "remove_volume",
    "list_objects",
):
    setattr(TracingBackend, _name, _traced(_name))


async def asyncpod_once(url: str, pod: asyncpod.Pod, port: int, trace: bool) -> Any:
    t0 = time.perf_counter()
    backend = TracingBackend(url) if trace else PodmanBackend(url)
    async with backend:
        async with asyncpod.open_pod(pod, backend=backend):
            await anyio.to_thread.run_sync(wait_http, port)
            t1 = time.perf_counter()
        t2 = time.perf_counter()
    return t1 - t0, t2 - t1, (backend if trace else None), t0


def print_trace(variant: str, events: list[tuple[str, float, float]], t0: float, up: float) -> None:
    print(
        f"\n{variant}: {TITLES[variant]}, last run (s): start, end, duration; web answered {up:.3f}"
    )
    for what, start, end in sorted(events, key=lambda op: op[1]):
        print(f"  {start - t0:7.3f} {end - t0:7.3f} {end - start:6.3f}  {what}")


# Variants b and c: the podman CLI


def cli_env(port: int) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("CONTAINERS_CONF", str(ROOT / ".ci" / "containers.conf"))
    env.pop("CONTAINER_HOST", None)  # the CLI works on local storage, as root
    env["ASYNCPOD_BENCH_PORT"] = str(port)
    return env


def run_cli(argv: list[str], env: dict[str, str], limit: float = 120.0) -> None:
    try:
        done = subprocess.run(
            argv, env=env, capture_output=True, timeout=limit, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"{' '.join(argv)} took more than {limit} s") from exc
    if done.returncode != 0:
        tail = (done.stdout + done.stderr).decode(errors="replace").strip()[-1500:]
        raise BenchError(f"{' '.join(argv)} exited {done.returncode}:\n{tail}")


def podman_compose() -> list[str]:
    found = shutil.which("podman-compose", path=str(Path(sys.executable).parent))
    found = found or shutil.which("podman-compose")
    if found is None:
        raise BenchError("podman-compose is not installed: pip install podman-compose")
    return [found]


def kube_volumes(rest: Rest, pod: str) -> list[str]:
    """Names of the volumes mounted by the containers of *pod* (kube play's emptyDirs)."""
    filters = json.dumps({"pod": [pod]})
    _, ctrs = rest.call("GET", "/containers/json", params={"all": "true", "filters": filters})
    names = set()
    for ctr in ctrs or []:
        _, data = rest.call("GET", f"/containers/{ctr['Id']}/json")
        names |= {m["Name"] for m in data.get("Mounts") or [] if m.get("Type") == "volume"}
    return sorted(names)


# Clean-up


def _ours(name: str) -> bool:
    return name.lstrip("/").startswith((PREFIX, f"pod_{PREFIX}"))


class Sweeper:
    """Finds and removes every object of the benchmark (by name, and kube play's volumes)."""

    def __init__(self, rest: Rest) -> None:
        self.rest = rest
        self.volumes: set[str] = set()  # anonymous volumes of kube play

    def leftovers(self) -> list[tuple[str, str]]:
        rest = self.rest
        found = [("pod", p["Name"]) for p in rest.call("GET", "/pods/json")[1] or []]
        ctrs = rest.call("GET", "/containers/json", params={"all": "true"})[1] or []
        found += [("container", (c.get("Names") or [c["Id"]])[0]) for c in ctrs]
        found += [("volume", v["Name"]) for v in rest.call("GET", "/volumes/json")[1] or []]
        found += [("network", n["name"]) for n in rest.call("GET", "/networks/json")[1] or []]
        return [(k, n) for k, n in found if _ours(n) or (k == "volume" and n in self.volumes)]

    def sweep(self) -> list[tuple[str, str]]:
        left = self.leftovers()
        paths = {"pod": "/pods/", "container": "/containers/", "volume": "/volumes/"}
        order = {"pod": 0, "container": 1, "volume": 2, "network": 3}
        for kind, name in sorted(left, key=lambda item: order[item[0]]):
            path = paths.get(kind, "/networks/") + quote(name, safe="")
            params = {"force": "true"} if kind != "network" else {}
            try:
                self.rest.call("DELETE", path, params=params, ok=(404,))
            except (BenchError, OSError) as exc:
                print(f"  ! could not remove {kind} {name}: {exc}", file=sys.stderr)
        return left


# Running the variants


@dataclass
class Result:
    up: list[float] = field(default_factory=list)
    down: list[float] = field(default_factory=list)


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        parsed = urlparse(args.url)
        if parsed.scheme != "unix":
            raise BenchError(f"--url must be a unix:// socket, not {args.url}")
        self.socket = unquote(parsed.path)
        self.rest = Rest(self.socket)
        self.pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="bench")
        self.sweeper = Sweeper(self.rest)
        self.port = args.port or pick_port()
        self.tmp = Path(tempfile.mkdtemp(prefix="asyncpod-bench-"))
        self.traces: dict[str, tuple[list[tuple[str, float, float]], float, float]] = {}

    def close(self) -> None:
        self.pool.shutdown(wait=False)
        self.rest.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # preparation

    def prepare(self, variants: Sequence[str]) -> None:
        images = importlib.import_module("podman_images")
        from podman import PodmanClient

        with PodmanClient(base_url=self.args.url) as client:
            images.ensure_test_image(client, APP_IMAGE, {"app.war": (WAR, 0o644)})
            images.ensure_test_image(client, BUSYBOX_IMAGE)
        if "b" in variants:
            check_compose_matches()
            podman_compose()
        if {"b", "c"} & set(variants):
            env = cli_env(self.port)
            for image in (APP_IMAGE, BUSYBOX_IMAGE):
                try:
                    run_cli(["podman", "image", "exists", image], env, 30)
                except BenchError as exc:
                    raise BenchError(
                        f"the podman CLI does not see {image} that the service at "
                        f"{self.args.url} holds (same user and CONTAINERS_CONF?)"
                    ) from exc
        kube = kube_play_manifest(NAMES["c"], self.port)
        (self.tmp / "kube.yaml").write_text(yaml.safe_dump(kube, sort_keys=False))

    def wait_port_free(self) -> None:
        deadline = time.monotonic() + 10
        while not port_free(self.port):
            if time.monotonic() > deadline:
                raise BenchError(f"host port {self.port} is still taken after teardown")
            time.sleep(0.05)

    # one run of one variant: (bring-up seconds, teardown seconds)

    def run(self, variant: str) -> tuple[float, float]:
        self.wait_port_free()
        up, down = getattr(self, f"_run_{variant}")()
        left = self.sweeper.sweep()
        if left:
            raise BenchError(f"variant {variant} left {left} behind after its teardown")
        return up, down

    def _run_a(self) -> tuple[float, float]:
        doc = manifest(NAMES["a"], self.port)
        pod = load_pod(yaml.safe_dump(doc))
        up, down, backend, t0 = anyio.run(
            asyncpod_once,
            self.args.url,
            pod,
            self.port,
            self.args.trace,
            backend=self.args.anyio_backend,
        )
        if backend is not None:
            requests = backend.requests
            summary = (f"({len(requests)} HTTP requests in all)", requests[0][1], requests[-1][2])
            self.traces["a"] = ([*backend.ops, summary], t0, up)
        return up, down

    def _run_b(self) -> tuple[float, float]:
        env = cli_env(self.port)
        base = [*podman_compose(), "-p", NAMES["b"], "-f", str(COMPOSE_YAML)]
        t0 = time.perf_counter()
        try:
            run_cli([*base, "up", "-d"], env)
            wait_http(self.port)
        finally:
            t1 = time.perf_counter()
            run_cli([*base, "down", "-v"], env)
        return t1 - t0, time.perf_counter() - t1

    def _run_c(self) -> tuple[float, float]:
        env = cli_env(self.port)
        path = str(self.tmp / "kube.yaml")
        t0 = time.perf_counter()
        try:
            run_cli(["podman", "kube", "play", "--quiet", path], env)
            wait_http(self.port)
        finally:
            t1 = time.perf_counter()
            volumes = kube_volumes(self.rest, NAMES["c"])  # bookkeeping, not timed
            self.sweeper.volumes |= set(volumes)
            t2 = time.perf_counter()
            run_cli(["podman", "kube", "down", path], env)
            left = [v for v in volumes if self._volume_exists(v)]
            if left:  # kube down keeps emptyDir volumes: removing them is part of teardown
                run_cli(["podman", "volume", "rm", "--force", *left], env)
        return t1 - t0, time.perf_counter() - t2

    def _volume_exists(self, volume: str) -> bool:
        status, _ = self.rest.call("GET", f"/volumes/{quote(volume, safe='')}/exists", ok=(404,))
        return status == 204

    def _run_d(self) -> tuple[float, float]:
        return self._raw(raw_up, raw_down, "d")

    def _run_e(self) -> tuple[float, float]:
        return self._raw(rawseq_up, rawseq_down, "e")

    def _run_f(self) -> tuple[float, float]:
        up = functools.partial(rawseq_up, fast=True)
        return self._raw(up, functools.partial(rawseq_down, fast=True), "f")

    def _raw(self, up: Callable[..., None], down: Callable[..., None], variant: str) -> Any:
        s = shape(NAMES[variant], self.port)
        rest = Rest(self.socket)  # fresh connections, as a new client would have
        t0 = time.perf_counter()
        try:
            up(rest, self.pool, s)
            wait_http(self.port)
        finally:
            t1 = time.perf_counter()
            down(rest, self.pool, s)
            t2 = time.perf_counter()
            rest.close()
        polls = [c for c in rest.calls if re.fullmatch(r"GET /containers/\w+/json", c[0])]
        calls = [c for c in rest.calls if c not in polls]
        if polls:  # one line for all inspections
            calls.append((f"{len(polls)} x GET /containers/ID/json", polls[0][1], polls[-1][2]))
        self.traces[variant] = (calls, t0, t1 - t0)
        return t1 - t0, t2 - t1


def pick_port() -> int:
    """A free TCP port below the ephemeral range (so no client socket takes it between runs)."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    for port in range(18080, min(low, 30000)):
        if port_free(port):
            return port
    raise BenchError("no free host port found")


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def report(results: dict[str, Result], runs: int) -> dict[str, Any]:
    med = {v: (statistics.median(r.up), statistics.median(r.down)) for v, r in results.items()}
    ref = med.get("d")
    print(f"\nmedians of {runs} runs (seconds); ratio = variant / d (the hand-written optimum)")
    print(f"{'variant':<36} {'bring-up':>9} {'ratio':>6} {'teardown':>9} {'ratio':>6}", end="")
    print(f" {'total':>7} {'ratio':>6}   bring-up min-max")
    for v, (up, down) in med.items():
        r = results[v]
        if ref is not None:
            ratios = [f"{x / y:6.2f}" for x, y in ((up, ref[0]), (down, ref[1]))]
            ratios.append(f"{(up + down) / sum(ref):6.2f}")
        else:
            ratios = ["     -"] * 3
        print(
            f"{v}  {TITLES[v]:<33} {up:9.3f} {ratios[0]} {down:9.3f} {ratios[1]} "
            f"{up + down:7.3f} {ratios[2]}   {min(r.up):.3f}-{max(r.up):.3f}"
        )
    verdicts: dict[str, Any] = {}
    if "a" in med and ref is not None:
        ratio = med["a"][0] / ref[0]
        verdicts["asyncpod_vs_optimum"] = ratio
        ok = "ok" if ratio <= TARGET_VS_OPTIMUM else "MISSED"
        print(f"asyncpod bring-up / optimum: {ratio:.2f} (target <= {TARGET_VS_OPTIMUM}) {ok}")
    if "a" in med and "b" in med:
        ratio = med["b"][0] / med["a"][0]
        verdicts["compose_vs_asyncpod"] = ratio
        ok = "ok" if ratio >= TARGET_VS_COMPOSE else "MISSED"
        print(
            f"podman-compose bring-up / asyncpod: {ratio:.2f} (target >= {TARGET_VS_COMPOSE}) {ok}"
        )
    return verdicts


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="measured runs per variant")
    parser.add_argument(
        "--variants", nargs="+", default=["a", "b", "c", "d"], choices=sorted(NAMES)
    )
    parser.add_argument(
        "--url", default=os.environ.get("ASYNCPOD_PODMAN_URL") or "unix:///run/podman/podman.sock"
    )
    parser.add_argument("--port", type=int, default=0, help="host port (default: a free one)")
    parser.add_argument("--anyio-backend", default="asyncio", choices=["asyncio", "trio"])
    parser.add_argument("--pause", type=float, default=1.0, help="seconds between runs")
    parser.add_argument("--trace", action="store_true", help="print asyncpod's call timeline")
    parser.add_argument("--json", type=Path, help="write every measurement here")
    parser.add_argument("--rmi", action="store_true", help="remove the bench images at the end")
    args = parser.parse_args()
    variants = list(dict.fromkeys(args.variants))
    sys.path.insert(0, str(ROOT / "tests"))  # podman_images builds the busybox images

    bench: Bench | None = None
    results = {v: Result() for v in variants}
    try:
        with sigterm_as_interrupt():
            bench = Bench(args)
            stale = bench.sweeper.sweep()
            if stale:
                print(f"removed {len(stale)} objects left by an earlier run: {stale}")
            bench.prepare(variants)
            version = (bench.rest.call("GET", "/version")[1] or {}).get("Version", "?")
            print(
                f"Podman {version} at {args.url}, host port {bench.port}, "
                f"{args.runs} runs per variant"
            )
            for v in variants:  # warm-up: pause image, page cache, podman-compose's imports
                bench.run(v)
                time.sleep(args.pause)
            for i in range(args.runs):
                order = variants[i % len(variants) :] + variants[: i % len(variants)]
                for v in order:
                    up, down = bench.run(v)
                    results[v].up.append(up)
                    results[v].down.append(down)
                    print(f"  run {i + 1} {v}: bring-up {up:.3f} s, teardown {down:.3f} s")
                    time.sleep(args.pause)
            verdicts = report(results, args.runs)
            if args.trace:
                for variant, trace in bench.traces.items():
                    print_trace(variant, *trace)
            if args.json:
                data = {v: {"up": r.up, "down": r.down} for v, r in results.items()}
                args.json.write_text(json.dumps({"results": data, **verdicts}, indent=2))
        return 0
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        if bench is not None:
            previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
            try:
                left = bench.sweeper.sweep()
                if left:  # a killed podman(-compose) may still have been creating: again
                    print(f"cleaned up {left}", file=sys.stderr)
                    time.sleep(2)
                    bench.sweeper.sweep()
                if args.rmi:
                    for image in (APP_IMAGE, BUSYBOX_IMAGE):
                        bench.rest.call("DELETE", f"/images/{quote(image, safe='')}", ok=(404,))
            finally:
                bench.close()
                signal.signal(signal.SIGINT, previous)


if __name__ == "__main__":
    raise SystemExit(main())
