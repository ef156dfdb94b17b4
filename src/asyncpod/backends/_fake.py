"""FakeBackend: an in-memory container engine for tests, yours included.

A fake container runs a *program*: an async Python callable taking a :class:`FakeContext`,
or a declarative :class:`Program`. Programs are chosen per container name or per image.
Without one, a container runs its command with a few built-in tools (``cp``, ``cat``,
``echo``, ``sleep``, ``touch``, ``rm``, ``mkdir``, ``test``, ``ls``, ``true``, ``false``,
``sh -c``), or, for anything else, runs until it is stopped, like a server.

Files are real enough to observe: each container has its own filesystem seeded from its
image (:meth:`FakeBackend.add_image`), and volumes are shared between the containers that
mount them, read-only mounts included. Probes reach programs through :meth:`FakeContext.serve`.

Time is anyio's: run tests under a virtual clock (:func:`asyncpod.testing.virtual_time`
backends) and delays, probe periods and back-off cost nothing.

Fault injection: :meth:`FakeBackend.inject` makes any operation fail or hang,
:meth:`FakeBackend.crash` makes a running container exit, and
:meth:`FakeBackend.set_exec_result` flips what an exec (an exec probe) returns.
"""

from __future__ import annotations

import io
import itertools
import logging
import math
import re
import shlex
import tarfile
import time
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, TypeAlias

import anyio
import anyio.abc
import attrs
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .._exceptions import (
    BackendError,
    ImageError,
    ObjectExistsError,
    ObjectNotFoundError,
    PortInUseError,
)
from .._lowlevel import bound_checkpoint
from .._signal import Signal
from ._base import (
    Backend,
    BackendEvent,
    ContainerInfo,
    ContainerSpec,
    ExecResult,
    ExitWatcher,
    LogRecord,
    OwnedObject,
    PodSpec,
    RuntimeState,
    VolumeSpec,
)

__all__ = ["FakeBackend", "FakeContainer", "FakeContext", "Program"]

logger = logging.getLogger("asyncpod.fake")

ProgramFn: TypeAlias = Callable[["FakeContext"], Awaitable["int | None"]]
ExecHandler: TypeAlias = Callable[[tuple[str, ...]], Awaitable[ExecResult]]
ConnectionHandler: TypeAlias = Callable[[anyio.abc.ByteStream], Awaitable[None]]

_SIGTERM = 15
_SIGKILL = 9


@attrs.frozen(kw_only=True)
class Program:
    """A declarative fake program.

    It writes *logs* (``"stdout"`` lines; prefix a line with ``"stderr:"`` for stderr),
    then exits with *exit_code* after *delay* seconds, or runs until stopped if *delay*
    is ``None``. *serve* lists ports it accepts TCP connections on (answering HTTP 200),
    and with *ignore_term* it only dies of SIGKILL.
    """

    exit_code: int = 0
    delay: float | None = 0.0
    logs: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    serve: tuple[int, ...] = attrs.field(default=(), converter=tuple)
    ignore_term: bool = False

    async def __call__(self, ctx: FakeContext) -> int:
        for line in self.logs:
            if line.startswith("stderr:"):
                ctx.log(line.removeprefix("stderr:"), stream="stderr")
            else:
                ctx.log(line)
        ctx.handle_term = self.ignore_term
        async with anyio.create_task_group() as tg:
            for port in self.serve:
                tg.start_soon(ctx.serve_http, port)
            if self.delay is None:
                await anyio.sleep_forever()
            else:
                await anyio.sleep(self.delay)
            tg.cancel_scope.cancel()
        return self.exit_code


class FakeContext:
    """What a fake program sees: its argv, environment, files, logs and network."""

    def __init__(self, container: FakeContainer, backend: FakeBackend) -> None:
        self._container = container
        self._backend = backend
        self._terminated: anyio.Event | None = None
        self._term_requested = False
        #: with True, SIGTERM only sets :attr:`terminated`; the program decides when to exit
        self.handle_term = False
        self.exec_handler: ExecHandler | None = None

    @property
    def terminated(self) -> anyio.Event:
        """Set when the container is asked to stop (SIGTERM)."""
        if self._terminated is None:
            self._terminated = anyio.Event()
            if self._term_requested:
                self._terminated.set()
        return self._terminated

    def _request_term(self) -> None:
        self._term_requested = True
        if self._terminated is not None:
            self._terminated.set()

    @property
    def name(self) -> str:
        """The container's name in the pod (:attr:`ContainerSpec.short_name`)."""
        return self._container.short_name

    @property
    def argv(self) -> tuple[str, ...]:
        """The command line the container runs (command + args, or the image's)."""
        return self._container.argv

    @property
    def env(self) -> dict[str, str]:
        """The container's environment."""
        return dict(self._container.spec.env)

    def log(self, line: str, *, stream: str = "stdout") -> None:
        """Write one log line."""
        self._container.write_log(stream, line.encode())

    def read_file(self, path: str) -> bytes:
        """Read a file of the container's filesystem (mounted volumes included)."""
        return self._container.fs.read(path)

    def write_file(self, path: str, data: bytes | str) -> None:
        """Write a file; raises :class:`PermissionError` on a read-only mount."""
        self._container.fs.write(path, data.encode() if isinstance(data, str) else data)

    def exists(self, path: str) -> bool:
        """Whether *path* is a file or a directory."""
        return self._container.fs.exists(path)

    def listdir(self, path: str) -> list[str]:
        """Names under directory *path*."""
        return self._container.fs.listdir(path)

    async def serve(self, port: int, handler: ConnectionHandler) -> None:
        """Accept TCP connections on *port* of the pod until cancelled."""
        pod = self._backend._pods[self._container.spec.pod]
        if port in pod.listeners:
            raise OSError(98, f"port {port} is already in use in pod {pod.spec.name}")
        send, receive = anyio.create_memory_object_stream[anyio.abc.ByteStream](math.inf)
        pod.listeners[port] = send
        try:
            async with anyio.create_task_group() as tg, receive:
                async for stream in receive:
                    tg.start_soon(_serve_one, handler, stream)
        finally:
            pod.listeners.pop(port, None)
            send.close()

    async def serve_http(
        self,
        port: int,
        handler: Callable[[str], tuple[int, bytes]] | None = None,
    ) -> None:
        """Serve HTTP GET on *port*: *handler(path)* gives (status, body); default 200."""

        async def on_connection(stream: anyio.abc.ByteStream) -> None:
            request = b""
            while b"\r\n\r\n" not in request:
                try:
                    chunk = await stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    return
                request += chunk
            parts = request.split(b"\r\n", 1)[0].split()
            path = parts[1].decode() if len(parts) > 1 else "/"
            status, body = handler(path) if handler is not None else (200, b"ok\n")
            head = (
                f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            await stream.send(head.encode() + body)

        await self.serve(port, on_connection)

    async def serve_files(self, port: int, root: str) -> None:
        """Serve the files under *root* over HTTP on *port* (a fake web server)."""

        def handler(path: str) -> tuple[int, bytes]:
            full = root.rstrip("/") + "/" + path.lstrip("/")
            if self._container.fs.is_dir(full):
                full = full.rstrip("/") + "/index.html"
            try:
                return 200, self.read_file(full)
            except (FileNotFoundError, IsADirectoryError):
                return 404, b"not found\n"

        await self.serve_http(port, handler)


async def _serve_one(handler: ConnectionHandler, stream: anyio.abc.ByteStream) -> None:
    async with stream:
        try:
            await handler(stream)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream):
            pass


