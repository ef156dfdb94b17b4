"""The backend contract: what asyncpod's supervisor asks of a container engine.

A backend knows nothing of Kubernetes semantics (ordering, probes, restarts, phases): the
supervisor does all of that, identically for every backend. A backend creates and removes
objects, starts and stops containers, and reports what happened. The vocabulary follows
Podman's: a *pod* is an infra ("pause") container holding the network, IPC and UTS
namespaces that the pod's containers join; volumes are named objects created with the pod;
*init* containers are created in the pod before anything in it starts.

Rules every backend follows (the conformance suite in :mod:`asyncpod.testing` checks them):

- Every method is async, is a checkpoint, and can be cancelled; a cancelled call leaves no
  half-created object behind that the caller cannot find with :meth:`Backend.list_objects`.
- Every object a backend creates carries the labels it was given, so that leftovers can be
  found later by label.
- Removing something that no longer exists is not an error.
- Failures are raised as :class:`~asyncpod.BackendError` subclasses, translated in one place
  per backend, with the engine's own exception as ``__cause__``.
"""

from __future__ import annotations

import abc
import enum
import io
import math
import tarfile
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import TracebackType
from typing import TypeVar

import anyio.abc
import anyio.lowlevel
import attrs

from .._exceptions import BackendError, ImageError, ObjectNotFoundError
from .._models import FrozenDict, PullPolicy

__all__ = [
    "Backend",
    "BackendEvent",
    "ContainerExit",
    "ContainerInfo",
    "ContainerResources",
    "ContainerSecurity",
    "ContainerSpec",
    "ContainerStats",
    "ExitWatcher",
    "RuntimeState",
    "ExecResult",
    "LogRecord",
    "Mount",
    "OwnedObject",
    "PodSpec",
    "PortMapping",
    "VolumeFile",
    "VolumeSpec",
]


def _frozen_map(value: Mapping[str, str]) -> FrozenDict:
    return value if isinstance(value, FrozenDict) else FrozenDict(value)


@attrs.frozen(kw_only=True)
class PortMapping:
    """Publish *container_port* of the pod on the host (on a free port if *host_port* is 0)."""

    container_port: int
    host_port: int
    host_ip: str = ""
    protocol: str = "tcp"  # "tcp", "udp" or "sctp"


@attrs.frozen(kw_only=True)
class ContainerResources:
    """Resolved cgroup limits of a container (or of a whole pod): ``None`` means no limit.

    *cpu_quota* microseconds of CPU time per *cpu_period* (``limits.cpu``), *cpu_shares*
    the relative weight (``requests.cpu``), *memory_limit* and *memory_reservation* bytes,
    *pids_limit* processes.
    """

    cpu_quota: int | None = None
    cpu_period: int | None = None
    cpu_shares: int | None = None
    memory_limit: int | None = None
    memory_reservation: int | None = None
    pids_limit: int | None = None

    @property
    def limits(self) -> tuple[str, ...]:
        """The names of the hard limits set ("cpu", "memory", "pids"), for messages."""
        names = (
            ("cpu", self.cpu_quota),
            ("cpu shares", self.cpu_shares),
            ("memory", self.memory_limit),
            ("memory reservation", self.memory_reservation),
            ("pids", self.pids_limit),
        )
        return tuple(name for name, value in names if value is not None)


@attrs.frozen(kw_only=True)
class ContainerSecurity:
    """Resolved process identity and privileges of a container; ``None`` or empty keeps
    the engine's default.

    *user* is ``"uid"`` or ``"uid:gid"``; *groups* are supplementary group ids;
    *cap_add*/*cap_drop* capability names without ``CAP_`` (``"ALL"`` allowed);
    *seccomp* is ``"unconfined"``, ``"runtime/default"`` or a host path of a profile;
    *apparmor* ``"unconfined"``, ``"runtime/default"`` or a loaded profile's name;
    *unmasked_proc* leaves ``/proc`` unmasked.
    """

    user: str | None = None
    groups: tuple[int, ...] = ()
    privileged: bool = False
    no_new_privileges: bool = False
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    read_only_rootfs: bool = False
    seccomp: str | None = None
    apparmor: str | None = None
    unmasked_proc: bool = False


