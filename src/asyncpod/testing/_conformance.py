"""The conformance suite, in two parts, and how to run it.

- :data:`CONTRACT_CHECKS`: the backend contract, what a third-party backend author must
  pass and nothing else (:mod:`._contract`);
- :data:`SCENARIO_CHECKS`: the supervisor's scenarios, run on each backend
  (:mod:`._scenarios`);
- :data:`CONFORMANCE_CHECKS`: both, contract first.

Every check is run by :func:`run_check`, which fails a check that leaves objects behind.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import anyio

from .._labels import LABEL_POD, LABEL_RUN
from ..backends._base import Backend, OwnedObject
from . import _contract, _scenarios  # noqa: F401  (they fill the registries)
from ._fixture import CONTRACT_CHECKS, SCENARIO_CHECKS, BackendFixture, Check

__all__ = [
    "CONFORMANCE_CHECKS",
    "CONTRACT_CHECKS",
    "SCENARIO_CHECKS",
    "BackendFixture",
    "check_backend",
    "run_check",
]

#: every check, the contract's first, then the scenarios
CONFORMANCE_CHECKS: dict[str, Check] = {**CONTRACT_CHECKS, **SCENARIO_CHECKS}


async def check_backend(
    make_backend: Callable[[], Backend], image: str, *, checks: Mapping[str, Check] | None = None
) -> None:
    """Run *checks* (default: every conformance check) against fresh backends from
    *make_backend*, one backend per check.

    Raises :class:`AssertionError` naming the first check that fails. Pass
    ``checks=CONTRACT_CHECKS`` to check the backend contract alone.
    """
    for name, check in (CONFORMANCE_CHECKS if checks is None else checks).items():
        async with make_backend() as backend:
            try:
                await run_check(check, BackendFixture(backend, image))
            except AssertionError as exc:
                raise AssertionError(f"conformance check {name!r} failed: {exc}") from exc


async def run_check(check: Check, fx: BackendFixture) -> None:
    """Run one check, then remove whatever it left behind, and fail if that was anything.

    A check's objects carry ``fx.labels``, or belong to a pod named by ``fx.name()``. The
    check's own failure, if any, is what is raised; the leftovers are removed either way.
    """
    try:
        with anyio.fail_after(120):
            await check(fx)
    finally:
        with anyio.CancelScope(shield=True), anyio.fail_after(60):
            left = await _leftovers(fx)
            if left:
                await fx.backend.remove_objects(left)
    if left:
        listed = ", ".join(f"{o.type} {o.name or o.id}" for o in left)
        raise AssertionError(f"the check left {len(left)} object(s) behind: {listed}")


async def _leftovers(fx: BackendFixture) -> list[OwnedObject]:
    found: dict[tuple[str, str], OwnedObject] = {}
    for labels in [{LABEL_RUN: fx.run}, *({LABEL_POD: name} for name in sorted(fx.names))]:
        for obj in await fx.backend.list_objects(labels):
            found[obj.type, obj.id] = obj
    return list(found.values())
