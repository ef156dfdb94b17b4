"""Finding (or starting) the Podman service that :class:`PodmanBackend` talks to."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

__all__ = ["candidate_urls", "is_local_unix", "service_argv", "unix_path"]


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
    from ._podman_ssh import default_connection  # `podman system connection default`

    connection = default_connection()
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


def is_local_unix(url: str) -> bool:
    """Whether *url* is a unix socket on this machine (so host paths and PIDs are ours)."""
    return unix_path(url) is not None


def podman_binary() -> str | None:
    """The ``podman`` executable on ``PATH``, if any."""
    return shutil.which("podman")


def service_argv(podman: str) -> tuple[list[str], Path, str]:
    """argv of a private ``podman system service``, its temp dir and its socket URL."""
    directory = Path(tempfile.mkdtemp(prefix="asyncpod-podman-"))
    sock = directory / "podman.sock"
    url = f"unix://{sock}"
    return [podman, "system", "service", "--time=0", url], directory, url
