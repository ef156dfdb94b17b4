"""Read and write Kubernetes manifests (YAML or JSON)::

    pod = asyncpod.kube.load_pod(Path("examples/javaweb-2.yaml"))
    text = asyncpod.kube.dump_pod(pod)

    bundle = asyncpod.kube.load(Path("app.yaml"))  # a Deployment, its ConfigMap, a Service
    bundle.pod, bundle.config_maps, bundle.skipped
    text = asyncpod.kube.dump(bundle)  # without its Secrets, unless secrets=True

:func:`load_pod` reads a Pod, or a workload that runs a pod template (Deployment,
StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job, CronJob: see
``asyncpod._workloads``); :func:`load` reads a whole file of documents as a
:class:`Bundle`. ``metadata.name``, ``metadata.labels`` and ``metadata.annotations`` become
the ``name``, ``labels`` and ``annotations`` of the :class:`~asyncpod.Pod`, and the keys
of ``spec`` become its other fields, spelled as in Kubernetes (``initContainers``...).

Every key of a manifest is one of these:

* **read**: the models read it and asyncpod honours it;
* **cluster-only** (``metadata.namespace``, ``nodeSelector``, ``affinity``,
  ``tolerations``, ``serviceAccountName``, ``imagePullSecrets``... see
  ``asyncpod._cluster``): scheduling and identity that mean nothing on one machine.
  Accepted, kept on :attr:`Pod.cluster_fields <asyncpod.Pod.cluster_fields>` so that
  :func:`dump_pod` writes them back, listed by ``Pod.ignored_fields`` and in one INFO log
  line of the ``asyncpod`` logger, strict or not;
* **at its Kubernetes default** (``dnsPolicy: ClusterFirst``, ``hostNetwork: false``,
  ``terminationMessagePath: /dev/termination-log``...): dropped without a word, as are
  keys that say nothing (null, ``[]``, and the objects Kubernetes takes as not set when
  empty, as in ``resources: {}``; an empty ``valueFrom: {}``, which Kubernetes refuses,
  is unsupported like any other), and what the system fills in (``status``,
  ``metadata.creationTimestamp``, ``metadata.uid``...);
* **unsupported**: anything else, which would change what runs. An
  :class:`~asyncpod.UnsupportedFieldError` lists every such key, with the reason and the
  local alternative where there is one (an ``nfs`` volume: mount it and use
  ``hostPath``). With ``strict=False`` they are dropped with one warning, and what is left
  still validates: a volume whose source is unsupported becomes an ``emptyDir``, a probe
  or hook whose handler is unsupported is dropped, an environment variable whose
  ``valueFrom`` is unsupported is left unset (never set to ``''``).

A Windows-only pod is one error, "Windows containers are not supported", strict or not.
Podman's manifest dialect (``io.podman.annotations.*``) is read by
``asyncpod._kube_podman``: what ``podman kube generate`` writes for a pod loads as it is.

``depends_on`` is beyond Kubernetes, so a manifest spells it as one annotation per
container, ``depends-on.asyncpod.io/<container>``, whose value lists the containers it waits
for, each as ``name`` (``started``) or ``name:condition``::

    metadata:
      annotations:
        depends-on.asyncpod.io/web: "db:ready, cache"
"""

from __future__ import annotations

import copy
import json
import logging
import os
import re
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Final

import attrs
import yaml
from cattrs.errors import BaseValidationError

from . import _cluster
from ._bundle import Bundle, KubeObject
from ._exceptions import SpecError, UnsupportedFieldError
from ._kube_fields import classify
from ._kube_podman import annotation_path as _annotation_path
from ._kube_podman import check_dumped_annotations, take_podman_options
from ._models import Condition, Dependency, Pod
from ._models import FrozenDict as FrozenDict  # not exported: get_type_hints(Bundle) looks here
from ._serde import (
    POD_METADATA,
    configure_converter,
    converter,
    make_converter,
    manifest_schema,
    normalize,
    translate_error,
)
from ._workloads import WORKLOAD_KINDS, claim_volume_names, template
from ._yaml import load_documents, read_manifest

__all__ = [
    "DEPENDS_ON_ANNOTATION",
    "Bundle",
    "KubeObject",
    "configure_converter",
    "dump",
    "dump_pod",
    "load",
    "load_pod",
    "make_converter",
]

logger = logging.getLogger("asyncpod")

# Public here, defined privately: documented (and pickled) as asyncpod.kube's.
Bundle.__module__ = KubeObject.__module__ = __name__

