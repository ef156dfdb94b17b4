"""What the backend is asked to create for a pod: its pod, volumes and containers.

Every Kubernetes rule about what a field means is resolved here, so that a backend only
passes values on: references to volumes become mounts, ``$(VAR)`` references in command
and args are expanded, and the command/args rule is applied. So are ``resources`` and
``securityContext``: the pod's security context gives its containers their defaults, CPU
quantities become cgroup quota and shares as the kubelet computes them, ``fsGroup`` joins
the supplementary groups, the pre-1.19 seccomp and AppArmor annotations stand in for unset
fields, and ``runAsNonRoot`` is checked against the user the container would run as.
ConfigMaps, Secrets and the downward API are resolved by :mod:`._config` into
environment variables and files.
"""

from __future__ import annotations

import math
import posixpath
from collections.abc import Mapping

from .._env import expand_all
from .._exceptions import CreateContainerConfigError, SpecError
from .._labels import LABEL_CLAIM
from .._models import Container, Pod, Volume, parse_quantity
from .._resources import ResourceRequirements
from .._security import AppArmorProfile, SeccompProfile
from ..backends._base import (
    ContainerResources,
    ContainerSecurity,
    ContainerSpec,
    Mount,
    PodSpec,
    PortMapping,
    VolumeSpec,
)
from ._config import PodContext, container_env, volume_files

__all__ = [
    "CLUSTER_DOMAIN",
    "container_resources",
    "container_security",
    "container_spec",
    "needs_image_user",
    "pod_hostname",
    "pod_spec",
    "volume_specs",
]

# pkg/kubelet/cm/helpers_linux.go: MilliCPUToQuota and MilliCPUToShares
_CPU_PERIOD = 100_000  # microseconds
_MIN_QUOTA = 1_000
_MIN_SHARES = 2
_MAX_SHARES = 262_144
# The kubelet's seccomp root (<root-dir>/seccomp) for relative localhost profiles.
_SECCOMP_ROOT = "/var/lib/kubelet/seccomp"
_SECCOMP_POD_ANNOTATION = "seccomp.security.alpha.kubernetes.io/pod"
_SECCOMP_CONTAINER_ANNOTATION = "container.seccomp.security.alpha.kubernetes.io/"
_APPARMOR_CONTAINER_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"


def container_resources(resources: ResourceRequirements | None) -> ContainerResources | None:
    """*resources* as cgroup limits, as the kubelet computes them.

    ``limits.cpu`` becomes a CFS quota per 100 ms period (at least 1 ms), ``requests.cpu``
    (or the limit, which Kubernetes takes as the request when none is given) the CPU
    shares, 1024 per CPU (2 to 262144); ``limits.memory`` the memory limit and
    ``requests.memory`` the memory reservation (a soft limit), in bytes.
    """
    if resources is None:
        return None
    cpu_limit = resources.amount("limits", "cpu")
    cpu_request = resources.amount("requests", "cpu")
    if cpu_request is None:
        cpu_request = cpu_limit
    memory_limit = resources.amount("limits", "memory")
    memory_request = resources.amount("requests", "memory")
    if memory_request is None:
        memory_request = memory_limit
    quota = None
    if cpu_limit is not None:
        quota = max(_MIN_QUOTA, math.ceil(cpu_limit * _CPU_PERIOD))
    shares = None
    if cpu_request is not None:
        shares = min(_MAX_SHARES, max(_MIN_SHARES, math.floor(cpu_request * 1024)))
    result = ContainerResources(
        cpu_quota=quota,
        cpu_period=_CPU_PERIOD if quota is not None else None,
        cpu_shares=shares,
        memory_limit=math.ceil(memory_limit) if memory_limit is not None else None,
        memory_reservation=math.ceil(memory_request) if memory_request is not None else None,
    )
    return result if result.limits else None


def _annotation_profile(value: str) -> tuple[str, str | None]:
    """A pre-1.19 annotation's profile (``runtime/default``, ``docker/default``,
    ``unconfined``, ``localhost/<name>``) as a profile type and its localhost name."""
    if value.startswith("localhost/"):
        return "Localhost", value[len("localhost/") :]
    if value == "unconfined":
        return "Unconfined", None
    return "RuntimeDefault", None


