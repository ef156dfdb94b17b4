"""The fake's network: in-memory TCP-like connections to the ports a pod listens on."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import TypeAlias

import anyio
import anyio.abc
import anyio.lowlevel
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

ConnectionHandler: TypeAlias = Callable[[anyio.abc.ByteStream], Awaitable[None]]


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
