"""ConfigMaps, Secrets, the downward API and persistent volume claims, run for real.

The same manifest runs on the fake (virtual time) and on Podman (``-m podman``): files and
environment variables as the containers see them, a claim's data surviving a second run,
and no secret value in logs, events or errors.
"""

from __future__ import annotations

import logging
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

import asyncpod
from asyncpod import ConfigMap, Secret, SpecError
from asyncpod.backends import Backend, FakeBackend, PodmanBackend
from asyncpod.kube import load

pytestmark = pytest.mark.anyio

SECRET_VALUE = "hunter2-Zq8x"

MANIFEST = """
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data: {greeting: hello, mode: prod, "1bad": skipped}
---
apiVersion: v1
kind: Secret
metadata: {name: creds}
stringData: {password: %(secret)s}
---
apiVersion: v1
kind: Pod
metadata: {name: %(name)s, labels: {app: web}, annotations: {team: core}}
spec:
  containers:
  - name: app
    image: %(image)s
    imagePullPolicy: %(policy)s
    command: [sh, -c, "sleep 600"]
    resources: {limits: {memory: 64Mi}}
    envFrom: [{configMapRef: {name: cfg}}]
    env:
    - {name: PASSWORD, valueFrom: {secretKeyRef: {name: creds, key: password}}}
    - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    - {name: POD_NS, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
    - {name: POD_UID, valueFrom: {fieldRef: {fieldPath: metadata.uid}}}
    - {name: NODE, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}
    - {name: APP, valueFrom: {fieldRef: {fieldPath: "metadata.labels['app']"}}}
    - {name: MEM_MI, valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: 1Mi}}}
    - {name: MODE, valueFrom: {configMapKeyRef: {name: cfg, key: mode}}}
    - {name: GONE, valueFrom: {configMapKeyRef: {name: nothere, key: x, optional: true}}}
    - {name: GREETING2, value: "$(greeting)-$(POD_NAME)"}
    volumeMounts:
    - {name: cfg, mountPath: /etc/cfg}
    - {name: creds, mountPath: /etc/creds}
    - {name: info, mountPath: /etc/info}
    - {name: all, mountPath: /etc/all}
    - {name: data, mountPath: /data}
  volumes:
  - {name: cfg, configMap: {name: cfg, items: [{key: greeting, path: sub/greeting.txt}]}}
  - {name: creds, secret: {secretName: creds, defaultMode: 0400}}
  - name: info
    downwardAPI:
      items:
      - {path: labels, fieldRef: {fieldPath: metadata.labels}}
      - {path: name, fieldRef: {fieldPath: metadata.name}}
  - name: all
    projected:
      sources:
      - configMap: {name: cfg, items: [{key: mode, path: mode}]}
      - secret: {name: creds}
  - {name: data, persistentVolumeClaim: {claimName: %(claim)s}}
"""


def manifest(name: str, image: str, claim: str, policy: str = "IfNotPresent") -> str:
    return MANIFEST % {
        "name": name,
        "image": image,
        "claim": claim,
        "policy": policy,
        "secret": SECRET_VALUE,
    }


async def cat(running: asyncpod.RunningPod, path: str) -> str:
    result = await running.exec("app", ["cat", path])
    assert result.exit_code == 0, (path, result)
    return result.stdout.decode().strip()


async def env_of(running: asyncpod.RunningPod) -> dict[str, str]:
    result = await running.exec("app", ["env"])
    assert result.exit_code == 0, result
    return dict(line.split("=", 1) for line in result.stdout.decode().splitlines() if "=" in line)


async def check_run(backend: Backend, text: str, claim: str) -> None:
    """Run the manifest twice: everything is seen, and the claim's data survives."""
    events: list[asyncpod.PodEvent] = []
    bundle = load(text)
    async with asyncpod.open_pod(bundle, backend=backend, on_event=events.append) as running:
        env = await env_of(running)
        assert env["greeting"] == "hello" and env["mode"] == "prod"
        assert "1bad" not in env  # not a variable name: skipped
        assert env["PASSWORD"] == SECRET_VALUE
        assert env["POD_NAME"] == bundle.pod.name
        assert env["POD_NS"] == "default"
        assert str(uuid.UUID(env["POD_UID"])) == env["POD_UID"]
        assert env["NODE"] == socket.gethostname()
        assert env["APP"] == "web"
        assert env["MEM_MI"] == "64"
        assert env["MODE"] == "prod"
        assert "GONE" not in env
        assert env["GREETING2"] == f"hello-{bundle.pod.name}"
        assert await cat(running, "/etc/cfg/sub/greeting.txt") == "hello"
        assert await cat(running, "/etc/creds/password") == SECRET_VALUE
        assert await cat(running, "/etc/info/labels") == 'app="web"'
        assert await cat(running, "/etc/info/name") == bundle.pod.name
        assert await cat(running, "/etc/all/mode") == "prod"
        assert await cat(running, "/etc/all/password") == SECRET_VALUE
        write = await running.exec("app", ["sh", "-c", "echo kept > /data/file"])
        assert write.exit_code == 0
        first_uid = env["POD_UID"]
    reasons = [e.reason for e in events]
    assert asyncpod.EventReason.INVALID_ENV_NAMES in reasons
    assert not any(SECRET_VALUE in e.message for e in events)
    assert claim in await asyncpod.list_claims(backend)
    async with asyncpod.open_pod(load(text), backend=backend) as running:
        assert await cat(running, "/data/file") == "kept"
        assert (await env_of(running))["POD_UID"] != first_uid  # one uid per run
    assert await asyncpod.remove_claim(backend, claim)
    assert claim not in await asyncpod.list_claims(backend)
    assert not await asyncpod.remove_claim(backend, claim)


