"""The startup plan: Kubernetes init order, depends_on edges, teardown order; random DAGs."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asyncpod import (
    Condition,
    Container,
    DependencyCycleError,
    Pod,
    StartupPlan,
    StepKind,
)


def c(name: str, **kwargs: object) -> Container:
    return Container(name=name, image="img", **kwargs)  # type: ignore[arg-type]


def test_kubernetes_init_sequence() -> None:
    """Init steps chain; sidecars gate on 'started', regular ones on 'completed'; apps follow."""
    pod = Pod(
        name="p",
        init_containers=[c("i1"), c("side", restart_policy="Always"), c("i2")],
        containers=[c("a"), c("b", depends_on=["a"])],
    )
    plan = StartupPlan.from_pod(pod)
    after = {s.name: [str(e) for e in s.after] for s in plan.steps}
    assert after == {
        "i1": [],
        "side": ["i1:completed"],
        "i2": ["side:started"],
        "a": ["i2:completed"],
        "b": ["i2:completed", "a:started"],
    }
    assert [s.kind for s in plan.steps] == [
        StepKind.INIT,
        StepKind.SIDECAR,
        StepKind.INIT,
        StepKind.APP,
        StepKind.APP,
    ]
    assert [[s.name for s in layer] for layer in plan.layers()] == [
        ["i1"],
        ["side"],
        ["i2"],
        ["a"],
        ["b"],
    ]
    assert plan.stop_order() == ["b", "a", "side"]
    stop_after = {s.name: s.stop_after for s in plan.steps}
    assert stop_after["a"] == ("b",)
    assert stop_after["side"] == ("a", "b")


def test_sidecars_stop_in_reverse_order() -> None:
    """Each sidecar stops after the sidecar declared after it; the last after all apps."""
    pod = Pod(
        name="p",
        init_containers=[c("s1", restart_policy="Always"), c("s2", restart_policy="Always")],
        containers=[c("a"), c("b")],
    )
    plan = StartupPlan.from_pod(pod)
    assert plan.step("s1").stop_after == ("s2",)
    assert plan.step("s2").stop_after == ("a", "b")


def test_stop_ranks_layer_the_teardown() -> None:
    """Rank 0 stops first: apps nothing depends on; then their dependencies; sidecars last."""
    pod = Pod(
        name="p",
        init_containers=[
            c("init"),
            c("s1", restart_policy="Always"),
            c("s2", restart_policy="Always"),
        ],
        containers=[c("db"), c("api", depends_on=["db"]), c("web", depends_on=["api"]), c("x")],
    )
    assert StartupPlan.from_pod(pod).stop_ranks() == {
        "init": 0,
        "web": 0,
        "x": 0,
        "api": 1,
        "db": 2,
        "s2": 3,
        "s1": 4,
    }


def test_describe_shows_parallel_branches() -> None:
    """describe() prints one line per layer, parallel steps joined."""
    pod = Pod(
        name="p",
        containers=[c("a"), c("b"), c("web", depends_on={"a": "completed", "b": "started"})],
    )
    lines = list(StartupPlan.from_pod(pod).describe())
    assert lines == ["1. a [app] | b [app]", "2. web [app] after a:completed, b:started"]


@st.composite
def dags(draw: st.DrawFn) -> Pod:
    """Pods whose app containers depend only on earlier ones (so acyclic), in shuffled order."""
    n = draw(st.integers(min_value=1, max_value=25))
    containers = []
    for i in range(n):
        targets = (
            draw(st.sets(st.integers(min_value=0, max_value=i - 1), max_size=4)) if i else set()
        )
        conditions = [draw(st.sampled_from(["started", "completed"])) for _ in targets]
        deps = {f"c{t}": cond for t, cond in zip(sorted(targets), conditions, strict=True)}
        containers.append(c(f"c{i}", depends_on=deps))
    order = draw(st.permutations(containers))
    inits = [c(f"i{k}") for k in range(draw(st.integers(min_value=0, max_value=3)))]
    return Pod(name="dag", init_containers=inits, containers=order)


@settings(max_examples=150, deadline=None)
@given(dags())
def test_random_dags_respect_every_edge(pod: Pod) -> None:
    """In the plan's order every container comes after everything it waits for."""
    plan = StartupPlan.from_pod(pod)
    position = {s.name: i for i, s in enumerate(plan.steps)}
    assert set(position) == {x.name for x in pod.all_containers}
    for step in plan.steps:
        for edge in step.after:
            assert position[edge.name] < position[step.name]
            assert plan.step(edge.name).depth < step.depth
        for dep in step.container.depends_on:
            assert step.name in plan.step(dep.name).stop_after
    # teardown: a container stops only after everything depending on it
    stop_position = {name: i for i, name in enumerate(plan.stop_order())}
    ranks = plan.stop_ranks()
    for container in pod.containers:
        for dep in container.depends_on:
            assert stop_position[container.name] < stop_position[dep.name]
            assert ranks[container.name] < ranks[dep.name]


@st.composite
def graphs(draw: st.DrawFn) -> dict[str, list[str]]:
    n = draw(st.integers(min_value=1, max_value=12))
    names = [f"c{i}" for i in range(n)]
    return {
        name: sorted(draw(st.sets(st.sampled_from([x for x in names if x != name]), max_size=3)))
        if n > 1
        else []
        for name in names
    }


def _has_cycle(graph: dict[str, list[str]]) -> bool:
    state: dict[str, int] = {}

    def visit(node: str) -> bool:
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1 or (nxt not in state and visit(nxt)):
                return True
        state[node] = 2
        return False

    return any(node not in state and visit(node) for node in graph)


@settings(max_examples=200, deadline=None)
@given(graphs())
def test_every_cycle_is_reported(graph: dict[str, list[str]]) -> None:
    """A graph with a cycle is refused naming a real cycle; an acyclic one is accepted."""
    containers = [c(name, depends_on=deps) for name, deps in graph.items()]
    if not _has_cycle(graph):
        Pod(name="g", containers=containers)
        return
    with pytest.raises(DependencyCycleError) as info:
        Pod(name="g", containers=containers)
    cycle = info.value.cycle
    assert cycle[0] == cycle[-1]
    assert len(set(cycle[:-1])) == len(cycle) - 1
    for a, b in itertools.pairwise(cycle):
        assert b in graph[a], (a, b, cycle)
    assert info.value.path.startswith("spec.containers[")


def test_conditions_carry_into_edges() -> None:
    """depends_on conditions become the edges' conditions."""
    pod = Pod(name="p", containers=[c("db"), c("app", depends_on={"db": "completed"})])
    (edge,) = StartupPlan.from_pod(pod).step("app").after
    assert edge.condition is Condition.COMPLETED
