"""What a Pod manifest's fields mean here, before the models read it.

Each key of a real manifest falls in one of four classes:

* **modelled**: the models read it (see :func:`asyncpod._serde.manifest_schema`);
* **cluster-only**: scheduling and identity that mean nothing on one machine
  (:mod:`asyncpod._cluster`): kept on the Pod, written back, listed as ignored;
* **at its Kubernetes default**: a field asyncpod does not model, set to the value
  Kubernetes would give it anyway (``dnsPolicy: ClusterFirst``): dropped, since leaving
  it out means the same to a cluster;
* **refused**: it changes what runs and cannot be honoured here (cloud volumes, DRA,
  ephemeral containers): unsupported, with the reason and the local alternative; any
  other unknown key is unsupported too, by the models' reader.

Windows-only pods are one error of their own, whatever ``strict`` says.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from . import _cluster
from ._exceptions import SpecError
from ._models import Container, Volume
from ._serde import Behaviour, _keys, manifest_schema, says_nothing

__all__ = ["WINDOWS", "classify"]

WINDOWS: Final = "Windows containers are not supported: asyncpod runs Linux containers"

#: Server-set metadata (like ``creationTimestamp``): says nothing about a new pod.
_OUTPUT_ONLY_METADATA: Final = frozenset(
    {"uid", "resourceVersion", "selfLink", "generation", "managedFields"}
)

#: Kubernetes' defaults of Pod fields asyncpod does not model (what it does anyway).
_POD_DEFAULTS: Final[Mapping[str, object]] = {
    "hostNetwork": False,
    "hostPID": False,
    "hostIPC": False,
    "hostUsers": True,
    "dnsPolicy": "ClusterFirst",
    "setHostnameAsFQDN": False,
    "os": {"name": "linux"},
}

_CONTAINER_DEFAULTS: Final[Mapping[str, object]] = {
    "terminationMessagePath": "/dev/termination-log",
    "terminationMessagePolicy": "File",
    "stdin": False,
    "stdinOnce": False,
    "tty": False,
}

#: Defaults inside a container's ``securityContext``, while it is not modelled.
_SECURITY_CONTEXT_DEFAULTS: Final[Mapping[str, object]] = {
    "privileged": False,
    "readOnlyRootFilesystem": False,
    "allowPrivilegeEscalation": True,
    "procMount": "Default",
}

_NETWORK_DISK = (
    "a cluster's network or cloud disk: use a hostPath volume (of a disk mounted on this "
    "machine), an emptyDir, or a persistentVolumeClaim"
)

#: Volume sources that need a cluster's storage: why, and what to use instead.
_VOLUME_REASONS: Final[Mapping[str, str]] = {
    **dict.fromkeys(
        (
            "awsElasticBlockStore",
            "azureDisk",
            "azureFile",
            "cephfs",
            "cinder",
            "fc",
            "flocker",
            "gcePersistentDisk",
            "glusterfs",
            "iscsi",
            "photonPersistentDisk",
            "portworxVolume",
            "quobyte",
            "rbd",
            "scaleIO",
            "storageos",
            "vsphereVolume",
        ),
        _NETWORK_DISK,
    ),
    "nfs": "an NFS share: mount it on this machine and use a hostPath volume",
    "csi": "CSI drivers run in a cluster: use a hostPath, emptyDir or persistentVolumeClaim",
    "flexVolume": "a node's storage plugin: use a hostPath volume",
    "gitRepo": "deprecated by Kubernetes: clone the repository in an init container into "
    "an emptyDir",
}

#: Pod fields that change what runs and cannot be honoured here.
_POD_REASONS: Final[Mapping[str, str]] = {
    "ephemeralContainers": "debugging containers a cluster adds to a running pod: use "
    "RunningPod.exec()",
    "resourceClaims": "Dynamic Resource Allocation needs a cluster's DRA drivers",
}


def _modelled(schema: Mapping[str, Any], key: object) -> bool:
    known = schema.get(key)  # type: ignore[call-overload]
    return known is not None and not isinstance(known.schema, Behaviour)


def _is_default(value: object, default: object) -> bool:
    return type(value) is type(default) and value == default


class Classified:
    """What :func:`classify` took out of a pod document."""

    def __init__(self) -> None:
        #: manifest path -> raw value of each cluster-only field
        self.cluster: dict[str, Any] = {}
        #: manifest path -> why each refused field cannot be honoured
        self.refused: dict[str, str] = {}


def classify(document: dict[str, Any]) -> Classified:
    """Take the cluster-only, default-valued and refused keys out of *document*.

    *document* is a raw Pod manifest (a private copy: it is changed in place). Keys of
    the wrong shape are left for the models' reader to report.
    """
    _check_not_windows(document)
    result = Classified()
    schema = manifest_schema()
    metadata, spec = document.get("metadata"), document.get("spec")
    if isinstance(metadata, dict):
        meta_schema = schema["metadata"].schema
        for key in list(metadata):
            if _modelled(meta_schema, key):
                continue
            if key in _cluster.METADATA_FIELDS:
                _take(result, metadata, key, f"metadata.{key}")
            elif key in _OUTPUT_ONLY_METADATA:
                del metadata[key]
    if not isinstance(spec, dict):
        return result
    spec_schema = schema["spec"].schema
    for key in list(spec):
        if _modelled(spec_schema, key):
            continue
        if key in _cluster.SPEC_FIELDS:
            _take(result, spec, key, f"spec.{key}")
        elif key in _POD_DEFAULTS and _is_default(spec[key], _POD_DEFAULTS[key]):
            del spec[key]
        elif key in _POD_REASONS and not says_nothing(spec[key]):
            result.refused[f"spec.{key}"] = _POD_REASONS[key]
            del spec[key]
    container_schema = _keys(Container)
    for list_key in ("initContainers", "containers"):
        entries = spec.get(list_key)
        for index, raw in enumerate(entries if isinstance(entries, list) else ()):
            if isinstance(raw, dict):
                _classify_container(result, raw, f"spec.{list_key}[{index}]", container_schema)
    volume_schema = _keys(Volume)
    volumes = spec.get("volumes")
    for index, raw in enumerate(volumes if isinstance(volumes, list) else ()):
        if not isinstance(raw, dict):
            continue
        if set(raw) == {"name"}:  # Kubernetes' default source
            raw["emptyDir"] = {}
        for key in list(raw):
            if key in _VOLUME_REASONS and key not in volume_schema:
                result.refused[f"spec.volumes[{index}].{key}"] = _VOLUME_REASONS[key]
                del raw[key]
    return result


def _take(result: Classified, parent: dict[str, Any], key: str, path: str) -> None:
    value = parent.pop(key)
    if not says_nothing(value, key):
        result.cluster[path] = value


def _classify_container(
    result: Classified, raw: dict[str, Any], path: str, schema: Mapping[str, Any]
) -> None:
    for key in list(raw):
        if key in schema:
            continue
        if key in _cluster.CONTAINER_FIELDS:
            _take(result, raw, key, f"{path}.{key}")
        elif key in _CONTAINER_DEFAULTS and _is_default(raw[key], _CONTAINER_DEFAULTS[key]):
            del raw[key]
        elif key == "securityContext" and isinstance(raw[key], dict):
            context = {
                k: v
                for k, v in raw[key].items()
                if not (
                    k in _SECURITY_CONTEXT_DEFAULTS
                    and _is_default(v, _SECURITY_CONTEXT_DEFAULTS[k])
                )
            }
            if context:
                raw[key] = context
            else:
                del raw[key]


def _check_not_windows(document: Mapping[str, Any]) -> None:
    spec = document.get("spec")
    if not isinstance(spec, Mapping):
        return
    os_ = spec.get("os")
    if isinstance(os_, Mapping) and os_.get("name") == "windows":
        raise SpecError("spec.os.name", WINDOWS)
    selector = spec.get("nodeSelector")
    # the node label, and the one it replaced in Kubernetes 1.14 (still on the examples)
    for label in ("kubernetes.io/os", "beta.kubernetes.io/os"):
        if isinstance(selector, Mapping) and selector.get(label) == "windows":
            raise SpecError(f'spec.nodeSelector["{label}"]', WINDOWS)
    contexts = [("spec.securityContext", spec.get("securityContext"))]
    for list_key in ("initContainers", "containers"):
        entries = spec.get(list_key)
        for index, raw in enumerate(entries if isinstance(entries, list) else ()):
            if isinstance(raw, Mapping):
                contexts.append(
                    (f"spec.{list_key}[{index}].securityContext", raw.get("securityContext"))
                )
    for path, context in contexts:
        options = context.get("windowsOptions") if isinstance(context, Mapping) else None
        if isinstance(options, Mapping) and options.get("hostProcess") is True:
            raise SpecError(f"{path}.windowsOptions.hostProcess", WINDOWS)
