"""FakeBackend: the Backend contract, in memory."""

from __future__ import annotations

import collections
import functools
import io
import itertools
import math
import tarfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel
import attrs
from anyio.streams.memory import MemoryObjectSendStream

from ..._exceptions import (
    BackendError,
    ImageError,
    ObjectExistsError,
    ObjectNotFoundError,
    PortInUseError,
)
from ..._hostports import bind_error, describe, free_port
from ..._lowlevel import bound_checkpoint
from .._base import (
    Backend,
    BackendEvent,
    ContainerInfo,
    ContainerSpec,
    ContainerStats,
    ExecResult,
    ExitWatcher,
    LogRecord,
    OwnedObject,
    PodSpec,
    PortMapping,
    RuntimeState,
    VolumeSpec,
)
from .._dns import parse_resolv_conf, pod_resolver
from ._container import FakeContainer, _FakeExitWatcher, _Pod
from ._faults import Faults
from ._filesystem import _FileSystem, _Volume, files_of_tarball
from ._network import _stream_pair
from ._program import FakeContext, Program, ProgramFn
from ._shell import _run_builtin, _trapped_exit, cannot_run, run_exec

__all__ = ["FakeBackend"]

_SIGTERM = 15
_SIGKILL = 9


class FakeBackend(Backend):
    """An in-memory backend: deterministic, fast, and observable.

    *programs* maps container names (first) or images to programs. *images* lists the
    images present locally (``None``: every image is), each optionally with files
    (:meth:`add_image`); *registry* lists the images a pull finds (``None``: any).
    """

    name = "fake"
    #: the fake host's name, which ``hostNetwork`` pods see
    host_name = "fake-host"
    #: the fake host's ``/etc/resolv.conf``, which pods' resolvers start from
    host_resolv_conf = "search fake.internal\nnameserver 192.0.2.53\noptions ndots:1\n"

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
        self._image_users: dict[str, str] = {}
        self.registry: set[str] | None = None if registry is None else set(registry)
        self._pods: dict[str, _Pod] = {}
        self._containers: dict[str, FakeContainer] = {}
        self._container_names: dict[str, str] = {}
        # Host paths are shared by every pod of this backend, like a real host's files.
        self._host_paths: dict[str, tuple[dict[str, bytes], set[str]]] = {}
        self._volumes: dict[str, _Volume] = {}
        self._faults = Faults()
        self._subscribers: list[tuple[Mapping[str, str], MemoryObjectSendStream[BackendEvent]]] = []
        #: every event emitted, for past_events (Podman's event log, in memory)
        self._history: collections.deque[BackendEvent] = collections.deque(maxlen=10_000)
        self._ids = itertools.count(1)
        self._tg: anyio.abc.TaskGroup | None = None
        self._tg_cm: AbstractAsyncContextManager[anyio.abc.TaskGroup] | None = None
        self._checkpoint: Callable[[], Awaitable[None]] | None = None  # bound while open
        #: every operation called, in order, as (operation, target)
        self.calls: list[tuple[str, str]] = []

    # Set-up for tests

    def add_image(
        self, image: str, files: Mapping[str, bytes | str] | None = None, *, user: str = ""
    ) -> None:
        """Make *image* present locally, its filesystem holding *files*, its processes run
        by *user* (its ``USER``: ``""`` for root, else ``"uid"``, ``"uid:gid"`` or a name)."""
        self._image_users[image] = user
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
        self._faults.add(operation, target, error, hang, times)

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
        """Every operation begins here: recorded, a checkpoint, then the injected faults."""
        self.calls.append((operation, target))
        await (self._checkpoint or anyio.lowlevel.checkpoint)()
        if self._faults:
            await self._faults.hit(operation, (target, *aliases))

    async def _enter_container(self, operation: str, container: str) -> FakeContainer:
        """:meth:`_enter` for an operation on *container*, which it then finds.

        An unknown id is recorded and checkpoints like any other call; only then does
        it raise :class:`ObjectNotFoundError` (as it does if the container went meanwhile).
        """
        found = self._find_container(container)
        if found is None:
            await self._enter(operation, container)
            return self._get_container(container)
        await self._enter(operation, found.short_name, found.spec.name, found.id)
        return self._get_container(found.id)

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
        event = BackendEvent(
            type=type_,
            action=action,
            id=oid,
            name=name,
            labels=labels,
            exit_code=exit_code,
            time=time.time(),
        )
        self._history.append(event)
        for wanted, send in list(self._subscribers):
            if all(labels.get(k) == v for k, v in wanted.items()):
                try:
                    send.send_nowait(event)
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    pass

    def _find_container(self, cid: str) -> FakeContainer | None:
        return self._containers.get(cid) or self._containers.get(self._container_names.get(cid, ""))

    def _get_container(self, cid: str) -> FakeContainer:
        container = self._find_container(cid)
        if container is None:
            raise ObjectNotFoundError(f"no such container: {cid}")
        return container

    def _find_pod(self, pid: str) -> _Pod | None:
        pod = self._pods.get(pid)
        if pod is None:
            return next((p for p in self._pods.values() if p.spec.name == pid), None)
        return pod

    def _get_pod(self, pid: str) -> _Pod:
        pod = self._find_pod(pid)
        if pod is None:
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
        ports: list[PortMapping] = []
        for mapping in spec.ports:
            port, protocol = mapping.host_port, mapping.protocol
            if port == 0:  # any free port, as an engine picks one
                while (mapping.host_ip, port, protocol) in published or port == 0:
                    port = free_port(mapping.host_ip, protocol)
                mapping = attrs.evolve(mapping, host_port=port)
                published.add((mapping.host_ip, port, protocol))
                ports.append(mapping)
                continue
            if (mapping.host_ip, port, protocol) in published:
                raise PortInUseError(
                    f"host port {port}/{protocol} is already in use (held by a fake pod)",
                    port=port,
                    holder="a pod of this FakeBackend",
                )
            # As an engine would fail to bind it: a socket of this host holds it.
            if bind_error(mapping.host_ip, port, protocol) is not None:
                raise PortInUseError(describe(port, protocol), port=port)
            ports.append(mapping)
        for volume in spec.volumes:  # held by the pod: made before it
            if volume not in self._volumes:
                raise ObjectNotFoundError(f"volume {volume!r} not found")
        pod = _Pod(self._new_id("pod"), attrs.evolve(spec, ports=tuple(ports)))
        self._pods[pod.id] = pod
        self._emit("pod", "create", pod.id, spec.name, spec.labels)
        return pod.id

    async def published_ports(self, pod: str) -> tuple[PortMapping, ...]:
        await self._enter("published_ports", pod)
        return self._get_pod(pod).spec.ports

    async def pod_ip(self, pod: str) -> str:
        """A made-up address of the 10.88.0.0/16 range (Podman's default network), one
        per pod."""
        await self._enter("pod_ip", pod)
        found = self._get_pod(pod)
        number = int.from_bytes(found.id.encode(), "big") % 65000 + 2
        return f"10.88.{number // 256}.{number % 256}"

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
        existing = next((v for v in self._volumes.values() if v.spec.name == spec.name), None)
        if existing is not None:
            if spec.claim:
                return existing.id
            raise ObjectExistsError(f"volume {spec.name!r} already exists")
        volume = _Volume(self._new_id("vol"), spec)
        for file in spec.files:
            volume.files[file.path] = file.data
            volume.modes[file.path] = file.mode
            _FileSystem._add_parents(volume.dirs, file.path)
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
        users += [p.spec.name for p in self._pods.values() if found.id in p.spec.volumes]
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
        try:
            files = files_of_tarball(tarball)
        except tarfile.TarError as exc:
            raise ImageError(reference, f"import failed: {exc}") from exc
        users = [c.split(None, 1)[1].strip() for c in changes if c.upper().startswith("USER ")]
        self.add_image(reference, files, user=users[-1] if users else "")

    async def pull_image(self, image: str) -> None:
        await self._enter("pull_image", image)
        if self.registry is not None and image not in self.registry:
            raise ImageError(image, "pull failed: not found in any registry")
        if self.images is not None:
            self.images[image] = self._image_files.get(image, {})

    async def image_user(self, image: str) -> str | None:
        await self._enter("image_user", image)
        if self.images is not None and image not in self.images:
            raise ImageError(image, "no such image")
        return self._image_users.get(image, "")

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
        argv = (spec.command or ()) + (spec.args or ())
        if self._program_named(short, spec.image) is None:
            missing = cannot_run(argv)
            if missing is not None:
                raise BackendError(
                    f"container {short!r}: the fake cannot run {missing!r} (of {list(argv)!r}):"
                    f" give it a Program, FakeBackend(programs={{{short!r}: ...}})"
                )
        files = {**self._image_files.get(spec.image, {}), **self._pod_files(pod.spec)}
        container = FakeContainer(
            self._new_id("ctr"),
            spec,
            files,
            self._image_users.get(spec.image, ""),
            pod.spec.sysctls,
        )
        for mount in spec.mounts:
            if mount.volume is not None:
                volume = self._volumes.get(mount.volume)
                if volume is None:
                    raise ObjectNotFoundError(f"no such volume: {mount.volume}")
                volume.mounted_by.add(container.id)
                files_, dirs = volume.files, volume.dirs
            elif mount.image is not None:
                if self.images is not None and mount.image not in self.images:
                    raise ImageError(mount.image, "no such image")
                files_ = dict(self._image_files.get(mount.image, {}))
                dirs = {""}
                for path in files_:
                    _FileSystem._add_parents(dirs, path)
            else:
                assert mount.host_path is not None
                files_, dirs = self._host_paths.setdefault(mount.host_path, ({}, {""}))
            container.mounts.append(
                (
                    mount.target,
                    files_,
                    dirs,
                    mount.read_only or mount.image is not None,
                    mount.sub_path or "",
                )
            )
            if mount.sub_path and not mount.read_only:
                container.fs.mkdir(mount.target)  # a missing subPath is made, as the kubelet does
        self._containers[container.id] = container
        self._container_names[spec.name] = container.id
        pod.containers.add(container.id)
        self._emit("container", "create", container.id, spec.name, spec.labels)
        return container.id

    def _pod_files(self, spec: PodSpec) -> dict[str, bytes]:
        """The files the engine writes into each container: ``/etc/hostname``,
        ``/etc/hosts`` (the pod's aliases first, as Podman writes them) and
        ``/etc/resolv.conf``."""
        hostname = self.host_name if spec.host_network else spec.hostname
        hosts = [f"{ip}\t{name}" for ip, name in spec.host_aliases]
        hosts += ["127.0.0.1\tlocalhost", f"127.0.0.1\t{hostname}"]
        resolver = pod_resolver(spec, parse_resolv_conf(self.host_resolv_conf))
        return {
            "etc/hostname": f"{hostname}\n".encode(),
            "etc/hosts": "".join(f"{line}\n" for line in hosts).encode(),
            "etc/resolv.conf": resolver.render().encode(),
        }

    async def start_container(self, container: str) -> None:
        found = await self._enter_container("start_container", container)
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
        # A container with nothing to run (its image's own process) is an idle server: it
        # needs no task.
        program = self._program_for(found)
        found.idle = program is None and not found.argv
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
        return self._program_named(container.short_name, container.spec.image)

    def _program_named(self, short_name: str, image: str) -> ProgramFn | Program | None:
        return self.programs.get(short_name) or self.programs.get(image)

    async def _run(
        self, container: FakeContainer, ctx: FakeContext, scope: anyio.CancelScope
    ) -> None:
        code: int | None = None
        with scope:
            async with anyio.create_task_group() as daemons:
                container.daemons = daemons
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
                daemons.cancel_scope.cancel()  # the main process exited: so do the others
        container.daemons = None
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
        found = await self._enter_container("stop_container", container)
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
        found = await self._enter_container("kill_container", container)
        if found.state is not RuntimeState.RUNNING:
            return
        if signal == _SIGTERM and found.context is not None and found.context.handle_term:
            found.context._request_term()
            return
        ctx = found.context
        # a script that traps SIGTERM exits as its trap says (found.term_code), as on Podman
        self._terminate(found, found.term_code if signal == _SIGTERM else 128 + signal)
        while found.runs(ctx):
            await found.changed.wait()

    async def remove_container(self, container: str) -> None:
        try:
            found = await self._enter_container("remove_container", container)
        except ObjectNotFoundError:
            return  # gone already: no error
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
        found = await self._enter_container("wait_container", container)
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
        found = await self._enter_container("inspect_container", container)
        return ContainerInfo(
            id=found.id,
            name=found.spec.name,
            state=found.state,
            exit_code=found.exit_code,
            started_at=found.started_at,
            finished_at=found.finished_at,
            image=found.spec.image,
        )

    async def exec(
        self,
        container: str,
        argv: tuple[str, ...],
        *,
        env: Mapping[str, str] | None = None,
        working_dir: str | None = None,
        user: str | None = None,
        stdin: bytes | None = None,
        output: Callable[[str, bytes], object] | None = None,
    ) -> ExecResult:
        found = await self._enter_container("exec", container)
        if found.state is not RuntimeState.RUNNING or found.context is None:
            raise BackendError(f"container {found.spec.name!r} is not running")
        argv = tuple(argv)
        if argv in found.exec_results:
            return ExecResult(found.exec_results[argv])
        if found.context.exec_handler is not None:
            return await found.context.exec_handler(argv)
        out: list[bytes] = []
        err: list[bytes] = []
        if output is None:
            out_fn: Callable[[bytes], object] = out.append
            err_fn: Callable[[bytes], object] = err.append
        else:
            out_fn = functools.partial(output, "stdout")
            err_fn = functools.partial(output, "stderr")
        code = await run_exec(
            found,
            argv,
            out_fn,
            err_fn,
            env=(env or {}).items(),
            working_dir=working_dir,
            user=user,
            stdin=stdin or b"",
        )
        return ExecResult(code, b"".join(out), b"".join(err))

    def logs(
        self,
        container: str,
        *,
        follow: bool = False,
        tail: int | None = None,
        since: float | None = None,
        timestamps: bool = False,
    ) -> AbstractAsyncContextManager[AsyncIterator[LogRecord]]:
        return self._logs(container, follow, tail, since, timestamps)

    @asynccontextmanager
    async def _logs(
        self,
        container: str,
        follow: bool,
        tail: int | None,
        since: float | None,
        timestamps: bool,
    ) -> AsyncIterator[AsyncIterator[LogRecord]]:
        found = await self._enter_container("logs", container)
        records = found.logs
        end = len(records)
        first = 0
        if since is not None:
            while first < end and (records[first].timestamp or 0.0) < since:
                first += 1
        if tail is not None:
            first = max(first, end - max(tail, 0))

        async def lines() -> AsyncIterator[LogRecord]:
            index = first
            while True:
                while index < len(records) and (follow or index < end):
                    record = records[index]
                    yield record if timestamps else attrs.evolve(record, timestamp=None)
                    index += 1
                if not follow or found.state is not RuntimeState.RUNNING:
                    return
                await found.changed.wait()

        iterator = lines()
        try:
            yield iterator
        finally:
            await iterator.aclose()  # type: ignore[attr-defined]

    async def put_archive(self, container: str, path: str, tarball: bytes) -> None:
        found = await self._enter_container("put_archive", container)
        fs = found.fs
        base = path.rstrip("/")
        try:
            if fs.exists(path) and not fs.is_dir(path):
                raise BackendError(f"copy into {path!r} of {found.spec.name!r}: not a directory")
            fs.mkdir(path)
            with tarfile.open(fileobj=io.BytesIO(tarball)) as archive:
                for member in archive.getmembers():
                    target = f"{base}/{member.name.strip('/')}"
                    if member.isdir():
                        fs.mkdir(target)
                        continue
                    extracted = archive.extractfile(member) if member.isfile() else None
                    if extracted is not None:
                        fs.write(target, extracted.read())
        except PermissionError as exc:
            raise BackendError(f"copy into {path!r} of {found.spec.name!r}: {exc}") from exc
        except tarfile.TarError as exc:
            raise BackendError(f"copy into {found.spec.name!r}: not a tar archive") from exc

    async def get_archive(self, container: str, path: str) -> bytes:
        found = await self._enter_container("get_archive", container)
        fs = found.fs
        if not fs.exists(path):
            raise ObjectNotFoundError(f"no {path!r} in container {found.spec.name!r}")
        top = path.rstrip("/").rsplit("/", 1)[-1] or "/"
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as archive:

            def add(source: str, name: str) -> None:
                if fs.is_dir(source):
                    info = tarfile.TarInfo(name)
                    info.type = tarfile.DIRTYPE
                    info.mode = 0o755
                    archive.addfile(info)
                    for child in fs.listdir(source):
                        add(f"{source.rstrip('/')}/{child}", f"{name}/{child}")
                else:
                    data = fs.read(source)
                    info = tarfile.TarInfo(name)
                    info.size = len(data)
                    info.mode = 0o644
                    archive.addfile(info, io.BytesIO(data))

            add(path, top)
        return buffer.getvalue()

    async def is_directory(self, container: str, path: str) -> bool:
        found = await self._enter_container("is_directory", container)
        return found.fs.exists(path) and found.fs.is_dir(path)

    async def stats(self, container: str) -> ContainerStats | None:
        found = await self._enter_container("stats", container)
        if found.state is not RuntimeState.RUNNING:
            raise BackendError(f"container {found.spec.name!r} is not running")
        # No processes to measure: its "memory" is what its files hold.
        used = sum(len(data) for data in found.fs.root.values())
        return ContainerStats(cpu_seconds=0.0, memory_bytes=used)

    def events(
        self, labels: Mapping[str, str] | None = None
    ) -> AbstractAsyncContextManager[AsyncIterator[BackendEvent]]:
        return self._events(dict(labels or {}))

    async def past_events(
        self, labels: Mapping[str, str] | None = None, *, since: float | None = None
    ) -> list[BackendEvent]:
        await self._enter("past_events")
        wanted = dict(labels or {})
        return [
            event
            for event in self._history
            if (since is None or (event.time or 0.0) >= since)
            and all(event.labels.get(k) == v for k, v in wanted.items())
        ]

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
        known = self._find_pod(pod)
        if known is None:
            await self._enter("connect", pod)
        else:
            await self._enter("connect", known.spec.name, known.id)
        found = self._get_pod(pod)
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
