"""The check that a pod's ``depends_on`` edges are acyclic.

It reads only names and edges, so the models can call it while they validate a pod
without importing the planner (which imports the models).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ._exceptions import DependencyCycleError

__all__ = ["check_acyclic"]


class _Edge(Protocol):
    @property
    def name(self) -> str: ...


class _Node(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def depends_on(self) -> Sequence[_Edge]: ...


def check_acyclic(containers: Sequence[_Node]) -> None:
    """Raise :class:`DependencyCycleError` naming a cycle among the ``depends_on`` edges of
    the app *containers*, if any.

    Only app containers have ``depends_on``, and sidecars never depend on app containers,
    so every cycle lies among app containers; edges to other containers are skipped.
    """
    apps = {c.name: (i, c) for i, c in enumerate(containers)}
    white, grey, black = 0, 1, 2
    color = dict.fromkeys(apps, white)
    for root in apps:
        if color[root] != white:
            continue
        # Iterative DFS; each frame is (name, index of the next dependency to visit).
        stack: list[tuple[str, int]] = [(root, 0)]
        color[root] = grey
        while stack:
            name, next_dep = stack[-1]
            deps = apps[name][1].depends_on
            if next_dep == len(deps):
                color[name] = black
                stack.pop()
                continue
            stack[-1] = (name, next_dep + 1)
            target = deps[next_dep].name
            if target not in apps:
                continue
            if color[target] == grey:
                names = [frame[0] for frame in stack]
                cycle = [*names[names.index(target) :], target]
                index = apps[name][0]
                raise DependencyCycleError(f"spec.containers[{index}].dependsOn[{next_dep}]", cycle)
            if color[target] == white:
                color[target] = grey
                stack.append((target, 0))
