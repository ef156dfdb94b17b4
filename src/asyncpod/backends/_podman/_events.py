"""Podman's event stream: one subscription kept up across log rotations, and its events
as :class:`~asyncpod.backends.BackendEvent`.

Podman's file event logger (the one used without journald) tails a log that it rotates at
``events_logfile_max_size``, by replacing the file with its newer half. A subscription
without ``since`` is then sent that half again, old events included; one with ``since``
ends. So :class:`EventStream` subscribes with ``since`` (from the service's clock: it has
whole seconds, so events of up to a second before the subscription may come too) and,
when the stream ends, subscribes again from a little before the last event it read,
skipping the events it already had.
"""

from __future__ import annotations

import collections
import email.utils
import json
import logging
import re
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import anyio

from ..._exceptions import BackendUnavailableError, ObjectNotFoundError
from .._base import BackendEvent
from ._errors import translate_errors
from ._http import HTTPStream, Transport, q
from ._mapping import parse_time

__all__ = ["EventIterator", "EventStream", "label_filters", "matches"]

_log = logging.getLogger("asyncpod.podman")

_INFRA_NAME = re.compile(r"^[0-9a-f]{12}-infra$")
_EVENT_ATTRIBUTES = frozenset({"name", "image", "podId", "containerExitCode"})


def label_filters(labels: Mapping[str, str]) -> str:
    """A libpod ``filters`` parameter selecting objects with all of *labels*."""
    return json.dumps({"label": [f"{key}={value}" for key, value in labels.items()]})


def matches(have: Mapping[str, str], want: Mapping[str, str]) -> bool:
    """Whether the labels *have* include all of *want*."""
    return all(have.get(key) == value for key, value in want.items())


def is_infra(name: str) -> bool:
    """Whether *name* is that of a pod's infra container."""
    return _INFRA_NAME.match(name) is not None


