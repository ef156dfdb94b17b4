"""A manifest file as asyncpod reads it: one pod, and the objects around it."""

from __future__ import annotations

from typing import Any

import attrs

from . import _cluster
from ._models import FrozenDict, Pod

__all__ = ["Bundle", "KubeObject"]


def _freeze_document(value: Any) -> Any:
    return _cluster.freeze(value)


@attrs.frozen(kw_only=True)
class KubeObject:
    """A Kubernetes object of a manifest file, kept as written (frozen JSON)."""

    kind: str
    name: str | None
    #: the whole document, mappings as FrozenDict and lists as tuples
    document: FrozenDict = attrs.field(converter=_freeze_document, repr=False)
    #: made by asyncpod (a StatefulSet's claim), not written in the file
    generated: bool = False

    @property
    def namespace(self) -> str | None:
        """The object's ``metadata.namespace``, if it has one."""
        metadata = self.document.get("metadata")
        namespace = metadata.get("namespace") if metadata is not None else None
        return namespace if isinstance(namespace, str) else None

    def __str__(self) -> str:
        return f"{self.kind}/{self.name}"


@attrs.frozen(kw_only=True)
class Bundle:
    """What :func:`asyncpod.kube.load` read from a manifest file.

    *pod* is the one pod the file runs: a ``kind: Pod`` document, or the pod template of
    the one workload (*kind* says which); *workload* is that workload's document, kept
    to be written back (``None`` for a Pod). ConfigMaps, Secrets and
    PersistentVolumeClaims are kept for the pod to use; every other object (Services,
    Ingresses, RBAC...) has no meaning on one machine: it is listed in *skipped* and
    written back, nothing more.
    """

    #: the pod the file runs
    pod: Pod
    #: the kind of the document the pod came from: ``Pod``, ``Deployment``, ``Job``...
    kind: str = "Pod"
    #: the workload's document, written back around the pod (``None`` for a Pod)
    workload: KubeObject | None = None
    #: the file's ConfigMaps
    config_maps: tuple[KubeObject, ...] = ()
    #: the file's Secrets
    secrets: tuple[KubeObject, ...] = ()
    #: the file's PersistentVolumeClaims, and those a StatefulSet's templates make
    claims: tuple[KubeObject, ...] = ()
    #: objects with no meaning on one machine (Services, Ingresses, RBAC...)
    skipped: tuple[KubeObject, ...] = ()
    #: a Job's backoffLimit: how many times its pod may fail (restarts counted)
    backoff_limit: int | None = None
    #: a Job's activeDeadlineSeconds: how long the job may run, retries included
    active_deadline_seconds: int | None = None
    #: the workload's fields asyncpod keeps but ignores (``spec.replicas``...)
    workload_ignored_fields: tuple[str, ...] = ()

    @property
    def ignored_fields(self) -> tuple[str, ...]:
        """Manifest paths of every cluster-only field kept but ignored, in the workload's
        terms for a workload (``spec.replicas``, ``spec.template.spec.nodeSelector``)."""
        prefix = self._template_prefix()
        pod_fields = tuple(
            f"{prefix}.{path}" if prefix else path for path in self.pod.ignored_fields
        )
        return self.workload_ignored_fields + pod_fields

    def _template_prefix(self) -> str:
        if self.workload is None:
            return ""
        return "spec.jobTemplate.spec.template" if self.kind == "CronJob" else "spec.template"
