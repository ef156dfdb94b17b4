"""Probe and hook handlers, run by asyncpod itself (never by the engine's timers)."""

from __future__ import annotations

import logging
import re
import ssl
import urllib.parse

import anyio
import anyio.abc
from anyio.streams.tls import TLSStream

from ._exceptions import BackendError
from ._models import Container, ExecAction, HTTPGetAction, TCPSocketAction
from .backends._base import Backend

__all__ = ["check_exec", "check_http", "check_tcp", "resolve_port"]

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


async def check_exec(backend: Backend, container_id: str, action: ExecAction) -> bool:
    """Run the exec action in the container; exit code 0 is success."""
    try:
        result = await backend.exec(container_id, action.command)
    except BackendError as exc:
        logger.debug("exec probe in %s failed: %s", container_id, exc)
        return False
    return result.exit_code == 0


async def check_tcp(
    backend: Backend, pod_id: str, container: Container, action: TCPSocketAction
) -> bool:
    """Open a TCP connection in the pod; success if it opens."""
    try:
        stream = await backend.connect(pod_id, resolve_port(container, action.port))
    except (OSError, BackendError):
        return False
    await stream.aclose()
    return True


async def check_http(
    backend: Backend, pod_id: str, container: Container, action: HTTPGetAction
) -> bool:
    """GET the action's path in the pod; success for 200 <= status < 400."""
    try:
        stream: anyio.abc.ByteStream = await backend.connect(
            pod_id, resolve_port(container, action.port)
        )
    except (OSError, BackendError):
        return False
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
        return 200 <= status < 400
    except (OSError, anyio.EndOfStream, anyio.BrokenResourceError, ssl.SSLError, BackendError):
        return False
    finally:
        with anyio.CancelScope(shield=True):
            await stream.aclose()
