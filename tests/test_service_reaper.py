"""A private Podman service whose owner died (SIGKILL) is stopped by the next run or by
``asyncpod gc`` (issue #12): its directory records owner and service by pid and start
time. Plain processes stand in for the service here; tests/test_podman_faults.py kills
the owner of a real one."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from asyncpod._owner import process_start
from asyncpod.backends._podman._service import reap_orphaned_services


@pytest.fixture
def service() -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(["/bin/sleep", "60"])
    yield process
    process.kill()
    process.wait()


def _dead_pid() -> int:
    gone = subprocess.Popen(["/bin/true"])
    gone.wait()
    return gone.pid


def _record(base: Path, name: str, owner: int, owner_start: str | None, svc: int) -> Path:
    directory = base / f"asyncpod-podman-{name}"
    directory.mkdir()
    data = {
        "owner_pid": owner,
        "owner_start": owner_start,
        "service_pid": svc,
        "service_start": process_start(svc),
    }
    (directory / "owner.json").write_text(json.dumps(data))
    return directory


def test_the_service_of_a_dead_owner_is_stopped(
    tmp_path: Path, service: subprocess.Popen[bytes]
) -> None:
    directory = _record(tmp_path, "a", _dead_pid(), "1", service.pid)
    assert reap_orphaned_services(str(tmp_path)) == [service.pid]
    assert service.wait(5) is not None
    assert not directory.exists()


def test_a_live_owner_and_strangers_are_left_alone(
    tmp_path: Path, service: subprocess.Popen[bytes]
) -> None:
    live = _record(tmp_path, "live", os.getpid(), process_start(os.getpid()), service.pid)
    (tmp_path / "asyncpod-podman-norecord").mkdir()  # being set up, or not ours to judge
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "owner.json").write_text(
        json.dumps({"owner_pid": _dead_pid(), "owner_start": "1", "service_pid": service.pid})
    )
    (tmp_path / "asyncpod-podman-link").symlink_to(elsewhere)
    assert reap_orphaned_services(str(tmp_path)) == []
    assert service.poll() is None
    assert live.exists()
    assert (tmp_path / "asyncpod-podman-norecord").exists()
    assert (elsewhere / "owner.json").exists()


def test_a_reused_service_pid_is_not_signalled(
    tmp_path: Path, service: subprocess.Popen[bytes]
) -> None:
    """The recorded service is gone and its pid now names another process: the record's
    start time does not match, so nothing is signalled; the stale directory goes."""
    directory = _record(tmp_path, "b", _dead_pid(), "1", service.pid)
    data = json.loads((directory / "owner.json").read_text())
    data["service_start"] = "1"  # the recorded process started at another time
    (directory / "owner.json").write_text(json.dumps(data))
    assert reap_orphaned_services(str(tmp_path)) == []
    assert service.poll() is None
    assert not directory.exists()
