"""Local test images for the Podman tests (no registry needed).

Each is asyncpod's busybox rootfs (``asyncpod._images``) plus extra files, imported
through the libpod API (``POST /libpod/images/import``) from synchronous session fixtures.
Importing is idempotent: an image that already exists is left alone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from asyncpod._images import BUSYBOX_CHANGES, busybox_rootfs

__all__ = ["TEST_IMAGE", "ensure_test_image"]

#: the image every Podman test uses
TEST_IMAGE = "localhost/asyncpod-test-busybox:latest"


def ensure_test_image(
    client: Any, image: str = TEST_IMAGE, extra: Mapping[str, tuple[bytes, int]] | None = None
) -> str:
    """Import *image* (busybox plus *extra* files) into *client*'s Podman if missing."""
    api = client.api
    response = api.get(f"/images/{image}/exists", timeout=30)
    if response.status_code == 204:
        return image
    response = api.post(
        "/images/import",
        params={"reference": image, "changes": list(BUSYBOX_CHANGES)},
        data=busybox_rootfs(extra),
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
