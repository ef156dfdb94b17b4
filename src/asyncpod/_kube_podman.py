"""Podman's dialect of the Kubernetes manifest: container options in annotations.

``podman kube generate`` writes per-container options as annotations
``<option>/<container>`` (``io.podman.annotations.privileged/web: "FALSE"``), which
``podman kube play`` reads back. asyncpod accepts (and drops) each at the value that
states what it does anyway; any other value, and any other annotation that sets what
runs (security profiles, other Podman options), is unsupported like an unsupported field.
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

#: Annotations that set what runs (security profiles, Podman container options) and that
#: asyncpod does not honour: unsupported, like an unsupported field. Only the Podman pod
#: option ``kube play`` alone reads, the init containers' type, is kept as an annotation.
_UNHONOURED_PREFIXES: Final = (
    "io.podman.annotations.",
    "container.apparmor.security.beta.kubernetes.io/",
    "container.seccomp.security.alpha.kubernetes.io/",
    "seccomp.security.alpha.kubernetes.io/",
)
_KEPT_PODMAN_ANNOTATIONS: Final = frozenset({"io.podman.annotations.init.container.type"})


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
    )


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
    for key, value in annotations.items():
        option = _podman_option(key)
        if option is None:
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