# The fake


async def test_fake_config_maps_secrets_downward_api_and_claims(
    fake: FakeBackend, caplog: pytest.LogCaptureFixture
) -> None:
    fake.add_image("busybox")
    caplog.set_level(logging.DEBUG, logger="asyncpod")
    await check_run(fake, manifest("web", "busybox", "web-data"), "web-data")
    assert SECRET_VALUE not in caplog.text


async def test_missing_config_map_fails_before_anything_is_created(fake: FakeBackend) -> None:
    fake.add_image("busybox")
    text = manifest("web", "busybox", "c").replace("name: cfg}\ndata", "name: other}\ndata", 1)
    with pytest.raises(SpecError, match="ConfigMap 'cfg' is not given") as caught:
        async with asyncpod.open_pod(load(text), backend=fake):
            pass
    assert SECRET_VALUE not in str(caught.value)
    assert not any(op.startswith("create") for op, _ in fake.calls)


async def test_missing_secret_key_fails_without_showing_values(fake: FakeBackend) -> None:
    fake.add_image("busybox")
    pod = asyncpod.Pod(
        name="p",
        containers=[
            asyncpod.Container(
                name="app",
                image="busybox",
                command=["sleep", "60"],
                env=[
                    asyncpod.EnvVar(
                        name="X",
                        value_from=asyncpod.EnvVarSource(
                            secret_key_ref=asyncpod.SecretKeySelector(name="s", key="nokey")
                        ),
                    )
                ],
            )
        ],
    )
    secret = Secret(name="s", data={"other": SECRET_VALUE})
    assert SECRET_VALUE not in repr(secret)
    with pytest.raises(SpecError, match="Secret 's' has no key 'nokey'") as caught:
        async with asyncpod.open_pod(pod, backend=fake, secrets=[secret]):
            pass
    assert SECRET_VALUE not in str(caught.value)


@pytest.mark.parametrize("projected", [False, True])
async def test_a_secret_file_podman_cannot_hold_is_refused_before_anything_is_created(
    fake: FakeBackend, projected: bool
) -> None:
    """Podman keeps a Secret's file as a Podman secret, under 512000 bytes: a larger one is
    a SpecError naming its size, not its value, on every backend; in an env variable, or
    just under the cap, it runs."""
    fake.add_image("busybox")
    big = Secret(name="s", data={"big": b"Q" * 512_000, "edge": b"E" * 511_999})
    source = (
        asyncpod.Volume(
            name="v",
            projected=asyncpod.ProjectedVolumeSource(
                sources=(asyncpod.VolumeProjection(secret=asyncpod.SecretProjection(name="s")),)
            ),
        )
        if projected
        else asyncpod.Volume(name="v", secret=asyncpod.SecretVolumeSource(secret_name="s"))
    )
    pod = asyncpod.Pod(
        name="p",
        containers=[
            asyncpod.Container(
                name="app",
                image="busybox",
                command=["sleep", "60"],
                volume_mounts=[asyncpod.VolumeMount(name="v", mount_path="/s")],
            )
        ],
        volumes=[source],
    )
    kind = "projected" if projected else "secret"
    with pytest.raises(
        SpecError, match=f"spec.volumes\\[0\\].{kind}: file 'big' holds 512000 bytes"
    ):
        async with asyncpod.open_pod(pod, backend=fake, secrets=[big]):
            pass
    assert not any(op.startswith("create") for op, _ in fake.calls)
    edge = Secret(name="s", data={"edge": b"E" * 511_999})
    async with asyncpod.open_pod(pod, backend=fake, secrets=[edge]) as running:
        result = await running.exec("app", ["cat", "/s/edge"])
        assert len(result.stdout) == 511_999


async def test_objects_given_in_python_override_the_bundle(fake: FakeBackend) -> None:
    fake.add_image("busybox")
    bundle = load(manifest("web", "busybox", "c2"))
    override = ConfigMap(name="cfg", data={"greeting": "hi", "mode": "dev"})
    async with asyncpod.open_pod(bundle, backend=fake, config_maps=[override]) as running:
        assert (await env_of(running))["mode"] == "dev"
        assert await cat(running, "/etc/cfg/sub/greeting.txt") == "hi"
    assert await asyncpod.remove_claim(fake, "c2")


async def test_read_only_claim(fake: FakeBackend) -> None:
    fake.add_image("busybox")
    text = manifest("web", "busybox", "ro").replace(
        "claimName: ro}", "claimName: ro, readOnly: true}"
    )
    async with asyncpod.open_pod(load(text), backend=fake) as running:
        result = await running.exec("app", ["sh", "-c", "echo x > /data/file"])
        assert result.exit_code != 0
    assert await asyncpod.remove_claim(fake, "ro")


# Podman


@pytest.fixture
async def podman(podman_url: str, image: str) -> AsyncIterator[PodmanBackend]:
    async with PodmanBackend(podman_url) as backend:
        yield backend


@pytest.mark.podman
async def test_podman_config_maps_secrets_downward_api_and_claims(
    podman: PodmanBackend, image: str, podman_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="asyncpod")
    suffix = uuid.uuid4().hex[:8]
    claim = f"asyncpod-test-claim-{suffix}"
    try:
        await check_run(podman, manifest(f"cfg-{suffix}", image, claim, "Never"), claim)
    finally:
        await asyncpod.remove_claim(podman, claim)
    assert SECRET_VALUE not in caplog.text
    secrets = podman_client.api.get("/secrets/json").json() or []
    assert not [s for s in secrets if f"cfg-{suffix}" in str(s)]
