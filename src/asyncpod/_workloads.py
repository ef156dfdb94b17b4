"""Workloads: the objects that run a pod template (Deployment, StatefulSet, Job...).

asyncpod runs one pod on one machine, so a workload becomes the pod its template
describes, once: replicas, update strategies, selectors and schedules are kept (so that
the workload is written back unchanged) and listed as ignored. Where a workload's
semantics apply to one pod, they are kept:

* a Job (or a CronJob's job) runs its pod to completion once (``completions`` 1); its
  template must say ``restartPolicy: OnFailure`` or ``Never``, as Kubernetes requires,
  ``backoffLimit`` (default 6) is enforced where it runs (restarts with ``OnFailure``,
  failed pods with ``Never``), and so is its ``activeDeadlineSeconds``;
* a StatefulSet's ``volumeClaimTemplates`` become persistentVolumeClaim volumes of the
  pod, each claim named as Kubernetes names the first replica's: ``<template>-<set>-0``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import attrs

from ._exceptions import SpecError

__all__ = ["WORKLOAD_KINDS", "Template", "template"]

_APPS: Final = ("apps/v1", "apps/v1beta2", "apps/v1beta1", "extensions/v1beta1")

#: kind -> (the apiVersions that serve it, the path of its pod template)
WORKLOAD_KINDS: Final[Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "Deployment": (_APPS, ("spec", "template")),
    "StatefulSet": (_APPS[:3], ("spec", "template")),
    "DaemonSet": (_APPS, ("spec", "template")),
    "ReplicaSet": (_APPS, ("spec", "template")),
    "ReplicationController": (("v1",), ("spec", "template")),
    "Job": (("batch/v1",), ("spec", "template")),
    "CronJob": (
        ("batch/v1", "batch/v1beta1", "batch/v2alpha1"),
        ("spec", "jobTemplate", "spec", "template"),
    ),
}

_JOBS: Final = frozenset({"Job", "CronJob"})
_DEFAULT_BACKOFF_LIMIT: Final = 6
#: keys of a workload that asyncpod honours (the rest is kept and listed as ignored)
_HONOURED: Final = frozenset(
    {"template", "jobTemplate", "backoffLimit", "activeDeadlineSeconds", "volumeClaimTemplates"}
)


@attrs.frozen
class Template:
    """The pod a workload runs, as a Pod document, and what came with it."""

    #: a ``kind: Pod`` document built from the template
    pod: dict[str, Any]
    #: where the template sits in the workload, as a manifest path prefix
    prefix: str
    #: a Job's backoffLimit, else None
    backoff_limit: int | None
    #: a Job's activeDeadlineSeconds, if it has one
    active_deadline_seconds: int | None
    #: PersistentVolumeClaim documents made from volumeClaimTemplates
    claims: tuple[dict[str, Any], ...]
    #: pod manifest path -> workload manifest path, for what the workload generated
    origins: Mapping[str, str]
    #: the workload's fields asyncpod keeps but ignores (replicas, selector...)
    ignored: tuple[str, ...]


def _mapping(value: object, path: str) -> Mapping[str, Any]:
    if value is None:
        raise SpecError(path, "is required")
    if not isinstance(value, Mapping):
        raise SpecError(path, f"must be a mapping, not {type(value).__name__} {value!r}")
    return value


def template(document: Mapping[str, Any]) -> Template:
    """The pod template of the workload *document* (whose kind is a WORKLOAD_KINDS key)."""
    kind = document["kind"]
    versions, location = WORKLOAD_KINDS[kind]
    if document.get("apiVersion") not in versions:
        found = repr(document["apiVersion"]) if "apiVersion" in document else "nothing"
        raise SpecError("apiVersion", f"must be {versions[0]!r} for a {kind}, not {found}")
    metadata = _mapping(document.get("metadata"), "metadata")
    name = metadata.get("name")
    node: Mapping[str, Any] = document
    path = ""
    specs = []
    for key in location:
        path = f"{path}.{key}" if path else key
        node = _mapping(node.get(key), path)
        if key == "spec":
            specs.append((path, node))
    template_metadata = dict(_mapping(node.get("metadata") or {}, f"{path}.metadata"))
    template_metadata.setdefault("name", name)
    pod_spec = dict(_mapping(node.get("spec"), f"{path}.spec"))

    backoff_limit = None
    deadline = None
    if kind in _JOBS:
        job_path, job = specs[-1]
        deadline = job.get("activeDeadlineSeconds")
        if deadline is not None and (
            isinstance(deadline, bool) or not isinstance(deadline, int) or deadline <= 0
        ):
            raise SpecError(
                f"{job_path}.activeDeadlineSeconds", f"must be an integer > 0, not {deadline!r}"
            )
        backoff_limit = job.get("backoffLimit", _DEFAULT_BACKOFF_LIMIT)
        if (
            isinstance(backoff_limit, bool)
            or not isinstance(backoff_limit, int)
            or backoff_limit < 0
        ):
            raise SpecError(
                f"{job_path}.backoffLimit", f"must be an integer >= 0, not {backoff_limit!r}"
            )
        if pod_spec.get("restartPolicy") not in ("OnFailure", "Never"):
            raise SpecError(
                f"{path}.spec.restartPolicy",
                f"a {kind}'s pod must say OnFailure or Never, not "
                f"{pod_spec.get('restartPolicy', 'nothing (Always)')!r}",
            )

    claims: list[dict[str, Any]] = []
    origins: dict[str, str] = {}
    if kind == "StatefulSet":
        claim_templates = document["spec"].get("volumeClaimTemplates") or []
        if not isinstance(claim_templates, list):
            raise SpecError("spec.volumeClaimTemplates", "must be a list")
        volumes = list(pod_spec.get("volumes") or [])
        for index, claim in enumerate(claim_templates):
            where = f"spec.volumeClaimTemplates[{index}]"
            claim_name = _mapping(_mapping(claim, where).get("metadata"), f"{where}.metadata").get(
                "name"
            )
            if not isinstance(claim_name, str):
                raise SpecError(f"{where}.metadata.name", "is required")
            full_name = f"{claim_name}-{name}-0"
            claims.append(
                {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    **{k: v for k, v in claim.items() if k not in ("apiVersion", "kind")},
                    "metadata": {**claim["metadata"], "name": full_name},
                }
            )
            # as the StatefulSet controller does, the claim replaces a volume of its name
            volume = {"name": claim_name, "persistentVolumeClaim": {"claimName": full_name}}
            at = next(
                (
                    i
                    for i, v in enumerate(volumes)
                    if isinstance(v, Mapping) and v.get("name") == claim_name
                ),
                len(volumes),
            )
            origins[f"spec.volumes[{at}]"] = where
            volumes[at : at + 1] = [volume]
        if volumes:
            pod_spec["volumes"] = volumes

    ignored: list[str] = []
    for spec_path, spec in specs:
        ignored.extend(f"{spec_path}.{key}" for key in spec if key not in _HONOURED)
    if "namespace" in metadata:
        ignored.append("metadata.namespace")
    return Template(
        pod={"apiVersion": "v1", "kind": "Pod", "metadata": template_metadata, "spec": pod_spec},
        prefix=path,
        backoff_limit=backoff_limit,
        active_deadline_seconds=deadline,
        claims=tuple(claims),
        origins=origins,
        ignored=tuple(ignored),
    )


def claim_volume_names(workload: Mapping[str, Any]) -> dict[str, str]:
    """Volume name -> claim name of the volumes a StatefulSet's claim templates make."""
    if workload.get("kind") != "StatefulSet":
        return {}
    spec = workload.get("spec") or {}
    result = {}
    for claim in spec.get("volumeClaimTemplates") or ():
        name = claim["metadata"]["name"]
        result[name] = f"{name}-{workload['metadata']['name']}-0"
    return result
