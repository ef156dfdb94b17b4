"""Finding (or starting) the Podman service that :class:`PodmanBackend` talks to."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import stat
import sys
import tempfile
import time
from pathlib import Path

import anyio
import anyio.abc

from ..._exceptions import BackendError, BackendUnavailableError
from ..._owner import process_start
from ._http import PING_TIMEOUT, Transport
from ._process import end_process
from ._ssh import SSHTunnel, default_connection

__all__ = [
    "PrivateService",
    "candidate_urls",
    "connect",
    "reap_orphaned_services",
    "service_argv",
    "unix_path",
]

_log = logging.getLogger("asyncpod.podman")

_SERVICE_START_TIMEOUT = 10.0


def candidate_urls(url: str | None) -> tuple[list[str], bool]:
    """URLs to try, in order, and whether the caller chose them (then nothing is spawned).

    An explicit *url* wins, then ``CONTAINER_HOST``; otherwise the rootless socket of this
    user (``$XDG_RUNTIME_DIR/podman/podman.sock``) for a regular user, and the rootful
    ``/run/podman/podman.sock`` for root, and the user's default Podman connection
    (``podman system connection``): after the local socket on Linux, where ``podman`` uses
    it only with ``--remote``, and before it elsewhere (``podman machine`` on macOS, Windows).
    """
    if url:
        return [url], True
    env = os.environ.get("CONTAINER_HOST")
    if env:
        return [env], True
    urls = []
    if os.geteuid() != 0:
        runtime = os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{os.geteuid()}"
        urls.append(f"unix://{runtime}/podman/podman.sock")
    else:
        urls.append("unix:///run/podman/podman.sock")
    connection = default_connection()  # `podman system connection default`
    if connection:
        urls = [*urls, connection] if sys.platform.startswith("linux") else [connection, *urls]
    return urls, False


def unix_path(url: str) -> str | None:
    """The socket path of a ``unix://`` (or ``http+unix://``) URL, else ``None``."""
    for prefix in ("unix://", "http+unix://"):
        if url.startswith(prefix):
            path = url[len(prefix) :]
            return path if path.startswith("/") else "/" + path
    return None


def podman_binary() -> str | None:
    """The ``podman`` executable on ``PATH``, if any."""
    return shutil.which("podman")


def service_argv(podman: str) -> tuple[list[str], Path, str]:
    """argv of a private ``podman system service``, its temp dir and its socket URL."""
    directory = Path(tempfile.mkdtemp(prefix=_DIR_PREFIX))
    sock = directory / "podman.sock"
    url = f"unix://{sock}"
    return [podman, "system", "service", "--time=0", url], directory, url


#: the file in a private service's directory that says whose it is
_OWNER_FILE = "owner.json"
_DIR_PREFIX = "asyncpod-podman-"


def _write_owner(directory: Path, service_pid: int) -> None:
    """Record, in the service's directory, its owner (this process) and the service, each
    as pid and start time, so that the next run or ``asyncpod gc`` can stop a service
    whose owner died without stopping it (SIGKILL)."""
    data = {
        "owner_pid": os.getpid(),
        "owner_start": process_start(os.getpid()),
        "service_pid": service_pid,
        "service_start": process_start(service_pid),
    }
    partial = directory / f".{_OWNER_FILE}.tmp"
    partial.write_text(json.dumps(data))
    partial.replace(directory / _OWNER_FILE)


def _runs(pid: object, start: object) -> bool:
    """Whether process *pid* runs and started at *start* (so is the one recorded)."""
    return isinstance(pid, int) and pid > 0 and start is not None and process_start(pid) == start


def _still_running(pid: int, start: str) -> bool:
    """Whether process *pid*, started at *start*, runs (exited but not reaped: no)."""
    return process_start(pid) == start


