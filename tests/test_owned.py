"""What ps, down and gc work on: a backend's asyncpod objects found by label, stopped in
rank order, and told apart by owner (on the FakeBackend)."""

from __future__ import annotations

import subprocess
import sys

import pytest

import asyncpod
from asyncpod import Container, OwnerState, Pod
from asyncpod._labels import LABEL_OWNER_HOST, LABEL_OWNER_PID, LABEL_OWNER_START
from asyncpod._owned import describe, find_pods, remove_pod, stop_pod
from asyncpod._owner import hostname
from asyncpod.backends import FakeBackend, PodSpec

pytestmark = pytest.mark.anyio


def ctr(name: str, **kwargs: object) -> Container:
    return Container(name=name, image="busybox", command=["sleep", "inf"], **kwargs)  # type: ignore[arg-type]


POD = Pod(
    name="shop",
    init_containers=[ctr("side", restart_policy="Always")],
    containers=[ctr("db"), ctr("api", depends_on=["db"]), ctr("web", depends_on=["api"])],
    termination_grace_period_seconds=9,
)


async def test_a_detached_pod_is_found_and_stopped_in_rank_order(fake: FakeBackend) -> None:
    """down's work without the manifest: dependents first, sidecars last, then removal."""
    async with asyncpod.open_pod(POD, backend=fake, detach=True) as running:
        run = running.run_id
    [found] = await find_pods(fake)
    assert (found.name, found.run, found.detached, found.grace) == ("shop", run, True, 9.0)
    assert found.owner is OwnerState.ALIVE  # this process
    assert not found.orphaned
    assert [c.labels["io.asyncpod.container"] for c in found.containers] == [
        "web",
        "api",
        "db",
        "side",
    ]
    fake.calls.clear()
    await stop_pod(fake, found)
    assert [t for op, t in fake.calls if op == "stop_container"] == ["web", "api", "db", "side"]
    removed = await remove_pod(fake, found)
    assert sorted(o.type for o in removed) == ["container"] * 4 + ["pod", "volume"]
    assert describe(removed) == "4 containers, 1 pod"  # not the marker volume
    assert fake.objects() == []
    assert await find_pods(fake, "shop") == []


@pytest.fixture(scope="module")
def dead_pid() -> str:
    """The pid of a process that has exited."""
    code = "import os; print(os.getpid())"
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return child.stdout.strip()


async def test_a_dead_owner_makes_garbage(fake: FakeBackend, dead_pid: str) -> None:
    """Objects of a run whose owner process is gone are orphans; a live owner's are not."""
    async with asyncpod.open_pod(Pod(name="a", containers=[ctr("x")]), backend=fake) as live:
        labels = {k: v for k, v in live.labels.items() if k != LABEL_OWNER_START}
        labels.update({"io.asyncpod.pod": "b", "io.asyncpod.run": "r2", LABEL_OWNER_PID: dead_pid})
        orphan = await fake.create_pod(PodSpec(name="b", hostname="b", labels=labels))
        pods = {p.name: p for p in await find_pods(fake)}
        assert set(pods) == {"a", "b"}
        assert pods["a"].owner is OwnerState.ALIVE
        assert not pods["a"].orphaned
        assert pods["b"].owner is OwnerState.GONE
        assert pods["b"].orphaned
        assert pods["b"].grace == 30.0  # no container says otherwise
        await fake.remove_pod(orphan)


async def test_a_detached_run_is_detached_once_left_running(fake: FakeBackend) -> None:
    """Until open_pod(detach=True) leaves its block, the run is only "detaching": were its
    owner killed then, gc would collect it."""
    async with asyncpod.open_pod(Pod(name="d", containers=[ctr("x")]), backend=fake, detach=True):
        [found] = await find_pods(fake)
        assert (found.detached, found.detaching) == (False, True)
    [found] = await find_pods(fake)
    assert (found.detached, found.detaching, found.orphaned) == (True, False, False)
    await remove_pod(fake, found)


async def test_a_remote_backend_makes_no_garbage(fake: FakeBackend, dead_pid: str) -> None:
    """A dead pid on a remote service may be another machine's: unknown, not garbage."""
    labels = {"io.asyncpod.pod": "r", "io.asyncpod.run": "r1", LABEL_OWNER_PID: dead_pid}
    labels[LABEL_OWNER_HOST] = hostname()
    await fake.create_pod(PodSpec(name="r", hostname="r", labels=labels))
    [here] = await find_pods(fake)
    [remote] = await find_pods(fake, local=False)
    assert (here.owner, here.orphaned) == (OwnerState.GONE, True)
    assert (remote.owner, remote.orphaned) == (OwnerState.UNKNOWN, False)
    await remove_pod(fake, remote)


# What ownership rests on: a container's labels may come from its image (Podman copies an
# image's LABELs onto its containers), so they never make a run, an owner or a marker.