def _seccomp(pod: Pod, container: Container) -> str | None:
    profile: SeccompProfile | None = None
    if container.security_context is not None:
        profile = container.security_context.seccomp_profile
    if profile is None and pod.security_context is not None:
        profile = pod.security_context.seccomp_profile
    if profile is not None:
        kind, local = profile.type, profile.localhost_profile
    else:
        annotation = pod.annotations.get(
            _SECCOMP_CONTAINER_ANNOTATION + container.name
        ) or pod.annotations.get(_SECCOMP_POD_ANNOTATION)
        if annotation is None:
            return None
        kind, local = _annotation_profile(annotation)
    if kind == "Unconfined":
        return "unconfined"
    if kind == "RuntimeDefault":
        return "runtime/default"
    assert local is not None
    return posixpath.join(_SECCOMP_ROOT, local)


def _apparmor(pod: Pod, container: Container) -> str | None:
    profile: AppArmorProfile | None = None
    if container.security_context is not None:
        profile = container.security_context.app_armor_profile
    if profile is None and pod.security_context is not None:
        profile = pod.security_context.app_armor_profile
    if profile is not None:
        kind, local = profile.type, profile.localhost_profile
    else:
        annotation = pod.annotations.get(_APPARMOR_CONTAINER_ANNOTATION + container.name)
        if annotation is None:
            return None
        kind, local = _annotation_profile(annotation)
    if kind == "Unconfined":
        return "unconfined"
    if kind == "RuntimeDefault":
        return "runtime/default"
    return local


def _capability(name: str) -> str:
    name = name.upper()
    return name[len("CAP_") :] if name.startswith("CAP_") else name


def needs_image_user(pod: Pod, container: Container) -> bool:
    """Whether :func:`container_security` needs the image's user: ``runAsNonRoot`` without
    ``runAsUser``, or ``runAsGroup`` without ``runAsUser``."""
    context, pod_context = container.security_context, pod.security_context

    def pick(name: str) -> object:
        value = getattr(context, name, None) if context is not None else None
        if value is None and pod_context is not None:
            value = getattr(pod_context, name)
        return value

    return pick("run_as_user") is None and (
        bool(pick("run_as_non_root")) or pick("run_as_group") is not None
    )


def container_security(
    pod: Pod, container: Container, image_user: str | None = None
) -> ContainerSecurity | None:
    """The security settings of *container*: its own ``securityContext`` over the pod's.

    *image_user* is the image's ``USER`` (see :func:`needs_image_user`). Raises
    :class:`~asyncpod.CreateContainerConfigError` with the kubelet's message when
    ``runAsNonRoot`` is set and the container would run as root, or its image's user is
    not numeric.
    """
    context, pod_context = container.security_context, pod.security_context
    if context is None and pod_context is None and not pod.annotations:
        return None

    def pick(name: str) -> object:
        value = getattr(context, name, None) if context is not None else None
        if value is None and pod_context is not None:
            value = getattr(pod_context, name)
        return value

    uid = pick("run_as_user")
    gid = pick("run_as_group")
    if pick("run_as_non_root"):
        _check_non_root(container.name, uid, image_user)
    user: str | None = None
    if uid is not None:
        user = f"{uid}:{gid}" if gid is not None else str(uid)
    elif gid is not None:
        image_uid = (image_user or "").split(":")[0]
        user = f"{image_uid or 0}:{gid}"
    groups: list[int] = []
    if pod_context is not None:
        for group in (*pod_context.supplemental_groups, pod_context.fs_group):
            if group is not None and group not in groups:
                groups.append(group)
    caps = context.capabilities if context is not None else None
    security = ContainerSecurity(
        user=user,
        groups=tuple(groups),
        privileged=bool(context is not None and context.privileged),
        no_new_privileges=context is not None and context.allow_privilege_escalation is False,
        cap_add=tuple(_capability(c) for c in caps.add) if caps is not None else (),
        cap_drop=tuple(_capability(c) for c in caps.drop) if caps is not None else (),
        read_only_rootfs=bool(context is not None and context.read_only_root_filesystem),
        seccomp=_seccomp(pod, container),
        apparmor=_apparmor(pod, container),
        unmasked_proc=context is not None and context.proc_mount == "Unmasked",
    )
    return None if security == ContainerSecurity() else security


