"""Container logs from libpod's multiplexed stream, as lines of stdout and stderr."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator

from .._base import LogRecord
from ._errors import translate_errors
from ._http import HTTPStream

__all__ = ["FrameDecoder", "LineSplitter", "LogIterator"]

_HEADER = struct.Struct(">BxxxI")
_STREAMS = {0: "stdout", 1: "stdout", 2: "stderr"}


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

    def flush(self) -> list[bytes]:
        if not self._partial:
            return []
        line = bytes(self._partial)
        self._partial.clear()
        return [line]


class LogIterator(AsyncIterator[LogRecord]):
    """Log lines of one container, stdout and stderr apart."""

    def __init__(self, stream: HTTPStream, container: str) -> None:
        self._stream = stream
        self._container = container
        self._decoder = FrameDecoder()
        self._splitters = {"stdout": LineSplitter(), "stderr": LineSplitter()}
        self._ready: list[LogRecord] = []
        self._done = False

    async def __anext__(self) -> LogRecord:
        while not self._ready:
            if self._done:
                raise StopAsyncIteration
            with translate_errors(f"logs of container {self._container!r}"):
                data = await self._stream.read()
            if not data:
                self._done = True
                for kind, splitter in self._splitters.items():
                    self._ready.extend(LogRecord(kind, line) for line in splitter.flush())
                continue
            for kind, payload in self._decoder.feed(data):
                lines = self._splitters[kind].feed(payload)
                self._ready.extend(LogRecord(kind, line) for line in lines)
        return self._ready.pop(0)
