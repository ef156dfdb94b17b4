"""Probe and hook handlers, run by asyncpod itself (never by the engine's timers)."""

from __future__ import annotations

import logging
import os
import re
import ssl
import urllib.parse

import anyio
import anyio.abc
import attrs
import h2.config
import h2.connection
import h2.events
import h2.exceptions
from anyio.streams.tls import TLSStream

from ._exceptions import BackendError
from ._models import Container, ExecAction, HTTPGetAction, TCPSocketAction
from ._network import GRPCAction
from .backends._base import Backend

__all__ = ["ProbeResult", "check_exec", "check_grpc", "check_http", "check_tcp", "resolve_port"]

logger = logging.getLogger("asyncpod")

_USER_AGENT = "kube-probe/asyncpod"


#: What a request target may hold as it is (RFC 3986 pchar, '/', '?', and '%' escapes);
#: anything else is percent-encoded as UTF-8, as Go's net/url does for Kubernetes' probes.
_TARGET_SAFE = "/?:@!$&'()*+,;=-._~%"
_STRAY_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


def request_target(path: str) -> str:
    """The request target of *path*: ASCII, percent-encoded, without a fragment."""
    path = path.partition("#")[0]
    return _STRAY_PERCENT.sub("%25", urllib.parse.quote(path, safe=_TARGET_SAFE))


def _request(path: str, headers: dict[str, str]) -> bytes:
    """The bytes of a GET request, header values in UTF-8 as Go sends them."""
    lines = [f"GET {request_target(path)} HTTP/1.1"]
    # header names and values are validated: no CR, LF or other control character
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines += ["connection: close", "", ""]
    return "\r\n".join(lines).encode("utf-8")


def resolve_port(container: Container, port: int | str) -> int:
    """A probe port by number or by the name of one of *container*'s ports."""
    if isinstance(port, int):
        return port
    for declared in container.ports:
        if declared.name == port:
            return declared.container_port
    raise KeyError(port)  # validation of the model rules this out


@attrs.frozen
class ProbeResult:
    """A check's outcome; true if it passed. *reason* says why not, as the kubelet's
    events do: ``HTTP probe failed with statuscode: 503``, ``dial tcp :8080: connect:
    connection refused``, an exec probe's output."""

    passed: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.passed


PASSED = ProbeResult(True)


def _os_reason(exc: BaseException) -> str:
    """``connection refused`` for ECONNREFUSED, as Go's net package words it."""
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno).lower()
    return str(exc) or type(exc).__name__


async def check_exec(backend: Backend, container_id: str, action: ExecAction) -> ProbeResult:
    """Run the exec action in the container; exit code 0 is success."""
    try:
        result = await backend.exec(container_id, action.command)
    except BackendError as exc:
        logger.debug("exec probe in %s failed: %s", container_id, exc)
        return ProbeResult(False, f"exec failed: {exc}")
    if result.exit_code == 0:
        return PASSED
    # The kubelet's event carries the command's output; asyncpod adds the exit code.
    output = (result.stdout + result.stderr).decode("utf-8", "replace").strip()
    if len(output) > _OUTPUT_LIMIT:
        output = output[-_OUTPUT_LIMIT:]
    exited = f"command exited with {result.exit_code}"
    return ProbeResult(False, f"{exited}: {output}" if output else exited)


#: characters of an exec probe's output kept in its failure reason (the last ones)
_OUTPUT_LIMIT = 1024


async def check_tcp(
    backend: Backend, pod_id: str, container: Container, action: TCPSocketAction
) -> ProbeResult:
    """Open a TCP connection in the pod; success if it opens."""
    port = resolve_port(container, action.port)
    try:
        stream = await backend.connect(pod_id, port)
    except (OSError, BackendError) as exc:
        return ProbeResult(False, f"dial tcp :{port}: connect: {_os_reason(exc)}")
    await stream.aclose()
    return PASSED