class _MemoryByteStream(anyio.abc.ByteStream):
    """One end of an in-memory TCP-like connection."""

    def __init__(
        self, send: MemoryObjectSendStream[bytes], receive: MemoryObjectReceiveStream[bytes]
    ) -> None:
        self._send = send
        self._receive = receive

    async def receive(self, max_bytes: int = 65536) -> bytes:
        try:
            return await self._receive.receive()
        except anyio.EndOfStream:
            raise
        except anyio.ClosedResourceError:
            raise anyio.EndOfStream from None

    async def send(self, item: bytes) -> None:
        await self._send.send(item)

    async def send_eof(self) -> None:
        self._send.close()

    async def aclose(self) -> None:
        self._send.close()
        self._receive.close()
        await anyio.lowlevel.checkpoint()


def _stream_pair() -> tuple[_MemoryByteStream, _MemoryByteStream]:
    a_send, b_receive = anyio.create_memory_object_stream[bytes](math.inf)
    b_send, a_receive = anyio.create_memory_object_stream[bytes](math.inf)
    return _MemoryByteStream(a_send, a_receive), _MemoryByteStream(b_send, b_receive)


# Filesystems


class _Volume:
    def __init__(self, vid: str, spec: VolumeSpec) -> None:
        self.id = vid
        self.spec = spec
        self.files: dict[str, bytes] = {}
        self.dirs: set[str] = {""}
        self.mounted_by: set[str] = set()


#: a mount in a fake container: (mount point, files, dirs, read_only, sub_path prefix)
_MountEntry = tuple[str, dict[str, bytes], set[str], bool, str]


class _FileSystem:
    """A container's files: its own root plus mounted volumes and host paths."""

    def __init__(self, root: dict[str, bytes], mounts: list[_MountEntry]) -> None:
        self.root: dict[str, bytes] = dict(root)
        self.root_dirs: set[str] = set()
        self.mounts = mounts
        for path in self.root:
            self._add_parents(self.root_dirs, path)

    @staticmethod
    def _add_parents(dirs: set[str], path: str) -> None:
        parts = path.strip("/").split("/")[:-1]
        for i in range(len(parts) + 1):
            dirs.add("/".join(parts[:i]))

    def _resolve(self, path: str) -> tuple[dict[str, bytes], set[str], str, bool]:
        norm = "/" + "/".join(p for p in path.split("/") if p and p != ".")
        best: tuple[str, dict[str, bytes], set[str], bool, str] | None = None
        for mount in self.mounts:
            point = mount[0].rstrip("/")
            if (norm == point or norm.startswith(point + "/")) and (
                best is None or len(point) > len(best[0].rstrip("/"))
            ):
                best = mount
        if best is None:
            return self.root, self.root_dirs, norm.strip("/"), False
        point, files, dirs, read_only, prefix = best
        rel = norm[len(point.rstrip("/")) :].strip("/")
        rel = "/".join(p for p in (prefix, rel) if p)
        return files, dirs, rel, read_only

    def read(self, path: str) -> bytes:
        files, dirs, rel, _ = self._resolve(path)
        if rel in files:
            return files[rel]
        if rel in dirs:
            raise IsADirectoryError(21, "Is a directory", path)
        raise FileNotFoundError(2, "No such file or directory", path)

    def write(self, path: str, data: bytes) -> None:
        files, dirs, rel, read_only = self._resolve(path)
        if read_only:
            raise PermissionError(30, "Read-only file system", path)
        if rel in dirs:
            raise IsADirectoryError(21, "Is a directory", path)
        files[rel] = data
        self._add_parents(dirs, rel)

    def remove(self, path: str) -> None:
        files, _, rel, read_only = self._resolve(path)
        if read_only:
            raise PermissionError(30, "Read-only file system", path)
        if rel not in files:
            raise FileNotFoundError(2, "No such file or directory", path)
        del files[rel]

    def mkdir(self, path: str) -> None:
        _, dirs, rel, read_only = self._resolve(path)
        if read_only:
            raise PermissionError(30, "Read-only file system", path)
        self._add_parents(dirs, rel + "/x")

    def exists(self, path: str) -> bool:
        files, dirs, rel, _ = self._resolve(path)
        return rel in files or rel in dirs

    def is_dir(self, path: str) -> bool:
        _, dirs, rel, _ = self._resolve(path)
        return rel in dirs

    def listdir(self, path: str) -> list[str]:
        files, dirs, rel, _ = self._resolve(path)
        if rel not in dirs:
            raise FileNotFoundError(2, "No such file or directory", path)
        prefix = rel + "/" if rel else ""
        names = {
            p[len(prefix) :].split("/")[0]
            for p in itertools.chain(files, dirs)
            if p.startswith(prefix) and p != rel
        }
        return sorted(names)


