"""PersistentVolumeClaims on one machine: a named volume per claim that outlives its runs.

A claim's volume is named after the claim and labelled ``io.asyncpod.claim=<claim>`` only
(no run's labels): a teardown and ``asyncpod gc`` leave it alone, and the next run that
names the claim finds its data. :func:`remove_claim` removes it, on request.
"""

from __future__ import annotations

from ._labels import LABEL_CLAIM
from .backends._base import Backend

__all__ = ["list_claims", "remove_claim"]


async def list_claims(backend: Backend) -> list[str]:
    """The names of the claims whose volumes exist on *backend*, sorted."""
    objects = await backend.list_objects({})
    return sorted(
        o.labels[LABEL_CLAIM] for o in objects if o.type == "volume" and LABEL_CLAIM in o.labels
    )


async def remove_claim(backend: Backend, name: str) -> bool:
    """Remove the volume of claim *name*, its data with it; whether there was one.

    A volume still mounted by a running pod is not removed: the backend's
    :class:`~asyncpod.BackendError` says so.
    """
    found = [
        o
        for o in await backend.list_objects({LABEL_CLAIM: name})
        if o.type == "volume" and o.labels.get(LABEL_CLAIM) == name
    ]
    for volume in found:
        await backend.remove_volume(volume.id)
    return bool(found)
