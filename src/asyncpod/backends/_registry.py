"""Backends by name, imported lazily."""

from __future__ import annotations

from typing import Any

from ._base import Backend

__all__ = ["get_backend"]


def get_backend(name: str, **options: Any) -> Backend:
    """Build the backend called *name* ("fake" or "podman") with *options*.

    Raises :class:`LookupError` for an unknown name.
    """
    if name == "fake":
        from ._fake import FakeBackend

        return FakeBackend(**options)
    if name == "podman":
        from ._podman import PodmanBackend

        return PodmanBackend(**options)
    raise LookupError(f"unknown backend {name!r}: choose 'fake' or 'podman'")