# Objects


class _Pod:
    def __init__(self, pid: str, spec: PodSpec) -> None:
        self.id = pid
        self.spec = spec
        self.containers: set[str] = set()
        self.listeners: dict[int, MemoryObjectSendStream[anyio.abc.ByteStream]] = {}
        #: how many of its non-init containers run (init containers can't be added then)
        self.running_apps = 0


class FakeContainer:
    """A fake container; :meth:`FakeBackend.container` finds one for inspection."""

    __slots__ = (
        "_fs", "cancel_scope", "changed", "context", "exec_results", "exit_code", "finished_at",
        "id", "idle", "image_files", "kill_code", "logs", "mounts", "short_name", "spec",
        "started_at", "starts", "state", "term_code", "watchers",
    )  # fmt: skip

    def __init__(self, cid: str, spec: ContainerSpec, image_files: dict[str, bytes]) -> None:
        self.id = cid
        self.spec = spec
        #: the name asyncpod gave it in its pod, else its own
        self.short_name: str = spec.short_name or spec.name
        self.state = RuntimeState.CREATED
        self.exit_code: int | None = None
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.image_files = image_files
        self.mounts: list[_MountEntry] = []
        self._fs: _FileSystem | None = None  # built on first use: most containers never look
        self.logs: list[LogRecord] = []
        self.changed = Signal()
        self.context: FakeContext | None = None
        self.cancel_scope: anyio.CancelScope | None = None
        self.kill_code: int | None = None
        self.exec_results: dict[tuple[str, ...], int] = {}
        self.starts = 0
        self.idle = False
        #: the exit code SIGTERM gives (a shell's ``trap 'exit N' TERM`` makes it N)
        self.term_code = 128 + _SIGTERM
        #: exit watchers waiting for this container's next exit
        self.watchers: list[_FakeExitWatcher] | None = None

    @property
    def fs(self) -> _FileSystem:
        """The container's files (its image's, then what it wrote) and its mounts."""
        if self._fs is None:
            self._fs = _FileSystem(self.image_files, self.mounts)
        return self._fs

    @property
    def argv(self) -> tuple[str, ...]:
        return (self.spec.command or ()) + (self.spec.args or ())

    def notify(self) -> None:
        self.changed.fire()

    def runs(self, ctx: FakeContext | None) -> bool:
        """Whether the run started with *ctx* is still going."""
        return self.state is RuntimeState.RUNNING and self.context is ctx

    def set_running(self, pod: _Pod | None, running: bool) -> None:
        """Record a transition into or out of the running state."""
        was = self.state is RuntimeState.RUNNING
        self.state = RuntimeState.RUNNING if running else RuntimeState.EXITED
        if pod is not None and not self.spec.init and was != running:
            pod.running_apps += 1 if running else -1

    def write_log(self, stream: str, data: bytes) -> None:
        for line in data.splitlines() or [b""]:
            self.logs.append(LogRecord(stream, line))
        self.notify()

    def report_exit(self, exit_code: int | None) -> None:
        """Tell the exit watchers waiting for this container (``None``: it is gone)."""
        watchers, self.watchers = self.watchers, None
        for watcher in watchers or ():
            watcher.report(self.id, exit_code)


class _FakeExitWatcher(ExitWatcher):
    """Exits reported by the fake containers themselves: no task per container."""

    def __init__(self, backend: FakeBackend) -> None:
        super().__init__()
        self._backend = backend

    def watch(self, container: str) -> None:
        try:
            found = self._backend._get_container(container)
        except ObjectNotFoundError:
            self.report(container, None)
            return
        if found.state is RuntimeState.EXITED and found.exit_code is not None:
            self.report(found.id, found.exit_code)
        elif found.watchers is None:
            found.watchers = [self]
        else:
            found.watchers.append(self)


@attrs.define
class _Fault:
    operation: str
    target: str | None
    error: BaseException | None
    hang: bool
    times: int | None


_OPERATIONS = frozenset(
    name for name, value in vars(Backend).items() if getattr(value, "__isabstractmethod__", False)
) | {"ensure_image", "watch_exits"}


