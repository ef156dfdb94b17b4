"""Images made locally from a static busybox: no registry needed.

The demo uses them as stand-ins for the seed's ``app:v2`` and ``tomcat:7.0``; the tests
use them on Podman. A rootfs holds ``bin/busybox``, one symlink per applet, a few
directories, and any extra files.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
from collections.abc import Mapping
from pathlib import Path

__all__ = ["BUSYBOX_CHANGES", "STAND_INS", "busybox_path", "busybox_rootfs", "stand_in"]

#: what ``podman import --change`` gets for every busybox image
BUSYBOX_CHANGES = ("ENV PATH=/bin", 'CMD ["/bin/sh"]')

_DIRS = ("bin", "tmp", "etc", "var", "var/www", "proc", "sys", "dev", "root")
_ETC = {
    "etc/passwd": b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n",
    "etc/group": b"root:x:0:\nnogroup:x:65534:\n",
}

WAR = b"PK\x03\x04 javaweb-2 stand-in war\n"
# Like Tomcat's own start script, it stops on SIGTERM (busybox httpd as PID 1 would not).
START_SH = b"""#!/bin/sh
httpd -f -p 8080 -h /root/apache-tomcat-7.0/webapps &
trap 'kill $!; exit 0' TERM
wait
"""

#: the examples' images: reference -> extra files (path -> (content, mode))
STAND_INS: Mapping[str, Mapping[str, tuple[bytes, int]]] = {
    "localhost/app:v2": {"app.war": (WAR, 0o644)},
    "localhost/tomcat:7.0": {
        "root/apache-tomcat-7.0.42-v2/bin/start.sh": (START_SH, 0o755),
        "root/apache-tomcat-7.0/webapps/.keep": (b"", 0o644),
    },
    "localhost/asyncpod/busybox:latest": {},
}


def stand_in(image: str) -> str | None:
    """The :data:`STAND_INS` reference an image of a manifest names, if any.

    A reference without a registry (``app:v2``) is looked up as Podman resolves a short
    name to a local image (``localhost/app:v2``).
    """
    first = image.split("/", 1)[0]
    qualified = (
        image
        if "/" in image and ("." in first or ":" in first or first == "localhost")
        else f"localhost/{image}"
    )
    return qualified if qualified in STAND_INS else None


def busybox_path() -> Path:
    """A static busybox of this host; :class:`FileNotFoundError` says what to install."""
    for candidate in ("/bin/busybox", "/usr/bin/busybox"):
        if Path(candidate).is_file():
            return Path(candidate).resolve()
    found = shutil.which("busybox")
    if found:
        return Path(found).resolve()
    raise FileNotFoundError("no busybox binary found: install busybox-static")


def _add_dir(tar: tarfile.TarFile, name: str, mode: int = 0o755) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = mode
    tar.addfile(info)


def _add_file(tar: tarfile.TarFile, name: str, content: bytes, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(content)
    info.mode = mode
    tar.addfile(info, io.BytesIO(content))


def busybox_rootfs(extra: Mapping[str, tuple[bytes, int]] | None = None) -> bytes:
    """A rootfs tarball of busybox plus *extra* files (path -> (content, mode))."""
    busybox = busybox_path()
    listing = subprocess.run(
        [str(busybox), "--list"], check=True, capture_output=True, text=True, timeout=30
    ).stdout
    applets = sorted({line.strip() for line in listing.splitlines() if line.strip()} - {"busybox"})
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        made = set(_DIRS)
        for name in _DIRS:
            _add_dir(tar, name, 0o1777 if name == "tmp" else 0o755)
        _add_file(tar, "bin/busybox", busybox.read_bytes(), 0o755)
        for applet in applets:
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type = tarfile.SYMTYPE
            info.linkname = "busybox"
            info.mode = 0o777
            tar.addfile(info)
        for path, (content, mode) in sorted({**_ETC_FILES, **(extra or {})}.items()):
            parts = path.strip("/").split("/")
            for i in range(1, len(parts)):
                parent = "/".join(parts[:i])
                if parent not in made:
                    _add_dir(tar, parent)
                    made.add(parent)
            _add_file(tar, "/".join(parts), content, mode)
    return buf.getvalue()


_ETC_FILES = {path: (content, 0o644) for path, content in _ETC.items()}