async def check_http(
    backend: Backend, pod_id: str, container: Container, action: HTTPGetAction
) -> ProbeResult:
    """GET the action's path in the pod; success for 200 <= status < 400."""
    port = resolve_port(container, action.port)
    host = action.host or "localhost"
    url = f"{action.scheme.lower()}://{host}:{port}{request_target(action.path)}"
    try:
        stream: anyio.abc.ByteStream = await backend.connect(pod_id, port)
    except (OSError, BackendError) as exc:
        return ProbeResult(False, f'Get "{url}": dial tcp :{port}: connect: {_os_reason(exc)}')
    try:
        if action.scheme == "HTTPS":
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE  # Kubernetes does not verify probe certificates
            stream = await TLSStream.wrap(stream, ssl_context=context, standard_compatible=False)
        headers = {"host": action.host or "localhost", "user-agent": _USER_AGENT, "accept": "*/*"}
        for header in action.http_headers:
            if header.value:
                headers[header.name.lower()] = header.value
            else:
                headers.pop(header.name.lower(), None)  # an empty value removes a default
        await stream.send(_request(action.path, headers))
        response = b""
        while b"\r\n" not in response and len(response) < 8192:
            response += await stream.receive()
        parts = response.split(b"\r\n", 1)[0].split()
        status = int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else 0
        if 200 <= status < 400:
            return PASSED
        if status == 0:
            return ProbeResult(False, f'Get "{url}": malformed HTTP response')
        return ProbeResult(False, f"HTTP probe failed with statuscode: {status}")
    except (anyio.EndOfStream, anyio.BrokenResourceError) as exc:
        return ProbeResult(False, f'Get "{url}": {_os_reason(exc) if str(exc) else "EOF"}')
    except (OSError, ssl.SSLError, BackendError) as exc:
        return ProbeResult(False, f'Get "{url}": {_os_reason(exc)}')
    finally:
        with anyio.CancelScope(shield=True):
            await stream.aclose()


# gRPC: grpc.health.v1.Health/Check over plaintext HTTP/2 (h2c, with prior knowledge), as
# the kubelet's probe makes it. The messages are protobuf, encoded and decoded here: a
# HealthCheckRequest has one field, ``string service = 1``; a HealthCheckResponse one,
# ``ServingStatus status = 1``.

_HEALTH_CHECK = "/grpc.health.v1.Health/Check"
_CLOSED = (
    "error: health rpc probe failed: rpc error: code = Unavailable desc = the server closed "
    "the connection"
)
#: HealthCheckResponse.ServingStatus, by number
SERVING_STATUSES = ("UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN")
#: gRPC status codes, by number, named as Go's ``codes.Code`` prints them
_GRPC_CODES = (
    "OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound",
    "AlreadyExists", "PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted",
    "OutOfRange", "Unimplemented", "Internal", "Unavailable", "DataLoss", "Unauthenticated",
)  # fmt: skip
_UNIMPLEMENTED = 12
#: the largest response accepted (a HealthCheckResponse is a few bytes)
_MAX_RESPONSE = 65536


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def grpc_frame(message: bytes) -> bytes:
    """*message* as one gRPC length-prefixed message (not compressed)."""
    return b"\0" + len(message).to_bytes(4, "big") + message


def health_check_request(service: str) -> bytes:
    """The protobuf HealthCheckRequest for *service* (``""``: the server as a whole)."""
    data = service.encode("utf-8")
    return b"\x0a" + _varint(len(data)) + data if data else b""


def health_check_status(message: bytes) -> int:
    """The ``status`` of a protobuf HealthCheckResponse (0, UNKNOWN, when absent).

    Raises :class:`ValueError` for bytes that are no protobuf message.
    """
    status, at = 0, 0

    def varint() -> int:
        nonlocal at
        value = shift = 0
        while True:
            if at >= len(message) or shift > 63:
                raise ValueError("truncated varint")
            byte = message[at]
            at += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value

    while at < len(message):
        key = varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            value = varint()
            if number == 1:
                status = value
        elif wire == 1:
            at += 8
        elif wire == 2:
            length = varint()  # not ``at += varint()``: varint moves *at* first
            at += length
        elif wire == 5:
            at += 4
        else:
            raise ValueError(f"wire type {wire}")
        if at > len(message):
            raise ValueError("truncated field")
    return status


def _grpc_message(headers: dict[bytes, bytes]) -> str:
    return urllib.parse.unquote(headers.get(b"grpc-message", b"").decode("utf-8", "replace"))


