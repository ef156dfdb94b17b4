"""Cluster-only fields: scheduling and identity that mean nothing on one machine.

A manifest written for a cluster sets them (``nodeSelector``, ``tolerations``,
``serviceAccountName``...). asyncpod keeps them, untouched, on
:attr:`Pod.cluster_fields <asyncpod.Pod.cluster_fields>` under their manifest paths, so
that :func:`~asyncpod.kube.dump_pod` writes them back and the manifest deploys unchanged
to a cluster; it does nothing else with them. Their values are kept as frozen JSON:
mappings as :class:`~asyncpod.FrozenDict`, lists as tuples.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from ._base import FrozenDict
from ._exceptions import SpecError

__all__ = ["CONTAINER_FIELDS", "METADATA_FIELDS", "SPEC_FIELDS", "freeze", "thaw"]

#: ``metadata`` keys of a Pod that only a cluster gives a meaning.
METADATA_FIELDS: Final = frozenset({"namespace"})

#: ``spec`` keys of a Pod that only a cluster gives a meaning: scheduling (which node,
#: when, with what priority) and identity towards the API server.
SPEC_FIELDS: Final = frozenset(
    {
        "nodeSelector",
        "affinity",
        "tolerations",
        "topologySpreadConstraints",
        "priorityClassName",
        "priority",
        "preemptionPolicy",
        "schedulerName",
        "schedulingGates",
        "nodeName",
        "serviceAccount",
        "serviceAccountName",
        "automountServiceAccountToken",
        "imagePullSecrets",
        "runtimeClassName",
        "overhead",
        "readinessGates",
        "enableServiceLinks",
    }
)

#: keys of a container that only a cluster gives a meaning (in-place resize of requests).
CONTAINER_FIELDS: Final = frozenset({"resizePolicy"})

_PATH = re.compile(
    r"(?:metadata\.(\w+)|spec\.(\w+)|spec\.(initContainers|containers)\[(\d+)\]\.(\w+))\Z"
)


def freeze(value: Any, path: str = "") -> Any:
    """*value* (parsed JSON or YAML) made immutable and hashable."""
    if isinstance(value, Mapping):
        items = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise SpecError(path, f"keys must be strings, not {type(key).__name__} {key!r}")
            items[key] = freeze(item, f"{path}.{key}" if path else key)
        return FrozenDict(items)
    if isinstance(value, (list, tuple)):
        return tuple(freeze(item, f"{path}[{index}]") for index, item in enumerate(value))
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise SpecError(path, f"must be JSON data, not {type(value).__name__} {value!r}")


def thaw(value: Any) -> Any:
    """The plain ``dict``/``list`` form of a :func:`freeze` result."""
    if isinstance(value, Mapping):
        return {key: thaw(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return [thaw(item) for item in value]
    return value


def split_path(path: str) -> tuple[str, str | None, int | None, str]:
    """``(section, container list, index, key)`` of a cluster field's manifest path.

    *section* is ``metadata`` or ``spec``; the list and index are ``None`` outside a
    container. A path that names no cluster-only field is a :class:`SpecError`.
    """
    match = _PATH.match(path)
    if match is not None:
        meta, spec, list_key, index, key = match.groups()
        if meta in METADATA_FIELDS:
            return "metadata", None, None, meta
        if spec in SPEC_FIELDS:
            return "spec", None, None, spec
        if key in CONTAINER_FIELDS:
            return "spec", list_key, int(index), key
    raise SpecError(
        "cluster_fields",
        f"{path!r} is not the manifest path of a cluster-only field (such as "
        "'spec.nodeSelector' or 'spec.containers[0].resizePolicy')",
    )


def check(fields: Mapping[str, Any], containers: int, init_containers: int) -> None:
    """Validate the keys of ``Pod.cluster_fields`` against the pod's containers."""
    for path in fields:
        _, list_key, index, _ = split_path(path)
        if index is not None:
            count = containers if list_key == "containers" else init_containers
            if index >= count:
                raise SpecError(
                    "cluster_fields", f"{path!r} names a container the pod does not have"
                )