#: The annotation key prefix for a container's ``depends_on``; the container's name follows.
DEPENDS_ON_ANNOTATION: Final = "depends-on.asyncpod.io/"

_API_VERSION: Final = "v1"
_KIND: Final = "Pod"
_CONTAINER_LISTS: Final = ("initContainers", "containers")

#: The objects a pod uses, kept in a Bundle: kind -> the Bundle attribute.
_KEPT_KINDS: Final = {
    "ConfigMap": "config_maps",
    "Secret": "secrets",
    "PersistentVolumeClaim": "claims",
}


def load_pod(source: str | os.PathLike[str], *, strict: bool = True) -> Pod:
    """Read a manifest and return the validated :class:`~asyncpod.Pod` it runs.

    *source* is the manifest's text (YAML, block or flow style, or JSON), or the path of a
    file holding it: a :class:`pathlib.Path` or other ``os.PathLike``, or a ``str`` without
    a newline that names an existing file. Any other ``str`` is the text itself.

    The manifest is a Pod, or a workload (Deployment, StatefulSet, DaemonSet, ReplicaSet,
    ReplicationController, Job, CronJob), whose pod template is read; it may come with
    objects that have no meaning on one machine (Services, Ingresses...), which are
    skipped. A file that also holds ConfigMaps, Secrets or PersistentVolumeClaims is a
    :class:`~asyncpod.SpecError`: the pod would lose them, so read it with :func:`load`.

    Raises :class:`~asyncpod.SpecError` naming the manifest path of the problem (for example
    ``spec.containers[1].volumeMounts[0].name``), or :class:`~asyncpod.UnsupportedFieldError`
    listing every unsupported key when *strict*; with ``strict=False`` those keys are
    dropped with one :class:`UserWarning` that lists them (see the module's doc).
    """
    bundle, notes = _load(source, strict=strict)
    lost = [*bundle.config_maps, *bundle.secrets, *(c for c in bundle.claims if not c.generated)]
    if lost:
        raise SpecError(
            "",
            f"the file holds {', '.join(map(str, lost))} besides the pod, which a Pod "
            "cannot carry: read it with asyncpod.kube.load, which keeps them",
        )
    _report(bundle, notes, stacklevel=3)
    return bundle.pod


def load(source: str | os.PathLike[str], *, strict: bool = True) -> Bundle:
    """Read a manifest file of one or more documents as a :class:`Bundle`.

    *source* is as for :func:`load_pod`. The file holds exactly one Pod or workload (a
    ``kind: List`` counts as its items); ConfigMaps, Secrets and PersistentVolumeClaims
    are kept for it; every other object (Service, Ingress, RBAC, Namespace...) is listed
    in the bundle's ``skipped`` (and in one INFO log line), not an error. Errors and
    *strict* are as for :func:`load_pod`.
    """
    bundle, notes = _load(source, strict=strict)
    _report(bundle, notes, stacklevel=3)
    return bundle


def dump_pod(pod: Pod) -> str:
    """The manifest of *pod* as YAML (block style), which :func:`load_pod` reads back.

    Fields at their default are left out; ``depends_on`` goes to annotations; the
    cluster-only fields go back where they came from.
    """
    return _dump_documents([_pod_document(pod)])


def dump(bundle: Bundle, *, secrets: bool = False) -> str:
    """The manifest file of *bundle* as YAML documents, which :func:`load` reads back.

    ConfigMaps, Secrets and claims come first, then the Pod (or the workload, its pod
    template written from the bundle's ``pod``), then the skipped objects, each as it was
    read: what runs here deploys unchanged to a cluster.

    A Secret's values are written only with *secrets* (then the Secret as it was read:
    ``data`` base64, ``stringData`` plain text). By default each Secret is left out, and
    named in a comment line at the top, ``# Secret/NAME left out: pass secrets=True``:
    the file can be shown, logged or committed, and a cluster it is applied to keeps (or
    is given) its own Secrets, instead of being handed empty ones.
    """
    kept = [*bundle.config_maps, *(bundle.secrets if secrets else ()), *bundle.claims]
    documents: list[Any] = [_cluster.thaw(k.document) for k in kept if not k.generated]
    pod = _pod_document(bundle.pod)
    if bundle.workload is None:
        documents.append(pod)
    else:
        documents.append(_workload_document(bundle.workload, pod))
    documents.extend(_cluster.thaw(skipped.document) for skipped in bundle.skipped)
    left_out = (
        ""
        if secrets
        else "".join(f"# {secret} left out: pass secrets=True\n" for secret in bundle.secrets)
    )
    return left_out + _dump_documents(documents)


