"""The Podman backend: asyncpod's contract over the libpod REST API, through podman-py.

podman-py is synchronous, so every call runs in a worker thread (``anyio.to_thread``)
behind a :class:`anyio.CapacityLimiter` sized to the connection pool of the client it uses.
There are four clients: one for short requests (with timeouts), one for long ones (pulls)
so that long requests never starve short ones, one for waits (a running container is
waited on all its life), and one for streams (exec sessions, logs, events) whose pool never
keeps a connection: each stream opens its own and closes it at the end (see
:mod:`._podman_stream`). Where podman-py's typed API is wrong or missing (see
``shared/reference/podman-api.md``), raw libpod JSON goes through ``client.api``.

Failures are translated in one place, :func:`._podman_errors.translate_errors`.
"""

from __future__ import annotations

import collections
import contextlib
import email.utils
import functools
import json
import logging
import os
import re
import signal
import socket
import stat
import threading
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta, timezone
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

import anyio
import anyio.abc

from .._exceptions import BackendError, BackendUnavailableError, ImageError, ObjectNotFoundError
from ._base import (
    Backend,
    BackendEvent,
    ContainerInfo,
    ContainerSpec,
    ExecResult,
    LogRecord,
    Mount,
    OwnedObject,
    PodSpec,
    RuntimeState,
    VolumeSpec,
)
from ._podman_errors import PodmanStatusError, translate_errors
from ._podman_netns import connect_in_netns
from ._podman_service import candidate_urls, is_local_unix, podman_binary, service_argv, unix_path
from ._podman_stream import FrameDecoder, HTTPStream, LineSplitter, detach, socket_of

__all__ = ["PodmanBackend"]

_log = logging.getLogger("asyncpod.podman")

_SUBPATH_VERSION = (4, 4, 0)
_TMPFS_SIZE_VERSION = (4, 8, 0)
_WAIT_SLICE = 10.0  # seconds one wait request may block before it is re-issued
_MAX_WAITS = 1024  # waits under way at once (threads blocked on the service)
_CREATED_POLL = 0.2  # seconds between checks whether a waited-on container has started
# Podman 4.3 answers POST /wait about 0.25 s after the exit, while inspect shows it within
# ~10 ms: poll the state first, backing off, then fall back to the blocking wait (which
# costs nothing while a long-running container runs).
_EXIT_POLLS = (0.01, 0.01, 0.02, 0.02, 0.04, 0.05, 0.1, 0.1, 0.2, 0.2, 0.25, 0.25, 0.25, 0.25)
_PING_TIMEOUT = 5.0
#: how long a streaming GET waits for headers before it is sent again
_HEADER_WAIT = 1.0
_SERVICE_START_TIMEOUT = 10.0
_INFRA_NAME = re.compile(r"^[0-9a-f]{12}-infra$")
# How Podman says that a pod's infra container did not run as a member of the pod started.
_NO_NAMESPACE = "cannot get namespace path unless container"
_EVENT_ATTRIBUTES = frozenset({"name", "image", "podId", "containerExitCode"})
_TIMESTAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:[.,](\d+))?(Z|[+-]\d\d:?\d\d)?$")
_STATES = {
    "configured": RuntimeState.CREATED,
    "created": RuntimeState.CREATED,
    "initialized": RuntimeState.CREATED,
    "running": RuntimeState.RUNNING,
    "paused": RuntimeState.RUNNING,
    "stopping": RuntimeState.RUNNING,
    "exited": RuntimeState.EXITED,
    "stopped": RuntimeState.EXITED,
    "removing": RuntimeState.EXITED,
}
_NOT_FOUND_EXEC = ("executable file not found", "no such file or directory", "not found")


def _stop_signal(inspect: Mapping[str, Any]) -> int:
    """The container's stop signal: an int in Podman 4, a name like "SIGTERM" in 5."""
    value = (inspect.get("Config") or {}).get("StopSignal")
    if isinstance(value, int) and value > 0:
        return value
    if isinstance(value, str) and value:
        name = value.upper()
        name = name if name.startswith("SIG") else f"SIG{name}"
        try:
            return int(signal.Signals[name])
        except KeyError:
            if value.isdigit():
                return int(value)
    return int(signal.SIGTERM)


def _q(name: str) -> str:
    """Quote an object name or id for a URL path (image names keep their slashes)."""
    return quote(name, safe="/:@")


def _parse_version(text: str) -> tuple[int, ...]:
    numbers = re.findall(r"\d+", text.split("-")[0])
    return tuple(int(n) for n in numbers[:3]) or (0,)


def _parse_time(text: object) -> float | None:
    """Podman's RFC 3339 timestamps (nanosecond fractions) as epoch seconds; ``None`` if unset."""
    if not isinstance(text, str) or not text or text.startswith("0001-01-01"):
        return None
    match = _TIMESTAMP.match(text.strip())
    if match is None:
        return None
    moment = datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S")
    zone = match.group(3) or "Z"
    if zone == "Z":
        tz = timezone.utc
    else:
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    fraction = float(f"0.{match.group(2)}") if match.group(2) else 0.0
    return moment.replace(tzinfo=tz).timestamp() + fraction


def _label_filters(labels: Mapping[str, str]) -> str:
    return json.dumps({"label": [f"{key}={value}" for key, value in labels.items()]})


def _matches(have: Mapping[str, str], want: Mapping[str, str]) -> bool:
    return all(have.get(key) == value for key, value in want.items())


