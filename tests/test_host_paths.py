"""hostPath safety on the host, checked client-side by the Podman backend (issue #12):
subPaths never cross a symlink, and ``*OrCreate`` creates with Kubernetes' modes without
following symlinks. Plain file system tests: no Podman needed."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from asyncpod import BackendError
from asyncpod.backends import ContainerSpec, Mount
from asyncpod.backends._podman._mapping import check_host_path, check_sub_path

SPEC = ContainerSpec(name="c", pod="p1", image="i")


@pytest.fixture
def strict_umask() -> Iterator[None]:
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_sub_path_through_a_planted_symlink_is_refused(tmp_path: Path) -> None:
    """A workload plants ``shared/escape -> /``; a later pod's subPath ``escape/etc`` would
    bind the host's /etc. It is refused; a subPath of real directories is not."""
    shared = tmp_path / "shared"
    (shared / "real" / "sub").mkdir(parents=True)
    (shared / "escape").symlink_to("/")
    (shared / "real" / "link").symlink_to("sub")
    with pytest.raises(BackendError, match="crosses the symlink"):
        check_sub_path(SPEC, Mount(target="/m", host_path=str(shared), sub_path="escape/etc"))
    with pytest.raises(BackendError, match="crosses the symlink"):
        check_sub_path(SPEC, Mount(target="/m", host_path=str(shared), sub_path="real/link"))
    check_sub_path(SPEC, Mount(target="/m", host_path=str(shared), sub_path="real/sub"))
    check_sub_path(SPEC, Mount(target="/m", host_path=str(shared), sub_path="real/new/x"))


def test_directory_or_create_uses_0755(tmp_path: Path, strict_umask: None) -> None:
    target = tmp_path / "a" / "b"
    check_host_path(SPEC, str(target), "DirectoryOrCreate")
    assert target.is_dir()
    assert _mode(tmp_path / "a") == 0o755
    assert _mode(target) == 0o755
    check_host_path(SPEC, str(target), "DirectoryOrCreate")  # exists: fine


def test_file_or_create_uses_0644(tmp_path: Path, strict_umask: None) -> None:
    target = tmp_path / "d" / "f"
    check_host_path(SPEC, str(target), "FileOrCreate")
    assert target.is_file()
    assert _mode(target) == 0o644
    assert _mode(tmp_path / "d") == 0o755


def test_file_or_create_does_not_follow_a_planted_symlink(tmp_path: Path) -> None:
    """A symlink where the file is to be: not followed, nothing made where it points."""
    elsewhere = tmp_path / "elsewhere"
    (tmp_path / "f").symlink_to(elsewhere)
    check_host_path(SPEC, str(tmp_path / "f"), "FileOrCreate")
    assert not elsewhere.exists()
    assert (tmp_path / "f").is_symlink()


def test_netns_helper_pins_the_pid_and_ignores_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The infra PID from the service is pinned (a gone process is refused, not its
    reused PID entered), and nsenter comes from a fixed path, never PATH."""
    import subprocess

    from asyncpod.backends._podman import _netns

    (tmp_path / "nsenter").write_text("#!/bin/sh\n")
    (tmp_path / "nsenter").chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    if not any(os.access(p, os.X_OK) for p in _netns.NSENTER_PATHS):
        with pytest.raises(BackendError, match="no nsenter"):
            _netns._nsenter()
    else:
        assert _netns._nsenter() in _netns.NSENTER_PATHS
    gone = subprocess.Popen(["/bin/true"])
    gone.wait()
    with pytest.raises(BackendError, match="is gone"):
        _netns._pinned_namespaces(gone.pid, ("net",))
    fds = _netns._pinned_namespaces(os.getpid(), ("net",))
    try:
        assert os.readlink(f"/proc/self/fd/{fds[0]}").startswith("net:")
        argv = _netns._helper_argv("/usr/bin/nsenter", fds)
        assert argv[:2] == ["/usr/bin/nsenter", f"--net=/proc/self/fd/{fds[0]}"]
        assert not any(a.startswith("--target") for a in argv)
    finally:
        for fd in fds:
            os.close(fd)
