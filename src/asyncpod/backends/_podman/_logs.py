"""Container logs from libpod's multiplexed stream, as lines of stdout and stderr."""

from __future__ import annotations

import datetime
import re
import struct
from collections.abc import AsyncIterator

from .._base import LogRecord
from ._errors import translate_errors
from ._http import HTTPStream

__all__ = ["FrameDecoder", "LineSplitter", "LogIterator", "format_time", "split_timestamp"]

_HEADER = struct.Struct(">BxxxI")
_STREAMS = {0: "stdout", 1: "stdout", 2: "stderr"}


#: the prefix of a line logged with ``timestamps=true``: RFC 3339, to the second up to Podman
#: 5.7, to the nanosecond from 5.8
_STAMP = re.compile(rb"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d) ?")


def split_timestamp(payload: bytes) -> tuple[float | None, bytes]:
    """The timestamp prefixing a log frame's *payload* (seconds since the epoch) and the
    rest; ``None`` and *payload* if it has none."""
    match = _STAMP.match(payload)
    if match is None:
        return None, payload
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction, zone = match.group(7), match.group(8)
    tz = datetime.timezone.utc
    if zone != b"Z":
        sign = -1 if zone[:1] == b"-" else 1
        tz = datetime.timezone(
            sign * datetime.timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
        )
    moment = datetime.datetime(year, month, day, hour, minute, second, tzinfo=tz).timestamp()
    return moment + (float(fraction) if fraction else 0.0), payload[match.end() :]


def format_time(seconds: float) -> str:
    """*seconds* since the epoch as RFC 3339 with microseconds, as Podman's ``since`` takes."""
    moment = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class FrameDecoder:
    """Split libpod's multiplexed stream (8-byte headers ``[stream,0,0,0,len BE]``)."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[str, bytes]]:
        """Add *data*; return the complete ``(stream, payload)`` frames it finishes."""
        self._buffer += data
        frames: list[tuple[str, bytes]] = []
        while len(self._buffer) >= _HEADER.size:
            kind, length = _HEADER.unpack_from(self._buffer)
            end = _HEADER.size + length
            if len(self._buffer) < end:
                break
            payload = bytes(self._buffer[_HEADER.size : end])
            del self._buffer[:end]
            frames.append((_STREAMS.get(kind, "stdout"), payload))
        return frames

    @property
    def pending(self) -> bytes:
        """Bytes of an incomplete frame left over."""
        return bytes(self._buffer)


class LineSplitter:
    """Cut payloads of one stream into lines, keeping a partial last line for later."""

    def __init__(self) -> None:
        self._partial = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self._partial += data
        *lines, rest = bytes(self._partial).split(b"\n")
        self._partial = bytearray(rest)
        return [line[:-1] if line.endswith(b"\r") else line for line in lines]

    @property
    def pending(self) -> bool:
        """Whether a partial line waits for its end."""
        return bool(self._partial)

    def flush(self) -> list[bytes]:
        if not self._partial:
            return []
        line = bytes(self._partial)
        self._partial.clear()
        return [line]


class LogIterator(AsyncIterator[LogRecord]):
    """Log lines of one container, stdout and stderr apart.

    With *timestamps*, each frame (one logged line, or a part of one) starts with its
    time, which is cut off and given to the line it starts (kept on the records with
    *keep_timestamps*).
    """

    def __init__(
        self,
        stream: HTTPStream,
        container: str,
        *,
        timestamps: bool = False,
        keep_timestamps: bool = False,
    ) -> None:
        self._stream = stream
        self._container = container
        self._timestamps = timestamps
        self._keep = keep_timestamps
        self._decoder = FrameDecoder()
        self._splitters = {"stdout": LineSplitter(), "stderr": LineSplitter()}
        #: the time of the line each stream has begun
        self._started: dict[str, float | None] = {"stdout": None, "stderr": None}
        self._ready: list[LogRecord] = []
        self._done = False

    def _record(self, kind: str, line: bytes, stamp: float | None) -> LogRecord:
        return LogRecord(kind, line, timestamp=stamp if self._keep else None)

    async def __anext__(self) -> LogRecord:
        while not self._ready:
            if self._done:
                raise StopAsyncIteration
            with translate_errors(f"logs of container {self._container!r}"):
                data = await self._stream.read()
            if not data:
                self._done = True
                for kind, splitter in self._splitters.items():
                    begun = self._started[kind]
                    self._ready.extend(self._record(kind, ln, begun) for ln in splitter.flush())
                continue
            for kind, payload in self._decoder.feed(data):
                stamp: float | None = None
                if self._timestamps:
                    stamp, payload = split_timestamp(payload)
                splitter = self._splitters[kind]
                if not splitter.pending:
                    self._started[kind] = stamp
                for line in splitter.feed(payload):
                    self._ready.append(self._record(kind, line, self._started[kind]))
                    self._started[kind] = stamp
        return self._ready.pop(0)