@attrs.frozen(kw_only=True)
class PodSpec:
    """What :meth:`Backend.create_pod` creates: the infra container and its namespaces."""

    name: str
    hostname: str
    labels: FrozenDict = attrs.field(converter=_frozen_map, factory=FrozenDict)
    ports: tuple[PortMapping, ...] = ()
    #: share the PID namespace too (Kubernetes ``shareProcessNamespace``)
    share_pid: bool = False
    #: limits of the pod as a whole (Kubernetes pod-level ``resources``); ``None``: none
    resources: ContainerResources | None = None
    #: namespaced kernel parameters of the pod's shared namespaces (Kubernetes ``sysctls``)
    sysctls: tuple[tuple[str, str], ...] = ()
    #: the containers use the host's network and UTS namespaces (Kubernetes
    #: ``hostNetwork``): they see the host's interfaces and host name, *hostname* and
    #: *ports* do not apply (their ports are the host's), *dns_** and *host_aliases* do
    host_network: bool = False
    #: the containers use the host's PID namespace (Kubernetes ``hostPID``)
    host_pid: bool = False
    #: the containers use the host's IPC namespace (Kubernetes ``hostIPC``)
    host_ipc: bool = False
    #: the resolver of the containers' ``/etc/resolv.conf``: with *dns_from_host*, the
    #: host's configuration, with *dns_servers* and *dns_searches* appended (duplicates
    #: dropped) and *dns_options* merged over it by name; without it, exactly these
    dns_from_host: bool = True
    dns_servers: tuple[str, ...] = ()
    dns_searches: tuple[str, ...] = ()
    #: ``name`` or ``name:value``, as in ``resolv.conf``'s ``options`` line
    dns_options: tuple[str, ...] = ()
    #: ``(ip, hostname)`` lines added to the containers' ``/etc/hosts``, in order
    host_aliases: tuple[tuple[str, str], ...] = ()
    #: volumes (ids from :meth:`Backend.create_volume`, created before the pod) the pod
    #: holds for its whole life: a *memory* volume's data is then kept from the pod's
    #: creation to its removal, shared by its containers, as Kubernetes keeps a
    #: ``medium: Memory`` emptyDir, not only while a container that mounts it runs
    volumes: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class VolumeFile:
    """A file a volume holds from the start (a ConfigMap's or Secret's key, say).

    Its data never shows in a repr: it may be a Secret's.
    """

    #: relative to the volume's root, without ``..``; parent directories are made
    path: str
    data: bytes = attrs.field(repr=False)
    mode: int = 0o644


@attrs.frozen(kw_only=True)
class VolumeSpec:
    """A named volume: owned by one pod (a Kubernetes ``emptyDir``, or a volume of
    *files*), or a claim (*claim*) that outlives it.

    A volume with *files* holds them before any container that mounts it starts, with
    their modes; with *memory* too (a Secret's files), nothing of them is written to disk
    and nothing is left once the volume is removed. A *claim* volume is reused if a
    volume of its name exists, created (empty, with *labels*) otherwise.
    """

    name: str
    labels: FrozenDict = attrs.field(converter=_frozen_map, factory=FrozenDict)
    #: keep the data in memory (tmpfs) instead of on disk
    memory: bool = False
    size_bytes: int | None = None
    files: tuple[VolumeFile, ...] = ()
    #: reuse an existing volume of this name (a PersistentVolumeClaim's)
    claim: bool = False
    #: the group that owns the volume (a pod's ``fsGroup``): its root directory is then
    #: group-owned by it, writable by all and set-group-ID (``drwxrwsrwx``, as the
    #: kubelet sets up an emptyDir for an fsGroup), so that what is made in it is the
    #: group's; a volume's *files* are root's and the group's, readable by the group
    #: (their directories set-group-ID); ``None``: the engine's default ownership
    group: int | None = None