class FakeBackend(Backend):
    """An in-memory backend: deterministic, fast, and observable.

    *programs* maps container names (first) or images to programs. *images* lists the
    images present locally (``None``: every image is), each optionally with files
    (:meth:`add_image`); *registry* lists the images a pull finds (``None``: any).
    """

    name = "fake"

    def __init__(
        self,
        *,
        programs: Mapping[str, ProgramFn | Program] | None = None,
        images: Iterable[str] | None = None,
        registry: Iterable[str] | None = None,
    ) -> None:
        self.programs: dict[str, ProgramFn | Program] = dict(programs or {})
        self.images: dict[str, dict[str, bytes]] | None = (
            None if images is None else {image: {} for image in images}
        )
        self._image_files: dict[str, dict[str, bytes]] = {}
        self.registry: set[str] | None = None if registry is None else set(registry)
        self._pods: dict[str, _Pod] = {}
        self._containers: dict[str, FakeContainer] = {}
        self._container_names: dict[str, str] = {}
        # Host paths are shared by every pod of this backend, like a real host's files.
        self._host_paths: dict[str, tuple[dict[str, bytes], set[str]]] = {}
        self._volumes: dict[str, _Volume] = {}
        self._faults: list[_Fault] = []
        self._subscribers: list[tuple[Mapping[str, str], MemoryObjectSendStream[BackendEvent]]] = []
        self._ids = itertools.count(1)
        self._tg: anyio.abc.TaskGroup | None = None
        self._tg_cm: AbstractAsyncContextManager[anyio.abc.TaskGroup] | None = None
        self._checkpoint: Callable[[], Awaitable[None]] | None = None  # bound while open
        #: every operation called, in order, as (operation, target)
        self.calls: list[tuple[str, str]] = []

    # Set-up for tests

    def add_image(self, image: str, files: Mapping[str, bytes | str] | None = None) -> None:
        """Make *image* present locally, its filesystem holding *files*."""
        encoded = {
            path.strip("/"): data.encode() if isinstance(data, str) else data
            for path, data in (files or {}).items()
        }
        self._image_files[image] = encoded
        if self.images is not None:
            self.images[image] = encoded

    def inject(
        self,
        operation: str,
        *,
        target: str | None = None,
        error: BaseException | None = None,
        hang: bool = False,
        times: int | None = 1,
    ) -> None:
        """Make *operation* (a Backend method name) fail with *error* or hang.

        *target* restricts it to one object: a container's name in its pod, an object
        name or id, or an image. *times* is how many calls it affects (``None``: all).
        """
        if operation not in _OPERATIONS:
            raise ValueError(f"unknown operation {operation!r}; one of {sorted(_OPERATIONS)}")
        if error is None and not hang:
            error = BackendError(f"injected failure of {operation}")
        self._faults.append(_Fault(operation, target, error, hang, times))

    def clear_faults(self) -> None:
        """Remove every injected fault."""
        self._faults.clear()

    def container(self, name: str) -> FakeContainer:
        """The newest container whose id, name or pod-local name is *name*."""
        for container in reversed(list(self._containers.values())):
            if name in (container.id, container.spec.name, container.short_name):
                return container
        raise KeyError(name)

    def crash(self, name: str, exit_code: int = 1) -> None:
        """Make the running container *name* exit now with *exit_code*."""
        container = self.container(name)
        if container.state is not RuntimeState.RUNNING:
            raise RuntimeError(f"container {name!r} is not running")
        self._terminate(container, exit_code)

    def set_exec_result(self, name: str, argv: Iterable[str], exit_code: int | None) -> None:
        """Make exec of *argv* in container *name* return *exit_code* (``None`` undoes it)."""
        results = self.container(name).exec_results
        if exit_code is None:
            results.pop(tuple(argv), None)
        else:
            results[tuple(argv)] = exit_code

    def objects(self) -> list[OwnedObject]:
        """Every object that exists now."""
        return self._objects(lambda _labels: True)

    # Internals

    async def _enter(self, operation: str, target: str = "", *aliases: str) -> None:
        self.calls.append((operation, target))
        await (self._checkpoint or anyio.lowlevel.checkpoint)()
        if not self._faults:
            return
        for fault in list(self._faults):
            if fault.operation != operation:
                continue
            if fault.target is not None and fault.target not in (target, *aliases):
                continue
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
            if fault.hang:
                await anyio.sleep_forever()
            if fault.error is not None:
                raise fault.error

    def _new_id(self, kind: str) -> str:
        return f"{kind}{next(self._ids):06d}"

    def _emit(
        self,
        type_: str,
        action: str,
        oid: str,
        name: str,
        labels: Mapping[str, str],
        exit_code: int | None = None,
    ) -> None:
        if not self._subscribers:
            return
        event = BackendEvent(
            type=type_, action=action, id=oid, name=name, labels=labels, exit_code=exit_code
        )
        for wanted, send in list(self._subscribers):
            if all(labels.get(k) == v for k, v in wanted.items()):
                try:
                    send.send_nowait(event)
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    pass

    def _get_container(self, cid: str) -> FakeContainer:
        container = self._containers.get(cid) or self._containers.get(
            self._container_names.get(cid, "")
        )
        if container is None:
            raise ObjectNotFoundError(f"no such container: {cid}")
        return container

    def _get_pod(self, pid: str) -> _Pod:
        pod = self._pods.get(pid)
        if pod is None:
            for candidate in self._pods.values():
                if candidate.spec.name == pid:
                    return candidate
            raise ObjectNotFoundError(f"no such pod: {pid}")
        return pod

    def _objects(self, match: Callable[[Mapping[str, str]], bool]) -> list[OwnedObject]:
        found = [
            OwnedObject(type="pod", id=p.id, name=p.spec.name, labels=p.spec.labels)
            for p in self._pods.values()
            if match(p.spec.labels)
        ]
        found += [
            OwnedObject(
                type="container", id=c.id, name=c.spec.name, labels=c.spec.labels, pod=c.spec.pod
            )
            for c in self._containers.values()
            if match(c.spec.labels)
        ]
        found += [
            OwnedObject(type="volume", id=v.id, name=v.spec.name, labels=v.spec.labels)
            for v in self._volumes.values()
            if match(v.spec.labels)
        ]
        return found

    # Backend

    async def aopen(self) -> None:
        if self._tg is not None:
            raise RuntimeError("this FakeBackend is already open")
        self._tg_cm = anyio.create_task_group()
        self._tg = await self._tg_cm.__aenter__()
        self._checkpoint = bound_checkpoint()

    async def aclose(self) -> None:
        tg, cm = self._tg, self._tg_cm
        self._tg = self._tg_cm = None
        self._checkpoint = None
        if tg is None or cm is None:
            return
        tg.cancel_scope.cancel()
        await cm.__aexit__(None, None, None)
        for _, send in self._subscribers:
            send.close()

    async def create_pod(self, spec: PodSpec) -> str:
        await self._enter("create_pod", spec.name)
        if any(p.spec.name == spec.name for p in self._pods.values()):
            raise ObjectExistsError(f"pod {spec.name!r} already exists")
        published = {
            (m.host_ip, m.host_port, m.protocol) for p in self._pods.values() for m in p.spec.ports
        }
        for mapping in spec.ports:
            if (mapping.host_ip, mapping.host_port, mapping.protocol) in published:
                raise PortInUseError(f"host port {mapping.host_port} is already in use")
        pod = _Pod(self._new_id("pod"), spec)
        self._pods[pod.id] = pod
        self._emit("pod", "create", pod.id, spec.name, spec.labels)
        return pod.id

    async def remove_pod(self, pod: str) -> None:
        await self._enter("remove_pod", pod)
        try:
            found = self._get_pod(pod)
        except ObjectNotFoundError:
            return
        for cid in list(found.containers):
            self._remove_container_now(self._containers[cid])
        del self._pods[found.id]
        self._emit("pod", "remove", found.id, found.spec.name, found.spec.labels)

    async def create_volume(self, spec: VolumeSpec) -> str:
        await self._enter("create_volume", spec.name)
        if any(v.spec.name == spec.name for v in self._volumes.values()):
            raise ObjectExistsError(f"volume {spec.name!r} already exists")
        volume = _Volume(self._new_id("vol"), spec)
        self._volumes[volume.id] = volume
        self._emit("volume", "create", volume.id, spec.name, spec.labels)
        return volume.id

    async def remove_volume(self, volume: str) -> None:
        await self._enter("remove_volume", volume)
        found = self._volumes.get(volume) or next(
            (v for v in self._volumes.values() if v.spec.name == volume), None
        )
        if found is None:
            return
        users = [cid for cid in found.mounted_by if cid in self._containers]
        if users:
            raise BackendError(f"volume {found.spec.name!r} is in use by {', '.join(users)}")
        del self._volumes[found.id]
        self._emit("volume", "remove", found.id, found.spec.name, found.spec.labels)

    async def image_exists(self, image: str) -> bool:
        await self._enter("image_exists", image)
        return self.images is None or image in self.images

    @property
    def is_local(self) -> bool:
        """True: the fake runs in this process."""
        return True

    async def import_image(
        self, reference: str, tarball: bytes, *, changes: Sequence[str] = ()
    ) -> None:
        """Make *reference* present, its files those of *tarball*'s regular files."""
        await self._enter("import_image", reference)
        files: dict[str, bytes | str] = {}
        try:
            with tarfile.open(fileobj=io.BytesIO(tarball)) as archive:
                for member in archive.getmembers():
                    extracted = archive.extractfile(member) if member.isfile() else None
                    if extracted is not None:
                        files[member.name] = extracted.read()
        except tarfile.TarError as exc:
            raise ImageError(reference, f"import failed: {exc}") from exc
        self.add_image(reference, files)

    async def pull_image(self, image: str) -> None:
        await self._enter("pull_image", image)
        if self.registry is not None and image not in self.registry:
            raise ImageError(image, "pull failed: not found in any registry")
        if self.images is not None:
            self.images[image] = self._image_files.get(image, {})

    async def ensure_image(self, image: str, policy: Any) -> None:
        await self._enter("ensure_image", image)
        await super().ensure_image(image, policy)

    async def create_container(self, spec: ContainerSpec) -> str:
        short = spec.short_name or spec.name
        await self._enter("create_container", short, spec.name, spec.image)
        pod = self._get_pod(spec.pod)
        if self.images is not None and spec.image not in self.images:
            raise ImageError(spec.image, "no such image")
        if spec.name in self._container_names:
            raise ObjectExistsError(f"container {spec.name!r} already exists")
        if spec.init and pod.running_apps:
            raise BackendError("cannot add an init container to a running pod")
        files = self._image_files.get(spec.image, {})
        container = FakeContainer(self._new_id("ctr"), spec, files)
        for mount in spec.mounts:
            if mount.volume is not None:
                volume = self._volumes.get(mount.volume)
                if volume is None:
                    raise ObjectNotFoundError(f"no such volume: {mount.volume}")
                volume.mounted_by.add(container.id)
                files_, dirs = volume.files, volume.dirs
            else:
                assert mount.host_path is not None
                files_, dirs = self._host_paths.setdefault(mount.host_path, ({}, {""}))
            container.mounts.append(
                (mount.target, files_, dirs, mount.read_only, mount.sub_path or "")
            )
            if mount.sub_path and not mount.read_only:
                container.fs.mkdir(mount.target)  # a missing subPath is made, as the kubelet does
        self._containers[container.id] = container
        self._container_names[spec.name] = container.id
        pod.containers.add(container.id)
        self._emit("container", "create", container.id, spec.name, spec.labels)
        return container.id

    async def start_container(self, container: str) -> None:
        found = self._get_container(container)
        await self._enter("start_container", found.short_name, found.spec.name, found.id)
        if found.state is RuntimeState.RUNNING:
            return
        if self._tg is None:
            raise RuntimeError("use the FakeBackend as `async with FakeBackend() as backend:`")
        found.set_running(self._pods.get(found.spec.pod), True)
        found.exit_code = None
        found.kill_code = None
        found.started_at = time.time()
        found.finished_at = None
        found.starts += 1
        found.context = FakeContext(found, self)
        # A container with nothing to run is an idle server: it needs no task.
        program = self._program_for(found)
        found.idle = program is None and not _is_builtin(found.argv)
        found.term_code = 128 + _SIGTERM
        if program is None and not found.idle:
            # PID 1 of a container ignores SIGTERM unless it handles it, and busybox's
            # tools do not: they only die of the SIGKILL at the end of the grace period,
            # unless a shell script traps it to exit.
            trapped = _trapped_exit(found.argv)
            if trapped is None:
                found.context.handle_term = True
            else:
                found.term_code = trapped
        found.cancel_scope = None if found.idle else anyio.CancelScope()
        found.notify()
        self._emit("container", "start", found.id, found.spec.name, found.spec.labels)
        if found.cancel_scope is not None:
            self._tg.start_soon(self._run, found, found.context, found.cancel_scope)

    def _terminate(self, container: FakeContainer, code: int) -> None:
        """Make the running *container* exit with *code* (now, or at its next checkpoint)."""
        if container.idle and container.context is not None:
            self._exited(container, container.context, code)
        elif container.cancel_scope is not None:
            container.kill_code = code
            container.cancel_scope.cancel()

    def _program_for(self, container: FakeContainer) -> ProgramFn | Program | None:
        return self.programs.get(container.short_name) or self.programs.get(container.spec.image)

    async def _run(
        self, container: FakeContainer, ctx: FakeContext, scope: anyio.CancelScope
    ) -> None:
        code: int | None = None
        with scope:
            try:
                program = self._program_for(container)
                if program is not None:
                    result = await program(ctx)
                    code = 0 if result is None else int(result)
                else:
                    code = await _run_builtin(container, container.argv)
            except Exception as exc:  # a program's bug is a crash of its container
                container.write_log("stderr", f"{type(exc).__name__}: {exc}".encode())
                code = 1
        if code is None or scope.cancel_called:
            code = container.kill_code if container.kill_code is not None else 128 + _SIGKILL
        self._exited(container, ctx, code)

    def _exited(self, container: FakeContainer, ctx: FakeContext, code: int) -> None:
        if container.state is not RuntimeState.RUNNING or container.context is not ctx:
            return  # removed meanwhile
        container.set_running(self._pods.get(container.spec.pod), False)
        container.exit_code = code
        container.finished_at = time.time()
        container.cancel_scope = None
        container.notify()
        container.report_exit(code)
        self._emit(
            "container", "died", container.id, container.spec.name, container.spec.labels, code
        )

    async def stop_container(self, container: str, *, grace: float) -> int | None:
        found = self._get_container(container)
        await self._enter("stop_container", found.short_name, found.spec.name, found.id)
        if found.state is not RuntimeState.RUNNING:
            return found.exit_code
        ctx = found.context
        assert ctx is not None
        ctx._request_term()
        if not ctx.handle_term:
            self._terminate(found, found.term_code)
            if not found.runs(ctx):
                return found.exit_code  # exited at once (an idle container)
        with anyio.move_on_after(max(grace, 0)):
            while found.runs(ctx):
                await found.changed.wait()
        if found.runs(ctx):
            self._terminate(found, 128 + _SIGKILL)
            while found.runs(ctx):
                await found.changed.wait()
        return found.exit_code

    async def kill_container(self, container: str, *, signal: int = _SIGKILL) -> None:
        found = self._get_container(container)
        await self._enter("kill_container", found.short_name, found.spec.name, found.id)
        if found.state is not RuntimeState.RUNNING:
            return
        if signal == _SIGTERM and found.context is not None and found.context.handle_term:
            found.context._request_term()
            return
        ctx = found.context
        self._terminate(found, 128 + signal)
        while found.runs(ctx):
            await found.changed.wait()

    async def remove_container(self, container: str) -> None:
        try:
            found = self._get_container(container)
        except ObjectNotFoundError:
            await self._enter("remove_container", container)
            return
        await self._enter("remove_container", found.short_name, found.spec.name, found.id)
        self._remove_container_now(found)

    def _remove_container_now(self, found: FakeContainer) -> None:
        if found.id not in self._containers:
            return
        if found.state is RuntimeState.RUNNING:
            self._terminate(found, 128 + _SIGKILL)
        found.context = None
        pod = self._pods.get(found.spec.pod)
        found.set_running(pod, False)
        del self._containers[found.id]
        del self._container_names[found.spec.name]
        if pod is not None:
            pod.containers.discard(found.id)
        for volume in self._volumes.values():
            volume.mounted_by.discard(found.id)
        found.notify()
        found.report_exit(None)
        self._emit("container", "remove", found.id, found.spec.name, found.spec.labels)

    async def wait_container(self, container: str) -> int:
        found = self._get_container(container)
        await self._enter("wait_container", found.short_name, found.spec.name, found.id)
        while found.state is not RuntimeState.EXITED or found.exit_code is None:
            if found.id not in self._containers:
                raise ObjectNotFoundError(f"container {found.spec.name!r} was removed")
            await found.changed.wait()
        if found.id not in self._containers:
            raise ObjectNotFoundError(f"container {found.spec.name!r} was removed")
        return found.exit_code

    def watch_exits(self) -> AbstractAsyncContextManager[ExitWatcher]:
        return self._watch_exits()

    @asynccontextmanager
    async def _watch_exits(self) -> AsyncIterator[ExitWatcher]:
        await self._enter("watch_exits")
        watcher = _FakeExitWatcher(self)
        try:
            yield watcher
        finally:
            watcher.close()

    async def inspect_container(self, container: str) -> ContainerInfo:
        found = self._get_container(container)
        await self._enter("inspect_container", found.short_name, found.spec.name, found.id)
        return ContainerInfo(
            id=found.id,
            name=found.spec.name,
            state=found.state,
            exit_code=found.exit_code,
            started_at=found.started_at,
            finished_at=found.finished_at,
        )

    async def exec(self, container: str, argv: tuple[str, ...]) -> ExecResult:
        found = self._get_container(container)
        await self._enter("exec", found.short_name, found.spec.name, found.id)
        if found.state is not RuntimeState.RUNNING or found.context is None:
            raise BackendError(f"container {found.spec.name!r} is not running")
        argv = tuple(argv)
        if argv in found.exec_results:
            return ExecResult(found.exec_results[argv])
        if found.context.exec_handler is not None:
            return await found.context.exec_handler(argv)
        out: list[bytes] = []
        err: list[bytes] = []
        code = await _builtin(found.fs, argv, out.append, err.append)
        if code is None:
            code = 127
            err.append(f"{argv[0] if argv else ''}: command not found\n".encode())
        return ExecResult(code, b"".join(out), b"".join(err))

    def logs(
        self, container: str, *, follow: bool = False
    ) -> AbstractAsyncContextManager[AsyncIterator[LogRecord]]:
        return self._logs(container, follow)

    @asynccontextmanager
    async def _logs(self, container: str, follow: bool) -> AsyncIterator[AsyncIterator[LogRecord]]:
        found = self._get_container(container)
        await self._enter("logs", found.short_name, found.spec.name, found.id)

        async def lines() -> AsyncIterator[LogRecord]:
            index = 0
            end = len(found.logs)
            while True:
                while index < len(found.logs) and (follow or index < end):
                    yield found.logs[index]
                    index += 1
                if not follow or found.state is not RuntimeState.RUNNING:
                    return
                await found.changed.wait()

        iterator = lines()
        try:
            yield iterator
        finally:
            await iterator.aclose()  # type: ignore[attr-defined]

    def events(
        self, labels: Mapping[str, str] | None = None
    ) -> AbstractAsyncContextManager[AsyncIterator[BackendEvent]]:
        return self._events(dict(labels or {}))

    @asynccontextmanager
    async def _events(self, labels: dict[str, str]) -> AsyncIterator[AsyncIterator[BackendEvent]]:
        await self._enter("events")
        send, receive = anyio.create_memory_object_stream[BackendEvent](math.inf)
        entry = (labels, send)
        self._subscribers.append(entry)
        try:
            async with receive:
                yield receive
        finally:
            self._subscribers.remove(entry)
            send.close()

    async def connect(self, pod: str, port: int) -> anyio.abc.ByteStream:
        found = self._get_pod(pod)
        await self._enter("connect", found.spec.name, found.id)
        inbox = found.listeners.get(port)
        if inbox is None:
            raise ConnectionRefusedError(
                111, f"connection refused: port {port} in pod {found.spec.name}"
            )
        ours, theirs = _stream_pair()
        try:
            inbox.send_nowait(theirs)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            raise ConnectionRefusedError(111, "connection refused") from None
        return ours

    async def list_objects(self, labels: Mapping[str, str]) -> list[OwnedObject]:
        await self._enter("list_objects")
        wanted = dict(labels)
        return self._objects(lambda have: all(have.get(k) == v for k, v in wanted.items()))


