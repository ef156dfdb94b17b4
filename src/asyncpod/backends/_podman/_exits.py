"""Container exits from Podman's event stream: no thread waits on a container.

Every :class:`EventExitWatcher` of a backend shares one :class:`ExitHub`, and the hub
keeps one subscription to ``died`` and ``remove`` events, read by one task. A ``died``
event carries the exit code. What the stream cannot tell, inspections do:

- a container is inspected when it is watched, which reports an exit that came first and
  gives its start time, against which a late ``died`` event of its previous run (the
  file event logger delivers events ~0.2 s late) is told apart;
- on every subscription (the first, and a new one after the old stream ended), every
  watched container is inspected again, so that no exit between two streams is lost.

Podman 4.3's file event logger delivers a ``died`` event 0.1-0.5 s after the exit (its
cleanup process writes it, and the logger's tail polls the file every 250 ms). When asked
to (*poll_interval*), while any container is watched, the hub also lists the containers
that have exited, one request every *poll_interval* seconds: ``GET /containers/json``
filtered by status, the watched ones picked out here (Podman 4.3 compiles each value of an
``id`` filter as a regular expression for each container: 1.2 s of its CPU for 200 ids).
Whichever of the two sees an exit first reports it, once. A list counts only for the
containers watched before it was asked for, so that the exit of a run before the watched
one is never taken for its exit. It is off by default: with 200 containers it cost the
service about half a core and did not lower the latency on a loaded 2-core machine
(bench/README.md).

For a local service, the hub also reads conmon's exit files (*locate*): conmon writes a
container's exit code to ``<exit dir>/<container id>`` the moment its process is reaped,
0.1-0.5 s before Podman's ``died`` event, and Podman's cleanup removes the file soon after.
The directory (``--exit-dir`` of conmon, ``<tmp_dir>/exits``: ``/run/libpod/exits`` for
root, ``$XDG_RUNTIME_DIR/libpod/tmp/exits`` rootless) is read from the command line of the
first watched container's conmon (``/proc/<ConmonPid>/cmdline``), which also proves that it
is on this machine. While any container is watched, one worker thread lists the directory
every :data:`EXIT_FILE_INTERVAL` seconds; an exit file counts only for the containers
watched before that listing began, and only if it was written after the container's start
(its inspection), so that a file left by an earlier run is never taken for its exit. A file
that is empty (conmon is writing it) is read again at the next listing; a file removed
before it was read is missed there, and the event reports the exit instead.

The reading, polling and scanning tasks run in the task group of one of the open watchers;
when that watcher closes, another one takes them over (with a new subscription).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Awaitable, Callable, Collection
from typing import Any

import anyio
import anyio.abc
import anyio.to_thread

from ..._exceptions import BackendError, ObjectNotFoundError
from .._base import ContainerInfo, ExitWatcher, RuntimeState
from ._events import EventStream, event_fields, exit_code_of
from ._http import Transport

__all__ = ["EventExitWatcher", "ExitHub", "conmon_exit_dir", "read_exit_files"]

_log = logging.getLogger("asyncpod.podman")

_FILTERS = {"type": ["container"], "event": ["died", "remove"]}
# A died event stamped this long before the container's start (seconds) is of an earlier
# run. Podman stamps the event under the container's lock, before a new start can begin.
_CLOCK_SLACK = 0.001
#: Seconds between two lists of the containers that have exited (None: no lists).
POLL_INTERVAL: float | None = None
_EXITED = json.dumps({"status": ["exited", "stopped"]})
#: Seconds between two listings of conmon's exit directory.
EXIT_FILE_INTERVAL = 0.02
# An exit file written this long before the container's start (seconds, by its mtime) is
# of an earlier run; Podman stamps the start after the runtime started the process, which
# may have exited (and its file been written) by then.
_FILE_SLACK = 0.5
# How many watched containers are asked for their conmon's exit dir before giving up.
_LOCATE_TRIES = 3


def conmon_exit_dir(conmon_pid: int, container_id: str) -> str | None:
    """The ``--exit-dir`` of the conmon process *conmon_pid* of *container_id*, if that
    process runs on this machine (in this process's PID namespace) and the directory can
    be listed here; blocking (it reads ``/proc``)."""
    if conmon_pid <= 0 or not container_id:
        return None
    try:
        with open(f"/proc/{conmon_pid}/cmdline", "rb") as file:
            argv = [arg.decode(errors="replace") for arg in file.read().split(b"\0")]
    except OSError:
        return None  # gone, or not ours to read
    if container_id not in argv or "--exit-dir" not in argv:
        return None  # another process with that pid: not this machine's conmon
    index = argv.index("--exit-dir") + 1
    path = argv[index] if index < len(argv) else ""
    if not os.path.isabs(path) or not os.access(path, os.R_OK | os.X_OK):
        return None
    return path


def read_exit_files(directory: str, ids: Collection[str]) -> dict[str, tuple[int, float]]:
    """The exit codes (and the files' mtimes) that conmon wrote in *directory* for the
    containers *ids*: those whose file holds a number; blocking."""
    found: dict[str, tuple[int, float]] = {}
    try:
        entries = [entry for entry in os.scandir(directory) if entry.name in ids]
    except OSError as exc:
        _log.debug("listing %s failed: %s", directory, exc)
        return found
    for entry in entries:
        try:
            with open(entry.path, "rb") as file:
                mtime = os.fstat(file.fileno()).st_mtime
                text = file.read(32).strip()
        except OSError:
            continue  # removed meanwhile by Podman's cleanup: the event tells
        if text.lstrip(b"-").isdigit():
            found[entry.name] = (int(text), mtime)
        # else: empty, conmon is writing it; read again at the next listing
    return found


class _Watch:
    """One watched container: its watcher, and its start time once inspected."""

    __slots__ = ("early", "ident", "key", "listed_after", "scanned_after", "started_at", "watcher")

    def __init__(
        self, watcher: EventExitWatcher, key: str, listed_after: int, scanned_after: int
    ) -> None:
        self.watcher = watcher
        self.key = key
        self.listed_after = listed_after  # lists numbered up to this one were asked before
        self.scanned_after = scanned_after  # exit dir listings: likewise
        self.ident = ""  # the full id, once inspected
        self.started_at: float | None = None  # None until the first inspection answered
        self.early: list[tuple[float, int | None]] = []  # events seen before that


class ExitHub:
    """The exits of every container watched through one backend (see the module)."""

    def __init__(
        self,
        transport: Callable[[], Transport],
        inspect: Callable[[str], Awaitable[ContainerInfo]],
        poll_interval: float | None = POLL_INTERVAL,
        locate: Callable[[str], Awaitable[str | None]] | None = None,
    ) -> None:
        self._transport = transport
        self._inspect = inspect
        self._poll_interval = poll_interval
        # The exit dir of conmon, found by *locate* (given a running container) if it is on
        # this machine: "" while unknown, None when not to be read.
        self._locate = locate
        self._exit_dir: str | None = "" if locate is not None else None
        self._locate_tries = 0
        self._locating = False
        self._scans = 0  # listings of the exit dir begun so far (their numbers)
        self._file_exits = 0  # exits reported from an exit file (for bench/bench_exits.py)
        self._scannable: anyio.Event | None = None  # set when a scanner may have work
        self._watches: dict[str, _Watch] = {}
        self._watchers: list[EventExitWatcher] = []
        self._reader: EventExitWatcher | None = None  # whose task group reads the stream
        self._lists = 0  # list requests asked so far (their numbers)
        self._watched: anyio.Event | None = None  # set by watch(), for an idle poller

    def attach(self, watcher: EventExitWatcher) -> None:
        self._watchers.append(watcher)
        if self._reader is None:
            self._start_reader(watcher)

    def detach(self, watcher: EventExitWatcher) -> None:
        """Forget *watcher* and its containers; hand the reading over if it did it."""
        self._watchers.remove(watcher)
        for key in [key for key, watch in self._watches.items() if watch.watcher is watcher]:
            del self._watches[key]
        if self._reader is watcher:
            self._reader = None
            if self._watchers:
                self._start_reader(self._watchers[0])

    def _start_reader(self, watcher: EventExitWatcher) -> None:
        self._reader = watcher
        watcher.tg.start_soon(self._read, watcher)
        if self._poll_interval is not None:
            watcher.tg.start_soon(self._poll, watcher, self._poll_interval)
        if self._exit_dir is not None:
            watcher.tg.start_soon(self._scan, watcher, EXIT_FILE_INTERVAL)

    def watch(self, watcher: EventExitWatcher, container: str) -> None:
        watch = _Watch(watcher, container, self._lists, self._scans)
        self._watches[container] = watch
        watcher.tg.start_soon(self._check, watch)
        if self._watched is not None:
            self._watched.set()

    def _wake_scanner(self) -> None:
        if self._scannable is not None:
            self._scannable.set()

    async def _scan(self, reader: EventExitWatcher, interval: float) -> None:
        """Read the exit files of the watched containers, every *interval* seconds, while
        *reader* does the reading.

        A scanner handed over may still run a little (woken just before its cancellation,
        it resumes until its next checkpoint): it then stops, and leaves the event of the
        one that took over in place.
        """
        limiter = anyio.CapacityLimiter(1)  # its own thread, whatever else waits for one
        while self._exit_dir is not None and self._reader is reader:
            directory = self._exit_dir
            wanted = {
                watch.ident: watch
                for watch in self._watches.values()
                if watch.ident and watch.started_at is not None
            }
            if not directory or not wanted:
                scannable = self._scannable = anyio.Event()
                await scannable.wait()
                if self._scannable is scannable:
                    self._scannable = None
                continue
            self._scans += 1
            number = self._scans
            found = await anyio.to_thread.run_sync(
                read_exit_files, directory, frozenset(wanted), limiter=limiter
            )
            for ident, (exit_code, mtime) in found.items():
                watch = wanted[ident]
                assert watch.started_at is not None
                if number > watch.scanned_after and mtime >= watch.started_at - _FILE_SLACK:
                    if self._watches.get(watch.key) is watch:
                        self._file_exits += 1
                    self._report(watch, exit_code)
            await anyio.sleep(interval)

    async def _find_exit_dir(self, container: str) -> None:
        """Ask *locate* for the exit dir, given a running container."""
        if self._locate is None or self._locating:
            return
        self._locating = True
        try:
            directory = await self._locate(container)
        except Exception as exc:
            _log.debug("finding conmon's exit dir failed: %s", exc)
            directory = None
        finally:
            self._locating = False
        if self._exit_dir != "":
            return  # meanwhile found, or given up
        self._locate_tries += 1
        if directory:
            _log.debug("reading the exit files in %s", directory)
            self._exit_dir = directory
            self._wake_scanner()
        elif self._locate_tries >= _LOCATE_TRIES:
            _log.debug("no exit files to read: the exits come from events only")
            self._exit_dir = None
            self._wake_scanner()

    async def _poll(self, reader: EventExitWatcher, interval: float) -> None:
        """List the watched containers that have exited, every *interval* seconds, while
        *reader* does the reading (see :meth:`_scan`)."""
        while self._reader is reader:
            if not self._watches:
                watched = self._watched = anyio.Event()
                await watched.wait()
                if self._watched is watched:
                    self._watched = None
                continue
            try:
                await self._list_exited()
            except Exception as exc:
                # The event stream still reports every exit: only later.
                _log.debug("listing the exited containers failed: %s", exc)
            await anyio.sleep(interval)

    async def _list_exited(self) -> None:
        self._lists += 1
        number = self._lists
        reply = await self._transport().call(
            "GET", "/containers/json", params={"all": "true", "filters": _EXITED}
        )
        self._on_list(number, reply.json() or [])

    def _on_list(self, number: int, entries: list[dict[str, Any]]) -> None:
        for entry in entries:
            ident = str(entry.get("Id", ""))
            names = entry.get("Names") or []
            watch = self._watches.get(ident) or next(
                (self._watches[name] for name in names if name in self._watches), None
            )
            if watch is None or number <= watch.listed_after:
                continue  # asked before the watch: perhaps the exit of an earlier run
            exit_code = entry.get("ExitCode")
            if isinstance(exit_code, int):
                self._report(watch, exit_code)
            else:
                watch.watcher.tg.start_soon(self._check, watch)

    async def _read(self, watcher: EventExitWatcher) -> None:
        stream = EventStream(self._transport(), _FILTERS, on_subscribed=self._reconcile)
        try:
            await stream.subscribe()
            while True:
                self._on_event(await stream.next())
        except StopAsyncIteration:
            return
        except Exception as exc:
            # The others would wait for ever: they fail too.
            for other in self._watchers:
                if other is not watcher:
                    other.tg.start_soon(_fail, exc)
            raise
        finally:
            stream.close()

    def _reconcile(self) -> None:
        """A new subscription: look at every watched container again."""
        for watch in list(self._watches.values()):
            watch.watcher.tg.start_soon(self._check, watch)

    def _on_event(self, raw: dict[str, Any]) -> None:
        _, action, ident, attributes = event_fields(raw)
        watch = self._watches.get(ident) or self._watches.get(attributes.get("name", ""))
        if watch is None:
            return
        stamp = raw.get("timeNano")
        when = stamp / 1e9 if isinstance(stamp, int) else float("inf")
        exit_code = exit_code_of(attributes)
        if action == "died" and exit_code is None:
            watch.watcher.tg.start_soon(self._check, watch)  # learn the exit code there
        elif watch.started_at is None:
            watch.early.append((when, exit_code))
        elif when >= watch.started_at - _CLOCK_SLACK:
            self._report(watch, exit_code)

    async def _check(self, watch: _Watch) -> None:
        """Inspect a watched container: report its exit if it has exited."""
        try:
            info = await self._inspect(watch.key)
        except ObjectNotFoundError:
            self._report(watch, None)
            return
        if self._watches.get(watch.key) is not watch:
            return  # reported meanwhile
        if info.state is RuntimeState.EXITED:
            self._report(watch, info.exit_code)
            return
        if watch.started_at is None:
            watch.started_at = info.started_at or 0.0
            watch.ident = info.id
            early, watch.early = watch.early, []
            for when, exit_code in early:
                if when >= watch.started_at - _CLOCK_SLACK:
                    self._report(watch, exit_code)
                    return
            if self._exit_dir == "" and info.state is RuntimeState.RUNNING:
                await self._find_exit_dir(info.id)
            self._wake_scanner()

    def _report(self, watch: _Watch, exit_code: int | None) -> None:
        if self._watches.get(watch.key) is watch:
            del self._watches[watch.key]
            watch.watcher.report(watch.key, exit_code)


async def _fail(exc: Exception) -> None:
    try:
        copy = type(exc)(*exc.args)
    except Exception:
        copy = BackendError(str(exc))
    raise copy from exc


class EventExitWatcher(ExitWatcher):
    """An :class:`~asyncpod.backends.ExitWatcher` fed by an :class:`ExitHub`."""

    def __init__(self, hub: ExitHub, tg: anyio.abc.TaskGroup) -> None:
        super().__init__()
        self.hub = hub
        self.tg = tg

    def watch(self, container: str) -> None:
        self.hub.watch(self, container)