@attrs.frozen(kw_only=True)
class Mount:
    """A mount of a container: a volume made by :meth:`Backend.create_volume`, a host
    path, or the files of an image (read-only)."""

    target: str
    #: id returned by :meth:`Backend.create_volume`; ``None`` for a host path
    volume: str | None = None
    #: the host path to bind-mount; ``None`` for a volume
    host_path: str | None = None
    #: Kubernetes ``hostPath.type``: "", "DirectoryOrCreate", "Directory", "FileOrCreate", ...
    host_path_type: str = ""
    #: the image whose files to mount (a Kubernetes ``image`` volume); present locally
    image: str | None = None
    read_only: bool = False
    sub_path: str | None = None
    #: Kubernetes ``mountPropagation``: "None" (private), "HostToContainer" (rslave) or
    #: "Bidirectional" (rshared); "" leaves the engine's default
    propagation: str = ""
    #: read-only submounts too (Kubernetes ``recursiveReadOnly``): "Enabled" (or fail),
    #: "IfPossible" (where the engine can), "" (only the mount itself)
    recursive_read_only: str = ""


@attrs.frozen(kw_only=True)
class ContainerSpec:
    """What :meth:`Backend.create_container` creates, with every reference resolved.

    *command* replaces the image's entrypoint and *args* its command: each ``None`` keeps
    the image's value; an empty tuple clears it.
    """

    name: str
    pod: str  # the id returned by create_pod
    image: str
    #: the container's name within its pod (Kubernetes' ``name``); empty means *name*
    short_name: str = ""
    command: tuple[str, ...] | None = None
    args: tuple[str, ...] | None = None
    env: tuple[tuple[str, str], ...] = ()
    working_dir: str | None = None
    mounts: tuple[Mount, ...] = ()
    #: a regular init container: created before anything in the pod starts, run to completion
    init: bool = False
    #: keep the container's standard input open (Kubernetes ``stdin``)
    stdin: bool = False
    #: give the container a terminal (Kubernetes ``tty``)
    tty: bool = False
    labels: FrozenDict = attrs.field(converter=_frozen_map, factory=FrozenDict)
    #: cgroup limits; ``None``: none
    resources: ContainerResources | None = None
    #: user, groups and privileges; ``None``: the engine's defaults
    security: ContainerSecurity | None = None
    #: the file the container may write its termination message to (Kubernetes'
    #: ``terminationMessagePath``), read by :meth:`Backend.read_termination_message`
    #: once it exited; ``None``: none
    termination_message_path: str | None = None


class RuntimeState(str, enum.Enum):
    """The state of a container as the engine sees it."""

    CREATED = "created"
    RUNNING = "running"
    EXITED = "exited"


@attrs.frozen(kw_only=True)
class ContainerInfo:
    """A snapshot of one container, from :meth:`Backend.inspect_container`."""

    id: str
    name: str
    state: RuntimeState
    #: the exit code of the last run; ``None`` until it first exits
    exit_code: int | None = None
    #: wall-clock times (seconds since the epoch) of the last start and exit
    started_at: float | None = None
    finished_at: float | None = None
    oom_killed: bool = False
    #: the image it was created from, as its spec named it (``None`` if not known)
    image: str | None = None


@attrs.frozen
class ExecResult:
    """The outcome of :meth:`Backend.exec`."""

    exit_code: int
    stdout: bytes = b""
    stderr: bytes = b""


@attrs.frozen
class LogRecord:
    """One log line of a container, without its line ending."""

    stream: str  # "stdout" or "stderr"
    data: bytes
    #: when the engine logged it (seconds since the epoch), given with ``timestamps=True``;
    #: Podman before 5.8 says it to the second. Not part of a record's equality.
    timestamp: float | None = attrs.field(default=None, kw_only=True, eq=False)

    @property
    def text(self) -> str:
        """The line decoded as UTF-8 (invalid bytes replaced)."""
        return self.data.decode("utf-8", "replace")


@attrs.frozen(kw_only=True)
class ContainerStats:
    """What a running container uses, from :meth:`Backend.stats`."""

    #: CPU time used so far, in seconds
    cpu_seconds: float
    #: memory in use now, in bytes
    memory_bytes: int
    #: the memory limit, if the engine knows one
    memory_limit_bytes: int | None = None


@attrs.frozen(kw_only=True)
class BackendEvent:
    """Something happened to an object: ``type`` is "pod", "container" or "volume"."""

    type: str
    #: "create", "start", "died", "remove" (backends may report more, e.g. "stop", "kill")
    action: str
    id: str
    name: str
    labels: FrozenDict = attrs.field(converter=_frozen_map, factory=FrozenDict)
    #: for "died": the exit code
    exit_code: int | None = None
    #: when it happened (seconds since the epoch), where the backend says; not part of
    #: an event's equality
    time: float | None = attrs.field(default=None, eq=False)


