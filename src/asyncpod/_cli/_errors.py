"""Errors and exit codes: how a failure becomes one line on standard error, a hint and a
number, and the one policy for unwrapping the exception groups task groups raise."""

from __future__ import annotations

import errno
import os
import signal
import sys

import anyio

from .._exceptions import (
    BackendUnavailableError,
    ContainerFailedError,
    ImageError,
    ObjectExistsError,
    ObjectNotFoundError,
    PortInUseError,
    SpecError,
    UnsupportedFieldError,
)
from .._images import stand_in

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found,unused-ignore]

__all__ = [
    "EXIT_CODES",
    "EXIT_FAILED",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_TIMEOUT",
    "EXIT_UNAVAILABLE",
    "EXIT_USAGE",
    "LAX_OPTION",
    "CliError",
    "Interrupted",
    "exit_code",
    "report",
    "unwrap",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3
EXIT_NOT_FOUND = 4
EXIT_TIMEOUT = 5

EXIT_CODES = f"""\
exit codes:
  {EXIT_OK}    success (for up: the pod Succeeded, or --detach left it ready)
  {EXIT_FAILED}    the pod or a container failed, or a backend operation did
  {EXIT_USAGE}    bad command line or invalid manifest
  {EXIT_UNAVAILABLE}    the backend (Podman) cannot be reached
  {EXIT_NOT_FOUND}    no such pod, container, claim or path
  {EXIT_TIMEOUT}    up: the pod was not ready within --timeout
  128+N  stopped by signal N: 130 for Ctrl-C (SIGINT), 143 for SIGTERM
"""

#: the command-line option that stands for ``load_pod(..., strict=False)``
LAX_OPTION = "--lax"


class CliError(Exception):
    """A failure the command line reports as one line, a hint and an exit code."""

    def __init__(self, message: str, code: int = EXIT_FAILED, hint: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.hint = hint


class Interrupted(Exception):
    """A signal stopped the command; the exit code is 128 + its number."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def unwrap(group: BaseExceptionGroup[BaseException]) -> BaseException | None:
    """The one error to report of *group*: the first that is not a cancellation, looking
    into nested groups (several at once, Podman gone under a fan-out: the first one).
    ``None`` when it holds only cancellations."""
    cancelled = anyio.get_cancelled_exc_class()
    exc: BaseException = group
    while isinstance(exc, BaseExceptionGroup):
        real = [e for e in exc.exceptions if not isinstance(e, cancelled)]
        if not real:
            return None
        exc = real[0]
    return exc


def exit_code(exc: BaseException) -> int:
    if isinstance(exc, CliError):
        return exc.code
    if isinstance(exc, (SpecError, FileNotFoundError, IsADirectoryError)):
        return EXIT_USAGE
    if isinstance(exc, PermissionError):
        # A file named on the command line, else (a socket) the backend
        return EXIT_USAGE if exc.filename else EXIT_UNAVAILABLE
    if isinstance(exc, BackendUnavailableError):
        return EXIT_UNAVAILABLE
    if isinstance(exc, ObjectNotFoundError):
        return EXIT_NOT_FOUND
    return EXIT_FAILED


def report(exc: BaseException) -> None:
    """One line (a failed container's last log lines under it), then a hint."""
    lines = str(exc).splitlines() or [type(exc).__name__]
    if isinstance(exc, OSError) and exc.strerror:
        lines = [f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror]
    if isinstance(exc, BackendUnavailableError):
        tried = [line.strip() for line in lines[1:] if line.startswith("  ")]
        message = lines[0].split(". Tried:")[0] + (f" (tried {'; '.join(tried)})" if tried else "")
        lines = [message]
    elif isinstance(exc, UnsupportedFieldError):
        # the library's own hint names load_pod's argument, which means nothing here
        listed = (f"{p} ({exc.reasons[p]})" if p in exc.reasons else p for p in exc.paths)
        lines = [f"unsupported field(s): {', '.join(listed)}"]
    elif not isinstance(exc, (ContainerFailedError, CliError)):
        lines = lines[:1]
    print(f"asyncpod: error: {lines[0]}", file=sys.stderr)
    for line in lines[1:]:
        print(line, file=sys.stderr)
    hint = _hint(exc)
    if hint:
        print(f"asyncpod: hint: {hint}", file=sys.stderr)


_DENIED = (os.strerror(errno.EACCES), os.strerror(errno.EPERM))


def _hint(exc: BaseException) -> str:
    if isinstance(exc, CliError):
        return exc.hint
    if isinstance(exc, UnsupportedFieldError):
        return f"pass {LAX_OPTION} to drop them with a warning"
    if isinstance(exc, PermissionError) and exc.filename:
        return ""
    denied = isinstance(exc, PermissionError) or (
        isinstance(exc, BackendUnavailableError) and any(d in str(exc) for d in _DENIED)
    )
    if denied:
        return (
            "the Podman socket belongs to another user: run as that user (root's is "
            "/run/podman/podman.sock), or use your own, 'systemctl --user start podman.socket'"
        )
    if isinstance(exc, BackendUnavailableError):
        return (
            "install Podman and start its service (see 'asyncpod demo'), pass --url, "
            "or try '--backend fake'"
        )
    if isinstance(exc, ImageError):
        if stand_in(exc.image):
            return (
                f"{exc.image} is a stand-in image of the bundled examples: "
                "'asyncpod demo --backend podman FILE' builds it from busybox-static"
            )
        return "pull or build the image first, or check the name"
    if isinstance(exc, PortInUseError):
        return "another program or pod publishes that host port: 'asyncpod ps' lists pods"
    if isinstance(exc, ObjectExistsError):
        return "a pod of that name exists: 'asyncpod ps' lists pods, 'asyncpod down NAME'"
    if isinstance(exc, ObjectNotFoundError):
        return "'asyncpod ps' lists the pods asyncpod owns"
    return ""
