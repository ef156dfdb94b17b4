"""A fake container, the pod it belongs to, and the exit watcher they report to."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import anyio
import anyio.abc
from anyio.streams.memory import MemoryObjectSendStream

from ..._exceptions import ObjectNotFoundError
from ..._signal import Signal
from .._base import ContainerSpec, ExitWatcher, LogRecord, PodSpec, RuntimeState
from ._filesystem import _FileSystem, _MountEntry
from ._identity import proc_status
from ._program import FakeContext

if TYPE_CHECKING:
    from ._backend import FakeBackend

_SIGTERM = 15


class _Pod:
    def __init__(self, pid: str, spec: PodSpec) -> None:
        self.id = pid
        self.spec = spec
        self.containers: set[str] = set()
        self.listeners: dict[int, MemoryObjectSendStream[anyio.abc.ByteStream]] = {}
        #: how many of its non-init containers run (init containers can't be added then)
        self.running_apps = 0


class FakeContainer:
    """A fake container, as :meth:`FakeBackend.container` finds it for a test to inspect.

    Read, don't write: ``id``, ``spec`` (its :class:`~asyncpod.backends.ContainerSpec`),
    ``short_name`` (its name in the pod), ``state`` (a
    :class:`~asyncpod.backends.RuntimeState`), ``exit_code``, ``started_at`` and
    ``finished_at`` (Unix times), ``starts`` (how many times it started), ``logs`` (the
    :class:`~asyncpod.backends.LogRecord` list of every run), and :attr:`fs`, its files.
    """

    __slots__ = (
        "_fs", "cancel_scope", "changed", "context", "daemons", "exec_results", "exit_code",
        "finished_at", "id", "idle", "image_files", "image_user", "kill_code", "logs", "mounts",
        "short_name", "spec", "started_at", "starts", "state", "sysctls", "term_code", "watchers",
    )  # fmt: skip

    def __init__(
        self,
        cid: str,
        spec: ContainerSpec,
        image_files: dict[str, bytes],
        image_user: str = "",
        sysctls: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.id = cid
        self.spec = spec
        #: the name asyncpod gave it in its pod, else its own
        self.short_name: str = spec.short_name or spec.name
        self.state = RuntimeState.CREATED
        self.exit_code: int | None = None
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.image_files = image_files
        #: its image's ``USER`` ("" for root)
        self.image_user = image_user
        #: its pod's namespaced kernel parameters, under /proc/sys
        self.sysctls = sysctls
        self.mounts: list[_MountEntry] = []
        self._fs: _FileSystem | None = None  # built on first use: most containers never look
        self.logs: list[LogRecord] = []
        self.changed = Signal()
        self.context: FakeContext | None = None
        self.cancel_scope: anyio.CancelScope | None = None
        #: where the processes it runs in the background live (``httpd`` without ``-f``)
        self.daemons: anyio.abc.TaskGroup | None = None
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
            security = self.spec.security
            self._fs = _FileSystem(
                {
                    **self.image_files,
                    "proc/self/status": proc_status(security, self.image_user),
                    **{
                        "proc/sys/" + name.replace(".", "/"): f"{value}\n".encode()
                        for name, value in self.sysctls
                    },
                },
                self.mounts,
                read_only_root=security is not None and security.read_only_rootfs,
            )
        return self._fs

    @property
    def argv(self) -> tuple[str, ...]:
        """What it runs: its spec's command and args (empty: its image's own process)."""
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
        now = time.time()
        for line in data.splitlines() or [b""]:
            self.logs.append(LogRecord(stream, line, timestamp=now))
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
