"""Streaming libpod responses: read in worker threads, cancel by cutting the socket.

podman-py's own stream helpers are blocking generators that never hand back the response,
so they cannot be cancelled. Here the backend keeps the ``requests`` response, reads it
chunk by chunk in worker threads (``raw.read1``), and on close shuts the socket down
(``shutdown(SHUT_RDWR)``), which wakes a worker blocked in ``recv`` (a plain ``close()``
from another thread does not, on Linux).

A stream owns its connection (:func:`detach`): urllib3 would hand it back to its pool as
soon as the body is complete, and shutting down a pooled socket would cut off whichever
request took it meanwhile.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
from collections.abc import Callable
from typing import Any

import anyio

__all__ = ["FrameDecoder", "HTTPStream", "detach", "socket_of"]

_log = logging.getLogger("asyncpod.podman")

_HEADER = struct.Struct(">BxxxI")
_STREAMS = {0: "stdout", 1: "stdout", 2: "stderr"}


def socket_of(response: Any) -> socket.socket | None:
    """The socket under a streaming ``requests`` response (urllib3 2.x private attributes)."""
    raw = getattr(response, "raw", None)
    connection = getattr(raw, "_connection", None)
    sock = getattr(connection, "sock", None)
    if isinstance(sock, socket.socket):
        return sock
    fp = getattr(getattr(raw, "_fp", None), "fp", None)
    sock = getattr(getattr(fp, "raw", None), "_sock", None)
    return sock if isinstance(sock, socket.socket) else None


def detach(response: Any) -> None:
    """Keep the connection of a streaming ``requests`` response out of its pool for good.

    urllib3 returns a connection to its pool once the body has been read to the end (an
    empty body: at the first read), while the stream still holds its socket. Detached, the
    connection is the response's alone, and closing the response closes it (urllib3 2.x
    private attribute: without a pool, ``release_conn`` does nothing).
    """
    raw = getattr(response, "raw", None)
    if raw is not None and hasattr(raw, "_pool"):
        raw._pool = None


class HTTPStream:
    """An open streaming HTTP response whose body is read in worker threads.

    The response must be :func:`detach`-ed: :meth:`close` shuts its socket down.
    """

    def __init__(
        self,
        response: Any,
        limiter: anyio.CapacityLimiter,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self._response = response
        self._limiter = limiter
        self._sock = socket_of(response)
        self._closed = False
        self._on_close = on_close

    def _read_blocking(self) -> bytes:
        raw = self._response.raw
        data: bytes = raw.read1(65536)
        return data

    async def read(self) -> bytes:
        """The next chunk of the body, ``b""`` at its end (or once closed)."""
        if self._closed:
            return b""
        try:
            data = await anyio.to_thread.run_sync(
                self._read_blocking, limiter=self._limiter, abandon_on_cancel=True
            )
        except Exception:
            if self.closed:  # meanwhile: the reader thread may fail in any way
                return b""
            raise
        return b"" if self.closed else data  # closed meanwhile: the data may be cut

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def close(self) -> None:
        """Cut the connection (waking any reader thread) and release the response."""
        if self._closed:
            return
        self._closed = True
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
        try:
            self._response.close()
        except Exception:  # a reader thread may race us; nothing to do
            _log.debug("closing a Podman stream failed", exc_info=True)
        if self._on_close is not None:
            self._on_close()


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
