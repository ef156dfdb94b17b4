"""Check a manifest against the official Kubernetes Pod model (tests only).

The ``kubernetes`` client's generated models describe every object of the API: each class
has ``openapi_types`` (attribute -> type name) and ``attribute_map`` (attribute -> JSON key).
:func:`check_pod_manifest` walks a manifest dict with them, strictly: every key must be a
JSON key of the model at that place, every value of the declared type, and building the
model (client-side validation) must succeed, which catches missing required fields.

Type names come in two spellings across client versions (``list[V1Container]``,
``dict(str, str)`` before the pydantic models; ``List[V1Container]``, ``Dict[str, str]``
since): both are understood.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from kubernetes.client import models

__all__ = ["ManifestError", "check_object", "check_pod_manifest"]

_LIST = re.compile(r"^[Ll]ist\[(.+)\]$")
_DICT = re.compile(r"^(?:dict\(str, (.+)\)|Dict\[str, (.+)\])$")


class ManifestError(AssertionError):
    """The manifest is not a valid Kubernetes object; the message names the path."""


def check_pod_manifest(manifest: Mapping[str, Any]) -> Any:
    """The ``V1Pod`` built from *manifest*; :class:`ManifestError` if it is not valid."""
    return _model("V1Pod", manifest, "")


def check_object(model: str, manifest: Mapping[str, Any]) -> Any:
    """The *model* (``V1Deployment``, ``V1ConfigMap``...) built from *manifest*, checked
    as :func:`check_pod_manifest` checks a Pod."""
    return _model(model, manifest, "")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _model(name: str, value: object, path: str) -> Any:
    cls = getattr(models, name)
    if not isinstance(value, Mapping):
        raise ManifestError(f"{path or '<root>'}: {name} must be a mapping, not {value!r}")
    attributes = {key: attribute for attribute, key in cls.attribute_map.items()}
    unknown = sorted(str(key) for key in value if key not in attributes)
    if unknown:
        raise ManifestError(f"{path or '<root>'}: {name} has no field(s) {', '.join(unknown)}")
    kwargs = {
        attributes[key]: _value(cls.openapi_types[attributes[key]], item, _join(path, key))
        for key, item in value.items()
    }
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
        raise ManifestError(f"{path or '<root>'}: {name}: {exc}") from exc


def _value(type_name: str, value: object, path: str) -> Any:
    if value is None:
        raise ManifestError(f"{path}: null (leave the key out instead)")
    if match := _LIST.match(type_name):
        if not isinstance(value, list):
            raise ManifestError(f"{path}: must be a list, not {value!r}")
        return [_value(match[1], item, f"{path}[{i}]") for i, item in enumerate(value)]
    if match := _DICT.match(type_name):
        if not isinstance(value, Mapping):
            raise ManifestError(f"{path}: must be a mapping, not {value!r}")
        item_type = match[1] or match[2]
        for key in value:
            if not isinstance(key, str):
                raise ManifestError(f"{path}: keys must be strings, not {key!r}")
        return {key: _value(item_type, item, f"{path}[{key!r}]") for key, item in value.items()}
    if type_name == "str":
        ok = isinstance(value, str)
    elif type_name == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif type_name == "bool":
        ok = isinstance(value, bool)
    elif type_name == "object":
        # In a Pod, only IntOrString fields (httpGet.port, tcpSocket.port) and the
        # managedFields' fieldsV1 are 'object'; asyncpod writes only the former.
        if isinstance(value, (int, str)) and not isinstance(value, bool):
            return value
        raise ManifestError(f"{path}: must be IntOrString (an int or a string), not {value!r}")
    elif type_name == "datetime":
        ok = isinstance(value, str)  # RFC 3339, as it appears in JSON
    else:
        return _model(type_name, value, path)
    if not ok:
        raise ManifestError(f"{path}: must be of type {type_name}, not {value!r}")
    return value
