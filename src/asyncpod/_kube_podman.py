"""Podman's dialect of the Kubernetes manifest: container options in annotations.

``podman kube generate`` writes per-container options as annotations
``<option>/<container>`` (``io.podman.annotations.privileged/web: "FALSE"``), which
``podman kube play`` reads back. asyncpod accepts (and drops) each at the value that
states what it does anyway; any other value, and any other annotation that sets what
runs (other Podman options), is unsupported like an unsupported field.

Kubernetes' own security-profile annotations from before the fields (seccomp's
``seccomp.security.alpha.kubernetes.io/pod`` and
``container.seccomp.security.alpha.kubernetes.io/<container>``, AppArmor's
``container.apparmor.security.beta.kubernetes.io/<container>``) are kept: the supervisor
applies them when no ``seccompProfile`` or ``appArmorProfile`` is set, as the kubelet did.
Their values are checked as Kubernetes checks them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from ._exceptions import SpecError

__all__ = ["check_dumped_annotations", "take_podman_options"]

#: Container options ``podman kube generate`` writes as annotations ``<key>/<container>``
#: (and ``podman kube play`` reads), with the value that states what asyncpod does (any
#: case); ``None`` for the exported pod's runtime state, which says nothing about a new one.
_PODMAN_OPTIONS: Final[Mapping[str, str | None]] = {
    "io.kubernetes.cri-o.ContainerType": "container",
    "io.kubernetes.cri-o.SandboxID": None,
    "io.kubernetes.cri-o.TTY": "false",
    "io.podman.annotations.autoremove": "false",
    "io.podman.annotations.init": "false",
    "io.podman.annotations.privileged": "false",
    "io.podman.annotations.publish-all": "false",
}

#: Annotations that set what runs (Podman container options, seccomp annotations other
#: than the pod's) and that asyncpod does not honour: unsupported, like an unsupported
#: field. Only the Podman pod option ``kube play`` alone reads, the init containers' type,
#: is kept as an annotation.
_UNHONOURED_PREFIXES: Final = (
    "io.podman.annotations.",
    "seccomp.security.alpha.kubernetes.io/",
)
_KEPT_PODMAN_ANNOTATIONS: Final = frozenset({"io.podman.annotations.init.container.type"})

#: Kubernetes' security-profile annotations the supervisor honours: the pod's seccomp
#: profile, and a container's (the container's name follows the prefix).
_SECCOMP_POD: Final = "seccomp.security.alpha.kubernetes.io/pod"
_SECCOMP_CONTAINER: Final = "container.seccomp.security.alpha.kubernetes.io/"
_APPARMOR_CONTAINER: Final = "container.apparmor.security.beta.kubernetes.io/"
#: Their values (pkg/apis/core/validation: ValidateSeccompProfile, and the AppArmor
#: annotation's): a named profile, or ``localhost/<profile>``.
_SECCOMP_VALUES: Final = ("runtime/default", "docker/default", "unconfined")
_APPARMOR_VALUES: Final = ("runtime/default", "unconfined")


def annotation_path(key: str) -> str:
    """The manifest path of annotation *key*."""
    return f"metadata.annotations[{json.dumps(key)}]"


def _podman_option(key: object) -> str | None:
    """The option of a ``<option>/<container>`` annotation key of Podman's, or ``None``."""
    if not isinstance(key, str):
        return None
    option, slash, _ = key.partition("/")
    return option if slash and option in _PODMAN_OPTIONS else None


def _unhonoured(key: object) -> bool:
    return (
        isinstance(key, str)
        and key.startswith(_UNHONOURED_PREFIXES)
        and key not in _KEPT_PODMAN_ANNOTATIONS
        and key != _SECCOMP_POD
    )


def _check_security_annotation(key: str, value: object, containers: frozenset[str]) -> None:
    """Refuse a security-profile annotation Kubernetes refuses: an unknown profile, or one
    for a container the pod does not have."""
    if key == _SECCOMP_POD or key.startswith(_SECCOMP_CONTAINER):
        named: tuple[str, ...] = _SECCOMP_VALUES
    elif key.startswith(_APPARMOR_CONTAINER):
        named = _APPARMOR_VALUES
    else:
        return
    path = annotation_path(key)
    if not (
        isinstance(value, str)
        and (value in named or (value.startswith("localhost/") and value != "localhost/"))
    ):
        spelled = ", ".join(repr(name) for name in named)
        raise SpecError(path, f"must be {spelled} or 'localhost/<profile>', not {value!r}")
    if key != _SECCOMP_POD:
        container = key.partition("/")[2]
        if container not in containers:
            raise SpecError(path, f"names no container of this pod: {container!r}")


def _container_names(manifest: Mapping[str, Any]) -> frozenset[str]:
    spec = manifest.get("spec")
    names = set()
    for key in ("initContainers", "containers"):
        containers = spec.get(key) if isinstance(spec, Mapping) else None
        for container in containers if isinstance(containers, list) else ():
            if isinstance(container, Mapping) and isinstance(container.get("name"), str):
                names.add(container["name"])
    return frozenset(names)


def take_podman_options(manifest: Mapping[str, Any], unsupported: list[str]) -> None:
    """Remove Podman's container options from the annotations of *manifest*.

    An option at the value asyncpod behaves as is dropped; any other, and any other
    annotation that sets what runs, is appended to *unsupported* (and removed).
    """
    metadata = manifest.get("metadata")
    if not isinstance(metadata, dict):
        return  # structuring reports it
    annotations = metadata.get("annotations")
    if not isinstance(annotations, Mapping):
        return
    taken = set()
    containers = _container_names(manifest)
    for key, value in annotations.items():
        option = _podman_option(key)
        if option is None:
            if isinstance(key, str):
                _check_security_annotation(key, value, containers)
            if _unhonoured(key):
                unsupported.append(annotation_path(key))
                taken.add(key)
            continue
        taken.add(key)
        expected = _PODMAN_OPTIONS[option]
        if expected is not None and not (
            isinstance(value, str) and value.lower() == expected.lower()
        ):
            unsupported.append(annotation_path(key))
    metadata["annotations"] = {k: v for k, v in annotations.items() if k not in taken}


def check_dumped_annotations(annotations: Mapping[str, str]) -> None:
    """Refuse to write an annotation that would set what runs (see the module doc)."""
    for key in annotations:
        if _podman_option(key) is not None or _unhonoured(key):
            raise SpecError(
                annotation_path(key),
                "sets what runs (a Podman container option or a security profile), which "
                "asyncpod does not honour: it cannot write it as an annotation",
            )
