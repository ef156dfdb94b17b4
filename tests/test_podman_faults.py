"""The fault suite: a Podman service killed under asyncpod, on real Podman (issue #12).

Each test runs against a private ``podman system service`` of its own (its own storage,
run root, tmp dir and file locks, under a temp dir), so that killing it disturbs no one
else's service or storage. Killed during bring-up, while running, or during teardown,
the caller gets :class:`~asyncpod.BackendUnavailableError` within 5 s; once the service is
back, ``gc`` (:func:`~asyncpod._owned.remove_orphans`) leaves nothing. Pods use the host
network: a private run root has its own IP allocation, which must not hand out the shared
bridge's addresses.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

import asyncpod
from asyncpod import Container, EventReason, Pod, PodEvent, remove_orphans
from asyncpod._labels import LABEL_OWNER_HOST, LABEL_OWNER_PID, LABEL_OWNER_START
from asyncpod._owner import hostname
from asyncpod.backends import PodmanBackend
from podman_images import TEST_IMAGE, ensure_test_image

pytestmark = [pytest.mark.podman, pytest.mark.anyio]

_CONF = Path(__file__).parent.parent / ".ci" / "containers.conf"


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Service:
    """A private Podman service that a test may kill and start again."""

    def __init__(self, podman: str, directory: Path) -> None:
        self.directory = directory
        self.sock = directory / "podman.sock"
        self.url = f"unix://{self.sock}"
        conf = directory / "containers.conf"
        base = _CONF.read_text() if _CONF.exists() else "[engine]\n"
        # File locks under the tmp dir: a fresh tmp dir makes Podman "refresh", which
        # with the default SHM locks would reset the locks every other service shares.
        conf.write_text(base + '\nlock_type = "file"\n')
        self.env = {**os.environ, "CONTAINERS_CONF": str(conf)}
        self.argv = [
            podman,
            "--root", str(directory / "root"),
            "--runroot", str(directory / "run"),
            "--tmpdir", str(directory / "tmp"),
            "--storage-driver", "vfs",
            "system", "service", "--time=0", self.url,
        ]  # fmt: skip
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.sock.unlink(missing_ok=True)
        with (self.directory / "service.log").open("ab") as log:
            self.process = subprocess.Popen(
                self.argv, env=self.env, stdout=log, stderr=log, start_new_session=True
            )
        deadline = time.monotonic() + 20
        while not self.sock.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the private service did not start: {self.log()}")
            time.sleep(0.05)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return (self.directory / "service.log").read_text(errors="replace")[-2000:]


@pytest.fixture(scope="module")
def service() -> Iterator[Service]:
    podman = shutil.which("podman")
    if podman is None:
        pytest.skip("no podman executable")
    directory = Path(tempfile.mkdtemp(prefix="asyncpod-faults-"))
    svc = Service(podman, directory)
    try:
        svc.start()
        from podman import PodmanClient

        with PodmanClient(base_url=svc.url) as client:
            ensure_test_image(client)
        yield svc
    finally:
        if svc.process is not None and svc.process.poll() is not None:
            svc.start()  # to remove what is left
        _remove_all(svc, images=True)  # the service removes its files (rootless: subuids')
        svc.stop()
        shutil.rmtree(directory, ignore_errors=True)


def _remove_all(svc: Service, *, images: bool = False) -> None:
    from podman import PodmanClient

    with PodmanClient(base_url=svc.url) as client:
        api = client.api
        for pod in api.get("/pods/json").json() or []:
            api.delete(f"/pods/{pod['Id']}", params={"force": "true", "timeout": 0})
        for ctr in api.get("/containers/json", params={"all": "true"}).json() or []:
            api.delete(f"/containers/{ctr['Id']}", params={"force": "true", "timeout": 0})
        for vol in api.get("/volumes/json").json() or []:
            api.delete(f"/volumes/{vol['Name']}", params={"force": "true"})
        if images:
            for image in api.get("/images/json").json() or []:
                api.delete(f"/images/{image['Id']}", params={"force": "true"})


@pytest.fixture
def alive(service: Service) -> Service:
    """The service, running (a test before may have killed it)."""
    if service.process is None or service.process.poll() is not None:
        service.start()
    return service


@pytest.fixture
def dead_owner(monkeypatch: pytest.MonkeyPatch) -> None:
    """This test's runs carry the owner labels of a process that is gone, so that ``gc``
    (which leaves a live owner's runs alone) may collect what a fault left behind."""
    gone = subprocess.Popen(["true"])
    gone.wait()
    labels = {LABEL_OWNER_PID: str(gone.pid), LABEL_OWNER_HOST: hostname(), LABEL_OWNER_START: "0"}
    monkeypatch.setattr("asyncpod._supervisor._core.owner_labels", lambda: dict(labels))


def _pod(name: str, **kwargs: Any) -> Pod:
    sleeper = ("sh", "-c", "trap 'exit 0' TERM; sleep 1000 & wait")
    return Pod(
        name=name,
        containers=[
            Container(name="a", image=TEST_IMAGE, command=sleeper),
            Container(name="b", image=TEST_IMAGE, command=sleeper, depends_on={"a": "started"}),
        ],
        host_network=True,
        termination_grace_period_seconds=2,
        **kwargs,
    )


async def _gc_leaves_nothing(svc: Service) -> None:
    """Start the service again; ``gc`` collects the run the fault left, and nothing is left."""
    await anyio.to_thread.run_sync(svc.start)
    async with PodmanBackend(svc.url) as backend:
        with anyio.fail_after(60):
            await remove_orphans(backend)
        assert await backend.list_objects({}) == []


async def _fails_within(svc: Service, seconds: float, run: Any) -> float:
    began = time.monotonic()
    with anyio.fail_after(seconds + 5):
        with pytest.raises(asyncpod.BackendUnavailableError):
            await run()
    took = time.monotonic() - began
    assert took <= seconds, f"the typed error came after {took:.1f} s\n{svc.log()}"
    return took


async def test_killed_during_bring_up(alive: Service, dead_owner: None) -> None:
    """The service dies as the first container has started (the second is yet to): the
    bring-up ends with BackendUnavailableError within 5 s, not a start error retried
    with back-off."""
    pod = _pod("fault-up")
    killed_at: list[float] = []

    def on_event(event: PodEvent) -> None:
        if event.reason is EventReason.STARTED and not killed_at:
            alive.kill()
            killed_at.append(time.monotonic())

    async def run() -> None:
        async with PodmanBackend(alive.url) as backend:
            async with asyncpod.open_pod(pod, backend=backend, on_event=on_event):
                pytest.fail("the pod came up")

    began = time.monotonic()
    with anyio.fail_after(30), pytest.raises(asyncpod.BackendUnavailableError):
        await run()
    assert killed_at, "the service was never killed"
    took = time.monotonic() - killed_at[0]
    assert took <= 5, f"the typed error came {took:.1f} s after the kill ({began})"
    await _gc_leaves_nothing(alive)


async def test_killed_while_running(alive: Service, dead_owner: None) -> None:
    """The service dies under a running pod: BackendUnavailableError within 5 s."""
    pod = _pod("fault-run")

    async def run() -> None:
        async with PodmanBackend(alive.url) as backend:
            async with asyncpod.open_pod(pod, backend=backend):
                alive.kill()
                await anyio.sleep(60)

    await _fails_within(alive, 5, run)
    await _gc_leaves_nothing(alive)


async def test_killed_during_teardown(alive: Service, dead_owner: None) -> None:
    """The service dies as the teardown begins: the teardown ends within 5 s (plus the
    grace period it may wait) with BackendUnavailableError, or quietly, and nothing is
    left once gc ran."""
    pod = _pod("fault-down")

    def on_event(event: PodEvent) -> None:
        if event.reason is EventReason.TERMINATING:
            alive.kill()

    began = 0.0
    try:
        async with PodmanBackend(alive.url) as backend:
            async with asyncpod.open_pod(pod, backend=backend, on_event=on_event):
                began = time.monotonic()
    except asyncpod.BackendUnavailableError:
        pass
    took = time.monotonic() - began
    assert took <= 5 + pod.termination_grace_period_seconds, f"teardown took {took:.1f} s"
    await _gc_leaves_nothing(alive)


async def test_same_name_at_once(alive: Service) -> None:
    """Two runs of one pod name (with a volume) at once: exactly one winner; the loser's
    ObjectExistsError leaves the winner's objects alone."""
    pod = _pod(
        "fault-twice",
        volumes=[asyncpod.Volume(name="v", empty_dir=asyncpod.EmptyDirVolumeSource())],
    )
    outcomes: list[object] = []
    loser_done = anyio.Event()

    async with PodmanBackend(alive.url) as backend:

        async def run() -> None:
            try:
                async with asyncpod.open_pod(pod, backend=backend) as running:
                    outcomes.append("won")
                    with anyio.move_on_after(30):
                        await loser_done.wait()
                    assert running.status().phase is asyncpod.Phase.RUNNING
                    names = {(o.type, o.name) for o in await backend.list_objects({})}
                    assert {("pod", "fault-twice"), ("volume", "fault-twice-v")} <= names
            except asyncpod.ObjectExistsError as exc:
                outcomes.append(exc)
                loser_done.set()

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                tg.start_soon(run)
                tg.start_soon(run)
        assert outcomes.count("won") == 1, outcomes
        assert len(outcomes) == 2
        assert await backend.list_objects({}) == []


_OWNER_SCRIPT = """
import sys, anyio
import asyncpod.backends._podman._service as service
from asyncpod.backends._podman import PodmanBackend

service.candidate_urls = lambda url: (["unix:///nonexistent/asyncpod-no-such.sock"], False)

async def main():
    async with PodmanBackend() as backend:
        print(backend._service.process.pid, backend._service.directory, flush=True)
        await anyio.sleep(600)

anyio.run(main)
"""


def test_private_service_of_a_killed_owner_is_stopped(podman_url: str) -> None:
    """An owner SIGKILLed leaves its private ``podman system service`` (and its temp dir)
    behind; the next run's reaper (also ``asyncpod gc``'s) stops it and removes the dir."""
    from asyncpod.backends._podman._service import reap_orphaned_services

    env = dict(os.environ)
    if _CONF.exists() and "CONTAINERS_CONF" not in env:
        env["CONTAINERS_CONF"] = str(_CONF)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(asyncpod.__file__).parent.parent), env.get("PYTHONPATH", "")]
    )
    owner = subprocess.Popen(
        [sys.executable, "-c", _OWNER_SCRIPT], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert owner.stdout is not None
        line = owner.stdout.readline().split()
        assert line, "the owner did not start its service"
        pid, directory = int(line[0]), Path(line[1])
    finally:
        owner.kill()
        owner.wait()
        if owner.stdout is not None:
            owner.stdout.close()
    assert os.path.exists(f"/proc/{pid}")  # it outlived its owner
    assert directory.exists()
    assert pid in reap_orphaned_services()
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{pid}")
    assert not directory.exists()
