"""The HTTP layer of the Podman backend: podman-py's clients in worker threads.

podman-py is synchronous, so every request runs in a worker thread (``anyio.to_thread``)
behind a :class:`anyio.CapacityLimiter` sized to the connection pool of the client it uses.
:class:`Transport` has four clients: one for short requests (with timeouts), one for long
ones (pulls) so that long requests never starve short ones, one for blocking waits, and
one for streams (exec sessions, logs, events) whose pool never keeps a connection.

Streams are read in worker threads too (``raw.read1``); closing one shuts its socket down
(``shutdown(SHUT_RDWR)``), which wakes a worker blocked in ``recv`` (a plain ``close()``
from another thread does not, on Linux). A stream owns its connection (:func:`detach`):
urllib3 would hand it back to its pool as soon as the body is complete, and shutting down
a pooled socket would cut off whichever request took it meanwhile.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import re
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

import anyio

from ._errors import PodmanStatusError, translate_errors

__all__ = ["HTTPStream", "Reply", "Transport", "is_read_timeout", "q"]

_log = logging.getLogger("asyncpod.podman")

PING_TIMEOUT = 5.0
#: how long a streaming GET waits for headers before it is sent again
_HEADER_WAIT = 1.0
_MAX_WAITS = 1024  # blocking waits under way at once (threads blocked on the service)


def q(name: str) -> str:
    """Quote an object name or id for a URL path (image names keep their slashes)."""
    return quote(name, safe="/:@")


#: tries of a list whose objects vanish while Podman lists them
_LIST_ATTEMPTS = 5
VANISHED = re.compile(r"no such |no (volume|pod|container) with (name|ID)", re.IGNORECASE)


class Reply:
    """A complete (non-streaming) HTTP answer."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, body: bytes, headers: Mapping[str, str]) -> None:
        self.status = status
        self.body = body
        self.headers = headers

    def json(self) -> Any:
        return json.loads(self.body) if self.body.strip() else None

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def is_read_timeout(exc: BaseException) -> bool:
    """Whether a podman-py failure is a read timeout (podman-py wraps it in APIError)."""
    from requests.exceptions import ReadTimeout

    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ReadTimeout):
            return True
        cause = cause.__cause__
    return False


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
        on_close: Callable[[HTTPStream], None] | None = None,
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

    async def send_input(self, data: bytes) -> None:
        """Write *data* to the other end, then close our sending side (a hijacked exec
        session's standard input: the process then reads end-of-file)."""
        sock = self._sock
        if sock is None:
            raise OSError("no socket under this stream to send standard input on")

        def send() -> None:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)

        await anyio.to_thread.run_sync(send, limiter=self._limiter, abandon_on_cancel=True)

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
            self._on_close(self)


def _make_client(url: str, pool: int) -> Any:
    from podman import PodmanClient

    return PodmanClient(base_url=url, max_pool_size=pool)


def _send_blocking(
    client: Any,
    method: str,
    path: str,
    params: Mapping[str, Any] | None,
    body: Any,
    timeout: tuple[float, float | None],
    stream: bool,
) -> Any:
    api = client.api
    kwargs: dict[str, Any] = {"params": params, "timeout": timeout, "stream": stream}
    if isinstance(body, bytes):
        kwargs["data"] = body
        kwargs["headers"] = {"Content-Type": "application/x-tar"}
    elif body is not None:
        kwargs["data"] = json.dumps(body)
        kwargs["headers"] = {"Content-Type": "application/json"}
    if method == "GET":
        return api.get(path, **kwargs)
    if method == "POST":
        return api.post(path, **kwargs)
    if method == "DELETE":
        return api.delete(path, **kwargs)
    if method == "PUT":
        return api.put(path, **kwargs)
    if method == "HEAD":
        return api.head(path, **kwargs)
    raise AssertionError(method)


def _call_blocking(
    client: Any,
    method: str,
    path: str,
    params: Mapping[str, Any] | None,
    body: Any,
    timeout: tuple[float, float | None],
) -> Reply:
    response = _send_blocking(client, method, path, params, body, timeout, False)
    try:
        return Reply(response.status_code, response.content, dict(response.headers))
    finally:
        response.close()


def _ping_blocking(client: Any) -> str:
    response = client.api.get("/_ping", timeout=(PING_TIMEOUT, PING_TIMEOUT))
    try:
        if response.status_code != 200:
            raise PodmanStatusError.from_body(response.status_code, response.content)
        return str(response.headers.get("Libpod-API-Version") or "")
    finally:
        response.close()