# Built-in tools


async def _run_builtin(container: FakeContainer, argv: tuple[str, ...]) -> int:
    """Run *argv* as the container's main process."""

    def out(data: bytes) -> None:
        container.write_log("stdout", data.rstrip(b"\n"))

    def err(data: bytes) -> None:
        container.write_log("stderr", data.rstrip(b"\n"))

    if argv and argv[0].rsplit("/", 1)[-1] == "httpd" and container.context is not None:
        port, root = _httpd_options(argv[1:])
        await container.context.serve_files(port, root)
    code = await _builtin(container.fs, argv, out, err)
    if code is None:
        await anyio.sleep_forever()  # an unknown program: a server that runs until stopped
    assert code is not None
    return code


_TRAP = re.compile(r"""\btrap\s+(['"])exit(?:\s+(\d+))?\1\s+(?:SIG)?(?:TERM|15)\b""")


def _trapped_exit(argv: tuple[str, ...]) -> int | None:
    """The exit code of a ``sh -c`` script's ``trap 'exit N' TERM``, if it has one."""
    if len(argv) >= 3 and argv[0].rsplit("/", 1)[-1] == "sh" and argv[1] == "-c":
        found = _TRAP.search(argv[2])
        if found is not None:
            return int(found.group(2) or 0)
    return None


