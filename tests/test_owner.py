"""Owner labels: telling a live owner process from a gone one (pid reuse included)."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest

from asyncpod import OwnerState
from asyncpod._labels import LABEL_OWNER_HOST, LABEL_OWNER_PID, LABEL_OWNER_START
from asyncpod._owner import hostname, owner_labels, owner_state, process_start, signal_owner
from processes import dead_pid

needs_proc = pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="no /proc")


def test_this_process_is_alive() -> None:
    assert owner_state(owner_labels()) is OwnerState.ALIVE


def test_an_exited_process_is_gone() -> None:
    labels = {**owner_labels(), LABEL_OWNER_PID: str(dead_pid())}
    labels.pop(LABEL_OWNER_START, None)
    assert owner_state(labels) is OwnerState.GONE


@needs_proc
def test_a_reused_pid_is_gone() -> None:
    """Our pid with another start time is another process than the one that labelled."""
    labels = owner_labels()
    assert labels[LABEL_OWNER_START] == process_start(os.getpid())
    labels[LABEL_OWNER_START] = str(int(labels[LABEL_OWNER_START]) + 1)
    assert owner_state(labels) is OwnerState.GONE


@pytest.mark.parametrize(
    "labels",
    [
        {LABEL_OWNER_PID: "1", LABEL_OWNER_HOST: "some-other-host.invalid"},
        {LABEL_OWNER_HOST: "x"},
        {LABEL_OWNER_PID: "not-a-pid"},
    ],
)
def test_other_hosts_and_missing_labels_are_unknown(labels: dict[str, str]) -> None:
    assert owner_state(labels) is OwnerState.UNKNOWN


def test_a_remote_service_owner_is_unknown() -> None:
    """Over ssh:// or tcp:// this host name may be another machine's: no pid is judged."""
    labels = {**owner_labels(), LABEL_OWNER_PID: str(dead_pid())}
    assert owner_state(labels, local=False) is OwnerState.UNKNOWN
    assert not signal_owner(owner_labels(), signal.SIGTERM, local=False)


@needs_proc
def test_only_a_proven_owner_is_signalled() -> None:
    """A live pid is signalled only if its start time matches the label: without the label,
    or with another start time, it may be an unrelated process."""
    with subprocess.Popen(["sleep", "30"]) as child:
        try:
            labels = {LABEL_OWNER_PID: str(child.pid), LABEL_OWNER_HOST: hostname()}
            assert owner_state(labels) is OwnerState.ALIVE  # for gc: leave it
            assert not signal_owner(labels, signal.SIGTERM)
            start = process_start(child.pid)
            assert start is not None
            other = {**labels, LABEL_OWNER_START: str(int(start) + 1)}
            assert not signal_owner(other, signal.SIGTERM)
            assert child.poll() is None
            assert signal_owner({**labels, LABEL_OWNER_START: start}, signal.SIGTERM)
            assert child.wait(timeout=10) == -signal.SIGTERM
        finally:
            child.kill()
    assert not signal_owner({**labels, LABEL_OWNER_START: start}, signal.SIGTERM)  # gone


@needs_proc
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root, to start a process as another user")
def test_a_process_of_another_user_is_never_signalled() -> None:
    """Labels are the say-so of whoever wrote them and a start time is world-readable: root
    running ``down`` against another user's service must not signal the pid they name."""
    import pwd

    try:
        other = pwd.getpwnam(os.environ.get("ASYNCPOD_CI_USER", "asyncpod")).pw_uid
    except KeyError:
        other = 65534  # nobody
    child = subprocess.Popen(
        ["sleep", "30"], user=other, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        start = process_start(child.pid)
        assert start is not None
        labels = {
            LABEL_OWNER_PID: str(child.pid),
            LABEL_OWNER_HOST: hostname(),
            LABEL_OWNER_START: start,
        }
        assert owner_state(labels) is OwnerState.ALIVE
        assert signal_owner(labels, signal.SIGTERM) is False
        assert child.poll() is None
    finally:
        child.kill()
        child.wait()
