"""A terminated container's message: ``terminationMessagePath`` and ``terminationMessagePolicy``.

As the kubelet reads it: the file at the container's termination message path (by default
``/dev/termination-log``), its last 4096 bytes; with ``FallbackToLogsOnError``, a container
that exited with an error and left the file empty (or missing) gets the tail of its log
instead, its last 80 lines and at most 2048 bytes of them. Reading is bounded in time and
never fails: what cannot be read is logged at DEBUG and gives no message.
"""

from __future__ import annotations

import logging
import tarfile

import anyio

from .._exceptions import AsyncpodError
from .._logread import LogMark, last_lines
from .._models import Container
from ..backends._base import Backend

__all__ = ["DEFAULT_PATH", "TEARDOWN_READ_LIMIT", "termination_message"]

logger = logging.getLogger("asyncpod")

#: Kubernetes' default ``terminationMessagePath``
DEFAULT_PATH = "/dev/termination-log"
#: the kubelet's limits: bytes of the file kept (its last ones), and for the log fallback,
#: lines and bytes of the log's tail
MAX_MESSAGE_BYTES = 4096
MAX_LOG_LINES = 80
MAX_LOG_BYTES = 2048
#: how long reading the file may take, in seconds (the log tail has its own bound)
_READ_LIMIT = 5.0  # as for the log tail (asyncpod._logread): generous under load
#: how long reading a message may take in all when the teardown stopped the container
TEARDOWN_READ_LIMIT = 1.0


async def _read_file(backend: Backend, container_id: str, path: str) -> bytes:
    """The last :data:`MAX_MESSAGE_BYTES` of *path* in the container; ``b""`` if it cannot."""
    with anyio.move_on_after(_READ_LIMIT):
        try:
            data = await backend.read_termination_message(container_id, path)
            return data[-MAX_MESSAGE_BYTES:]
        except (AsyncpodError, tarfile.TarError) as exc:
            logger.debug("could not read the termination message of %s: %s", container_id, exc)
    return b""


async def termination_message(
    backend: Backend,
    container_id: str,
    container: Container,
    exit_code: int,
    *,
    log_start: LogMark | None = None,
) -> str:
    """The message of *container* (*container_id*), which exited with *exit_code*.

    *log_start* marks where its last run begins in its log (for the fallback).
    """
    path = container.termination_message_path or DEFAULT_PATH
    data = await _read_file(backend, container_id, path)
    if (
        not data
        and exit_code != 0
        and container.termination_message_policy == "FallbackToLogsOnError"
    ):
        lines = await last_lines(backend, container_id, MAX_LOG_LINES, start=log_start)
        # the kubelet writes the lines into a ring buffer of MAX_LOG_BYTES: their last bytes
        data = "".join(f"{line}\n" for line in lines).encode("utf-8")[-MAX_LOG_BYTES:]
    return data.decode("utf-8", "replace")