async def _health_rpc(stream: anyio.abc.ByteStream, authority: str, service: str) -> ProbeResult:
    """One Health/Check call on *stream*, a new plaintext HTTP/2 connection."""
    connection = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=True, header_encoding=None)
    )
    connection.initiate_connection()
    stream_id = connection.get_next_available_stream_id()
    connection.send_headers(
        stream_id,
        [
            (b":method", b"POST"),
            (b":scheme", b"http"),
            (b":path", _HEALTH_CHECK.encode()),
            (b":authority", authority.encode()),
            (b"content-type", b"application/grpc"),
            (b"te", b"trailers"),
            (b"user-agent", _USER_AGENT.encode()),
        ],
    )
    connection.send_data(stream_id, grpc_frame(health_check_request(service)), end_stream=True)
    await stream.send(connection.data_to_send())
    headers: dict[bytes, bytes] = {}
    body = b""
    ended = False
    while not ended:
        data = await stream.receive()
        for event in connection.receive_data(data):
            if isinstance(event, (h2.events.ResponseReceived, h2.events.TrailersReceived)):
                if event.stream_id == stream_id and event.headers is not None:
                    headers.update((bytes(k), bytes(v)) for k, v in event.headers)
            elif isinstance(event, h2.events.DataReceived) and event.stream_id == stream_id:
                body += event.data
                connection.acknowledge_received_data(event.flow_controlled_length, stream_id)
                if len(body) > _MAX_RESPONSE:
                    return ProbeResult(False, "error: health rpc probe failed: response too large")
            elif isinstance(event, h2.events.StreamReset) and event.stream_id == stream_id:
                return ProbeResult(
                    False,
                    "error: health rpc probe failed: stream reset by the server "
                    f"(error code {event.error_code})",
                )
            elif isinstance(event, h2.events.ConnectionTerminated):
                return ProbeResult(False, _CLOSED)
            elif isinstance(event, h2.events.StreamEnded) and event.stream_id == stream_id:
                ended = True
        outgoing = connection.data_to_send()
        if outgoing:
            await stream.send(outgoing)
    http_status = headers.get(b":status", b"")
    if http_status != b"200":
        why = f"unexpected HTTP status code received from server: {http_status.decode()}"
        return ProbeResult(False, f"error: health rpc probe failed: {why}")
    code = (
        int(headers.get(b"grpc-status", b"2")) if headers.get(b"grpc-status", b"").isdigit() else 2
    )
    if code == _UNIMPLEMENTED:
        return ProbeResult(
            False,
            "error: this server does not implement the grpc health protocol "
            f"(grpc.health.v1.Health): {_grpc_message(headers)}",
        )
    if code != 0:
        name = _GRPC_CODES[code] if code < len(_GRPC_CODES) else f"Code({code})"
        return ProbeResult(
            False,
            f"error: health rpc probe failed: rpc error: code = {name} "
            f"desc = {_grpc_message(headers)}",
        )
    if len(body) < 5 or body[0] != 0 or int.from_bytes(body[1:5], "big") != len(body) - 5:
        return ProbeResult(False, "error: health rpc probe failed: malformed response message")
    try:
        status = health_check_status(body[5:])
    except ValueError as exc:
        return ProbeResult(False, f"error: health rpc probe failed: malformed response: {exc}")
    if status != 1:
        name = SERVING_STATUSES[status] if status < len(SERVING_STATUSES) else str(status)
        return ProbeResult(False, f'service unhealthy (responded with "{name}")')
    return PASSED


async def check_grpc(backend: Backend, pod_id: str, action: GRPCAction) -> ProbeResult:
    """Call grpc.health.v1.Health/Check for the action's service in the pod; success if
    the server answers SERVING, failure (with the kubelet's wording) for anything else."""
    address = f"localhost:{action.port}"
    try:
        stream = await backend.connect(pod_id, action.port)
    except (OSError, BackendError) as exc:
        return ProbeResult(
            False, f'error: failed to connect service at "{address}": {_os_reason(exc)}'
        )
    try:
        return await _health_rpc(stream, address, action.service or "")
    except (anyio.EndOfStream, anyio.BrokenResourceError):
        return ProbeResult(False, _CLOSED)
    except h2.exceptions.ProtocolError as exc:
        return ProbeResult(False, f"error: health rpc probe failed: HTTP/2 protocol error: {exc}")
    except (OSError, BackendError) as exc:
        return ProbeResult(False, f"error: health rpc probe failed: {_os_reason(exc)}")
    finally:
        with anyio.CancelScope(shield=True):
            await stream.aclose()