async def test_a_container_outside_our_pods_is_no_runs_whatever_its_labels(
    fake: FakeBackend, dead_pid: str
) -> None:
    """A container whose image carries asyncpod's labels, of a dead owner, in a pod that
    asyncpod did not make, is neither listed nor removed."""
    from asyncpod.backends import ContainerSpec

    forged = {
        "io.asyncpod.pod": "victim",
        "io.asyncpod.run": "r9",
        LABEL_OWNER_PID: dead_pid,
        LABEL_OWNER_HOST: hostname(),
    }
    foreign_pod = await fake.create_pod(PodSpec(name="theirs", hostname="theirs"))
    cid = await fake.create_container(
        ContainerSpec(name="theirs-app", pod=foreign_pod, image="busybox", labels=forged)
    )
    assert await find_pods(fake) == []
    assert await find_pods(fake, "victim") == []
    # A run of ours with the same name and run id does not adopt it either.
    pod = await fake.create_pod(PodSpec(name="victim", hostname="victim", labels=forged))
    [found] = await find_pods(fake, "victim")
    assert [o.type for o in found.objects] == ["pod"]
    removed = await remove_pod(fake, found)
    assert [o.id for o in removed] == [pod]
    assert [o.id for o in fake.objects()] == [foreign_pod, cid]
    await fake.remove_objects(fake.objects())


async def test_a_marker_label_on_a_container_does_not_detach_a_run(
    fake: FakeBackend, dead_pid: str
) -> None:
    """Only the marker volume says a run was left running on purpose: an image's
    ``io.asyncpod.marker=detached`` on a container keeps no dead owner's run from gc."""
    from asyncpod.backends import ContainerSpec

    labels = {
        "io.asyncpod.pod": "m",
        "io.asyncpod.run": "r1",
        LABEL_OWNER_PID: dead_pid,
        LABEL_OWNER_HOST: hostname(),
    }
    pod = await fake.create_pod(PodSpec(name="m", hostname="m", labels=labels))
    await fake.create_container(
        ContainerSpec(
            name="m-x",
            pod=pod,
            image="busybox",
            labels={**labels, "io.asyncpod.marker": "detached", "io.asyncpod.detached": "true"},
        )
    )
    [found] = await find_pods(fake)
    assert len(found.containers) == 1
    assert (found.detached, found.orphaned) == (False, True)
    await remove_pod(fake, found)
    assert fake.objects() == []


@pytest.mark.parametrize("grace", ["nan", "inf", "-inf", "-1", "1e9", "3601", "x", "9" * 400])
async def test_an_insane_grace_label_counts_as_none(fake: FakeBackend, grace: str) -> None:
    """Labels read back are untrusted: a grace period that would wait forever (or never
    parse) is the default, so that gc and down end."""
    from asyncpod.backends import ContainerSpec

    labels = {"io.asyncpod.pod": "g", "io.asyncpod.run": "r1"}
    pod = await fake.create_pod(PodSpec(name="g", hostname="g", labels=labels))
    await fake.create_container(
        ContainerSpec(
            name="g-x",
            pod=pod,
            image="busybox",
            labels={**labels, "io.asyncpod.grace-period": grace, "io.asyncpod.stop-rank": grace},
        )
    )
    [found] = await find_pods(fake)
    assert found.grace == 30.0
    await remove_pod(fake, found)


@pytest.mark.parametrize("pid", ["", "-1", "0", "1e3", "٣", "99999999", " 42"])
async def test_an_insane_owner_pid_is_unknown(fake: FakeBackend, pid: str) -> None:
    labels = {
        "io.asyncpod.pod": "p",
        "io.asyncpod.run": "r1",
        LABEL_OWNER_PID: pid,
        LABEL_OWNER_HOST: hostname(),
    }
    await fake.create_pod(PodSpec(name="p", hostname="p", labels=labels))
    [found] = await find_pods(fake)
    assert (found.owner, found.orphaned) == (OwnerState.UNKNOWN, False)
    await remove_pod(fake, found)


async def test_remove_orphans_takes_only_a_dead_owners_run(
    fake: FakeBackend, dead_pid: str
) -> None:
    """The library's gc: a dead owner's run goes, stopped then removed; a live owner's run
    and a detached one stay."""
    async with asyncpod.open_pod(Pod(name="d", containers=[ctr("x")]), backend=fake, detach=True):
        pass
    async with asyncpod.open_pod(Pod(name="live", containers=[ctr("x")]), backend=fake) as live:
        labels = dict(live.labels)
        labels.update({"io.asyncpod.pod": "dead", "io.asyncpod.run": "r2"})
        labels.update({LABEL_OWNER_PID: dead_pid, LABEL_OWNER_START: "1"})
        await fake.create_pod(PodSpec(name="dead", hostname="dead", labels=labels))
        removed = await asyncpod.remove_orphans(fake)
        assert [(p.name, p.run) for p in removed] == [("dead", "r2")]
        assert {p.name for p in await find_pods(fake)} == {"d", "live"}
    [detached] = await find_pods(fake)
    await remove_pod(fake, detached)
