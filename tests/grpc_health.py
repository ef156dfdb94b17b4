"""A gRPC health server (grpc.health.v1.Health/Check) for tests, over plaintext HTTP/2 with h2.

:func:`serve_health` answers on one connection (any :class:`anyio.abc.ByteStream`: a fake
program's or a real socket's) with the status that *status_of* gives for the requested
service: a ``ServingStatus`` number, or ``None`` for a service it does not know
(``NOT_FOUND``, as the reference servers answer). Other methods are ``UNIMPLEMENTED``.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio
import anyio.abc
import h2.config
import h2.connection
import h2.events

from asyncpod._probes import grpc_frame

__all__ = ["serve_health", "service_of"]

HEALTH_CHECK = b"/grpc.health.v1.Health/Check"


def service_of(request: bytes) -> str:
    """The ``service`` of a HealthCheckRequest (a gRPC frame): field 1, a short string."""
    message = request[5:]
    if not message:
        return ""
    assert message[0] == 0x0A and message[1] < 0x80, message
    return message[2 : 2 + message[1]].decode()


async def serve_health(
    stream: anyio.abc.ByteStream,
    status_of: Callable[[str], int | None],
    seen: list[str] | None = None,
) -> None:
    """Serve health checks on *stream* until the client closes it; each requested
    service is appended to *seen*."""
    connection = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=False, header_encoding=None)
    )
    connection.initiate_connection()
    await stream.send(connection.data_to_send())
    paths: dict[int, bytes] = {}
    bodies: dict[int, bytes] = {}
    while True:
        try:
            data = await stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            return
        for event in connection.receive_data(data):
            if isinstance(event, h2.events.RequestReceived) and event.headers is not None:
                paths[event.stream_id] = dict(event.headers).get(b":path", b"")
                bodies[event.stream_id] = b""
            elif isinstance(event, h2.events.DataReceived):
                bodies[event.stream_id] += event.data
                connection.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                _answer(connection, event.stream_id, paths, bodies, status_of, seen)
            elif isinstance(event, h2.events.ConnectionTerminated):
                await stream.send(connection.data_to_send())
                return
        await stream.send(connection.data_to_send())


def _answer(
    connection: h2.connection.H2Connection,
    stream_id: int,
    paths: dict[int, bytes],
    bodies: dict[int, bytes],
    status_of: Callable[[str], int | None],
    seen: list[str] | None,
) -> None:
    headers = [(b":status", b"200"), (b"content-type", b"application/grpc")]
    if paths.get(stream_id) != HEALTH_CHECK:
        trailers = [(b"grpc-status", b"12"), (b"grpc-message", b"unknown method")]
        connection.send_headers(stream_id, headers + trailers, end_stream=True)
        return
    service = service_of(bodies[stream_id])
    if seen is not None:
        seen.append(service)
    status = status_of(service)
    if status is None:
        trailers = [(b"grpc-status", b"5"), (b"grpc-message", b"unknown%20service")]
        connection.send_headers(stream_id, headers + trailers, end_stream=True)
        return
    connection.send_headers(stream_id, headers)
    connection.send_data(stream_id, grpc_frame(b"\x08" + bytes([status]) if status else b""))
    connection.send_headers(stream_id, [(b"grpc-status", b"0")], end_stream=True)
