"""Podman test support: local test images (no registry needed), and what a test left behind.

Each is asyncpod's busybox rootfs (``asyncpod._images``) plus extra files, imported
through the libpod API (``POST /libpod/images/import``) from synchronous session fixtures.
Importing is idempotent: an image that already exists is left alone.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from asyncpod._images import BUSYBOX_CHANGES, busybox_rootfs

__all__ = ["TEST_IMAGE", "ensure_test_image", "left_behind"]

#: the image every Podman test uses
TEST_IMAGE = "localhost/asyncpod-test-busybox:latest"

_DIGEST_LABEL = "io.asyncpod.test-files"


def ensure_test_image(
    client: Any, image: str = TEST_IMAGE, extra: Mapping[str, tuple[bytes, int]] | None = None
) -> str:
    """Import *image* (busybox plus *extra* files) into *client*'s Podman, unless an image of
    that name with the same files (by a digest label) is there already."""
    api = client.api
    digest = hashlib.sha256(repr(sorted((extra or {}).items())).encode()).hexdigest()[:16]
    response = api.get(f"/images/{image}/json", timeout=30)
    if response.status_code == 200:
        labels = (response.json().get("Config") or {}).get("Labels") or {}
        if labels.get(_DIGEST_LABEL) == digest:
            return image
    changes = [*BUSYBOX_CHANGES, f"LABEL {_DIGEST_LABEL}={digest}"]
    response = api.post(
        "/images/import",
        params={"reference": image, "changes": changes},
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


def left_behind(client: Any, key: str, value: str) -> list[str]:
    """Every pod, container and volume labelled key=value, asked of Podman directly."""
    filters = json.dumps({"label": [f"{key}={value}"]})
    api = client.api
    found = [
        f"pod {p['Name']}" for p in api.get("/pods/json", params={"filters": filters}).json() or []
    ]
    containers = api.get("/containers/json", params={"filters": filters, "all": "true"}).json()
    found += [f"container {c['Names'][0]}" for c in containers or []]
    volumes = api.get("/volumes/json", params={"filters": filters}).json()
    found += [f"volume {v['Name']}" for v in volumes or []]
    return found
