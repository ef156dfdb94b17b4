"""Read and write Kubernetes Pod manifests (YAML or JSON)::

    pod = asyncpod.kube.load_pod(Path("examples/javaweb-2.yaml"))
    text = asyncpod.kube.dump_pod(pod)

A manifest is one document with ``apiVersion: v1`` and ``kind: Pod``; ``metadata.name``,
``metadata.labels`` and ``metadata.annotations`` become the ``name``, ``labels`` and
``annotations`` of the :class:`~asyncpod.Pod`, and the keys of ``spec`` become its other
fields, spelled as in Kubernetes (``initContainers``, ``hostIP``...).

Nothing is silently ignored: a key asyncpod does not support is an
:class:`~asyncpod.UnsupportedFieldError` listing every such key, unless ``strict=False``,
which drops them with one warning. Dropped without a word are only keys that say nothing
(null, ``[]``, and the objects Kubernetes takes as not set when empty, as in
``resources: {}`` or ``securityContext: {capabilities: {}}``; an empty ``valueFrom: {}``,
which Kubernetes refuses, is unsupported like any other), what the system fills in
(``status``, ``metadata.creationTimestamp``; Kubernetes ignores them when it creates a
Pod), and fields that state what asyncpod always does
(``automountServiceAccountToken: false``, ``enableServiceLinks: false``, and Podman's
per-container option annotations at their defaults, such as
``io.podman.annotations.privileged/<container>: "FALSE"``): what ``podman kube generate``
writes for a pod loads as it is.

``depends_on`` is beyond Kubernetes, so a manifest spells it as one annotation per
container, ``depends-on.asyncpod.io/<container>``, whose value lists the containers it waits
for, each as ``name`` (``started``) or ``name:condition``::

    metadata:
      annotations:
        depends-on.asyncpod.io/web: "db:ready, cache"
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Final

import yaml
from cattrs.errors import BaseValidationError

from ._exceptions import SpecError, UnsupportedFieldError
from ._models import Condition, Dependency, Pod
from ._serde import (
    POD_METADATA,
    configure_converter,
    converter,
    make_converter,
    manifest_schema,
    normalize,
    translate_error,
)
from ._yaml import load_documents, read_manifest

__all__ = ["DEPENDS_ON_ANNOTATION", "configure_converter", "dump_pod", "load_pod", "make_converter"]

#: The annotation key prefix for a container's ``depends_on``; the container's name follows.
DEPENDS_ON_ANNOTATION: Final = "depends-on.asyncpod.io/"

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

_API_VERSION: Final = "v1"
_KIND: Final = "Pod"
_CONTAINER_LISTS: Final = ("initContainers", "containers")


def load_pod(source: str | os.PathLike[str], *, strict: bool = True) -> Pod:
    """Read a Pod manifest and return the validated :class:`~asyncpod.Pod`.

    *source* is the manifest's text (YAML, block or flow style, or JSON), or the path of a
    file holding it: a :class:`pathlib.Path` or other ``os.PathLike``, or a ``str`` without
    a newline that names an existing file. Any other ``str`` is the text itself.

    Raises :class:`~asyncpod.SpecError` naming the manifest path of the problem (for example
    ``spec.containers[1].volumeMounts[0].name``), or :class:`~asyncpod.UnsupportedFieldError`
    listing every unsupported key when *strict*; with ``strict=False`` those keys are
    dropped with one :class:`UserWarning` that lists them.
    """
    document = _parse(read_manifest(source))
    unsupported: list[str] = []
    manifest = normalize(document, manifest_schema(), "", unsupported)
    _take_podman_options(manifest, unsupported)
    if unsupported:
        if strict:
            raise UnsupportedFieldError(unsupported)
        warnings.warn(
            f"asyncpod dropped unsupported field(s): {', '.join(unsupported)}",
            UserWarning,
            stacklevel=2,
        )
    fields = {**_section(manifest, "metadata"), **_section(manifest, "spec")}
    origins = _take_dependencies(fields)
    try:
        return converter.structure(fields, Pod)
    except BaseValidationError as exc:
        raise _relocate(translate_error(exc), origins) from exc


def dump_pod(pod: Pod) -> str:
    """The manifest of *pod* as YAML (block style), which :func:`load_pod` reads back.

    Fields at their default are left out; ``depends_on`` goes to annotations.
    """
    fields: dict[str, Any] = converter.unstructure(pod)
    annotations: dict[str, str] = fields.pop("annotations", {})
    for key in annotations:
        if key.startswith(DEPENDS_ON_ANNOTATION):
            raise SpecError(
                _annotation_path(key),
                "is reserved: set Container.depends_on instead of this annotation",
            )
        if _podman_option(key) is not None or (
            key.startswith(_UNHONOURED_PREFIXES) and key not in _KEPT_PODMAN_ANNOTATIONS
        ):
            raise SpecError(
                _annotation_path(key),
                "sets what runs (a Podman container option or a security profile), which "
                "asyncpod does not honour: it cannot write it as an annotation",
            )
    for list_key, containers in zip(
        _CONTAINER_LISTS, (pod.init_containers, pod.containers), strict=True
    ):
        for raw, container in zip(fields.get(list_key, ()), containers, strict=True):
            raw.pop("dependsOn", None)
            if container.depends_on:
                annotations[DEPENDS_ON_ANNOTATION + container.name] = _format_dependencies(
                    container.depends_on
                )
    metadata = {key: fields.pop(key) for key in POD_METADATA if key in fields}
    if annotations:
        metadata["annotations"] = annotations
    document = {"apiVersion": _API_VERSION, "kind": _KIND, "metadata": metadata, "spec": fields}
    return yaml.dump(
        document, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True
    )


# Reading


def _parse(text: str) -> Mapping[Any, Any]:
    documents = load_documents(text)
    documents = [document for document in documents if document is not None]
    if len(documents) != 1:
        raise SpecError("", f"expected exactly one document (a Pod), found {len(documents)}")
    [document] = documents
    if not isinstance(document, Mapping):
        hint = " (a single-line str names a file only if it exists)" if "\n" not in text else ""
        raise SpecError("", f"a manifest must be a mapping, not {type(document).__name__}{hint}")
    for key, expected in (("kind", _KIND), ("apiVersion", _API_VERSION)):
        if document.get(key) != expected:
            found = f"{document[key]!r}" if key in document else "nothing"
            raise SpecError(key, f"must be {expected!r} (asyncpod reads Pods), not {found}")
    return document


def _section(manifest: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = manifest.get(key)
    if value is None:
        raise SpecError(key, "is required")
    if not isinstance(value, Mapping):
        raise SpecError(key, f"must be a mapping, not {type(value).__name__} {value!r}")
    return dict(value)


# Podman's container options in annotations


def _podman_option(key: object) -> str | None:
    """The option of a ``<option>/<container>`` annotation key of Podman's, or ``None``."""
    if not isinstance(key, str):
        return None
    option, slash, _ = key.partition("/")
    return option if slash and option in _PODMAN_OPTIONS else None


