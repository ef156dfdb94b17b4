"""What a pod reads from outside its spec: ConfigMaps, Secrets and the downward API.

Kubernetes' rules, resolved before any container is created, so that a backend is handed
plain environment variables and plain files:

- a missing ConfigMap, Secret or key is an error unless the reference is ``optional``
  (then the variable is unset, the volume or its file left out);
- ``envFrom`` comes first (a later source overrides an earlier one), then ``env``; a key
  that is no valid variable name is skipped (and reported);
- a volume's files are all keys, or the ``items`` listed, each at its path, with the
  item's ``mode``, else the volume's ``defaultMode``, else 0644; a projected volume merges
  its sources in order.

Secret values are bytes held here and in the backend's volume and container specs only:
no message of this module shows one.
"""

from __future__ import annotations

import fractions
import math
import os
import re
import socket
from collections.abc import Iterable, Mapping

import attrs

from .._env import expand
from .._exceptions import SpecError
from .._models import Container, Pod, Volume
from .._objects import ConfigMap, Secret
from .._resources import parse_amount
from .._sources import (
    DownwardAPIVolumeFile,
    KeyToPath,
    ObjectFieldSelector,
    ResourceFieldSelector,
)
from ..backends._base import VolumeFile

__all__ = ["PodContext", "container_env", "host_ip", "volume_files"]

#: what Kubernetes gives a file of a configMap, secret, projected or downwardAPI volume
DEFAULT_MODE = 0o644

#: the largest file of a volume that holds a Secret's data: Podman keeps each such file as
#: a Podman secret, and refuses one of 512000 bytes or more (Kubernetes allows 1 MiB)
MAX_SECRET_FILE_BYTES = 511_999

_ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*\Z")
_SUBSCRIPTED = re.compile(r"metadata\.(labels|annotations)\['([^']+)'\]\Z")


@attrs.frozen(kw_only=True)
class PodContext:
    """What a pod's references resolve against: its objects and the run's own fields."""

    config_maps: Mapping[str, ConfigMap] = attrs.field(factory=dict)
    secrets: Mapping[str, Secret] = attrs.field(factory=dict, repr=False)
    #: this run's uid (``metadata.uid``)
    uid: str = ""
    #: ``status.podIP``, when the backend knows it
    pod_ip: str = ""
    #: ``spec.nodeName``: this machine's host name
    node_name: str = attrs.field(factory=socket.gethostname)


def _data_of(obj: ConfigMap | Secret) -> dict[str, bytes]:
    if isinstance(obj, Secret):
        return dict(obj.data)
    data = {k: v.encode("utf-8") for k, v in obj.data.items()}
    data.update(obj.binary_data)
    return data


def _lookup(
    ctx: PodContext, kind: str, name: str, optional: bool | None, where: str
) -> dict[str, bytes] | None:
    """The data of ConfigMap or Secret *name*; ``None`` if missing and *optional*."""
    objects: Mapping[str, ConfigMap | Secret] = (
        ctx.config_maps if kind == "ConfigMap" else ctx.secrets
    )
    obj = objects.get(name)
    if obj is None:
        if optional:
            return None
        raise SpecError(
            where,
            f"{kind} {name!r} is not given (give it beside the pod, or mark the "
            "reference optional: true)",
        )
    return _data_of(obj)


def _key(
    data: dict[str, bytes] | None, kind: str, name: str, key: str, optional: bool | None, where: str
) -> bytes | None:
    if data is None:
        return None
    if key not in data:
        if optional:
            return None
        raise SpecError(where, f"{kind} {name!r} has no key {key!r}")
    return data[key]


def _text(value: bytes) -> str:
    return value.decode("utf-8", "replace")