def _report(bundle: Bundle, notes: Sequence[str], *, stacklevel: int) -> None:
    if notes:
        warnings.warn(
            f"asyncpod dropped unsupported field(s): {'; '.join(notes)}",
            UserWarning,
            stacklevel=stacklevel,
        )
    if bundle.ignored_fields:
        logger.info("asyncpod ignores cluster-only fields: %s", ", ".join(bundle.ignored_fields))
    if bundle.skipped:
        logger.info(
            "asyncpod skips objects with no meaning on one machine: %s",
            ", ".join(map(str, bundle.skipped)),
        )


# Reading


def _parse_documents(text: str) -> list[Any]:
    """Every document of *text* (``kind: List`` items included, which may be anything), read as
    kubectl reads YAML and JSON, within bounds (``asyncpod._yaml``)."""
    documents = load_documents(text)
    result: list[Any] = []
    for document in documents:
        if document is None:
            continue
        if not isinstance(document, Mapping):
            hint = " (a single-line str names a file only if it exists)" if "\n" not in text else ""
            raise SpecError(
                "", f"a manifest must be a mapping, not {type(document).__name__}{hint}"
            )
        items = document.get("items")
        if document.get("kind") == "List" and isinstance(items, list):
            result.extend(item for item in items if item is not None)
        else:
            result.append(document)
    if not result:
        raise SpecError("", "expected a Pod or a workload, found 0 documents")
    return result