def _is_builtin(argv: tuple[str, ...]) -> bool:
    name = argv[0].rsplit("/", 1)[-1] if argv else ""
    return name in _TOOLS or name in ("sh", "httpd")


def _httpd_options(args: tuple[str, ...]) -> tuple[int, str]:
    """``httpd [-f] [-p PORT] [-h HOME]``, as busybox spells it."""
    port, root = 80, "/www"
    items = iter(args)
    for arg in items:
        if arg == "-p":
            port = int(next(items).rsplit(":", 1)[-1])
        elif arg == "-h":
            root = next(items)
    return port, root


async def _builtin(
    fs: _FileSystem,
    argv: tuple[str, ...],
    out: Callable[[bytes], object],
    err: Callable[[bytes], object],
) -> int | None:
    """Run a built-in tool; ``None`` if *argv* is no built-in."""
    if not argv:
        return None
    name, args = argv[0].rsplit("/", 1)[-1], list(argv[1:])
    try:
        if name == "sh" and len(args) >= 2 and args[0] == "-c":
            return await _shell(fs, args[1], out, err)
        tool = _TOOLS.get(name)
        if tool is None:
            return None
        return await tool(fs, args, out)
    except OSError as exc:
        err(f"{name}: {exc.filename or ''}: {exc.strerror}\n".encode())
        return 1


