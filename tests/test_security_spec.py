"""resources and securityContext resolved into what backends are asked for: the kubelet's
arithmetic and precedence rules (no backend needed), and the libpod fields they become."""

from __future__ import annotations

import logging
from typing import Any

import pytest

import asyncpod
from asyncpod import (
    AppArmorProfile,
    Capabilities,
    Container,
    Pod,
    PodSecurityContext,
    ResourceRequirements,
    SeccompProfile,
    SecurityContext,
    Sysctl,
)
from asyncpod._supervisor._spec import (
    container_resources,
    container_security,
    needs_image_user,
    pod_spec,
)
from asyncpod.backends import ContainerResources, ContainerSecurity, FakeBackend
from asyncpod.backends._podman._mapping import (
    host_facts,
    pod_body,
    resource_limits,
    security_fields,
)

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("limits", "requests", "expected"),
    [
        (
            {"cpu": "500m", "memory": "64Mi"},
            {"cpu": "250m", "memory": "32Mi"},
            ContainerResources(
                cpu_quota=50_000,
                cpu_period=100_000,
                cpu_shares=256,
                memory_limit=64 << 20,
                memory_reservation=32 << 20,
            ),
        ),
        # the limit is the request when none is given; 1m is below the minimum quota
        (
            {"cpu": "1m"},
            None,
            ContainerResources(cpu_quota=1_000, cpu_period=100_000, cpu_shares=2),
        ),
        (None, {"cpu": "2"}, ContainerResources(cpu_shares=2048)),
        (None, {"memory": "1G"}, ContainerResources(memory_reservation=10**9)),
        ({"ephemeral-storage": "1Gi"}, None, None),  # not a cgroup limit
    ],
)
def test_container_resources_as_the_kubelet_computes_them(
    limits: dict[str, str] | None, requests: dict[str, str] | None, expected: Any
) -> None:
    resources = ResourceRequirements(limits=limits, requests=requests)
    assert container_resources(resources) == expected


def _pod(container: Container, **kwargs: Any) -> Pod:
    return Pod(name="p", containers=[container], **kwargs)


def test_pod_security_context_gives_containers_their_defaults() -> None:
    container = Container(
        name="c",
        image="i",
        security_context=SecurityContext(
            run_as_user=7, capabilities=Capabilities(add=["cap_net_admin"], drop=["ALL"])
        ),
    )
    pod = _pod(
        container,
        security_context=PodSecurityContext(
            run_as_user=1,
            run_as_group=2,
            supplemental_groups=[5, 6],
            fs_group=5,
            seccomp_profile=SeccompProfile(type="Unconfined"),
            sysctls=[Sysctl(name="net.ipv4.ip_unprivileged_port_start", value="0")],
        ),
    )
    assert container_security(pod, container) == ContainerSecurity(
        user="7:2", groups=(5, 6), cap_add=("NET_ADMIN",), cap_drop=("ALL",), seccomp="unconfined"
    )
    assert pod_spec(pod, {}).sysctls == (("net.ipv4.ip_unprivileged_port_start", "0"),)
    assert container_security(_pod(container), Container(name="x", image="i")) is None


def test_fields_win_over_the_pre_1_19_annotations() -> None:
    plain = Container(name="c", image="i")
    annotated = {
        "seccomp.security.alpha.kubernetes.io/pod": "docker/default",
        "container.seccomp.security.alpha.kubernetes.io/c": "localhost/profiles/audit.json",
        "container.apparmor.security.beta.kubernetes.io/c": "localhost/k8s-deny-write",
    }
    security = container_security(_pod(plain, annotations=annotated), plain)
    assert security == ContainerSecurity(
        seccomp="/var/lib/kubelet/seccomp/profiles/audit.json", apparmor="k8s-deny-write"
    )
    other = Container(name="d", image="i")
    assert container_security(_pod(other, annotations=annotated), other) == ContainerSecurity(
        seccomp="runtime/default"
    )
    fields = Container(
        name="c",
        image="i",
        security_context=SecurityContext(
            seccomp_profile=SeccompProfile(type="RuntimeDefault"),
            app_armor_profile=AppArmorProfile(type="Unconfined"),
        ),
    )
    assert container_security(_pod(fields, annotations=annotated), fields) == ContainerSecurity(
        seccomp="runtime/default", apparmor="unconfined"
    )


@pytest.mark.parametrize(
    ("image_user", "run_as_user", "message"),
    [
        ("", None, "container has runAsNonRoot and image will run as root"),
        ("0:0", None, "container has runAsNonRoot and image will run as root"),
        ("nobody", None, "image has non-numeric user (nobody), cannot verify user is non-root"),
        ("1000", 0, "container's runAsUser breaks non-root policy"),
        ("1000", None, None),
        ("", 1000, None),
    ],
)
def test_run_as_non_root_as_the_kubelet_verifies_it(
    image_user: str, run_as_user: int | None, message: str | None
) -> None:
    container = Container(
        name="c",
        image="i",
        security_context=SecurityContext(run_as_non_root=True, run_as_user=run_as_user),
    )
    pod = _pod(container)
    assert needs_image_user(pod, container) is (run_as_user is None)
    if message is None:
        container_security(pod, container, image_user)
        return
    with pytest.raises(asyncpod.CreateContainerConfigError) as caught:
        container_security(pod, container, image_user)
    assert caught.value.reason == message
    assert str(caught.value) == f"container 'c': {message}"