@attrs.frozen
class ContainerExit:
    """A watched container exited (see :class:`ExitWatcher`)."""

    container: str
    #: ``None`` if the container was removed before its exit was seen
    exit_code: int | None


class ExitWatcher(abc.ABC):
    """Reports the exits of the containers it is asked to watch.

    :meth:`Backend.watch_exits` opens one. Each call of :meth:`watch` is answered by one
    :class:`ContainerExit` from the watcher's async iterator, in the order the exits
    happen; the iterator never ends by itself. This is how the supervisor follows every
    container of a pod without a task waiting on each.
    """

    def __init__(self) -> None:
        self._send, self._receive = anyio.create_memory_object_stream[ContainerExit](math.inf)

    @abc.abstractmethod
    def watch(self, container: str) -> None:
        """Report the next exit of *container*, which the caller has just started.

        If it has exited already, that exit is reported. If it is removed before it
        exits, the report says ``exit_code=None`` -- unless the exit that the removal
        caused was seen first (137, killed).
        """

    def report(self, container: str, exit_code: int | None) -> None:
        """Deliver the exit of *container* to the iterator (for implementations)."""
        try:
            self._send.send_nowait(ContainerExit(container, exit_code))
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass  # closed: nobody listens any more

    def close(self) -> None:
        """Stop reporting (when the context of :meth:`Backend.watch_exits` ends)."""
        self._send.close()
        self._receive.close()

    def __aiter__(self) -> ExitWatcher:
        return self

    async def __anext__(self) -> ContainerExit:
        return await self._receive.receive()


class _WaitingExitWatcher(ExitWatcher):
    """Waits for each watched container with :meth:`Backend.wait_container`, a task each."""

    def __init__(self, backend: Backend, tg: anyio.abc.TaskGroup) -> None:
        super().__init__()
        self._backend = backend
        self._tg = tg

    def watch(self, container: str) -> None:
        self._tg.start_soon(self._wait, container)

    async def _wait(self, container: str) -> None:
        try:
            exit_code: int | None = await self._backend.wait_container(container)
        except ObjectNotFoundError:
            exit_code = None
        self.report(container, exit_code)


@attrs.frozen(kw_only=True)
class OwnedObject:
    """An object found by :meth:`Backend.list_objects`."""

    type: str  # "pod", "container" or "volume"
    id: str
    name: str
    labels: FrozenDict = attrs.field(converter=_frozen_map, factory=FrozenDict)
    #: for a container, the id of the pod it is in (``None`` if none): a container's
    #: labels may come from its image, so only its pod says whose it is
    pod: str | None = None


_B = TypeVar("_B", bound="Backend")