def _is_read_timeout(exc: BaseException) -> bool:
    """Whether a podman-py failure is a read timeout (podman-py wraps it in APIError)."""
    from requests.exceptions import ReadTimeout

    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ReadTimeout):
            return True
        cause = cause.__cause__
    return False


def _json_objects(body: bytes) -> list[Any]:
    """Every JSON value in *body* (Podman streams several, one after another)."""
    text = body.decode("utf-8", "replace")
    decoder = json.JSONDecoder()
    values: list[Any] = []
    index = 0
    while True:
        while index < len(text) and text[index].isspace():
            index += 1
        if index >= len(text):
            return values
        try:
            value, index = decoder.raw_decode(text, index)
        except ValueError:
            return values
        values.append(value)


class _Reply:
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


class PodmanBackend(Backend):
    """Run pods on Podman (4.3 or later) through its libpod REST API.

    *url* is the service to use (``unix://``, ``tcp://`` or ``ssh://``). Without it,
    ``CONTAINER_HOST`` is used, then this user's rootless socket
    (``$XDG_RUNTIME_DIR/podman/podman.sock``) or, for root, ``/run/podman/podman.sock``. If
    none answers and *start_service* is true, a private ``podman system service`` is
    started and stopped again by :meth:`~asyncpod.backends.Backend.aclose`.
    """

    name = "podman"

    def __init__(
        self,
        url: str | None = None,
        *,
        pool_size: int = 10,
        stream_pool_size: int = 64,
        request_timeout: float = 60.0,
        start_service: bool = True,
    ) -> None:
        self._requested_url = url
        self._pool_size = max(1, pool_size)
        self._stream_pool_size = max(1, stream_pool_size)
        self._timeout = request_timeout
        self._start_service = start_service
        self._url: str | None = None
        self._client: Any = None
        self._long_client: Any = None
        self._stream_client: Any = None
        self._wait_client: Any = None
        self._limiter = anyio.CapacityLimiter(self._pool_size)
        self._long_limiter = anyio.CapacityLimiter(self._stream_pool_size)
        # A running container is waited on all its life (a blocked thread each): waits
        # have their own limiter, so that a pod of many containers never makes execs,
        # log streams and pulls queue behind them.
        self._wait_limiter = anyio.CapacityLimiter(_MAX_WAITS)
        self._version: tuple[int, ...] = (0,)
        self._version_text = ""
        self._service: anyio.abc.Process | None = None
        self._service_dir: Path | None = None
        self._tunnel: Any = None  # an ssh:// service's _podman_ssh.SSHTunnel
        self._streams: set[HTTPStream] = set()

    # Connection

    @property
    def url(self) -> str | None:
        """The URL of the service in use (after :meth:`~asyncpod.backends.Backend.aopen`)."""
        return self._url

    @property
    def is_local(self) -> bool:
        """True for a service on a unix socket of this machine; false over ``ssh://`` or
        ``tcp://``, and before :meth:`~asyncpod.backends.Backend.aopen`."""
        return self._url is not None and is_local_unix(self._url)

    @property
    def server_version(self) -> str:
        """The server's ``Libpod-API-Version`` (after :meth:`~asyncpod.backends.Backend.aopen`)."""
        return self._version_text

    @property
    def _local_socket(self) -> str | None:
        return unix_path(self._url) if self._url else None

    def _make_client(self, url: str, pool: int) -> Any:
        from podman import PodmanClient

        return PodmanClient(base_url=url, max_pool_size=pool)

    def _ping_blocking(self, client: Any) -> str:
        response = client.api.get("/_ping", timeout=(_PING_TIMEOUT, _PING_TIMEOUT))
        try:
            if response.status_code != 200:
                raise PodmanStatusError.from_body(response.status_code, response.content)
            return str(response.headers.get("Libpod-API-Version") or "")
        finally:
            response.close()

    async def _try_url(self, url: str) -> str | None:
        """Connect to *url*; return ``None`` on success, else why it failed."""
        if url.startswith(("ssh://", "http+ssh://")):
            return await self._try_ssh(url)
        path = unix_path(url)
        if path is not None:
            # podman-py leaks the socket of a failed unix connect: probe it ourselves first
            failure = await anyio.to_thread.run_sync(_probe_unix, path)
            if failure is not None:
                return f"{url}: {failure}"
        try:
            client = self._make_client(url, self._pool_size)
        except Exception as exc:  # reported in BackendUnavailableError
            return f"{url}: {exc}"
        try:
            with translate_errors(f"GET {url}/_ping"):
                version = await anyio.to_thread.run_sync(
                    self._ping_blocking, client, abandon_on_cancel=True
                )
        except BackendError as exc:
            client.close()
            return f"{url}: {exc}"
        except BaseException:
            client.close()
            raise
        self._url = url
        self._client = client
        self._long_client = self._make_client(url, self._stream_pool_size)
        self._stream_client = self._make_client(url, 1)
        self._wait_client = self._make_client(url, _MAX_WAITS)
        self._version_text = version
        self._version = _parse_version(version) if version else (0,)
        _log.debug("connected to Podman %s at %s", version or "?", url)
        return None

    async def _try_ssh(self, url: str) -> str | None:
        """An ``ssh://`` service: HTTP through a local end of an ssh tunnel; remote all the same."""
        from ._podman_ssh import SSHTunnel  # (imported here: a hunk apart from the imports)

        tunnel = SSHTunnel(url)
        try:
            local = await tunnel.open()
            failure = await self._try_url(local)
        except BackendError as exc:
            failure = str(exc)
        except BaseException:
            await tunnel.aclose()
            raise
        if failure is not None:
            await tunnel.aclose()
            return f"{url}: {failure}"
        self._url, self._tunnel = url, tunnel
        return None

    async def aopen(self) -> None:
        if self._client is not None:
            return
        urls, chosen = candidate_urls(self._requested_url)
        tried: list[str] = []
        for url in urls:
            failure = await self._try_url(url)
            if failure is None:
                return
            tried.append(failure)
        if not chosen and self._start_service:
            podman = podman_binary()
            if podman is None:
                tried.append("no 'podman' executable on PATH to start a service with")
            else:
                failure = await self._spawn_service(podman)
                if failure is None:
                    return
                tried.append(failure)
        raise BackendUnavailableError(
            "no Podman service could be reached. Tried:\n  "
            + "\n  ".join(tried)
            + "\nInstall Podman (4.3 or later) and start its service, e.g. "
            "'systemctl --user enable --now podman.socket' (rootless), "
            "'systemctl enable --now podman.socket' (root) or "
            "'podman system service --time=0 &', or pass url=... / set CONTAINER_HOST."
        )

    async def _spawn_service(self, podman: str) -> str | None:
        argv, directory, url = service_argv(podman)
        log_path = directory / "service.log"
        _log.info("starting a private Podman service: %s", " ".join(argv))
        try:
            with log_path.open("wb") as log_file:
                # A session of its own: a Ctrl-C meant for us must not stop the service
                # the teardown still needs.
                process = await anyio.open_process(
                    argv, stdin=None, stdout=log_file, stderr=log_file, start_new_session=True
                )
        except OSError as exc:
            _remove_dir(directory)
            return f"starting {' '.join(argv)}: {exc}"
        self._service, self._service_dir = process, directory
        sock = directory / "podman.sock"
        failure = "it did not answer"
        try:
            with anyio.move_on_after(_SERVICE_START_TIMEOUT):
                while True:
                    if process.returncode is not None:
                        failure = f"it exited with code {process.returncode}"
                        break
                    if sock.exists():
                        failure_or_none = await self._try_url(url)
                        if failure_or_none is None:
                            return None
                        failure = failure_or_none
                    await anyio.sleep(0.1)
        except BaseException:
            await self._stop_service()
            raise
        await self._stop_service()
        try:
            log = log_path.read_text(errors="replace").strip()[-2000:]
        except OSError:
            log = ""
        return f"started '{' '.join(argv)}' but {failure}" + (f":\n{log}" if log else "")

    async def _stop_service(self) -> None:
        process, directory = self._service, self._service_dir
        self._service = self._service_dir = None
        with anyio.CancelScope(shield=True):
            if process is not None:
                if process.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        process.terminate()
                    with anyio.move_on_after(5):
                        await process.wait()
                    if process.returncode is None:
                        with contextlib.suppress(ProcessLookupError):
                            process.kill()
                        await process.wait()
                await process.aclose()
            if directory is not None:
                _remove_dir(directory)

    async def aclose(self) -> None:
        for stream in list(self._streams):
            stream.close()
        for client in (self._client, self._long_client, self._stream_client, self._wait_client):
            if client is not None:
                with contextlib.suppress(Exception):
                    client.close()
        self._client = self._long_client = self._stream_client = self._wait_client = None
        await self._stop_service()
        tunnel, self._tunnel = self._tunnel, None
        if tunnel is not None:
            await tunnel.aclose()

    # HTTP plumbing

    def _check_open(self) -> None:
        if self._client is None:
            raise BackendError("the Podman backend is not open: use 'async with backend:'")

    def _send_blocking(
        self,
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
        raise AssertionError(method)

    def _call_blocking(
        self,
        client: Any,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        body: Any,
        timeout: tuple[float, float | None],
    ) -> _Reply:
        response = self._send_blocking(client, method, path, params, body, timeout, False)
        try:
            return _Reply(response.status_code, response.content, dict(response.headers))
        finally:
            response.close()

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        ok: Sequence[int] = (),
        read_timeout: float | None = -1.0,
        long: bool = False,
    ) -> _Reply:
        """One request; an error status not in *ok* raises :class:`PodmanStatusError`.

        *read_timeout* ``None`` waits forever; a negative value means the default.
        """
        self._check_open()
        if read_timeout is not None and read_timeout < 0:
            read_timeout = self._timeout
        timeout = (_PING_TIMEOUT, read_timeout)
        client = self._long_client if long else self._client
        limiter = self._long_limiter if long else self._limiter
        # A short call is waited for even when cancelled (it is bounded by its timeout), so
        # that an object it creates is never unknown to the caller's clean-up; a long call
        # (wait, pull, exec) is abandoned at once.
        reply: _Reply = await anyio.to_thread.run_sync(
            functools.partial(self._call_blocking, client, method, path, params, body, timeout),
            limiter=limiter,
            abandon_on_cancel=long,
        )
        if reply.status >= 400 and reply.status not in ok:
            raise PodmanStatusError.from_body(reply.status, reply.body)
        return reply

    async def _open_stream(
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
        self._check_open()
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
                    response = self._send_blocking(
                        self._stream_client,
                        method,
                        path,
                        params,
                        body,
                        (_PING_TIMEOUT, header_wait),
                        True,
                    )
                    break
                except Exception as exc:
                    if header_wait is None or not _is_read_timeout(exc):
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
        stream_set = self._streams
        stream = HTTPStream(response, self._long_limiter)
        stream._on_close = lambda: stream_set.discard(stream)
        stream_set.add(stream)
        return stream

    # Pods

    async def create_pod(self, spec: PodSpec) -> str:
        shared = ["ipc", "net", "uts"] + (["pid"] if spec.share_pid else [])
        body: dict[str, Any] = {
            "name": spec.name,
            "hostname": spec.hostname,
            "labels": dict(spec.labels),
            "no_infra": False,
            "shared_namespaces": shared,
        }
        if spec.ports:
            body["portmappings"] = [
                {
                    "container_port": port.container_port,
                    "host_port": port.host_port,
                    "protocol": port.protocol,
                    **({"host_ip": port.host_ip} if port.host_ip else {}),
                }
                for port in spec.ports
            ]
        with translate_errors(f"create pod {spec.name!r}"):
            reply = await self._call("POST", "/pods/create", body=body)
            return str(reply.json()["Id"])

    async def remove_pod(self, pod: str) -> None:
        with translate_errors(f"remove pod {pod!r}"):
            reply = await self._call(
                "DELETE", f"/pods/{_q(pod)}", params={"force": "true", "timeout": 0}, ok=(404,)
            )
            if reply.status == 404:
                return
            data = reply.json()
            if isinstance(data, dict) and data.get("Err"):
                raise BackendError(f"remove pod {pod!r}: {data['Err']}")

    # Volumes

    async def create_volume(self, spec: VolumeSpec) -> str:
        body: dict[str, Any] = {"Name": spec.name, "Driver": "local", "Label": dict(spec.labels)}
        if spec.memory:
            options = {"type": "tmpfs", "device": "tmpfs"}
            if spec.size_bytes:
                if self._version >= _TMPFS_SIZE_VERSION:
                    options["o"] = f"size={spec.size_bytes}"
                else:
                    # Before 4.8 "size" always meant an XFS project quota and failed
                    # ("Filesystem does not support Project Quota"), even for tmpfs;
                    # nr_blocks (pages) reaches tmpfs untouched.
                    page = os.sysconf("SC_PAGE_SIZE") if self._local_socket else 4096
                    options["o"] = f"nr_blocks={-(-spec.size_bytes // page)}"
            body["Options"] = options
        with translate_errors(f"create volume {spec.name!r}"):
            reply = await self._call("POST", "/volumes/create", body=body)
            return str(reply.json()["Name"])

    async def remove_volume(self, volume: str) -> None:
        with translate_errors(f"remove volume {volume!r}"):
            await self._call("DELETE", f"/volumes/{_q(volume)}", ok=(404,))

    # Images

    async def image_exists(self, image: str) -> bool:
        with translate_errors(f"look up image {image!r}", image=image):
            reply = await self._call("GET", f"/images/{_q(image)}/exists", ok=(404,))
            return reply.status == 204

    async def pull_image(self, image: str) -> None:
        params = {"reference": image, "policy": "always", "quiet": "true"}
        with translate_errors(f"pull image {image!r}", image=image, pull=True):
            reply = await self._call(
                "POST", "/images/pull", params=params, read_timeout=None, long=True
            )
        for value in _json_objects(reply.body):
            if isinstance(value, dict) and value.get("error"):
                raise ImageError(image, f"pull failed: {value['error']}")

    async def import_image(
        self, reference: str, tarball: bytes, *, changes: Sequence[str] = ()
    ) -> None:
        """Import a root filesystem *tarball* as image *reference* (``podman import``).

        *changes* are Dockerfile instructions such as ``ENV PATH=/bin``. Podman-only: no
        registry needed, which is how the demo and the tests make their images.
        """
        params = {"reference": reference, "changes": list(changes)}
        with translate_errors(f"import image {reference!r}", image=reference):
            reply = await self._call(
                "POST", "/images/import", params=params, body=tarball, read_timeout=None, long=True
            )
        for value in _json_objects(reply.body):
            if isinstance(value, dict) and value.get("error"):
                raise ImageError(reference, f"import failed: {value['error']}")

    # Containers

    def _mount_entries(
        self, spec: ContainerSpec
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        volumes: list[dict[str, Any]] = []
        mounts: list[dict[str, Any]] = []
        for index, mount in enumerate(spec.mounts):
            mode = "ro" if mount.read_only else "rw"
            if mount.volume is not None:
                entry: dict[str, Any] = {"Name": mount.volume, "Dest": mount.target}
                entry["Options"] = [mode]
                if mount.sub_path:
                    if self._version < _SUBPATH_VERSION:
                        raise BackendError(
                            f"container {spec.name!r}: mount {mount.target!r} uses subPath, "
                            f"which needs Podman 4.4 or later (the server is "
                            f"{self._version_text or 'older'})"
                        )
                    entry["SubPath"] = mount.sub_path
                volumes.append(entry)
            elif mount.host_path is not None:
                source = self._prepare_host_path(spec, index, mount)
                mounts.append(
                    {
                        "type": "bind",
                        "source": source,
                        "destination": mount.target,
                        "options": ["rbind", mode],
                    }
                )
            else:
                raise BackendError(
                    f"container {spec.name!r}: mount {mount.target!r} has neither a volume "
                    "nor a host path"
                )
        return volumes, mounts

    def _prepare_host_path(self, spec: ContainerSpec, index: int, mount: Mount) -> str:
        """Apply Kubernetes ``hostPath.type`` checks (possible for a local service only)."""
        assert mount.host_path is not None
        path = mount.host_path
        if mount.sub_path:
            parts = PurePosixPath(mount.sub_path).parts
            if PurePosixPath(mount.sub_path).is_absolute() or ".." in parts:
                raise BackendError(
                    f"container {spec.name!r}: subPath {mount.sub_path!r} must be a relative "
                    "path inside the volume"
                )
            path = str(PurePosixPath(path, mount.sub_path))
        kind = mount.host_path_type
        if not kind or self._local_socket is None:
            return path  # a remote service checks (and fails) itself
        what = f"container {spec.name!r}: hostPath {path!r}"
        try:
            if kind == "DirectoryOrCreate":
                os.makedirs(path, mode=0o755, exist_ok=True)
                return path
            if kind == "FileOrCreate":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                Path(path).touch(mode=0o644, exist_ok=True)
                return path
            info = os.stat(path)
        except FileNotFoundError:
            raise BackendError(f"{what} does not exist (hostPath type {kind})") from None
        except OSError as exc:
            raise BackendError(f"{what}: {exc.strerror or exc}") from exc
        checks = {
            "Directory": (stat.S_ISDIR, "a directory"),
            "File": (stat.S_ISREG, "a regular file"),
            "Socket": (stat.S_ISSOCK, "a unix socket"),
            "CharDevice": (stat.S_ISCHR, "a character device"),
            "BlockDevice": (stat.S_ISBLK, "a block device"),
        }
        if kind in checks:
            check, noun = checks[kind]
            if not check(info.st_mode):
                raise BackendError(f"{what} is not {noun} (hostPath type {kind})")
        return path

    async def create_container(self, spec: ContainerSpec) -> str:
        volumes, mounts = self._mount_entries(spec)
        body: dict[str, Any] = {
            "name": spec.name,
            "pod": spec.pod,
            "image": spec.image,
            "labels": dict(spec.labels),
            "env": dict(spec.env),
            "log_configuration": {"driver": "k8s-file"},
        }
        # Kubernetes: command replaces the entrypoint, args the command; an empty list
        # counts as unset; command without args drops the image's command too.
        if spec.command:
            body["entrypoint"] = list(spec.command)
            if not spec.args:
                body["command"] = []
        if spec.args:
            body["command"] = list(spec.args)
        if spec.working_dir:
            body["work_dir"] = spec.working_dir
        if volumes:
            body["volumes"] = volumes
        if mounts:
            body["mounts"] = mounts
        if spec.init:
            body["init_container_type"] = "once"
        with translate_errors(f"create container {spec.name!r}", image=spec.image):
            reply = await self._call("POST", "/containers/create", body=body)
            data = reply.json()
            for warning in data.get("Warnings") or ():
                _log.warning("Podman, creating container %r: %s", spec.name, warning)
            return str(data["Id"])

    async def start_container(self, container: str) -> None:
        path = f"/containers/{_q(container)}/start"
        with translate_errors(f"start container {container!r}"):
            try:
                await self._call("POST", path)
            except PodmanStatusError as exc:
                if exc.status == 404:
                    raise
                infra_error = await self._infra_start_error(container)
                if infra_error is not None:
                    raise infra_error from None
                if _NO_NAMESPACE not in exc.message:
                    raise
                # Two members of a pod started at once both start its infra container
                # first; Podman 4.3 sometimes fails one of them with "cannot get namespace
                # path unless container <infra> is running: container is stopped", though
                # the infra then runs (seen in CI: the infra died once before its first
                # start). It runs now: start the member again, once.
                _log.debug("starting %s again: %s", container, exc.message)
                await self._call("POST", path)

    async def _infra_start_error(self, container: str) -> PodmanStatusError | None:
        """Why the pod's infra container cannot start, if that is why *container* did not.

        Podman (4.3 at least) reports a failure to start a pod member's infra (say, its
        host port is taken) as just "starting some containers: internal libpod error";
        starting the infra itself gives the real reason.
        """
        try:
            reply = await self._call("GET", f"/containers/{_q(container)}/json")
            pod = (reply.json() or {}).get("Pod")
            if not pod:
                return None
            reply = await self._call("GET", f"/pods/{_q(str(pod))}/json")
            infra = (reply.json() or {}).get("InfraContainerID")
            if not infra or infra == container:
                return None
            await self._call("POST", f"/containers/{_q(str(infra))}/start")
        except PodmanStatusError as exc:
            return PodmanStatusError(exc.status, f"the pod's infra container: {exc.message}")
        return None

    async def stop_container(self, container: str, *, grace: float) -> int | None:
        # Not POST /stop: on 4.3 it takes 0.1-0.2 s even for a process that exits on the
        # signal at once. Send the stop signal, watch the state, kill at the deadline.
        with translate_errors(f"stop container {container!r}"):
            data = await self._inspect(container)
            info = self._info(container, data)
            if info.state is not RuntimeState.RUNNING:
                return info.exit_code
            await self.kill_container(container, signal=_stop_signal(data))
            deadline = anyio.current_time() + max(grace, 0)
            exited = await self._exited_by(container, deadline)
            if exited is None:
                await self.kill_container(container, signal=9)
                exited = await self._exited_by(container, anyio.current_time() + self._timeout)
            if exited is None:
                raise BackendError(f"container {container!r} did not exit after SIGKILL")
            return exited.exit_code

    async def _exited_by(self, container: str, deadline: float) -> ContainerInfo | None:
        """Poll until the container is no longer running (its state) or *deadline* passes."""
        delay = 0.01
        while True:
            info = self._info(container, await self._inspect(container))
            if info.state is not RuntimeState.RUNNING:
                return info
            left = deadline - anyio.current_time()
            if left <= 0:
                return None
            await anyio.sleep(min(delay, left))
            delay = min(delay * 2, 0.2)

    async def kill_container(self, container: str, *, signal: int = 9) -> None:
        with translate_errors(f"kill container {container!r}"):
            reply = await self._call(
                "POST",
                f"/containers/{_q(container)}/kill",
                params={"signal": int(signal)},
                ok=(409, 500),
            )
            if reply.status == 500:
                error = PodmanStatusError.from_body(reply.status, reply.body)
                if "not running" not in error.message and "improper" not in error.message:
                    raise error

    async def remove_container(self, container: str) -> None:
        with translate_errors(f"remove container {container!r}"):
            await self._call(
                "DELETE",
                f"/containers/{_q(container)}",
                params={"force": "true", "timeout": 0},
                ok=(404,),
            )

    def _wait_slice_blocking(self, container: str) -> int | None:
        """Wait up to one slice; the exit code, or ``None`` if the slice ran out."""
        import requests

        params = {"condition": ["stopped", "exited"]}
        timeout = (_PING_TIMEOUT, _WAIT_SLICE)
        try:
            reply = self._call_blocking(
                self._wait_client,
                "POST",
                f"/containers/{_q(container)}/wait",
                params,
                None,
                timeout,
            )
        except OSError as exc:  # podman-py wraps requests' errors in APIError(OSError)
            if isinstance(exc.__cause__, requests.ReadTimeout) or isinstance(
                exc, requests.ReadTimeout
            ):
                return None
            raise
        if reply.status >= 400:
            raise PodmanStatusError.from_body(reply.status, reply.body)
        return int(reply.text.strip())

    async def wait_container(self, container: str) -> int:
        self._check_open()
        with translate_errors(f"wait for container {container!r}"):
            # Podman (4.3 at least) answers a wait on a never-started container at once
            # with 0, so poll until it has been started; then poll for a quick exit (see
            # _EXIT_POLLS) before settling into the blocking wait.
            polls = iter(_EXIT_POLLS)
            while True:
                info = self._info(container, await self._inspect(container))
                if info.state is RuntimeState.EXITED and info.exit_code is not None:
                    return info.exit_code
                if info.state is RuntimeState.CREATED:
                    await anyio.sleep(_CREATED_POLL)
                    continue
                delay = next(polls, None)
                if delay is None:
                    break
                await anyio.sleep(delay)
            while True:
                code = await anyio.to_thread.run_sync(
                    self._wait_slice_blocking,
                    container,
                    limiter=self._wait_limiter,
                    abandon_on_cancel=True,
                )
                if code is not None:
                    break
            # Podman answers a wait cut short by removal with the kill's exit code.
            reply = await self._call("GET", f"/containers/{_q(container)}/exists", ok=(404,))
            if reply.status == 404:
                raise PodmanStatusError(
                    404, f"container {container!r} was removed while it was waited on"
                )
            return code

    async def _inspect(self, container: str) -> dict[str, Any]:
        """``GET /containers/{id}/json``, retried over the moment of an exit.

        Inspecting a container just as its process exits can fail with HTTP 500 ("read
        /proc/PID/cgroup: no such process"); a moment later it succeeds.
        """
        for attempt in range(5):
            try:
                reply = await self._call("GET", f"/containers/{_q(container)}/json")
            except PodmanStatusError as exc:
                if exc.status != 500 or "no such process" not in exc.message or attempt == 4:
                    raise
                await anyio.sleep(0.01 * (attempt + 1))
                continue
            data = reply.json()
            return data if isinstance(data, dict) else {}
        raise AssertionError("unreachable")

    def _info(self, container: str, data: dict[str, Any]) -> ContainerInfo:
        state = data.get("State") or {}
        status = str(state.get("Status") or "").lower()
        finished = _parse_time(state.get("FinishedAt"))
        exit_code = state.get("ExitCode")
        return ContainerInfo(
            id=str(data.get("Id") or container),
            name=str(data.get("Name") or "").lstrip("/"),
            state=_STATES.get(status, RuntimeState.EXITED),
            exit_code=int(exit_code) if finished is not None and exit_code is not None else None,
            started_at=_parse_time(state.get("StartedAt")),
            finished_at=finished,
            oom_killed=bool(state.get("OOMKilled")),
        )

    async def inspect_container(self, container: str) -> ContainerInfo:
        with translate_errors(f"inspect container {container!r}"):
            return self._info(container, await self._inspect(container))

    async def exec(self, container: str, argv: tuple[str, ...]) -> ExecResult:
        body = {"AttachStdout": True, "AttachStderr": True, "AttachStdin": False, "Cmd": list(argv)}
        what = f"exec {list(argv)!r} in container {container!r}"
        with translate_errors(what):
            reply = await self._call("POST", f"/containers/{_q(container)}/exec", body=body)
            exec_id = str(reply.json()["Id"])
            try:
                stream = await self._open_stream(
                    "POST", f"/exec/{exec_id}/start", body={"Detach": False, "Tty": False}
                )
            except PodmanStatusError as exc:
                lower = exc.message.lower()
                if any(marker in lower for marker in _NOT_FOUND_EXEC):
                    return ExecResult(127, b"", exc.message.encode())
                if "permission denied" in lower:
                    return ExecResult(126, b"", exc.message.encode())
                raise
            out, err = bytearray(), bytearray()
            decoder = FrameDecoder()
            try:
                while data := await stream.read():
                    for kind, payload in decoder.feed(data):
                        (err if kind == "stderr" else out).extend(payload)
            finally:
                stream.close()
            exit_code = await self._exec_exit_code(exec_id)
        return ExecResult(exit_code, bytes(out), bytes(err))

    async def _exec_exit_code(self, exec_id: str) -> int:
        with anyio.move_on_after(10):
            while True:
                reply = await self._call("GET", f"/exec/{exec_id}/json")
                data = reply.json()
                if not data.get("Running"):
                    return int(data.get("ExitCode", -1))
                await anyio.sleep(0.05)
        raise BackendError(f"exec session {exec_id} still runs after its output ended")

    # Logs and events

    def logs(
        self, container: str, *, follow: bool = False
    ) -> AbstractAsyncContextManager[AsyncIterator[LogRecord]]:
        return self._logs(container, follow)

    @contextlib.asynccontextmanager
    async def _logs(self, container: str, follow: bool) -> AsyncIterator[AsyncIterator[LogRecord]]:
        params = {"stdout": "true", "stderr": "true", "follow": "true" if follow else "false"}
        with translate_errors(f"logs of container {container!r}"):
            stream = await self._open_stream(
                "GET", f"/containers/{_q(container)}/logs", params=params
            )
        try:
            yield _LogIterator(stream, container)
        finally:
            stream.close()

    def events(
        self, labels: Mapping[str, str] | None = None
    ) -> AbstractAsyncContextManager[AsyncIterator[BackendEvent]]:
        return self._events(dict(labels or {}))

    @contextlib.asynccontextmanager
    async def _events(self, labels: dict[str, str]) -> AsyncIterator[AsyncIterator[BackendEvent]]:
        iterator = _EventIterator(self, labels)
        try:
            with translate_errors("subscribe to events"):
                await iterator.subscribe()
            yield iterator
        finally:
            iterator.close()

    async def _object_labels(self, kind: str, ident: str) -> dict[str, str] | None:
        """Labels of a pod or volume, or ``None`` if it is gone."""
        path = f"/pods/{_q(ident)}/json" if kind == "pod" else f"/volumes/{_q(ident)}/json"
        reply = await self._call("GET", path, ok=(404,))
        if reply.status == 404:
            return None
        data = reply.json() or {}
        return dict(data.get("Labels") or {})

    # Probing

    async def connect(self, pod: str, port: int) -> anyio.abc.ByteStream:
        self._check_open()
        if self._local_socket is None and self._tunnel is None:
            raise BackendError(
                f"connect needs a local Podman (a unix:// socket on this machine) or an ssh:// "
                f"one, not {self._url}"
            )
        with translate_errors(f"connect to port {port} of pod {pod!r}"):
            reply = await self._call("GET", f"/pods/{_q(pod)}/json")
            infra = (reply.json() or {}).get("InfraContainerID")
            if not infra:
                raise BackendError(f"pod {pod!r} has no infra container")
            reply = await self._call("GET", f"/containers/{_q(str(infra))}/json")
            pid = int(((reply.json() or {}).get("State") or {}).get("Pid") or 0)
        if pid <= 0:
            raise ConnectionRefusedError(
                f"connect to port {port} of pod {pod!r}: the pod is not running"
            )
        if self._tunnel is not None:
            stream: anyio.abc.ByteStream = await self._tunnel.connect(pid, port)
            return stream
        return await connect_in_netns(pid, port)

    # Ownership

    async def list_objects(self, labels: Mapping[str, str]) -> list[OwnedObject]:
        params = {"filters": _label_filters(labels)} if labels else {}
        objects: list[OwnedObject] = []
        with translate_errors("list objects"):
            pods = (await self._call("GET", "/pods/json", params=params)).json() or []
            containers = (
                await self._call("GET", "/containers/json", params={**params, "all": "true"})
            ).json() or []
            volumes = (await self._call("GET", "/volumes/json", params=params)).json() or []
        for pod in pods:
            pod_labels = dict(pod.get("Labels") or {})
            if _matches(pod_labels, labels):
                objects.append(
                    OwnedObject(type="pod", id=pod["Id"], name=pod["Name"], labels=pod_labels)
                )
        for ctr in containers:
            ctr_labels = dict(ctr.get("Labels") or {})
            if ctr.get("IsInfra") or not _matches(ctr_labels, labels):
                continue
            names = ctr.get("Names") or [ctr["Id"]]
            objects.append(
                OwnedObject(type="container", id=ctr["Id"], name=names[0], labels=ctr_labels)
            )
        for vol in volumes:
            vol_labels = dict(vol.get("Labels") or {})
            if _matches(vol_labels, labels):
                objects.append(
                    OwnedObject(type="volume", id=vol["Name"], name=vol["Name"], labels=vol_labels)
                )
        return objects


class _LogIterator(AsyncIterator[LogRecord]):
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


class _EventIterator(AsyncIterator[BackendEvent]):
    """Podman events of containers, pods and volumes carrying the wanted labels.

    Podman 4.3 puts labels on container events only (pod and volume events carry just the
    name), so the labels of pods and volumes are looked up (and cached) by this iterator;
    events of the pods' infra containers are left out.

    Podman's file event logger (the one used without journald) tails a log that it
    rotates at ``events_logfile_max_size``, by replacing the file with its newer half. A
    subscription without ``since`` is then sent that half again, old events included; one
    with ``since`` ends. So this iterator subscribes with ``since`` (from the service's
    clock: it has whole seconds, so events of up to a second before the subscription may
    come too) and, when the stream ends, subscribes again from a little before the last
    event it read, skipping the events it already had.
    """

    _FILTERS = json.dumps({"type": ["container", "pod", "volume"]})
    # How far before the newest event read a new subscription starts: Podman stamps an
    # event before it takes the log's lock, so the log is in time order only roughly.
    _OVERLAP_NS = 2_000_000_000
    # Streams that end without a new event are subscribed again this often in a row.
    _EMPTY_ENDS = 10

    def __init__(self, backend: PodmanBackend, labels: dict[str, str]):
        self._backend = backend
        self._labels = labels
        self._stream: HTTPStream | None = None
        self._since = 0  # seconds since the epoch; 0 until subscribed
        self._buffer = b""
        self._lines: list[bytes] = []
        self._known: dict[tuple[str, str], dict[str, str]] = {}
        # The lines read in the last _OVERLAP_NS before the newest event, for skipping them
        # when a new subscription sends them again.
        self._newest_ns = 0
        self._recent: collections.deque[tuple[int, bytes]] = collections.deque()
        self._recent_lines: set[bytes] = set()
        self._empty_ends = 0  # streams in a row that ended with no new event
        self._progress = False  # the stream sent a new event
        self._closed = False

    async def subscribe(self) -> None:
        """Subscribe from now on, and remember the labels of the pods and volumes there are."""
        backend = self._backend
        date = (await backend._call("GET", "/_ping")).headers.get("Date")
        if date:
            self._since = int(email.utils.parsedate_to_datetime(date).timestamp())
        await self._open()
        params = {"filters": _label_filters(self._labels)} if self._labels else {}
        for pod in (await backend._call("GET", "/pods/json", params=params)).json() or []:
            labels = dict(pod.get("Labels") or {})
            self._known["pod", pod["Id"]] = labels
            self._known["pod", pod["Name"]] = labels
        for vol in (await backend._call("GET", "/volumes/json", params=params)).json() or []:
            self._known["volume", vol["Name"]] = dict(vol.get("Labels") or {})

    async def _open(self) -> None:
        since = self._since
        if self._newest_ns:
            since = max(since, (self._newest_ns - self._OVERLAP_NS) // 1_000_000_000)
        params = {"stream": "true", "filters": self._FILTERS}
        if since:
            params["since"] = str(since)
        stream = await self._backend._open_stream("GET", "/events", params=params)
        if self._closed:  # meanwhile, by another task
            stream.close()
            raise StopAsyncIteration
        self._stream = stream
        self._progress = False

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

    async def __anext__(self) -> BackendEvent:
        while True:
            line = await self._next_line()
            try:
                raw = json.loads(line)
            except ValueError:
                _log.debug("skipping a malformed Podman event: %r", line)
                continue
            self._remember(line, raw)
            event = await self._convert(raw)
            if event is not None and _matches(event.labels, self._labels):
                return event

    async def _convert(self, raw: dict[str, Any]) -> BackendEvent | None:
        kind = str(raw.get("Type") or "")
        action = str(raw.get("Action") or raw.get("status") or "")
        actor = raw.get("Actor") or {}
        attributes = {str(k): str(v) for k, v in (actor.get("Attributes") or {}).items()}
        ident = str(actor.get("ID") or raw.get("id") or "")
        name = attributes.get("name", ident)
        if kind == "container":
            if _INFRA_NAME.match(name):
                return None
            ctr_labels = {k: v for k, v in attributes.items() if k not in _EVENT_ATTRIBUTES}
            exit_code = None
            if action == "died" and attributes.get("containerExitCode", "").lstrip("-").isdigit():
                exit_code = int(attributes["containerExitCode"])
            return BackendEvent(
                type="container",
                action=action,
                id=ident,
                name=name,
                labels=ctr_labels,
                exit_code=exit_code,
            )
        if kind not in ("pod", "volume"):
            return None
        if kind == "volume":
            ident = name
        labels: dict[str, str] | None = self._known.get((kind, ident))
        if labels is None and action != "remove":
            try:
                with translate_errors(f"inspect {kind} {name!r}"):
                    labels = await self._backend._object_labels(kind, ident)
            except ObjectNotFoundError:
                labels = None  # removed meanwhile
            if labels is not None:
                self._known[kind, ident] = labels
        if labels is None:
            return None
        if action == "remove":
            self._known.pop((kind, ident), None)
        return BackendEvent(type=kind, action=action, id=ident, name=name, labels=labels)


def _probe_unix(path: str) -> str | None:
    """Why nothing accepts on the unix socket *path*, or ``None`` if something does."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(_PING_TIMEOUT)
        try:
            sock.connect(path)
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


def _remove_dir(directory: Path) -> None:
    import shutil

    shutil.rmtree(directory, ignore_errors=True)


backend_class = PodmanBackend
