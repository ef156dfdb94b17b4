"""The startup graph: in what order a pod's containers start, and in what order they stop.

Kubernetes fixes most of it: regular init containers run one at a time, each after the
previous init step (a regular init container must exit 0; a native sidecar must be
*started*); every app container starts after the whole init sequence. asyncpod adds
``depends_on`` edges among app containers. Everything else starts in parallel.

Teardown is the reverse: an app container stops once every app container depending on it
has stopped; sidecars stop after all app containers, in reverse declaration order.

Building a plan is linear in containers + edges.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Iterator
from typing import NamedTuple

import attrs

from ._models import Condition, Container, Pod, is_sidecar

__all__ = ["Edge", "PlanStep", "StartupPlan", "StepKind"]


class StepKind(str, enum.Enum):
    """The role of a container in the pod."""

    #: a regular init container: runs to completion before the next step
    INIT = "init"
    #: a native sidecar: an init container with ``restartPolicy: Always``
    SIDECAR = "sidecar"
    #: an app container (``spec.containers``)
    APP = "app"


class Edge(NamedTuple):
    """Wait until container *name* reaches *condition*."""

    name: str
    condition: Condition

    def __str__(self) -> str:
        return f"{self.name}:{self.condition.value}"


@attrs.frozen
class PlanStep:
    """One container of the plan, with what it waits for before it starts and stops."""

    name: str
    kind: StepKind
    container: Container = attrs.field(repr=False, eq=False)
    #: edges that must hold before the container starts
    after: tuple[Edge, ...]
    #: containers that must have stopped before this one is stopped
    stop_after: tuple[str, ...]
    #: length of the longest chain of start edges leading to this step
    depth: int


@attrs.frozen
class StartupPlan:
    """The start and stop order of a pod, as a DAG.

    *steps* is in a valid start order (a topological order of the start edges, stable in
    spec order).
    """

    steps: tuple[PlanStep, ...]

    @classmethod
    def from_pod(cls, pod: Pod) -> StartupPlan:
        """Build the plan of *pod* (already validated, so acyclic)."""
        steps: dict[str, PlanStep] = {}
        previous: Edge | None = None
        depth = 0
        sidecars: list[str] = []
        for container in pod.init_containers:
            kind = StepKind.SIDECAR if is_sidecar(container) else StepKind.INIT
            after: tuple[Edge, ...] = (previous,) if previous is not None else ()
            steps[container.name] = PlanStep(container.name, kind, container, after, (), depth)
            cond = Condition.STARTED if kind is StepKind.SIDECAR else Condition.COMPLETED
            previous = Edge(container.name, cond)
            depth += 1
            if kind is StepKind.SIDECAR:
                sidecars.append(container.name)

        apps = {c.name: c for c in pod.containers}
        dependents: dict[str, list[str]] = {name: [] for name in apps}
        for container in pod.containers:
            for dep in container.depends_on:
                if dep.name in dependents:
                    dependents[dep.name].append(container.name)

        app_depth: dict[str, int] = {}
        for name in _topological(pod):
            container = apps[name]
            after = ((previous,) if previous is not None else ()) + tuple(
                Edge(dep.name, dep.condition) for dep in container.depends_on
            )
            d = depth
            for dep in container.depends_on:
                if dep.name in app_depth:
                    d = max(d, app_depth[dep.name] + 1)
            app_depth[name] = d
            steps[name] = PlanStep(name, StepKind.APP, container, after, tuple(dependents[name]), d)

        # Sidecars stop after every app container, in reverse declaration order.
        for i, name in enumerate(sidecars):
            later = sidecars[i + 1 : i + 2]
            stop_after = tuple(later) if later else tuple(apps)
            steps[name] = attrs.evolve(steps[name], stop_after=stop_after)
        return cls(tuple(steps.values()))

    def step(self, name: str) -> PlanStep:
        """The step of container *name*."""
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)

    def layers(self) -> list[list[PlanStep]]:
        """Steps grouped by depth: the steps of one layer may run in parallel."""
        layers: list[list[PlanStep]] = []
        for step in self.steps:
            while len(layers) <= step.depth:
                layers.append([])
            layers[step.depth].append(step)
        return layers

    def stop_order(self) -> list[str]:
        """A valid sequential stop order (reverse of the start order, sidecars last)."""
        apps = [s.name for s in self.steps if s.kind is StepKind.APP]
        sidecars = [s.name for s in self.steps if s.kind is StepKind.SIDECAR]
        return apps[::-1] + sidecars[::-1]

    def stop_ranks(self) -> dict[str, int]:
        """Teardown in layers: each container's rank, 0 for those that stop first.

        A container's rank is one more than the highest rank among the containers that
        must stop before it (its ``stop_after``), so stopping rank by rank, each rank in
        parallel, respects the teardown order without the pod description.
        """
        ranks: dict[str, int] = {}
        # Every step's stop_after lies later in start order: fill in reverse.
        for step in reversed(self.steps):
            ranks[step.name] = 1 + max((ranks[n] for n in step.stop_after), default=-1)
        return ranks

    def describe(self) -> Iterator[str]:
        """Human-readable lines, one per layer."""
        for index, layer in enumerate(self.layers()):
            parts = []
            for step in layer:
                after = ", ".join(str(e) for e in step.after)
                parts.append(
                    f"{step.name} [{step.kind.value}]" + (f" after {after}" if after else "")
                )
            yield f"{index + 1}. " + " | ".join(parts)


def _topological(pod: Pod) -> list[str]:
    """App containers in a topological order of their app-to-app dependencies (Kahn)."""
    apps = {c.name: c for c in pod.containers}
    indegree = dict.fromkeys(apps, 0)
    dependents: dict[str, list[str]] = {name: [] for name in apps}
    for container in pod.containers:
        for dep in container.depends_on:
            if dep.name in apps:
                indegree[container.name] += 1
                dependents[dep.name].append(container.name)
    ready = deque(name for name, degree in indegree.items() if degree == 0)
    order: list[str] = []
    while ready:
        name = ready.popleft()
        order.append(name)
        for child in dependents[name]:
            indegree[child] -= 1
            if indegree[child] == 0:
                ready.append(child)
    return order