class EventStream:
    """Raw libpod events (JSON objects) matching *filters*, from one subscription kept up.

    *on_subscribed* is called after each subscription, the first and every later one:
    events that happened while there was none may be missing.
    """

    # How far before the newest event read a new subscription starts: Podman stamps an
    # event before it takes the log's lock, so the log is in time order only roughly.
    _OVERLAP_NS = 2_000_000_000
    # Streams that end without a new event are subscribed again this often in a row.
    _EMPTY_ENDS = 10

    def __init__(
        self,
        transport: Transport,
        filters: Mapping[str, list[str]],
        on_subscribed: Callable[[], None] | None = None,
    ) -> None:
        self._transport = transport
        self._filters = json.dumps(dict(filters))
        #: the ``filters`` parameter of the subscription
        self.filters = self._filters
        self._on_subscribed = on_subscribed
        self._stream: HTTPStream | None = None
        self._since = 0  # seconds since the epoch; 0 until subscribed
        self._buffer = b""
        self._lines: list[bytes] = []
        # The lines read in the last _OVERLAP_NS before the newest event, for skipping them
        # when a new subscription sends them again.
        self._newest_ns = 0
        self._recent: collections.deque[tuple[int, bytes]] = collections.deque()
        self._recent_lines: set[bytes] = set()
        self._empty_ends = 0  # streams in a row that ended with no new event
        self._progress = False  # the stream sent a new event
        self._closed = False

    async def subscribe(self) -> None:
        """Subscribe from now on (by the service's clock)."""
        with translate_errors("subscribe to events"):
            date = (await self._transport.call("GET", "/_ping")).headers.get("Date")
            if date:
                self._since = int(email.utils.parsedate_to_datetime(date).timestamp())
            await self._open()

    async def _open(self) -> None:
        since = self._since
        if self._newest_ns:
            since = max(since, (self._newest_ns - self._OVERLAP_NS) // 1_000_000_000)
        params = {"stream": "true", "filters": self._filters}
        if since:
            params["since"] = str(since)
        stream = await self._transport.open_stream("GET", "/events", params=params)
        if self._closed:  # meanwhile, by another task
            stream.close()
            raise StopAsyncIteration
        self._stream = stream
        self._progress = False
        if self._on_subscribed is not None:
            self._on_subscribed()

    def close(self) -> None:
        """End the subscription; a reader waiting for an event ends too."""
        self._closed = True
        self._drop_stream()

    def _drop_stream(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    def _stream_ended(self) -> None:
        self._drop_stream()
        self._buffer = b""  # a cut line comes again, with the events after it
        self._empty_ends = 0 if self._progress else self._empty_ends + 1
        if self._empty_ends > self._EMPTY_ENDS:
            raise BackendUnavailableError("the Podman event stream keeps ending")
        _log.debug("the Podman event stream ended (its log was rotated?): subscribing again")

    async def _read(self) -> bytes:
        if self._stream is None:
            if self._empty_ends:  # the last stream sent nothing new: not at once
                await anyio.sleep(0.1)
            with translate_errors("subscribe to events"):
                await self._open()
            assert self._stream is not None
        with translate_errors("events"):
            return await self._stream.read()

    async def _next_line(self) -> bytes:
        while True:
            while not self._lines:
                if self._closed:
                    raise StopAsyncIteration
                data = await self._read()
                if self._closed:
                    raise StopAsyncIteration
                if not data:
                    self._stream_ended()
                    continue
                self._buffer += data
                *lines, self._buffer = self._buffer.split(b"\n")
                self._lines.extend(line for line in lines if line.strip())
            line = self._lines.pop(0)
            if line not in self._recent_lines:
                return line

    def _remember(self, line: bytes, raw: dict[str, Any]) -> None:
        """Note an event read, for skipping it should a new subscription send it again."""
        stamp = raw.get("timeNano")
        if not isinstance(stamp, int):
            return
        self._progress = True
        self._newest_ns = max(self._newest_ns, stamp)
        self._recent.append((stamp, line))
        self._recent_lines.add(line)
        horizon = self._newest_ns - self._OVERLAP_NS - 1_000_000_000
        while self._recent and self._recent[0][0] < horizon:
            self._recent_lines.discard(self._recent.popleft()[1])

    async def next(self) -> dict[str, Any]:
        """The next event not read before; :class:`StopAsyncIteration` once closed."""
        while True:
            line = await self._next_line()
            try:
                raw = json.loads(line)
            except ValueError:
                raw = None
            if not isinstance(raw, dict):
                _log.debug("skipping a malformed Podman event: %r", line)
                continue
            self._remember(line, raw)
            return raw


def event_fields(raw: Mapping[str, Any]) -> tuple[str, str, str, dict[str, str]]:
    """Type, action, id and attributes of a raw libpod event."""
    kind = str(raw.get("Type") or "")
    action = str(raw.get("Action") or raw.get("status") or "")
    actor = raw.get("Actor")
    actor = actor if isinstance(actor, dict) else {}
    attributes = actor.get("Attributes")
    attributes = attributes if isinstance(attributes, dict) else {}
    ident = str(actor.get("ID") or raw.get("id") or "")
    return kind, action, ident, {str(k): str(v) for k, v in attributes.items()}


def exit_code_of(attributes: Mapping[str, str]) -> int | None:
    """The exit code a ``died`` event carries, if any."""
    code = attributes.get("containerExitCode", "")
    return int(code) if code.lstrip("-").isdigit() else None


class EventIterator(AsyncIterator[BackendEvent]):
    """Podman events of containers, pods and volumes carrying the wanted labels.

    Podman 4.3 puts labels on container events only (pod and volume events carry just the
    name), so the labels of pods and volumes are looked up (and cached) by this iterator;
    events of the pods' infra containers are left out.

    Volume events carry only the name, and a pod's volumes have the same names in every
    run of that pod: an event older than the volume of that name that there is now (its
    ``CreatedAt``) is one of an earlier volume, and left out.
    """

    def __init__(self, transport: Transport, labels: dict[str, str]):
        self._transport = transport
        self._labels = labels
        self._events = EventStream(transport, {"type": ["container", "pod", "volume"]})
        self._known: dict[tuple[str, str], dict[str, str]] = {}
        self._volume_created: dict[str, float] = {}  # by name: the volume there is now

    async def subscribe(self) -> None:
        """Subscribe from now on, and remember the labels of the pods and volumes there are."""
        await self._events.subscribe()
        await self._learn_labels()

    async def past(self, since: float | None) -> list[BackendEvent]:
        """The events Podman's event log holds since *since* (seconds since the epoch;
        ``None``: all), oldest first."""
        await self._learn_labels()
        params = {"stream": "false", "filters": self._events.filters}
        if since is not None:
            params["since"] = f"{since:.9f}"
        with translate_errors("read past events"):
            reply = await self._transport.call("GET", "/events", params=params)
        found = []
        for line in reply.body.splitlines():
            try:
                raw = json.loads(line)
            except ValueError:
                continue
            if isinstance(raw, dict):
                # the pods and volumes there are, and their labels, were just listed:
                # one not among them is gone or not wanted, no need to ask (nor to forget
                # one at its remove: an earlier volume of its name may be the one removed)
                event = await self._convert(raw, look_up=False)
                if event is not None and matches(event.labels, self._labels):
                    found.append(event)
        # Podman stamps an event before it takes the log's lock: the log is in time order
        # only roughly
        found.sort(key=lambda event: event.time or 0.0)
        return found

    async def _learn_labels(self) -> None:
        """Remember the labels of the pods and volumes there are."""
        params = {"filters": label_filters(self._labels)} if self._labels else {}
        with translate_errors("subscribe to events"):
            pods = await self._transport.list("/pods/json", params)
            for pod in pods or []:
                labels = dict(pod.get("Labels") or {})
                self._known["pod", pod["Id"]] = labels
                self._known["pod", pod["Name"]] = labels
            volumes = await self._transport.list("/volumes/json", params)
            for vol in volumes or []:
                self._known["volume", vol["Name"]] = dict(vol.get("Labels") or {})
                created = parse_time(vol.get("CreatedAt"))
                if created is not None:
                    self._volume_created[vol["Name"]] = created

    def close(self) -> None:
        """End the subscription; a reader waiting for an event ends too."""
        self._events.close()

    async def __anext__(self) -> BackendEvent:
        while True:
            event = await self._convert(await self._events.next())
            if event is not None and matches(event.labels, self._labels):
                return event

    async def _object_labels(self, kind: str, ident: str) -> dict[str, str] | None:
        """Labels of a pod or volume, or ``None`` if it is gone."""
        path = f"/pods/{q(ident)}/json" if kind == "pod" else f"/volumes/{q(ident)}/json"
        reply = await self._transport.call("GET", path, ok=(404,))
        if reply.status == 404:
            return None
        data = reply.json() or {}
        return dict(data.get("Labels") or {})

    async def _convert(self, raw: dict[str, Any], *, look_up: bool = True) -> BackendEvent | None:
        """*raw* as an event, ``None`` if it is not one to report. *look_up*: ask for the
        labels of a pod or volume not known yet, and forget them at its ``remove``
        (``False``: the labels known are only read)."""
        kind, action, ident, attributes = event_fields(raw)
        nanos = raw.get("timeNano")
        when = nanos / 1e9 if isinstance(nanos, int) else None
        name = attributes.get("name", ident)
        if kind == "container":
            if is_infra(name):
                return None
            ctr_labels = {k: v for k, v in attributes.items() if k not in _EVENT_ATTRIBUTES}
            return BackendEvent(
                type="container",
                action=action,
                id=ident,
                name=name,
                labels=ctr_labels,
                exit_code=exit_code_of(attributes) if action == "died" else None,
                time=when,
            )
        if kind not in ("pod", "volume"):
            return None
        if kind == "volume":
            ident = name
            if when is not None and when < self._volume_created.get(ident, when):
                return None  # of an earlier volume of that name
        labels: dict[str, str] | None = self._known.get((kind, ident))
        if labels is None and action != "remove" and look_up:
            try:
                with translate_errors(f"inspect {kind} {name!r}"):
                    labels = await self._object_labels(kind, ident)
            except ObjectNotFoundError:
                labels = None  # removed meanwhile
            if labels is not None:
                self._known[kind, ident] = labels
        if labels is None:
            return None
        if action == "remove" and look_up:
            self._known.pop((kind, ident), None)
        return BackendEvent(type=kind, action=action, id=ident, name=name, labels=labels, time=when)