def _stop_process(pid: int, start: str) -> bool:
    """SIGTERM (SIGKILL after 5 s) the process *pid* if it is the one that started at
    *start*: pinned by a pidfd, so that a reused pid is never signalled."""
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return False
    try:
        if process_start(pid) != start:
            return False
        signal.pidfd_send_signal(pidfd, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while _still_running(pid, start) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _still_running(pid, start):
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        return True
    except ProcessLookupError:
        return False
    finally:
        os.close(pidfd)


def reap_orphaned_services(base: str | None = None) -> list[int]:
    """Stop the private services that asyncpod spawned for an owner that is gone, and remove
    their directories; return their pids. Blocking (run it in a worker thread).

    Only directories of this user (``asyncpod-podman-*`` in the temp dir, real
    directories, not symlinks) with a complete owner record are considered; a service is
    signalled only if it is provably the recorded process (pid and start time).
    """
    base = base or tempfile.gettempdir()
    reaped: list[int] = []
    try:
        entries = list(os.scandir(base))
    except OSError:
        return reaped
    for entry in entries:
        if not entry.name.startswith(_DIR_PREFIX):
            continue
        try:
            info = entry.stat(follow_symlinks=False)
            if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
                continue
            data = json.loads(Path(entry.path, _OWNER_FILE).read_text())
        except (OSError, ValueError):
            continue  # not a record (yet): leave it
        if not isinstance(data, dict) or _runs(data.get("owner_pid"), data.get("owner_start")):
            continue
        pid, start = data.get("service_pid"), data.get("service_start")
        if _runs(pid, start):
            assert isinstance(pid, int)
            if _stop_process(pid, str(start)):
                _log.info("stopped the private Podman service %d of a dead owner", pid)
                reaped.append(pid)
        shutil.rmtree(entry.path, ignore_errors=True)
    return reaped


def _probe_unix(path: str) -> str | None:
    """Why nothing accepts on the unix socket *path*, or ``None`` if something does."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(PING_TIMEOUT)
        try:
            sock.connect(path)
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


class PrivateService:
    """A ``podman system service`` started by the backend, stopped by :meth:`stop`."""

    def __init__(self, process: anyio.abc.Process, directory: Path) -> None:
        self.process = process
        self.directory = directory

    async def stop(self) -> None:
        """Terminate the service (kill it after 5 s) and remove its directory."""
        await end_process(self.process)
        shutil.rmtree(self.directory, ignore_errors=True)


async def _try_ssh(url: str, **options: float) -> tuple[Transport, str, SSHTunnel] | str:
    """An ``ssh://`` service: HTTP through the local end of an ssh tunnel (the service stays
    remote): the transport, the version and the tunnel, or why it failed."""
    tunnel = SSHTunnel(url)
    try:
        local = await tunnel.open()
        outcome = await _try_url(local, **options)
    except BackendError as exc:
        outcome = str(exc)
    except BaseException:
        await tunnel.aclose()
        raise
    if isinstance(outcome, str):
        await tunnel.aclose()
        return f"{url}: {outcome}"
    return (*outcome, tunnel)


async def _try_url(url: str, **options: float) -> tuple[Transport, str] | str:
    """Connect to *url*: the transport and the service's version, or why it failed."""
    path = unix_path(url)
    if path is not None:
        # podman-py leaks the socket of a failed unix connect: probe it ourselves first
        failure = await anyio.to_thread.run_sync(_probe_unix, path)
        if failure is not None:
            return f"{url}: {failure}"
    try:
        return await Transport.open(
            url,
            pool_size=int(options["pool_size"]),
            stream_pool_size=int(options["stream_pool_size"]),
            request_timeout=options["request_timeout"],
        )
    except BackendError as exc:
        return f"{url}: {exc}"
    except Exception as exc:  # building the client failed; reported in the error
        return f"{url}: {exc}"


async def connect(
    url: str | None, *, start_service: bool, **options: float
) -> tuple[Transport, str, PrivateService | SSHTunnel | None]:
    """Find the service (see :func:`candidate_urls`), or start a private one.

    Returns the transport, the service's API version and what the backend must close
    with it: the private service, if one was started, or the ssh tunnel to an ``ssh://``
    service. *options* are :class:`~._http.Transport`'s (``pool_size``,
    ``stream_pool_size``, ``request_timeout``).
    """
    urls, chosen = candidate_urls(url)
    tried: list[str] = []
    for candidate in urls:
        if candidate.startswith(("ssh://", "http+ssh://")):
            remote = await _try_ssh(candidate, **options)
            if not isinstance(remote, str):
                return remote
            tried.append(remote)
            continue
        outcome = await _try_url(candidate, **options)
        if not isinstance(outcome, str):
            return (*outcome, None)
        tried.append(outcome)
    if not chosen and start_service:
        podman = podman_binary()
        if podman is None:
            tried.append("no 'podman' executable on PATH to start a service with")
        else:
            spawned = await _spawn_service(podman, **options)
            if not isinstance(spawned, str):
                return spawned
            tried.append(spawned)
    raise BackendUnavailableError(
        "no Podman service could be reached. Tried:\n  "
        + "\n  ".join(tried)
        + "\nInstall Podman (4.3 or later) and start its service, e.g. "
        "'systemctl --user enable --now podman.socket' (rootless), "
        "'systemctl enable --now podman.socket' (root) or "
        "'podman system service --time=0 &', or pass url=... / set CONTAINER_HOST."
    )


async def _spawn_service(
    podman: str, **options: float
) -> tuple[Transport, str, PrivateService] | str:
    # The services of owners that died (SIGKILL) without stopping theirs: stop them now.
    await anyio.to_thread.run_sync(reap_orphaned_services)
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
        shutil.rmtree(directory, ignore_errors=True)
        return f"starting {' '.join(argv)}: {exc}"
    service = PrivateService(process, directory)
    try:
        _write_owner(directory, process.pid)
    except OSError as exc:  # not fatal: only a dead owner's service would linger
        _log.warning("could not record the private service's owner: %s", exc)
    sock = directory / "podman.sock"
    failure = "it did not answer"
    try:
        with anyio.move_on_after(_SERVICE_START_TIMEOUT):
            while True:
                if process.returncode is not None:
                    failure = f"it exited with code {process.returncode}"
                    break
                if sock.exists():
                    outcome = await _try_url(url, **options)
                    if not isinstance(outcome, str):
                        return (*outcome, service)
                    failure = outcome
                await anyio.sleep(0.1)
    except BaseException:
        await service.stop()
        raise
    try:
        log = log_path.read_text(errors="replace").strip()[-2000:]
    except OSError:
        log = ""
    await service.stop()
    return f"started '{' '.join(argv)}' but {failure}" + (f":\n{log}" if log else "")
