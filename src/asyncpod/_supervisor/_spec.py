"""What the backend is asked to create for a pod: its pod, volumes and containers.

Every Kubernetes rule about what a field means is resolved here, so that a backend only
passes values on: references to volumes become mounts, ``$(VAR)`` references in command
and args are expanded, and the command/args rule is applied.
"""

from __future__ import annotations

from collections.abc import Mapping

from .._env import expand_all, resolve_env
from .._exceptions import SpecError
from .._models import Container, Pod, Volume
from ..backends._base import ContainerSpec, Mount, PodSpec, PortMapping, VolumeSpec

__all__ = ["CLUSTER_DOMAIN", "container_spec", "pod_hostname", "pod_spec", "volume_specs"]


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


def volume_specs(pod: Pod, labels: Mapping[str, str]) -> dict[str, VolumeSpec]:
    """The volumes the pod needs created (its ``emptyDir`` ones), by volume name."""
    return {
        v.name: VolumeSpec(
            name=f"{pod.name}-{v.name}",
            labels=labels,
            memory=v.empty_dir.medium == "Memory",
            size_bytes=v.empty_dir.size_bytes,
        )
        for v in pod.volumes
        if v.empty_dir is not None
    }


def container_spec(
    pod: Pod,
    container: Container,
    *,
    pod_id: str,
    volumes: Mapping[str, Volume],
    volume_ids: Mapping[str, str],
    labels: Mapping[str, str],
    init: bool,
) -> ContainerSpec:
    """*container* of *pod*, every reference resolved.

    Kubernetes' rule for command and args: ``command`` replaces the image's entrypoint
    and ``args`` its command (an empty list counts as unset), and a ``command`` given
    without ``args`` drops the image's command too: its args are then empty, not unset.
    """
    env = resolve_env(container.env) if container.env else {}
    mounts = []
    for mount in container.volume_mounts:
        volume = volumes[mount.name]
        if volume.host_path is not None:
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
                    read_only=mount.read_only,
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
    )


def _recursive_read_only(value: str | None) -> str:
    """``recursiveReadOnly`` as :class:`Mount` takes it: "Disabled" (the default) is ""."""
    return value if value in ("IfPossible", "Enabled") else ""