def _take_podman_options(manifest: Mapping[str, Any], unsupported: list[str]) -> None:
    """Remove Podman's container options from the annotations of *manifest*.

    An option at the value asyncpod behaves as is dropped; any other is unsupported.
    """
    metadata = manifest.get("metadata")
    if not isinstance(metadata, dict):
        return  # structuring reports it
    annotations = metadata.get("annotations")
    if not isinstance(annotations, Mapping):
        return
    options = {key: _podman_option(key) for key in annotations}
    taken = set()
    for key, option in options.items():
        if option is None:
            if (
                isinstance(key, str)
                and key.startswith(_UNHONOURED_PREFIXES)
                and key not in _KEPT_PODMAN_ANNOTATIONS
            ):
                unsupported.append(_annotation_path(key))
                taken.add(key)
            continue
        taken.add(key)
        expected, value = _PODMAN_OPTIONS[option], annotations[key]
        if expected is not None and not (
            isinstance(value, str) and value.lower() == expected.lower()
        ):
            unsupported.append(_annotation_path(key))
    metadata["annotations"] = {k: v for k, v in annotations.items() if k not in taken}


# depends_on <-> annotations


def _annotation_path(key: str) -> str:
    return f"metadata.annotations[{json.dumps(key)}]"


def _take_dependencies(fields: dict[str, Any]) -> dict[str, str]:
    """Move the depends-on annotations in *fields* to their containers' ``dependsOn``.

    Returns where each came from: container path -> annotation path.
    """
    annotations = fields.get("annotations")
    if not isinstance(annotations, Mapping):
        return {}  # structuring reports it
    ours = {
        key: value
        for key, value in annotations.items()
        if isinstance(key, str) and key.startswith(DEPENDS_ON_ANNOTATION)
    }
    if not ours:
        return {}
    fields["annotations"] = {k: v for k, v in annotations.items() if k not in ours}
    containers: dict[str, tuple[str, dict[str, Any]]] = {}
    for list_key in _CONTAINER_LISTS:
        entries = fields.get(list_key)
        for index, raw in enumerate(entries if isinstance(entries, list) else ()):
            if isinstance(raw, dict) and isinstance(raw.get("name"), str):
                containers.setdefault(raw["name"], (f"spec.{list_key}[{index}]", raw))
    origins: dict[str, str] = {}
    for key, value in ours.items():
        where = _annotation_path(key)
        name = key[len(DEPENDS_ON_ANNOTATION) :]
        if name not in containers:
            raise SpecError(where, f"names no container of the pod: {name!r}")
        path, raw = containers[name]
        raw["dependsOn"] = _parse_dependencies(where, value)
        origins[path] = where
    return origins