def test_run_as_group_alone_keeps_the_image_user() -> None:
    container = Container(name="c", image="i", security_context=SecurityContext(run_as_group=9))
    pod = _pod(container)
    assert needs_image_user(pod, container)
    assert container_security(pod, container, "1000") == ContainerSecurity(user="1000:9")
    assert container_security(pod, container, "") == ContainerSecurity(user="0:9")


def test_libpod_fields() -> None:
    resources = ContainerResources(
        cpu_quota=50_000, cpu_period=100_000, cpu_shares=256, memory_limit=5, pids_limit=9
    )
    assert resource_limits(resources) == {
        "cpu": {"quota": 50_000, "period": 100_000, "shares": 256},
        "memory": {"limit": 5},
        "pids": {"limit": 9},
    }
    security = ContainerSecurity(
        user="1:2",
        groups=(3,),
        privileged=True,
        no_new_privileges=True,
        cap_add=("NET_ADMIN",),
        cap_drop=("ALL",),
        read_only_rootfs=True,
        seccomp="/profiles/x.json",
        unmasked_proc=True,
    )
    assert security_fields(security) == {
        "user": "1:2",
        "groups": ["3"],
        "privileged": True,
        "no_new_privileges": True,
        "cap_add": ["NET_ADMIN"],
        "cap_drop": ["ALL"],
        "read_only_filesystem": True,
        "seccomp_profile_path": "/profiles/x.json",
        "unmask": ["ALL"],
    }
    assert security_fields(ContainerSecurity(seccomp="unconfined")) == {
        "seccomp_profile_path": "unconfined"
    }
    assert security_fields(ContainerSecurity(seccomp="runtime/default")) == {}
    pod = Pod(
        name="p",
        containers=[Container(name="c", image="i")],
        resources=ResourceRequirements(limits={"memory": "1Ki"}),
        security_context=PodSecurityContext(sysctls=[Sysctl(name="kernel.msgmax", value="9")]),
    )
    body = pod_body(pod_spec(pod, {}))
    assert body["resource_limits"] == {"memory": {"limit": 1024, "reservation": 1024}}
    assert body["sysctl"] == {"kernel.msgmax": "9"}


def test_host_facts() -> None:
    rootless_v1 = host_facts({"host": {"cgroupVersion": "v1", "security": {"rootless": True}}})
    assert not rootless_v1.enforces_limits
    assert "cgroup v1" in rootless_v1.why_not_enforced
    assert host_facts({"host": {"cgroupVersion": "v1", "security": {}}}).enforces_limits
    rootless_v2 = host_facts(
        {"host": {"cgroupVersion": "v2", "security": {"rootless": True, "apparmorEnabled": True}}}
    )
    assert rootless_v2.enforces_limits
    assert rootless_v2.apparmor


async def test_run_as_non_root_on_the_fake(caplog: pytest.LogCaptureFixture) -> None:
    """An image's USER decides: a numeric non-root user runs, root is refused before
    anything is created, with a warning naming the container."""
    backend = FakeBackend()
    backend.add_image("root")
    backend.add_image("app", user="1000:1000")
    context = SecurityContext(run_as_non_root=True)
    async with backend:
        pod = Pod(
            name="ok",
            containers=[Container(name="c", image="app", command=["sleep", "inf"])],
            security_context=PodSecurityContext(run_as_non_root=True),
        )
        async with asyncpod.open_pod(pod, backend=backend) as running:
            assert (await running.exec("c", ["id", "-u"])).stdout == b"1000\n"
            assert (await running.exec("c", ["id", "-G"])).stdout == b"1000\n"
        bad = Pod(
            name="bad",
            containers=[
                Container(
                    name="c", image="root", command=["sleep", "inf"], security_context=context
                )
            ],
        )
        caplog.set_level(logging.WARNING, logger="asyncpod")
        backend.calls.clear()
        events: list[asyncpod.PodEvent] = []
        with pytest.raises(asyncpod.CreateContainerConfigError):
            async with asyncpod.open_pod(bad, backend=backend, on_event=events.append):
                pass  # pragma: no cover - bring-up fails
        assert ("image_user", "root") in backend.calls
        assert not [c for c in backend.calls if c[0] == "create_container"]
        assert any("image will run as root" in r.getMessage() for r in caplog.records)
        failed = [e for e in events if e.container == "c"]
        assert [e.reason for e in failed] == [asyncpod.EventReason.FAILED]