class Transport:
    """Requests and streams to one Podman service (see the module's docstring)."""

    def __init__(
        self,
        url: str,
        client: Any,
        *,
        pool_size: int,
        stream_pool_size: int,
        request_timeout: float,
    ) -> None:
        self.url = url
        self._timeout = request_timeout
        self._client = client
        self._long_client = _make_client(url, stream_pool_size)
        self._stream_client = _make_client(url, 1)
        self._wait_client = _make_client(url, _MAX_WAITS)
        self._limiter = anyio.CapacityLimiter(pool_size)
        self._long_limiter = anyio.CapacityLimiter(stream_pool_size)
        # A blocking wait holds a thread all along: waits have their own limiter, so that
        # they never make execs, log streams and pulls queue behind them.
        self._wait_limiter = anyio.CapacityLimiter(_MAX_WAITS)
        self._streams: set[HTTPStream] = set()

    @classmethod
    async def open(
        cls, url: str, *, pool_size: int, stream_pool_size: int, request_timeout: float
    ) -> tuple[Transport, str]:
        """Connect to *url* and ping it; the transport and the service's API version.

        Raises :class:`~asyncpod.BackendError` if the service does not answer.
        """
        client = _make_client(url, pool_size)
        try:
            with translate_errors(f"GET {url}/_ping"):
                version = await anyio.to_thread.run_sync(
                    _ping_blocking, client, abandon_on_cancel=True
                )
            transport = cls(
                url,
                client,
                pool_size=pool_size,
                stream_pool_size=stream_pool_size,
                request_timeout=request_timeout,
            )
        except BaseException:
            client.close()
            raise
        return transport, version

    def close(self) -> None:
        """Cut every open stream and close the clients."""
        for stream in list(self._streams):
            stream.close()
        for client in (self._client, self._long_client, self._stream_client, self._wait_client):
            with contextlib.suppress(Exception):
                client.close()

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        ok: Sequence[int] = (),
        read_timeout: float | None = -1.0,
        long: bool = False,
    ) -> Reply:
        """One request; an error status not in *ok* raises :class:`PodmanStatusError`.

        *read_timeout* ``None`` waits forever; a negative value means the default.
        """
        if read_timeout is not None and read_timeout < 0:
            read_timeout = self._timeout
        timeout = (PING_TIMEOUT, read_timeout)
        client = self._long_client if long else self._client
        limiter = self._long_limiter if long else self._limiter
        # A short call is waited for even when cancelled (it is bounded by its timeout), so
        # that an object it creates is never unknown to the caller's clean-up; a long call
        # (pull, import) is abandoned at once.
        reply: Reply = await anyio.to_thread.run_sync(
            functools.partial(_call_blocking, client, method, path, params, body, timeout),
            limiter=limiter,
            abandon_on_cancel=long,
        )
        if reply.status >= 400 and reply.status not in ok:
            raise PodmanStatusError.from_body(reply.status, reply.body)
        return reply

    async def list(self, path: str, params: Mapping[str, Any] | None = None) -> list[Any]:
        """``GET`` a list (``/pods/json``, ``/volumes/json``...), again when an object
        vanished while Podman listed it: Podman 4.3 fails the whole list ("no volume with
        name X", "no such pod") when another client removes one of them meanwhile."""
        for attempt in range(1, _LIST_ATTEMPTS + 1):
            try:
                items = (await self.call("GET", path, params=params)).json()
            except PodmanStatusError as exc:
                if attempt == _LIST_ATTEMPTS or not VANISHED.search(exc.message):
                    raise
                await anyio.sleep(0.05 * attempt)
                continue
            return list(items or [])
        raise AssertionError("unreachable")  # pragma: no cover

    async def call_waiting(
        self, method: str, path: str, *, params: Mapping[str, Any], read_timeout: float
    ) -> Reply | None:
        """A request that blocks on the service (``/wait``): its reply, or ``None`` if it
        did not answer within *read_timeout*. Abandoned at once when cancelled."""

        def call() -> Reply | None:
            try:
                return _call_blocking(
                    self._wait_client,
                    method,
                    path,
                    params,
                    None,
                    (PING_TIMEOUT, read_timeout),
                )
            except Exception as exc:
                if is_read_timeout(exc):
                    return None
                raise

        reply: Reply | None = await anyio.to_thread.run_sync(
            call, limiter=self._wait_limiter, abandon_on_cancel=True
        )
        if reply is not None and reply.status >= 400:
            raise PodmanStatusError.from_body(reply.status, reply.body)
        return reply

    async def open_stream(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
    ) -> HTTPStream:
        """Send a request and return its body as a stream once the headers arrived.

        The request goes out on a new connection, which the stream owns and closes: never a
        pooled keep-alive one (Podman takes an exec start's connection over), and never
        pooled again (closing the stream shuts its socket down). If the caller is cancelled
        before the headers arrive, the worker thread closes the response itself when they
        do, so no connection is left open.
        """
        lock = threading.Lock()
        abandoned = False

        def send() -> Any:
            # Podman sends no headers before the body's first bytes (a followed log of a
            # silent container: never), and a worker blocked there can be neither woken
            # nor joined at exit. So a GET waits for its headers a second at a time,
            # sent again until they come or the caller is gone; the body has no timeout.
            header_wait = _HEADER_WAIT if method == "GET" else None
            while True:
                try:
                    response = _send_blocking(
                        self._stream_client,
                        method,
                        path,
                        params,
                        body,
                        (PING_TIMEOUT, header_wait),
                        True,
                    )
                    break
                except Exception as exc:
                    if header_wait is None or not is_read_timeout(exc):
                        raise
                    with lock:
                        if abandoned:
                            raise
            detach(response)
            sock = socket_of(response)
            if sock is not None:
                sock.settimeout(None)
            if response.status_code >= 400:
                try:
                    raise PodmanStatusError.from_body(response.status_code, response.content)
                finally:
                    response.close()
            with lock:
                if abandoned:
                    response.close()
            return response

        try:
            response = await anyio.to_thread.run_sync(
                send, limiter=self._long_limiter, abandon_on_cancel=True
            )
        except BaseException:
            with lock:
                abandoned = True
            raise
        stream = HTTPStream(response, self._long_limiter, on_close=self._streams.discard)
        self._streams.add(stream)
        return stream
