"""What a command works on: the manifest it names, and the backend it runs on."""

from __future__ import annotations

import sys
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from .._demo import ensure_stand_ins, fake_backend, is_bundled, resolve_manifest
from .._models import Pod
from ..backends import Backend, get_backend

__all__ = ["STDIN", "load", "podman", "up_backend"]

#: the manifest argument that reads standard input
STDIN = "-"


def load(arg: str, *, lax: bool = False) -> Pod:
    """The pod of a manifest argument: a file, a bundled example's name, or ``-`` for
    standard input. With *lax*, unsupported fields are dropped with a warning line instead
    of failing."""
    from ..kube import load_pod

    source = sys.stdin.read() if arg == STDIN else resolve_manifest(arg)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        pod = load_pod(source, strict=not lax)
    for warning in caught:
        print(f"asyncpod: warning: {warning.message}", file=sys.stderr)
    return pod


@asynccontextmanager
async def podman(url: str | None) -> AsyncIterator[Backend]:
    """The Podman service at *url* (default: discovered), for the management commands."""
    async with get_backend("podman", url=url) as backend:
        yield backend


@asynccontextmanager
async def up_backend(name: str, url: str | None, pod: Pod) -> AsyncIterator[Backend]:
    """The backend ``up`` runs *pod* on: "podman", or "fake" (the examples' stand-in
    images included)."""
    if name == "fake":
        async with fake_backend(pod) as fake:
            yield fake
    else:
        async with podman(url) as backend:
            if is_bundled(pod):  # the examples' images are stand-ins built from busybox
                await ensure_stand_ins(backend, pod)
            yield backend
