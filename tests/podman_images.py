"""Build the local test images for the Podman tests (no registry needed).

The image is a rootfs holding only a static busybox and its applet symlinks, imported
through the libpod API (``POST /libpod/images/import``). Importing is idempotent: an
image that already exists is left alone.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

__all__ = ["TEST_IMAGE", "busybox_path", "busybox_rootfs_tar", "ensure_test_image"]

#: the image every Podman test uses
TEST_IMAGE = "localhost/asyncpod-test-busybox:latest"

_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")


def busybox_path() -> Path:
    """A static busybox binary of this host, or raise :class:`FileNotFoundError`."""
    for candidate in _CANDIDATES:
        path = Path(candidate)
        if path.is_file():
            return path.resolve()
    found = shutil.which("busybox")
    if found:
        return Path(found).resolve()
    raise FileNotFoundError("no busybox binary found (install busybox-static)")


def _applets(busybox: Path) -> list[str]:
    out = subprocess.run(
        [str(busybox), "--list"], check=True, capture_output=True, text=True, timeout=30
    ).stdout
    return sorted({line.strip() for line in out.splitlines() if line.strip()} - {"busybox"})


def busybox_rootfs_tar(extra: dict[str, tuple[bytes, int]] | None = None) -> bytes:
    """A rootfs tarball: ``bin/busybox``, one symlink per applet, and a few empty dirs.

    *extra* adds files: path -> (content, mode); their parent directories are created.
    """
    busybox = busybox_path()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name in ("bin", "tmp", "etc", "var", "var/www", "proc", "sys", "dev", "root"):
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            info.mode = 0o1777 if name == "tmp" else 0o755
            tar.addfile(info)
        data = busybox.read_bytes()
        info = tarfile.TarInfo("bin/busybox")
        info.size = len(data)
        info.mode = 0o755
        tar.addfile(info, io.BytesIO(data))
        for applet in _applets(busybox):
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type = tarfile.SYMTYPE
            info.linkname = "busybox"
            info.mode = 0o777
            tar.addfile(info)
        made: set[str] = set()
        for path, (content, mode) in sorted((extra or {}).items()):
            parts = path.strip("/").split("/")
            for i in range(1, len(parts)):
                parent = "/".join(parts[:i])
                if parent not in made and parent not in ("bin", "tmp", "etc", "var", "root"):
                    info = tarfile.TarInfo(parent)
                    info.type = tarfile.DIRTYPE
                    info.mode = 0o755
                    tar.addfile(info)
                made.add(parent)
            info = tarfile.TarInfo("/".join(parts))
            info.size = len(content)
            info.mode = mode
            tar.addfile(info, io.BytesIO(content))
        for name, text in (
            ("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n"),
            ("etc/group", "root:x:0:\nnogroup:x:65534:\n"),
        ):
            raw = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(raw)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(raw))
    return buf.getvalue()


def ensure_test_image(
    client: Any, image: str = TEST_IMAGE, extra: dict[str, tuple[bytes, int]] | None = None
) -> str:
    """Import *image* into the Podman service of *client* (a ``PodmanClient``) if missing.

    The image is busybox plus the *extra* files (see :func:`busybox_rootfs_tar`).
    """
    api = client.api
    response = api.get(f"/images/{image}/exists", timeout=30)
    if response.status_code == 204:
        return image
    response = api.post(
        "/images/import",
        params={
            "reference": image,
            "changes": ["ENV PATH=/bin", 'CMD ["/bin/sh"]'],
            "message": "asyncpod test image (busybox)",
        },
        data=busybox_rootfs_tar(extra),
        headers={"Content-Type": "application/x-tar"},
        timeout=120,
    )
    response.raise_for_status()
    body = response.text.strip()
    if body.startswith("{"):
        error = json.loads(body).get("error")
        if error:
            raise RuntimeError(f"importing {image} failed: {error}")
    return image