async def _shell(
    fs: _FileSystem, script: str, out: Callable[[bytes], object], err: Callable[[bytes], object]
) -> int | None:
    """A very small shell: commands joined by ';', '&&' and '||'."""
    code: int | None = 0
    op = ";"
    for token in _split_script(script):
        if token in (";", "&&", "||"):
            op = token
            continue
        if (op == "&&" and code != 0) or (op == "||" and code == 0):
            continue
        words = list(token)
        if words and words[0] == "exit":
            return int(words[1]) if len(words) > 1 else (code or 0)
        sink = out
        if words[-1:] == [">&2"]:
            words, sink = words[:-1], err
        elif len(words) >= 3 and words[-2] == ">":
            target, words = words[-1], words[:-2]
            captured: list[bytes] = []
            code = await _builtin(fs, tuple(words), captured.append, err)
            if code is None:
                return None
            fs.write(target, b"".join(captured))
            continue
        code = await _builtin(fs, tuple(words), sink, err)
        if code is None:
            return None
    return code


def _split_script(script: str) -> Iterator[Any]:
    lexer = shlex.shlex(script, posix=True, punctuation_chars=";&|>")
    lexer.whitespace_split = True
    words: list[str] = []
    for token in lexer:
        if token == ">&" and words is not None:
            words.append(">&" + next(lexer))
        elif token in (";", "&&", "||"):
            if words:
                yield words
            words = []
            yield token
        else:
            words.append(token)
    if words:
        yield words


