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

The reading and polling tasks run in the task group of one of the open watchers; when that
watcher closes, another one takes them over (with a new subscription).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.abc

from ..._exceptions import BackendError, ObjectNotFoundError
from .._base import ContainerInfo, ExitWatcher, RuntimeState
from ._events import EventStream, event_fields, exit_code_of
from ._http import Transport

__all__ = ["EventExitWatcher", "ExitHub"]

_log = logging.getLogger("asyncpod.podman")

_FILTERS = {"type": ["container"], "event": ["died", "remove"]}
# A died event stamped this long before the container's start (seconds) is of an earlier
# run. Podman stamps the event under the container's lock, before a new start can begin.
_CLOCK_SLACK = 0.001
#: Seconds between two lists of the containers that have exited (None: no lists).
POLL_INTERVAL: float | None = None
_EXITED = json.dumps({"status": ["exited", "stopped"]})


class _Watch:
    """One watched container: its watcher, and its start time once inspected."""

    __slots__ = ("early", "key", "listed_after", "started_at", "watcher")

    def __init__(self, watcher: EventExitWatcher, key: str, listed_after: int) -> None:
        self.watcher = watcher
        self.key = key
        self.listed_after = listed_after  # lists numbered up to this one were asked before
        self.started_at: float | None = None  # None until the first inspection answered
        self.early: list[tuple[float, int | None]] = []  # events seen before that


class ExitHub:
    """The exits of every container watched through one backend (see the module)."""

    def __init__(
        self,
        transport: Callable[[], Transport],
        inspect: Callable[[str], Awaitable[ContainerInfo]],
        poll_interval: float | None = POLL_INTERVAL,
    ) -> None:
        self._transport = transport
        self._inspect = inspect
        self._poll_interval = poll_interval
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
            watcher.tg.start_soon(self._poll, self._poll_interval)

    def watch(self, watcher: EventExitWatcher, container: str) -> None:
        watch = _Watch(watcher, container, self._lists)
        self._watches[container] = watch
        watcher.tg.start_soon(self._check, watch)
        if self._watched is not None:
            self._watched.set()

    async def _poll(self, interval: float) -> None:
        """List the watched containers that have exited, every *interval* seconds."""
        while True:
            if not self._watches:
                self._watched = anyio.Event()
                await self._watched.wait()
                self._watched = None
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
            early, watch.early = watch.early, []
            for when, exit_code in early:
                if when >= watch.started_at - _CLOCK_SLACK:
                    self._report(watch, exit_code)
                    return

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