def _check_non_root(name: str, uid: object, image_user: str | None) -> None:
    """The kubelet's verifyRunAsNonRoot (pkg/kubelet/kuberuntime/security_context_others.go)."""
    if uid is not None:
        if uid == 0:
            raise CreateContainerConfigError(name, "container's runAsUser breaks non-root policy")
        return
    user = (image_user or "").split(":")[0]
    if image_user is None:
        raise CreateContainerConfigError(
            name, "cannot verify user is non-root: the backend cannot tell the image's user"
        )
    if not user.isdigit() and user != "":
        raise CreateContainerConfigError(
            name, f"image has non-numeric user ({user}), cannot verify user is non-root"
        )
    if user == "" or int(user) == 0:
        raise CreateContainerConfigError(
            name, "container has runAsNonRoot and image will run as root"
        )


#: the cluster domain of a pod's fully qualified name (the kubelet's default)
CLUSTER_DOMAIN = "cluster.local"
#: Linux's limit on a host name (``HOST_NAME_MAX``)
_HOST_NAME_MAX = 64


def pod_hostname(pod: Pod) -> str:
    """The pod's host name as the kubelet sets it.

    ``spec.hostname``, else the pod's name up to its first dot; with ``subdomain`` and
    ``setHostnameAsFQDN``, the fully qualified
    ``<hostname>.<subdomain>.<namespace>.svc.cluster.local``, which must fit Linux's 64
    characters as the kubelet requires.
    """
    hostname = pod.hostname or pod.name.split(".")[0]
    if pod.subdomain and pod.set_hostname_as_fqdn:
        namespace = pod.namespace or "default"
        fqdn = f"{hostname}.{pod.subdomain}.{namespace}.svc.{CLUSTER_DOMAIN}"
        if len(fqdn) > _HOST_NAME_MAX:
            raise SpecError(
                "spec.setHostnameAsFQDN",
                f"the fully qualified host name {fqdn!r} is longer than {_HOST_NAME_MAX} "
                "characters",
            )
        return fqdn
    return hostname


def pod_spec(pod: Pod, labels: Mapping[str, str]) -> PodSpec:
    """The pod itself: its host name, labels, the host ports its containers publish, its
    namespaces, resolver and ``/etc/hosts`` lines.

    Kubernetes' rules: a ``hostNetwork`` pod's ports are the host's (nothing is
    published) and its host name the host's; every ``dnsPolicy`` but ``None`` starts from
    the host's resolver (one machine has no cluster DNS, so ``ClusterFirst`` and
    ``ClusterFirstWithHostNet`` fall back to it as the kubelet does without one), with
    ``dnsConfig`` merged in; ``None`` uses ``dnsConfig`` alone.
    """
    ports = (
        ()
        if pod.host_network
        else tuple(
            PortMapping(
                container_port=port.container_port,
                host_port=port.host_port,
                host_ip=port.host_ip or "",
                protocol=port.protocol.value.lower(),
            )
            for c in pod.all_containers
            for port in c.ports
            if port.host_port is not None
        )
    )
    dns = pod.dns_config
    return PodSpec(
        name=pod.name,
        hostname=pod_hostname(pod),
        labels=labels,
        ports=ports,
        share_pid=pod.share_process_namespace,
        resources=container_resources(pod.resources),
        sysctls=tuple(
            (sysctl.name, sysctl.value)
            for sysctl in (pod.security_context.sysctls if pod.security_context else ())
        ),
        host_network=pod.host_network,
        host_pid=pod.host_pid,
        host_ipc=pod.host_ipc,
        dns_from_host=pod.dns_policy != "None",
        dns_servers=dns.nameservers if dns else (),
        dns_searches=tuple(s.rstrip(".") or s for s in dns.searches) if dns else (),
        dns_options=tuple(o.name if o.value is None else f"{o.name}:{o.value}" for o in dns.options)
        if dns
        else (),
        host_aliases=tuple(
            (alias.ip, hostname) for alias in pod.host_aliases for hostname in alias.hostnames
        ),
    )


def claim_volume_name(claim: str) -> str:
    """The name of the volume that holds PersistentVolumeClaim *claim*'s data."""
    return claim