async def _tool_true(fs: _FileSystem, args: list[str], out: Callable[[bytes], object]) -> int:
    return 0


async def _tool_false(fs: _FileSystem, args: list[str], out: Callable[[bytes], object]) -> int:
    return 1


async def _tool_echo(fs: _FileSystem, args: list[str], out: Callable[[bytes], object]) -> int:
    out((" ".join(args) + "\n").encode())
    return 0


async def _tool_sleep(fs: _FileSystem, args: list[str], out: Callable[[bytes], object]) -> int:
    seconds = float(args[0]) if args else 0.0
    if math.isinf(seconds):
        await anyio.sleep_forever()
    await anyio.sleep(seconds)
    return 0


async def _tool_cat(fs: _FileSystem, args: list[str], out: Callable[[bytes], object]) -> int:
    for path in args:
        out(fs.read(path))
    return 0


async def _tool_cp(fs: _FileSystem, args: list[str], out: Callable[[bytes], object]) -> int:
    if len(args) != 2:
        raise OSError(22, "usage: cp SOURCE DEST", "")
    source, dest = args
    data = fs.read(source)
    if fs.is_dir(dest):
        dest = dest.rstrip("/") + "/" + source.rstrip("/").rsplit("/", 1)[-1]
    fs.write(dest, data)
    return 0


async def _tool_touch(fs: _FileSystem, args: list[str], out: Callable[[bytes], object]) -> int:
    for path in args:
        if not fs.exists(path):
            fs.write(path, b"")
    return 0


async def _tool_rm(fs: _FileSystem, args: list[str], out: Callable[[bytes], object]) -> int:
    for path in (a for a in args if not a.startswith("-")):
        if fs.exists(path) or "-f" not in args:
            fs.remove(path)
    return 0


async def _tool_mkdir(fs: _FileSystem, args: list[str], out: Callable[[bytes], object]) -> int:
    for path in (a for a in args if not a.startswith("-")):
        fs.mkdir(path)
    return 0


async def _tool_ls(fs: _FileSystem, args: list[str], out: Callable[[bytes], object]) -> int:
    for path in args or ["/"]:
        out("".join(f"{name}\n" for name in fs.listdir(path)).encode())
    return 0


async def _tool_test(fs: _FileSystem, args: list[str], out: Callable[[bytes], object]) -> int:
    if len(args) == 2 and args[0] in ("-e", "-f", "-d"):
        path = args[1]
        ok = {
            "-e": fs.exists(path),
            "-f": fs.exists(path) and not fs.is_dir(path),
            "-d": fs.is_dir(path),
        }[args[0]]
        return 0 if ok else 1
    raise OSError(22, "unsupported test expression", " ".join(args))


async def _tool_write(fs: _FileSystem, args: list[str], out: Callable[[bytes], object]) -> int:
    """``write PATH TEXT``: a fake-only tool that writes TEXT to PATH (shells would redirect)."""
    if len(args) != 2:
        raise OSError(22, "usage: write PATH TEXT", "")
    fs.write(args[0], args[1].encode())
    return 0


_TOOLS: dict[str, Callable[[_FileSystem, list[str], Callable[[bytes], object]], Awaitable[int]]] = {
    "true": _tool_true,
    "false": _tool_false,
    "echo": _tool_echo,
    "sleep": _tool_sleep,
    "cat": _tool_cat,
    "cp": _tool_cp,
    "touch": _tool_touch,
    "rm": _tool_rm,
    "mkdir": _tool_mkdir,
    "ls": _tool_ls,
    "test": _tool_test,
    "write": _tool_write,
}

backend_class = FakeBackend