class Backend(abc.ABC):
    """A container engine that runs pods. Use it as an async context manager.

    Subclasses implement the abstract methods; the docstrings here are the contract, and
    :func:`asyncpod.testing.check_backend` runs it. A backend object may be shared by many
    pods and called from many tasks at once.
    """

    #: short name shown in logs and the CLI ("fake", "podman")
    name: str = "backend"

    @property
    def is_local(self) -> bool:
        """Whether the engine runs on this machine, for this process's user.

        When true, the process ids an engine's objects name (their owner's, say) are this
        machine's and were written by this user's processes, so they may be checked and
        signalled here. A remote engine (Podman over ``ssh://`` or ``tcp://``) returns
        false: a process of the same pid or a host of the same name may be another
        machine's; so does another user's engine (root using a rootless user's Podman),
        whose labels are that user's say-so. The default is false; a backend says true
        only when it knows.
        """
        return False

    async def reap(self) -> list[str]:
        """Stop and remove what this kind of backend itself started for owners that are
        gone (the Podman backend: private ``podman system service`` processes whose owner
        was killed), and describe each; objects of pods are not its business (see
        :func:`asyncpod.remove_orphans`). The default reaps nothing.
        """
        await anyio.lowlevel.checkpoint()
        return []

    async def import_image(
        self, reference: str, tarball: bytes, *, changes: Sequence[str] = ()
    ) -> None:
        """Import a root filesystem *tarball* (an uncompressed tar) as image *reference*.

        *changes* are Dockerfile instructions such as ``ENV PATH=/bin`` (``podman import
        --change``). An optional capability, for making images where no registry can be
        reached: the default raises :class:`~asyncpod.ImageError` saying this backend
        cannot import images.
        """
        await anyio.lowlevel.checkpoint()
        raise ImageError(reference, f"the {self.name} backend cannot import images")

    async def __aenter__(self: _B) -> _B:
        await self.aopen()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aopen(self) -> None:  # noqa: B027 - an optional hook, not abstract
        """Connect to the engine; called on ``async with`` entry.

        Raises :class:`~asyncpod.BackendUnavailableError` saying what was tried when no
        engine can be reached.
        """

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Release connections and anything the backend started; objects are left alone."""

    # Pods

    @abc.abstractmethod
    async def create_pod(self, spec: PodSpec) -> str:
        """Create the pod (its infra container and shared namespaces) and return its id.

        Nothing is started. The ports of *spec* are published on the host once the pod
        runs. Raises :class:`~asyncpod.ObjectExistsError` if the name is taken.
        """

    async def published_ports(self, pod: str) -> tuple[PortMapping, ...]:
        """The ports *pod* publishes, as the engine published them: a mapping created with
        ``host_port=0`` (publish on a free port the engine picks) has its real port here.

        The default raises :class:`~asyncpod.BackendError`: a backend that publishes
        ports says which.
        """
        raise BackendError(f"the {self.name} backend cannot tell the ports a pod published")

    @abc.abstractmethod
    async def remove_pod(self, pod: str) -> None:
        """Remove the pod, force-removing every container still in it, infra included."""

    # Volumes

    @abc.abstractmethod
    async def create_volume(self, spec: VolumeSpec) -> str:
        """Create a named volume and return its id (used in :class:`Mount`).

        It is empty, or holds ``spec.files`` by the time a container mounting it starts
        (every container of a pod is created before any starts). For ``spec.claim``, an
        existing volume of that name is returned as it is.
        """

    @abc.abstractmethod
    async def remove_volume(self, volume: str) -> None:
        """Remove the volume and its data. It must no longer be mounted."""

    async def pod_ip(self, pod: str) -> str:
        """The IP address of *pod* (``status.podIP``) as known before its containers
        start, or ``""`` when the engine assigns it only once the pod runs (the default)."""
        await anyio.lowlevel.checkpoint()
        return ""

    # Images

    @abc.abstractmethod
    async def image_exists(self, image: str) -> bool:
        """Whether *image* is present locally."""

    @abc.abstractmethod
    async def pull_image(self, image: str) -> None:
        """Pull *image*; raise :class:`~asyncpod.ImageError` naming it if that fails."""

    async def image_user(self, image: str) -> str | None:
        """The user the present *image* runs as (its ``USER``: ``""`` for root, else
        ``"name"``, ``"uid"`` or ``"uid:gid"`` as written), or ``None`` if the engine cannot
        say. Raises :class:`~asyncpod.ImageError` if the image is missing. The default
        cannot say."""
        await anyio.lowlevel.checkpoint()
        return None

    async def ensure_image(self, image: str, policy: PullPolicy) -> None:
        """Make *image* present according to *policy*.

        ``IfNotPresent`` pulls only a missing image, ``Always`` always pulls, ``Never``
        never pulls and raises :class:`~asyncpod.ImageError` for a missing image.
        """
        if policy is PullPolicy.ALWAYS:
            await self.pull_image(image)
        elif not await self.image_exists(image):
            if policy is PullPolicy.NEVER:
                raise ImageError(image, "not present locally and imagePullPolicy is Never")
            await self.pull_image(image)

    # Containers

    @abc.abstractmethod
    async def create_container(self, spec: ContainerSpec) -> str:
        """Create a container in pod ``spec.pod`` without starting it; return its id.

        Init containers (``spec.init``) must be created before any container of the pod
        has started. Raises :class:`~asyncpod.ImageError` if the image is missing and
        :class:`~asyncpod.ObjectExistsError` if the name is taken.

        ``spec.resources`` and ``spec.security`` are applied as given. Where the host cannot
        enforce a resource limit (rootless Podman on cgroup v1), the container is created
        without it and the backend logs one WARNING per pod naming what is not enforced.
        """

    @abc.abstractmethod
    async def start_container(self, container: str) -> None:
        """Start a created or exited container (its pod's infra starts with it).

        Returns once the process runs (it may have exited again already); starting a
        running container is not an error. An engine failure to start the process (no
        such executable, runtime error) raises :class:`~asyncpod.BackendError` with the
        engine's message.
        """

    @abc.abstractmethod
    async def stop_container(self, container: str, *, grace: float) -> int | None:
        """Send the stop signal, wait up to *grace* seconds for exit, then kill.

        Returns once the container has exited, with its exit code (``None`` for a
        container that never ran). Stopping a container that is not running is not an
        error: it returns the exit code of its last run.
        """

    async def stop_signal(self, container: str) -> int:
        """The signal :meth:`stop_container` sends first: the container's own (its image's
        ``STOPSIGNAL``), for a caller that stops it by :meth:`kill_container`. The default
        is ``SIGTERM`` (15)."""
        await anyio.lowlevel.checkpoint()
        return 15

    @abc.abstractmethod
    async def kill_container(self, container: str, *, signal: int = 9) -> None:
        """Send *signal* to the container's main process; not an error if it is not running."""

    @abc.abstractmethod
    async def remove_container(self, container: str) -> None:
        """Remove the container, killing it first if it runs."""

    @abc.abstractmethod
    async def wait_container(self, container: str) -> int:
        """Wait until the container is exited and return its exit code.

        Returns at once for an exited container; a created container is waited on until
        it has been started and has exited. Raises :class:`~asyncpod.ObjectNotFoundError`
        if it is removed meanwhile -- unless the wait saw the exit that the removal caused
        first, in which case it returns that exit code (137, killed).
        """

    def watch_exits(self) -> AbstractAsyncContextManager[ExitWatcher]:
        """Open an :class:`ExitWatcher` for the duration of the context.

        Leaving the context stops watching. The default waits for each watched container
        with :meth:`wait_container` in a task of its own, and lets a failure of such a
        wait (other than the container being removed) out of the context; a backend that
        can learn of exits without a task per container overrides this.
        """
        return self._waiting_exit_watcher()

    @asynccontextmanager
    async def _waiting_exit_watcher(self) -> AsyncIterator[ExitWatcher]:
        async with anyio.create_task_group() as tg:
            watcher = _WaitingExitWatcher(self, tg)
            try:
                yield watcher
            finally:
                tg.cancel_scope.cancel()
                watcher.close()

    @abc.abstractmethod
    async def inspect_container(self, container: str) -> ContainerInfo:
        """Return the container's current state."""

    @abc.abstractmethod
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
        """Run *argv* (no shell) in the running container; return exit code and output.

        *env* adds to (or overrides) the container's environment, *working_dir* replaces
        its working directory and *user* its user (``"name"``, ``"uid"`` or
        ``"uid:gid"``). *stdin* is the process's standard input, closed after it (without
        it, the process reads end-of-file). With *output*, each piece of output is passed
        to ``output(stream, data)`` (``"stdout"`` or ``"stderr"``) as it comes, and the
        result's ``stdout`` and ``stderr`` are empty.

        A missing executable gives exit code 127 (126 if not executable), as a shell
        would; a container that is not running raises :class:`~asyncpod.BackendError`.
        """

    @abc.abstractmethod
    def logs(
        self,
        container: str,
        *,
        follow: bool = False,
        tail: int | None = None,
        since: float | None = None,
        timestamps: bool = False,
    ) -> AbstractAsyncContextManager[AsyncIterator[LogRecord]]:
        """Open the container's log, stdout and stderr lines apart, oldest first.

        The log holds every run of the container: a restarted container's log goes on.
        *since* (seconds since the epoch) keeps the lines logged at that time or later,
        as precisely as the engine records them; *tail* keeps the last *tail* of the
        lines there are now (of those since *since*). With *timestamps*, each record
        carries its :attr:`LogRecord.timestamp`.

        With *follow*, the iterator then waits for new lines and ends when the container
        exits; without it, it ends after the lines there are now. Leaving the context, or
        cancelling, stops the stream promptly and frees its connection.
        """

    async def put_archive(self, container: str, path: str, tarball: bytes) -> None:
        """Unpack *tarball* (an uncompressed tar) into directory *path* of the container.

        The container may be running or not. A missing *path* is made (with its
        parents); one that is no directory or cannot be written (a read-only mount)
        raises :class:`~asyncpod.BackendError`. The default says this backend cannot.
        """
        await anyio.lowlevel.checkpoint()
        raise BackendError(f"the {self.name} backend cannot copy files into containers")

    async def get_archive(self, container: str, path: str) -> bytes:
        """*path* of the container (a file, or a directory and all in it) as a tar.

        The archive's one top-level entry is named after *path*'s last component, as
        ``podman cp`` makes it. A missing *path* raises
        :class:`~asyncpod.ObjectNotFoundError`. The default says this backend cannot.
        """
        await anyio.lowlevel.checkpoint()
        raise BackendError(f"the {self.name} backend cannot copy files out of containers")

    async def is_directory(self, container: str, path: str) -> bool:
        """Whether *path* of the container is a directory (following a link there);
        ``False`` if there is no such path. The default takes *path* out of the container
        with :meth:`get_archive` (a directory with all in it): a backend that can look at
        the path alone overrides it."""
        try:
            archive = await self.get_archive(container, path)
        except ObjectNotFoundError:
            return False
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            first = tar.next()
            return first is not None and first.isdir()

    async def read_termination_message(self, container: str, path: str) -> bytes:
        """What the exited *container* wrote to *path*, its termination message path.

        ``b""`` if it wrote nothing there (or nothing is there). A backend that keeps the
        file outside the container (where the container's own copy would be gone with
        it, as ``/dev`` is) reads it from there; the default takes the file out of the
        container with :meth:`get_archive`.
        """
        try:
            archive = await self.get_archive(container, path)
        except ObjectNotFoundError:
            return b""
        if not archive:  # Podman 4.3, just after an exit: an empty answer, not a tarball
            return b""
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            for member in tar:
                if member.isfile():
                    extracted = tar.extractfile(member)
                    return extracted.read() if extracted is not None else b""
        return b""

    async def stats(self, container: str) -> ContainerStats | None:
        """What the running container uses (CPU, memory), or ``None`` where the engine
        cannot tell (rootless Podman on cgroup v1 has no cgroup to read; the default)."""
        await anyio.lowlevel.checkpoint()
        return None

    @abc.abstractmethod
    def events(
        self, labels: Mapping[str, str] | None = None
    ) -> AbstractAsyncContextManager[AsyncIterator[BackendEvent]]:
        """Subscribe to events of objects carrying all of *labels*.

        The subscription is active once the context is entered: every event after that
        point is delivered, in order. The iterator never ends by itself.
        """

    async def past_events(
        self, labels: Mapping[str, str] | None = None, *, since: float | None = None
    ) -> list[BackendEvent]:
        """The events of objects carrying all of *labels* that happened at *since* (seconds
        since the epoch) or later, as far as the backend still knows them, oldest first,
        each with its :attr:`BackendEvent.time`. The default knows none."""
        await anyio.lowlevel.checkpoint()
        return []

    @abc.abstractmethod
    async def connect(self, pod: str, port: int) -> anyio.abc.ByteStream:
        """Open a TCP connection to *port* inside the pod's network namespace.

        This is how asyncpod's TCP and HTTP probes reach a pod, rootless or not. Raises
        :class:`OSError` (as :func:`anyio.connect_tcp` does) if nothing accepts.
        """

    @abc.abstractmethod
    async def list_objects(self, labels: Mapping[str, str]) -> list[OwnedObject]:
        """Every pod, container and volume carrying all of *labels*."""

    async def remove_objects(self, objects: list[OwnedObject]) -> None:
        """Remove *objects* (from :meth:`list_objects`): containers, then pods, then volumes.

        Every object is tried; the first failure is raised once all were. An object that
        is gone already (another client removed it meanwhile) counts as removed.
        """
        removers = {
            "container": self.remove_container,
            "pod": self.remove_pod,
            "volume": self.remove_volume,
        }
        failure: BackendError | None = None
        for kind, remove in removers.items():
            for obj in objects:
                if obj.type == kind:
                    try:
                        await remove(obj.id)
                    except ObjectNotFoundError:
                        pass
                    except BackendError as exc:
                        failure = failure or exc
        if failure is not None:
            raise failure
