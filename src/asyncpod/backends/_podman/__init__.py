"""The Podman backend, :class:`PodmanBackend` (see :mod:`._backend` for its pieces)."""

from __future__ import annotations

from ._backend import PodmanBackend as PodmanBackend

__all__ = ["PodmanBackend"]

backend_class = PodmanBackend
