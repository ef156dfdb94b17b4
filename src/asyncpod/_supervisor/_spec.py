"""What the backend is asked to create for a pod: its pod, volumes and containers.

Every Kubernetes rule about what a field means is resolved here, so that a backend only
passes values on: references to volumes become mounts, ``$(VAR)`` references in command
and args are expanded, and the command/args rule is applied. ConfigMaps, Secrets and the
downward API are resolved by :mod:`._config` into environment variables and files.
"""

from __future__ import annotations

from collections.abc import Mapping

from .._env import expand_all
from .._labels import LABEL_CLAIM
from .._models import Container, Pod, Volume, parse_quantity
from ..backends._base import ContainerSpec, Mount, PodSpec, PortMapping, VolumeSpec
from ._config import PodContext, container_env, volume_files

__all__ = ["container_spec", "pod_spec", "volume_specs"]


def pod_spec(pod: Pod, labels: Mapping[str, str]) -> PodSpec:
    """The pod itself: its host name, labels, the host ports its containers publish."""
    ports = tuple(
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
    return PodSpec(
        name=pod.name,
        hostname=pod.hostname or pod.name.split(".")[0],
        labels=labels,
        ports=ports,
        share_pid=pod.share_process_namespace,
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
    claim only, so that no teardown or ``gc`` of a run removes it.
    """
    ctx = ctx or PodContext()
    specs: dict[str, VolumeSpec] = {}
    for index, v in enumerate(pod.volumes):
        if v.empty_dir is not None:
            specs[v.name] = VolumeSpec(
                name=f"{pod.name}-{v.name}",
                labels=labels,
                memory=v.empty_dir.medium == "Memory",
                size_bytes=v.empty_dir.size_bytes,
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
                    name=f"{pod.name}-{v.name}", labels=labels, memory=secret, files=files
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
    ctx: PodContext | None = None,
) -> ContainerSpec:
    """*container* of *pod*, every reference resolved.

    Kubernetes' rule for command and args: ``command`` replaces the image's entrypoint
    and ``args`` its command (an empty list counts as unset), and a ``command`` given
    without ``args`` drops the image's command too: its args are then empty, not unset.
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
                )
            )
        else:
            mounts.append(
                Mount(
                    target=mount.mount_path,
                    volume=volume_ids[mount.name],
                    read_only=read_only,
                    sub_path=mount.sub_path,
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
        labels=labels,
    )