def _section(manifest: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = manifest.get(key)
    if value is None:
        raise SpecError(key, "is required")
    if not isinstance(value, Mapping):
        raise SpecError(key, f"must be a mapping, not {type(value).__name__} {value!r}")
    return dict(value)


# depends_on <-> annotations


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


# Loading


def _load(source: str | os.PathLike[str], *, strict: bool) -> tuple[Bundle, list[str]]:
    """The bundle of *source*, and the notes of the warning ``strict=False`` gives."""
    documents = _parse_documents(read_manifest(source))
    runnable: list[Mapping[Any, Any]] = []
    kept: dict[str, list[KubeObject]] = {attribute: [] for attribute in _KEPT_KINDS.values()}
    skipped: list[KubeObject] = []
    single = len(documents) == 1
    for document in documents:
        if not isinstance(document, Mapping):
            found = type(document).__name__
            raise SpecError("items", f"a List's items must be mappings, not {found}")
        kind = document.get("kind")
        if not isinstance(kind, str) or not kind:
            found = type(kind).__name__ if "kind" in document else "nothing"
            raise SpecError("kind", f"must name the object's kind, not {found}")
        if kind == _KIND or kind in WORKLOAD_KINDS:
            runnable.append(document)
            continue
        if single:
            raise SpecError(
                "kind",
                f"must be {_KIND!r} or a workload ({', '.join(WORKLOAD_KINDS)}), not {kind!r}",
            )
        if not isinstance(document.get("apiVersion"), str):
            raise SpecError("apiVersion", f"{kind}: is required")
        metadata = document.get("metadata")
        name = metadata.get("name") if isinstance(metadata, Mapping) else None
        obj = KubeObject(kind=kind, name=name if isinstance(name, str) else None, document=document)
        if kind in _KEPT_KINDS and document.get("apiVersion") == _API_VERSION:
            kept[_KEPT_KINDS[kind]].append(obj)
        else:
            skipped.append(obj)
    if len(runnable) != 1:
        names = ", ".join(f"{d.get('kind')}/{_name_of(d)}" for d in runnable)
        raise SpecError(
            "",
            f"expected exactly one Pod or workload, found {len(runnable)}"
            + (f" ({names}): asyncpod runs one pod; split the file" if runnable else ""),
        )
    [document] = runnable
    kind = document["kind"]
    if kind == _KIND:
        if document.get("apiVersion") != _API_VERSION:
            found = f"{document['apiVersion']!r}" if "apiVersion" in document else "nothing"
            raise SpecError("apiVersion", f"must be {_API_VERSION!r} for a Pod, not {found}")
        pod, notes = _load_pod_document(document, strict=strict, prefix="", origins={})
        return Bundle(
            pod=pod,
            config_maps=tuple(kept["config_maps"]),
            secrets=tuple(kept["secrets"]),
            claims=tuple(kept["claims"]),
            skipped=tuple(skipped),
        ), notes
    workload = template(document)
    pod, notes = _load_pod_document(
        workload.pod, strict=strict, prefix=workload.prefix, origins=workload.origins
    )
    claims = [
        KubeObject(
            kind="PersistentVolumeClaim", name=c["metadata"]["name"], document=c, generated=True
        )
        for c in workload.claims
    ]
    return Bundle(
        pod=pod,
        kind=kind,
        workload=KubeObject(kind=kind, name=_name_of(document), document=document),
        config_maps=tuple(kept["config_maps"]),
        secrets=tuple(kept["secrets"]),
        claims=tuple(kept["claims"] + claims),
        skipped=tuple(skipped),
        backoff_limit=workload.backoff_limit,
        active_deadline_seconds=workload.active_deadline_seconds,
        workload_ignored_fields=workload.ignored,
    ), notes


def _name_of(document: Mapping[Any, Any]) -> str | None:
    metadata = document.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    return name if isinstance(name, str) else None


def _load_pod_document(
    document: Mapping[Any, Any], *, strict: bool, prefix: str, origins: Mapping[str, str]
) -> tuple[Pod, list[str]]:
    """The Pod of the ``kind: Pod`` *document*, and the notes of the lax warning.

    *prefix* is where the pod sits in the file's document (``spec.template`` in a
    Deployment), *origins* the pod paths a workload generated: errors and notes name the
    paths of the file.
    """

    def where(path: str) -> str:
        for pod_path, origin in origins.items():
            if path == pod_path or path.startswith((f"{pod_path}.", f"{pod_path}[")):
                return origin
        return f"{prefix}.{path}" if prefix and path else path

    try:
        return _read_pod_document(document, strict=strict, where=where)
    except UnsupportedFieldError as error:
        moved = UnsupportedFieldError(
            [where(path) for path in error.paths],
            {where(path): reason for path, reason in error.reasons.items()},
        )
        raise moved from error.__cause__
    except SpecError as error:
        if not prefix and not origins:
            raise
        raise error.with_path(where(error.path)) from error.__cause__


def _read_pod_document(
    document: Mapping[Any, Any], *, strict: bool, where: Any
) -> tuple[Pod, list[str]]:
    raw = copy.deepcopy(dict(document))
    classified = classify(raw)
    unsupported: list[str] = []
    reasons: dict[str, str] = {}
    manifest = normalize(raw, manifest_schema(), "", unsupported, reasons)
    take_podman_options(manifest, unsupported)
    unsupported.extend(classified.refused)
    reasons.update(classified.refused)
    notes: list[str] = []
    if unsupported:
        if strict:
            raise UnsupportedFieldError(unsupported, reasons)
        notes.extend(
            f"{where(path)} ({reasons[path]})" if path in reasons else where(path)
            for path in unsupported
        )
        notes.extend(_repair(manifest, unsupported, where))
    while True:
        fields = {**_section(manifest, "metadata"), **_section(manifest, "spec")}
        dependency_origins = _take_dependencies(fields)
        try:
            pod = converter.structure(fields, Pod)
            break
        except BaseValidationError as exc:
            error = _relocate(translate_error(exc), dependency_origins)
            # A value the models refuse (an extended resource, say): lax drops it too.
            if strict or not isinstance(error, UnsupportedFieldError):
                raise error from exc
            dropped = sorted(map(_dropped_whole, error.paths), key=_order, reverse=True)
            if not all(_drop_path(manifest, path) for path in dropped):
                raise error from exc
            for path in dropped:
                _drop_emptied(manifest, path)
            notes.extend(
                f"{where(path)} ({error.reasons[path]})" if path in error.reasons else where(path)
                for path in error.paths
            )
    if classified.cluster:
        pod = attrs.evolve(pod, cluster_fields=classified.cluster)
    return pod, notes


_PATH_STEP: Final = re.compile(r'\.?([A-Za-z0-9_]+)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]')


def _steps(path: str) -> list[str | int] | None:
    """The keys and indexes of manifest *path*, or ``None`` if it is not one."""
    steps: list[str | int] = []
    at = 0
    while at < len(path):
        match = _PATH_STEP.match(path, at)
        if match is None:
            return None
        name, index, key = match.groups()
        steps.append(int(index) if index is not None else json.loads(key) if key else name)
        at = match.end()
    return steps


def _order(path: str) -> list[tuple[int, str]]:
    """A sort key of manifest paths that puts a list's later items after its earlier ones."""
    return [(step, "") if isinstance(step, int) else (-1, step) for step in _steps(path) or ()]


def _drop_path(manifest: dict[str, Any], path: str) -> bool:
    """Remove what manifest *path* (``spec.containers[0].resources.limits["a/b"]``, or a
    list item) names from *manifest*; whether it was there."""
    steps = _steps(path)
    if not steps:
        return False
    parent: Any = manifest
    for step in steps[:-1]:
        try:
            parent = parent[step]
        except (KeyError, IndexError, TypeError):
            return False
    last = steps[-1]
    if isinstance(parent, dict) and last in parent:
        del parent[last]
        return True
    if isinstance(parent, list) and isinstance(last, int) and 0 <= last < len(parent):
        del parent[last]
        return True
    return False


#: A restart rule whose action is unsupported is dropped whole: without its action it
#: would be a rule of the default action, ``Restart``.
_RULE_ACTION: Final = re.compile(r"^(.*\.restartPolicyRules\[\d+\])\.action$")
#: What a lax drop may leave empty that is then dropped too: Kubernetes takes an empty
#: ``resources`` (or its ``limits``, ``requests``) as unset, and no rules as none.
_DROPPED_WHEN_EMPTY: Final = frozenset({"resources", "limits", "requests", "restartPolicyRules"})


def _dropped_whole(path: str) -> str:
    """What a lax drop of *path* removes: the path, or the restart rule it is the action of."""
    match = _RULE_ACTION.match(path)
    return match.group(1) if match else path


def _drop_emptied(manifest: dict[str, Any], path: str) -> None:
    """Drop the parents of dropped *path* that are left empty, where empty means unset."""
    steps = _steps(path) or []
    while len(steps) > 1:
        steps.pop()
        parent: Any = manifest
        try:
            for step in steps[:-1]:
                parent = parent[step]
        except (KeyError, IndexError, TypeError):
            return  # dropped already, with another path's parents
        last = steps[-1]
        if not (
            last in _DROPPED_WHEN_EMPTY
            and isinstance(parent, dict)
            and last in parent
            and not parent[last]
        ):
            return
        del parent[last]


#: Keys of a probe or hook that name its handler.
_PROBE_HANDLERS: Final = ("exec", "httpGet", "tcpSocket", "grpc")
_HOOK_HANDLERS: Final = ("exec", "httpGet", "tcpSocket", "sleep")


def _repair(manifest: Mapping[str, Any], unsupported: Sequence[str], where: Any) -> list[str]:
    """Make what ``strict=False`` left of *manifest* a valid pod; notes on what changed.

    A volume whose source was dropped becomes an ``emptyDir``; a probe or lifecycle hook
    whose handler was dropped is dropped; an environment variable that lost part of its
    definition (an unsupported ``valueFrom``) is removed, so that it is unset, not ``''``.
    """

    def touched(path: str) -> bool:
        return any(p.startswith((f"{path}.", f"{path}[")) for p in unsupported)

    notes: list[str] = []
    spec = manifest.get("spec")
    if not isinstance(spec, dict):
        return notes
    volumes = spec.get("volumes")
    for index, volume in enumerate(volumes if isinstance(volumes, list) else ()):
        path = f"spec.volumes[{index}]"
        projected = volume.get("projected") if isinstance(volume, dict) else None
        sources = projected.get("sources") if isinstance(projected, dict) else None
        if isinstance(projected, dict) and isinstance(sources, list):
            # a source dropped whole leaves an empty one: gone
            kept = [
                source
                for index, source in enumerate(sources)
                if source or not touched(f"{path}.projected.sources[{index}]")
            ]
            if len(kept) < len(sources):
                projected["sources"] = kept
                notes.append(f"{where(path)}.projected keeps {len(kept)} of its sources")
        if isinstance(volume, dict) and set(volume) <= {"name"} and touched(path):
            volume["emptyDir"] = {}
            notes.append(f"volume {where(path)} ({volume.get('name')!r}) is an emptyDir instead")
    for list_key in _CONTAINER_LISTS:
        containers = spec.get(list_key)
        for index, container in enumerate(containers if isinstance(containers, list) else ()):
            if isinstance(container, dict):
                notes.extend(
                    _repair_container(container, f"spec.{list_key}[{index}]", touched, where)
                )
    return notes


def _repair_container(container: dict[str, Any], path: str, touched: Any, where: Any) -> list[str]:
    notes = _drop_without_handler(
        container,
        ("startupProbe", "readinessProbe", "livenessProbe"),
        _PROBE_HANDLERS,
        path,
        touched,
        where,
    )
    lifecycle = container.get("lifecycle")
    if isinstance(lifecycle, dict):
        notes += _drop_without_handler(
            lifecycle, ("postStart", "preStop"), _HOOK_HANDLERS, f"{path}.lifecycle", touched, where
        )
        if not lifecycle:
            del container["lifecycle"]
    env = container.get("env")
    if isinstance(env, list):
        for index in reversed(range(len(env))):
            variable_path = f"{path}.env[{index}]"
            if touched(variable_path):
                name = env[index].get("name") if isinstance(env[index], dict) else None
                del env[index]
                notes.append(f"variable {where(variable_path)} ({name!r}) is left unset")
    return notes


def _drop_without_handler(
    parent: dict[str, Any],
    keys: Sequence[str],
    handlers: Sequence[str],
    path: str,
    touched: Any,
    where: Any,
) -> list[str]:
    """Drop the probes or hooks under *keys* of *parent* that lost their only handler."""
    notes = []
    for key in keys:
        action = parent.get(key)
        if (
            isinstance(action, dict)
            and touched(f"{path}.{key}")
            and not any(handler in action for handler in handlers)
        ):
            del parent[key]
            notes.append(f"{where(f'{path}.{key}')} is dropped (no supported handler)")
    return notes


# Writing


def _pod_document(pod: Pod) -> dict[str, Any]:
    fields: dict[str, Any] = converter.unstructure(pod)
    fields.pop("clusterFields", None)
    annotations: dict[str, str] = fields.pop("annotations", {})
    for key in annotations:
        if key.startswith(DEPENDS_ON_ANNOTATION):
            raise SpecError(
                _annotation_path(key),
                "is reserved: set Container.depends_on instead of this annotation",
            )
    check_dumped_annotations(annotations)
    for list_key, containers in zip(
        _CONTAINER_LISTS, (pod.init_containers, pod.containers), strict=True
    ):
        for raw, container in zip(fields.get(list_key, ()), containers, strict=True):
            raw.pop("dependsOn", None)
            if container.depends_on:
                annotations[DEPENDS_ON_ANNOTATION + container.name] = _format_dependencies(
                    container.depends_on
                )
    metadata: dict[str, Any] = {key: fields.pop(key) for key in POD_METADATA if key in fields}
    if annotations:
        metadata["annotations"] = annotations
    for path, value in pod.cluster_fields.items():
        section, in_list, index, name = _cluster.split_path(path)
        if in_list is not None:
            assert index is not None
            fields[in_list][index][name] = _cluster.thaw(value)
        else:
            (metadata if section == "metadata" else fields)[name] = _cluster.thaw(value)
    return {"apiVersion": _API_VERSION, "kind": _KIND, "metadata": metadata, "spec": fields}


def _workload_document(workload: KubeObject, pod: dict[str, Any]) -> dict[str, Any]:
    """The workload's document as read, its pod template written from *pod*."""
    document: dict[str, Any] = _cluster.thaw(workload.document)
    _, location = WORKLOAD_KINDS[workload.kind]
    parent = document
    for key in location[:-1]:
        parent = parent[key]
    old = parent[location[-1]]
    metadata = dict(pod["metadata"])
    old_metadata = old.get("metadata") or {}
    if "name" not in old_metadata and metadata.get("name") == workload.name:
        del metadata["name"]
    spec = pod["spec"]
    generated = claim_volume_names(document)
    if generated:
        # a claim template's volume goes; the template's own volume it replaced comes back
        written = {v.get("name"): v for v in (old.get("spec") or {}).get("volumes") or ()}
        volumes = []
        for volume in spec.get("volumes", ()):
            claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
            if generated.get(volume["name"]) != claim:
                volumes.append(volume)
            elif volume["name"] in written:
                volumes.append(written[volume["name"]])
        spec["volumes"] = volumes
        if not spec["volumes"]:
            del spec["volumes"]
    parent[location[-1]] = {**({"metadata": metadata} if metadata else {}), "spec": spec}
    return document


def _dump_documents(documents: Sequence[Any]) -> str:
    return yaml.dump_all(
        documents,
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
    )


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


# Show public objects as asyncpod.kube.X (in reprs and docs), as the facade does.
for _name in __all__:
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "").startswith("asyncpod._"):
        _obj.__module__ = __name__
del _name, _obj
