"""Whose failure a backend error is: the engine's, or the container's.

The one place that decides it. A container's failure (its start failed: no such binary, a
host port taken...) is the container's state: it is reported, and the container restarts
with back-off as the kubelet would. An engine's failure (the service is gone) is nobody's
container: retrying with back-off would only hide it, so it ends the run with the typed
error, and the teardown removes what it still can (``asyncpod gc`` the rest, once the
service is back).
"""

from __future__ import annotations

from .._exceptions import BackendUnavailableError

__all__ = ["engine_failure"]


def engine_failure(exc: BaseException) -> bool:
    """Whether *exc*, raised by a backend call, is the engine's failure, not a container's."""
    return isinstance(exc, BackendUnavailableError)