def volume_specs(
    pod: Pod, labels: Mapping[str, str], ctx: PodContext | None = None
) -> dict[str, VolumeSpec]:
    """The volumes the pod needs created, by volume name.

    ``emptyDir`` and ``ephemeral`` volumes are scratch volumes of the run; configMap,
    secret, projected and downwardAPI ones hold their files (in memory if any is a
    Secret's); a ``persistentVolumeClaim`` is the claim's own volume, labelled with the
    claim only, so that no teardown or ``gc`` of a run removes it. The pod's ``fsGroup``
    owns its emptyDir volumes and the files of the others but claims.
    """
    ctx = ctx or PodContext()
    fs_group = pod.security_context.fs_group if pod.security_context else None
    specs: dict[str, VolumeSpec] = {}
    for index, v in enumerate(pod.volumes):
        if v.empty_dir is not None:
            specs[v.name] = VolumeSpec(
                name=f"{pod.name}-{v.name}",
                labels=labels,
                memory=v.empty_dir.medium == "Memory",
                size_bytes=v.empty_dir.size_bytes,
                group=fs_group,
            )
        elif v.ephemeral is not None:
            spec = v.ephemeral.volume_claim_template.spec
            requests = spec.resources.requests if spec.resources else None
            storage = requests.get("storage") if requests else None
            specs[v.name] = VolumeSpec(
                name=f"{pod.name}-{v.name}",
                labels=labels,
                size_bytes=parse_quantity(storage) if storage else None,
            )
        elif v.persistent_volume_claim is not None:
            claim = v.persistent_volume_claim.claim_name
            specs[v.name] = VolumeSpec(
                name=claim_volume_name(claim), labels={LABEL_CLAIM: claim}, claim=True
            )
        else:
            found = volume_files(pod, v, ctx, where=f"spec.volumes[{index}].")
            if found is not None:
                files, secret = found
                specs[v.name] = VolumeSpec(
                    name=f"{pod.name}-{v.name}",
                    labels=labels,
                    memory=secret,
                    files=files,
                    group=fs_group,
                )
    return specs


def container_spec(
    pod: Pod,
    container: Container,
    *,
    pod_id: str,
    volumes: Mapping[str, Volume],
    volume_ids: Mapping[str, str],
    labels: Mapping[str, str],
    init: bool,
    image_user: str | None = None,
    ctx: PodContext | None = None,
) -> ContainerSpec:
    """*container* of *pod*, every reference resolved.

    Kubernetes' rule for command and args: ``command`` replaces the image's entrypoint
    and ``args`` its command (an empty list counts as unset), and a ``command`` given
    without ``args`` drops the image's command too: its args are then empty, not unset.

    *image_user* is the image's ``USER``, needed when :func:`needs_image_user` says so.
    """
    env, _ = container_env(pod, container, ctx or PodContext())
    mounts = []
    for mount in container.volume_mounts:
        volume = volumes[mount.name]
        read_only = mount.read_only or bool(
            volume.persistent_volume_claim is not None and volume.persistent_volume_claim.read_only
        )
        if volume.image is not None:
            mounts.append(
                Mount(
                    target=mount.mount_path,
                    image=volume.image.reference,
                    read_only=True,
                    sub_path=mount.sub_path,
                )
            )
        elif volume.host_path is not None:
            mounts.append(
                Mount(
                    target=mount.mount_path,
                    host_path=volume.host_path.path,
                    host_path_type=volume.host_path.type,
                    read_only=mount.read_only,
                    sub_path=mount.sub_path,
                    propagation=mount.mount_propagation or "",
                    recursive_read_only=_recursive_read_only(mount.recursive_read_only),
                )
            )
        else:
            mounts.append(
                Mount(
                    target=mount.mount_path,
                    volume=volume_ids[mount.name],
                    read_only=read_only,
                    sub_path=mount.sub_path,
                    propagation=mount.mount_propagation or "",
                    recursive_read_only=_recursive_read_only(mount.recursive_read_only),
                )
            )
    command = expand_all(container.command, env) if container.command else None
    if container.args:
        args: tuple[str, ...] | None = expand_all(container.args, env)
    else:
        args = None if command is None else ()
    return ContainerSpec(
        name=f"{pod.name}-{container.name}",
        pod=pod_id,
        image=container.image,
        short_name=container.name,
        command=command,
        args=args,
        env=tuple(env.items()),
        working_dir=container.working_dir,
        mounts=tuple(mounts),
        init=init,
        stdin=container.stdin,
        tty=container.tty,
        labels=labels,
        resources=container_resources(container.resources),
        security=container_security(pod, container, image_user),
        termination_message_path=container.termination_message_path or "/dev/termination-log",
    )


def _recursive_read_only(value: str | None) -> str:
    """``recursiveReadOnly`` as :class:`Mount` takes it: "Disabled" (the default) is ""."""
    return value if value in ("IfPossible", "Enabled") else ""