def field_value(pod: Pod, ctx: PodContext, selector: ObjectFieldSelector) -> str:
    """The value of a ``fieldRef`` of *pod* in this run."""
    path = selector.field_path
    match = _SUBSCRIPTED.match(path)
    if match is not None:
        values = pod.labels if match.group(1) == "labels" else pod.annotations
        return str(values.get(match.group(2), ""))
    if path in ("metadata.labels", "metadata.annotations"):
        values = pod.labels if path == "metadata.labels" else pod.annotations
        return "\n".join(f'{k}="{_quote(str(v))}"' for k, v in sorted(values.items()))
    if path == "metadata.name":
        return pod.name
    if path == "metadata.namespace":
        return pod.namespace or "default"
    if path == "metadata.uid":
        return ctx.uid
    if path == "spec.nodeName":
        return ctx.node_name
    if path == "spec.serviceAccountName":
        account = pod.cluster_fields.get("spec.serviceAccountName")
        if account is None:
            account = pod.cluster_fields.get("spec.serviceAccount")
        return str(account) if account is not None else "default"
    if path in ("status.podIP", "status.podIPs"):
        return ctx.pod_ip
    if path in ("status.hostIP", "status.hostIPs"):
        return host_ip()
    raise SpecError("fieldRef.fieldPath", f"{path!r} is not supported")  # validated earlier


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def host_ip() -> str:
    """This host's address (``status.hostIP``): the one it reaches other hosts from (a
    UDP socket's, connected but sending nothing), else its name's, else loopback's."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("198.51.100.1", 9))  # TEST-NET-2: nothing is sent
            address = str(probe.getsockname()[0])
        if address and not address.startswith("0."):
            return address
    except OSError:
        pass
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"


def resource_value(pod: Pod, container: Container, selector: ResourceFieldSelector) -> str:
    """The value of a ``resourceFieldRef``: the quantity over its divisor, rounded up.

    An unset limit is the machine's capacity (its CPUs, its memory), as the kubelet
    reports the node's allocatable; an unset request is 0 (Kubernetes defaults a
    request to its limit, which the models have done where a limit is set).
    """
    if selector.container_name is not None:
        matching = [c for c in pod.all_containers if c.name == selector.container_name]
        if not matching:
            raise SpecError(
                "resourceFieldRef.containerName",
                f"the pod has no container {selector.container_name!r}",
            )
        container = matching[0]
    kind, _, name = selector.resource.partition(".")
    amount = container.resources.amount(kind, name) if container.resources else None
    if amount is None and kind == "requests" and container.resources is not None:
        amount = container.resources.amount("limits", name)
    if amount is None:
        amount = _capacity(name) if kind == "limits" else fractions.Fraction(0)
    divisor = parse_amount(selector.divisor) if selector.divisor else fractions.Fraction(1)
    return str(max(math.ceil(amount / divisor), 1 if amount > 0 else 0))


def _capacity(name: str) -> fractions.Fraction:
    if name == "cpu":
        return fractions.Fraction(os.cpu_count() or 1)
    if name == "memory":
        try:
            return fractions.Fraction(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
        except (ValueError, OSError):
            return fractions.Fraction(0)
    return fractions.Fraction(0)


def container_env(
    pod: Pod, container: Container, ctx: PodContext, *, where: str = ""
) -> tuple[dict[str, str], list[str]]:
    """The resolved environment of *container*, and the ``envFrom`` keys skipped as
    invalid variable names."""
    env: dict[str, str] = {}
    skipped: list[str] = []
    for index, source in enumerate(container.env_from):
        at = f"{where}envFrom[{index}]"
        if source.config_map_ref is not None:
            ref = source.config_map_ref
            data = _lookup(ctx, "ConfigMap", ref.name, ref.optional, at)
        else:
            assert source.secret_ref is not None
            ref_s = source.secret_ref
            data = _lookup(ctx, "Secret", ref_s.name, ref_s.optional, at)
        for key, value in sorted((data or {}).items()):
            name = (source.prefix or "") + key
            if not _ENV_NAME.match(name):
                skipped.append(name)
                continue
            env[name] = _text(value)
    for index, var in enumerate(container.env):
        at = f"{where}env[{index}].valueFrom"
        source_ = var.value_from
        if source_ is None:
            env[var.name] = expand(var.value, env.get)
        elif source_.config_map_key_ref is not None:
            sel = source_.config_map_key_ref
            data = _lookup(ctx, "ConfigMap", sel.name, sel.optional, at)
            found = _key(data, "ConfigMap", sel.name, sel.key, sel.optional, at)
            if found is not None:
                env[var.name] = _text(found)
        elif source_.secret_key_ref is not None:
            sel_s = source_.secret_key_ref
            data = _lookup(ctx, "Secret", sel_s.name, sel_s.optional, at)
            found = _key(data, "Secret", sel_s.name, sel_s.key, sel_s.optional, at)
            if found is not None:
                env[var.name] = _text(found)
        elif source_.field_ref is not None:
            env[var.name] = field_value(pod, ctx, source_.field_ref)
        else:
            assert source_.resource_field_ref is not None
            env[var.name] = resource_value(pod, container, source_.resource_field_ref)
    return env, skipped


def _key_files(
    data: dict[str, bytes] | None,
    items: Iterable[KeyToPath],
    mode: int,
    kind: str,
    name: str,
    optional: bool | None,
    where: str,
) -> list[VolumeFile]:
    if data is None:
        return []
    items = tuple(items)
    if not items:
        return [VolumeFile(path=k, data=v, mode=mode) for k, v in sorted(data.items())]
    files = []
    for index, item in enumerate(items):
        value = _key(data, kind, name, item.key, optional, f"{where}.items[{index}]")
        if value is not None:
            files.append(
                VolumeFile(
                    path=item.path, data=value, mode=mode if item.mode is None else item.mode
                )
            )
    return files


def _downward_files(
    pod: Pod, ctx: PodContext, items: Iterable[DownwardAPIVolumeFile], mode: int
) -> list[VolumeFile]:
    files = []
    for item in items:
        if item.field_ref is not None:
            value = field_value(pod, ctx, item.field_ref)
        else:
            assert item.resource_field_ref is not None
            value = resource_value(pod, pod.all_containers[0], item.resource_field_ref)
        files.append(
            VolumeFile(
                path=item.path,
                data=value.encode("utf-8"),
                mode=mode if item.mode is None else item.mode,
            )
        )
    return files


def volume_files(
    pod: Pod, volume: Volume, ctx: PodContext, *, where: str = ""
) -> tuple[tuple[VolumeFile, ...], bool] | None:
    """The files of a configMap, secret, projected or downwardAPI *volume*, and whether
    any holds a Secret's data; ``None`` for another kind of volume.

    In a volume that holds a Secret's data, a file larger than
    :data:`MAX_SECRET_FILE_BYTES` is a :class:`~asyncpod.SpecError` (its size is named,
    never its contents).
    """
    found = _volume_files(pod, volume, ctx, where=where)
    if found is not None and found[1]:
        for file in found[0]:
            if len(file.data) > MAX_SECRET_FILE_BYTES:
                kind = "secret" if volume.secret is not None else "projected"
                raise SpecError(
                    f"{where}{kind}",
                    f"file {file.path!r} holds {len(file.data)} bytes: a file of a volume "
                    f"with a Secret's data holds at most {MAX_SECRET_FILE_BYTES} (Podman "
                    "keeps it as a Podman secret, which must be under 512000 bytes); split "
                    "the value into several keys, or read it from a ConfigMap",
                )
    return found


def _volume_files(
    pod: Pod, volume: Volume, ctx: PodContext, *, where: str = ""
) -> tuple[tuple[VolumeFile, ...], bool] | None:
    if volume.config_map is not None:
        src = volume.config_map
        mode = DEFAULT_MODE if src.default_mode is None else src.default_mode
        data = _lookup(ctx, "ConfigMap", src.name, src.optional, f"{where}configMap")
        files = _key_files(
            data, src.items, mode, "ConfigMap", src.name, src.optional, f"{where}configMap"
        )
        return tuple(files), False
    if volume.secret is not None:
        sec = volume.secret
        mode = DEFAULT_MODE if sec.default_mode is None else sec.default_mode
        data = _lookup(ctx, "Secret", sec.secret_name, sec.optional, f"{where}secret")
        files = _key_files(
            data, sec.items, mode, "Secret", sec.secret_name, sec.optional, f"{where}secret"
        )
        return tuple(files), True
    if volume.downward_api is not None:
        dapi = volume.downward_api
        mode = DEFAULT_MODE if dapi.default_mode is None else dapi.default_mode
        return tuple(_downward_files(pod, ctx, dapi.items, mode)), False
    if volume.projected is not None:
        proj = volume.projected
        mode = DEFAULT_MODE if proj.default_mode is None else proj.default_mode
        merged: dict[str, VolumeFile] = {}
        secret = False
        for index, source in enumerate(proj.sources):
            at = f"{where}projected.sources[{index}]"
            if source.config_map is not None:
                cm = source.config_map
                data = _lookup(ctx, "ConfigMap", cm.name, cm.optional, f"{at}.configMap")
                found = _key_files(
                    data, cm.items, mode, "ConfigMap", cm.name, cm.optional, f"{at}.configMap"
                )
            elif source.secret is not None:
                sp = source.secret
                data = _lookup(ctx, "Secret", sp.name, sp.optional, f"{at}.secret")
                found = _key_files(
                    data, sp.items, mode, "Secret", sp.name, sp.optional, f"{at}.secret"
                )
                secret = secret or bool(found)
            else:
                assert source.downward_api is not None
                found = _downward_files(pod, ctx, source.downward_api.items, mode)
            for file in found:
                merged[file.path] = file
        return tuple(merged.values()), secret
    return None
