"""Backends: the container engines asyncpod drives.

:class:`Backend` is the contract; :class:`FakeBackend` runs pods in memory (for tests,
yours included); :class:`PodmanBackend` runs them on Podman. ``get_backend(name)`` builds
one by name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._base import Backend as Backend
from ._base import BackendEvent as BackendEvent
from ._base import ContainerExit as ContainerExit
from ._base import ContainerInfo as ContainerInfo
from ._base import ContainerResources as ContainerResources
from ._base import ContainerSecurity as ContainerSecurity
from ._base import ContainerSpec as ContainerSpec
from ._base import ContainerStats as ContainerStats
from ._base import ExecResult as ExecResult
from ._base import ExitWatcher as ExitWatcher
from ._base import LogRecord as LogRecord
from ._base import Mount as Mount
from ._base import OwnedObject as OwnedObject
from ._base import PodSpec as PodSpec
from ._base import PortMapping as PortMapping
from ._base import RuntimeState as RuntimeState
from ._base import VolumeFile as VolumeFile
from ._base import VolumeSpec as VolumeSpec
from ._fake import FakeBackend as FakeBackend
from ._fake import FakeContainer as FakeContainer
from ._fake import FakeContext as FakeContext
from ._fake import Program as Program
from ._registry import get_backend as get_backend

if TYPE_CHECKING:  # loaded on first use by __getattr__ below
    from ._podman import PodmanBackend as PodmanBackend

# Not exported (it is asyncpod.FrozenDict): the annotations of the classes re-homed below
# name it, and typing.get_type_hints evaluates them in this module's namespace.
from .._models import FrozenDict as FrozenDict  # isort: skip

__all__ = [
    "Backend",
    "BackendEvent",
    "ContainerExit",
    "ContainerInfo",
    "ContainerResources",
    "ContainerSecurity",
    "ContainerSpec",
    "ContainerStats",
    "ExecResult",
    "ExitWatcher",
    "FakeBackend",
    "FakeContainer",
    "FakeContext",
    "get_backend",
    "LogRecord",
    "Mount",
    "OwnedObject",
    "PodmanBackend",
    "PodSpec",
    "PortMapping",
    "Program",
    "RuntimeState",
    "VolumeFile",
    "VolumeSpec",
]


def _rehome(obj: object) -> None:
    """Show a public object as asyncpod.backends.X, not asyncpod.backends._base.X."""
    if getattr(obj, "__module__", "").startswith(f"{__name__}._"):
        try:
            obj.__module__ = __name__
        except (AttributeError, TypeError):  # pragma: no cover
            pass


for _name in __all__:
    if _name in globals():  # all but PodmanBackend, loaded on first use
        _rehome(globals()[_name])
del _name


def __getattr__(name: str) -> object:
    # PodmanBackend imports podman-py, which is slow to import: load it on first use.
    if name == "PodmanBackend":
        from ._podman import PodmanBackend

        _rehome(PodmanBackend)
        globals()[name] = PodmanBackend
        return PodmanBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
