"""The objects a pod refers to by name: :class:`ConfigMap` and :class:`Secret`.

A Secret's values are bytes and never shown: its repr, its validation errors and
asyncpod's logs name its keys only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from ._base import FrozenDict, fail, field, instance_of, key_path, optional_bool, optional_of
from ._sources import config_key, object_name

__all__ = ["ConfigMap", "Secret"]

#: a ConfigMap or Secret holds at most 1 MiB (MaxSecretSize, RLIMIT of etcd objects)
_MAX_BYTES = 1024 * 1024


def _to_map(value: Any) -> Any:
    return (
        FrozenDict(value)
        if isinstance(value, Mapping) and not isinstance(value, FrozenDict)
        else value
    )


def _to_bytes_map(value: Any) -> Any:
    if isinstance(value, Mapping) and not isinstance(value, FrozenDict):
        return FrozenDict(
            {k: v.encode("utf-8") if isinstance(v, str) else v for k, v in value.items()}
        )
    return value


def _check_map(path: str, value: object, kind: type, what: str, *, secret: bool) -> int:
    if not isinstance(value, FrozenDict):
        raise fail(path, f"must be a mapping, not {type(value).__name__}")
    size = 0
    items: list[tuple[object, object]] = list(value.items())
    for key, item in items:
        where = key_path(path, key)
        config_key(where, key)
        if not isinstance(item, kind):
            shown = type(item).__name__ if secret else f"{type(item).__name__} {item!r}"
            raise fail(where, f"must be {what}, not {shown}")
        size += len(item) if isinstance(item, bytes) else len(str(item).encode("utf-8"))
    return size


def _keys_repr(value: Mapping[str, bytes]) -> str:
    return f"<{len(value)} keys: {', '.join(sorted(value))}>" if value else "<no keys>"


@attrs.frozen(kw_only=True)
class ConfigMap:
    """Configuration a pod reads through ``configMapKeyRef``, ``envFrom`` or a volume."""

    name: str = field(object_name)
    data: FrozenDict = attrs.field(converter=_to_map, factory=FrozenDict)
    #: values that are not UTF-8 text
    binary_data: dict[str, bytes] = attrs.field(converter=_to_map, factory=FrozenDict)
    immutable: bool | None = optional_bool()

    def __attrs_post_init__(self) -> None:
        size = _check_map("data", self.data, str, "a string", secret=False)
        size += _check_map("binaryData", self.binary_data, bytes, "bytes", secret=False)
        for key in self.binary_data:
            if key in self.data:
                raise fail(key_path("binaryData", key), "is also a key of data")
        if size > _MAX_BYTES:
            raise fail("", f"must hold at most {_MAX_BYTES} bytes (1 MiB), not {size}")


@attrs.frozen(kw_only=True)
class Secret:
    """Sensitive values a pod reads through ``secretKeyRef``, ``envFrom`` or a volume.

    *data* maps keys to bytes (a ``str`` is taken as UTF-8); in a manifest, ``data`` is
    base64 and ``stringData`` plain text merged over it, as Kubernetes does. The values
    never appear in the repr or in errors.
    """

    name: str = field(object_name)
    type: str | None = field(optional_of(instance_of(str, "a string")), default=None)
    data: dict[str, bytes] = attrs.field(
        converter=_to_bytes_map, factory=FrozenDict, repr=_keys_repr
    )
    immutable: bool | None = optional_bool()

    def __attrs_post_init__(self) -> None:
        size = _check_map("data", self.data, bytes, "bytes", secret=True)
        if size > _MAX_BYTES:
            raise fail("data", f"must hold at most {_MAX_BYTES} bytes (1 MiB), not {size}")
