"""gc and ps on real Podman trust nothing an image can set (Podman copies an image's
LABELs onto every container made from it)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from asyncpod._cli import main
from asyncpod._images import BUSYBOX_CHANGES, busybox_rootfs
from asyncpod._owner import hostname
from processes import dead_pid

pytestmark = [pytest.mark.podman, pytest.mark.alone]  # gc and ps list the whole service


@pytest.fixture
def forged(podman_client: Any) -> Iterator[tuple[str, str]]:
    """An image labelled as if its containers were a dead owner's detached asyncpod run,
    and a container made from it outside any pod: (pod label, container name)."""
    name = f"forged-{uuid.uuid4().hex[:8]}"
    labels = {
        "io.asyncpod.pod": name,
        "io.asyncpod.run": "deadbeef0000",
        "io.asyncpod.owner-pid": str(dead_pid()),
        "io.asyncpod.owner-host": hostname(),
        "io.asyncpod.marker": "detached",
        "io.asyncpod.grace-period": "inf",
    }
    image = f"localhost/asyncpod-test-{name}:latest"
    api = podman_client.api
    changes = [*BUSYBOX_CHANGES, *(f"LABEL {k}={v}" for k, v in labels.items())]
    response = api.post(
        "/images/import",
        params={"reference": image, "changes": changes},
        data=busybox_rootfs(),
        headers={"Content-Type": "application/x-tar"},
        timeout=120,
    )
    response.raise_for_status()
    body = {"name": f"{name}-c", "image": image, "command": ["sleep", "600"]}
    created = api.post("/containers/create", data=json.dumps(body))
    assert created.status_code == 201, created.text
    inspected = api.get(f"/containers/{name}-c/json").json()
    assert inspected["Config"]["Labels"]["io.asyncpod.pod"] == name  # Podman copied them
    try:
        yield name, f"{name}-c"
    finally:
        api.delete(f"/containers/{name}-c", params={"force": "true"})
        api.delete(f"/images/{image}", params={"force": "true"})


def test_gc_and_ps_ignore_a_container_labelled_by_its_image(
    podman_url: str, podman_client: Any, forged: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    name, container = forged
    assert main(["ps", "--url", podman_url]) == 0
    assert name not in capsys.readouterr().out
    assert main(["gc", "--url", podman_url, name]) == 0
    assert capsys.readouterr().out.splitlines() == ["nothing to remove"]
    assert podman_client.api.get(f"/containers/{container}/exists").status_code == 204
