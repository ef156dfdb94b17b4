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
from anyio.streams.tls import TLSStream

from ._exceptions import BackendError
from ._models import Container, ExecAction, HTTPGetAction, TCPSocketAction
from .backends._base import Backend

__all__ = ["ProbeResult", "check_exec", "check_http", "check_tcp", "resolve_port"]

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