def _parse_dependencies(where: str, value: object) -> list[dict[str, str]]:
    if not isinstance(value, str):
        raise SpecError(
            where, f"must be a string such as 'db:ready, cache', not {type(value).__name__}"
        )
    if not value.strip():
        return []
    dependencies = []
    for entry in value.split(","):
        name, colon, condition = entry.partition(":")
        if not name.strip():
            raise SpecError(where, f"has an entry without a container name: {value!r}")
        dependency = {"name": name.strip()}
        if colon:
            dependency["condition"] = condition.strip()
        dependencies.append(dependency)
    return dependencies


def _format_dependencies(dependencies: Sequence[Dependency]) -> str:
    return ", ".join(
        d.name if d.condition is Condition.STARTED else f"{d.name}:{d.condition.value}"
        for d in dependencies
    )


def _relocate(error: SpecError, origins: Mapping[str, str]) -> SpecError:
    """Point an error about a container's ``dependsOn`` at the annotation that set it."""
    for path, where in origins.items():
        dependency_path = f"{path}.dependsOn"
        if error.path == dependency_path or error.path.startswith(
            (f"{dependency_path}[", f"{dependency_path}.")
        ):
            return error.with_path(where)
    return error


# Writing


#: plain scalars other YAML readers take for something else than a string, which PyYAML
#: (YAML 1.1) would write unquoted: y/n are booleans to Go's yaml.v2 (kubectl, Podman),
#: 0o17 an integer and 1e3 a float to YAML 1.2 and Go
_AMBIGUOUS = re.compile(r"[yYnN]|0o[0-7]+|[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)[eE][-+]?[0-9]+")


class _Dumper(yaml.SafeDumper):
    """Writes multi-line strings as literal blocks (``|``) where YAML allows it."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = None
    if any(char in value for char in "\x85\u2028\u2029"):
        style = '"'  # YAML line breaks: only double quotes escape them (PyYAML folds \x85)
    elif "\n" in value:
        style = "|"
    elif _AMBIGUOUS.fullmatch(value):
        style = "'"
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)
