"""The busybox rootfs behind the demo's stand-in images and the Podman tests' images."""

from __future__ import annotations

import io
import tarfile

import pytest

from asyncpod._images import STAND_INS, busybox_path, busybox_rootfs


def test_rootfs_holds_busybox_applets_and_extra_files() -> None:
    """The tarball has busybox, applet links to it, /etc files and the extra files."""
    try:
        busybox_path()
    except FileNotFoundError:
        pytest.skip("busybox-static is not installed")
    data = busybox_rootfs(STAND_INS["localhost/tomcat:7.0"])
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert members["bin/busybox"].isfile()
        assert members["bin/sh"].issym() and members["bin/sh"].linkname == "busybox"
        assert members["bin/httpd"].issym()
        script = members["root/apache-tomcat-7.0.42-v2/bin/start.sh"]
        assert script.mode == 0o755
        assert members["root/apache-tomcat-7.0.42-v2/bin"].isdir()
        extracted = tar.extractfile(script)
        assert extracted is not None
        assert b"httpd -f -p 8080 -h /root/apache-tomcat-7.0/webapps" in extracted.read()
        assert members["tmp"].mode == 0o1777
        assert b"root:x:0:0" in (tar.extractfile("etc/passwd") or io.BytesIO()).read()
