"""Where values and files come from: ``env[].valueFrom``, ``envFrom``, and the volume
sources beyond ``emptyDir`` and ``hostPath``.

ConfigMaps and Secrets are referred to by name, as in Kubernetes (the objects themselves
are :class:`~asyncpod.ConfigMap` and :class:`~asyncpod.Secret`); the downward API names
fields of the pod. Validation follows ``pkg/apis/core/validation``.
"""

from __future__ import annotations

import re

import attrs

from ._base import (
    DNS_SUBDOMAIN,
    FrozenDict,
    check_type,
    exactly_one,
    fail,
    field,
    instance_of,
    list_of,
    model_field,
    nonempty_string,
    one_of,
    optional_bool,
    optional_of,
    to_tuple,
)
from ._resources import parse_amount, to_resource_list

__all__ = [
    "ConfigMapEnvSource",
    "ConfigMapKeySelector",
    "ConfigMapProjection",
    "ConfigMapVolumeSource",
    "DownwardAPIProjection",
    "DownwardAPIVolumeFile",
    "DownwardAPIVolumeSource",
    "EnvFromSource",
    "EnvVarSource",
    "EphemeralVolumeSource",
    "ImageVolumeSource",
    "KeyToPath",
    "ObjectFieldSelector",
    "PersistentVolumeClaimSpec",
    "PersistentVolumeClaimTemplate",
    "PersistentVolumeClaimVolumeSource",
    "ProjectedVolumeSource",
    "ResourceFieldSelector",
    "SecretEnvSource",
    "SecretKeySelector",
    "SecretProjection",
    "SecretVolumeSource",
    "VolumeProjection",
    "VolumeResourceRequirements",
    "config_key",
    "object_name",
]

# Names and keys


def object_name(path: str, value: object) -> None:
    """The name of a ConfigMap or Secret: a DNS subdomain of at most 253 characters."""
    check_type(path, value, str, "a string")
    assert isinstance(value, str)
    if len(value) > 253 or not DNS_SUBDOMAIN.match(value):
        raise fail(
            path,
            f"{value!r} is not a valid object name (a DNS subdomain: lower-case letters, digits, "
            "'-' and '.')",
        )


_CONFIG_KEY = re.compile(r"[-._a-zA-Z0-9]+\Z")


def config_key(path: str, value: object) -> None:
    """A key of a ConfigMap's or Secret's data: letters, digits, ``-``, ``_``, ``.``."""
    check_type(path, value, str, "a string")
    assert isinstance(value, str)
    if len(value) > 253 or not _CONFIG_KEY.match(value) or value in (".", ".."):
        raise fail(
            path,
            f"{value!r} is not a valid config key (at most 253 letters, digits, '-', '_' and "
            "'.'; not '.' or '..')",
        )


def _relative_path(path: str, value: object) -> None:
    nonempty_string(path, value)
    assert isinstance(value, str)
    if value.startswith("/") or ".." in value.split("/"):
        raise fail(path, f"must be a relative path without '..', not {value!r}")


def _mode(path: str, value: object) -> None:
    check_type(path, value, int, "a file mode")
    assert isinstance(value, int)
    if not 0 <= value <= 0o777:
        raise fail(path, f"must be a file mode between 0 and 0777 (511), not {value}")


_MODE = optional_of(_mode)


# The downward API

#: fieldRef paths env may read (validEnvDownwardAPIFieldPathExpressions)
_ENV_FIELD_PATHS = frozenset(
    {
        "metadata.name",
        "metadata.namespace",
        "metadata.uid",
        "spec.nodeName",
        "spec.serviceAccountName",
        "status.hostIP",
        "status.hostIPs",
        "status.podIP",
        "status.podIPs",
    }
)
#: fieldRef paths a downwardAPI volume may read (validVolumeDownwardAPIFieldPathExpressions)
_VOLUME_FIELD_PATHS = frozenset(
    {
        "metadata.name",
        "metadata.namespace",
        "metadata.uid",
        "metadata.labels",
        "metadata.annotations",
    }
)
_SUBSCRIPTED = re.compile(r"metadata\.(labels|annotations)\['([^']+)'\]\Z")


def check_field_path(path: str, field_path: str, allowed: frozenset[str]) -> None:
    """*field_path* is one of *allowed*, or a single label or annotation."""
    if field_path in allowed or _SUBSCRIPTED.match(field_path):
        return
    spelled = ", ".join(sorted(allowed))
    raise fail(
        path,
        f"{field_path!r} is not a supported field path (one of {spelled}, "
        "metadata.labels['<key>'], metadata.annotations['<key>'])",
    )


@attrs.frozen(kw_only=True)
class ObjectFieldSelector:
    """A field of the pod, such as ``metadata.name`` or ``metadata.labels['app']``."""

    field_path: str = field(nonempty_string)
    api_version: str | None = field(optional_of(one_of("v1")), default=None)


_RESOURCES = re.compile(
    r"(limits|requests)\.(cpu|memory|ephemeral-storage|hugepages-[0-9A-Za-z.]+)\Z"
)
_CPU_DIVISORS = ("1m", "1")
_MEMORY_DIVISORS = (
    "1",
    "1k",
    "1M",
    "1G",
    "1T",
    "1P",
    "1E",
    "1Ki",
    "1Mi",
    "1Gi",
    "1Ti",
    "1Pi",
    "1Ei",
)


@attrs.frozen(kw_only=True)
class ResourceFieldSelector:
    """A container's limit or request, such as ``limits.memory``, in units of *divisor*."""

    container_name: str | None = field(optional_of(nonempty_string), default=None)
    resource: str = field(nonempty_string)
    divisor: str | None = field(optional_of(instance_of(str, "a quantity")), default=None)

    def __attrs_post_init__(self) -> None:
        match = _RESOURCES.match(self.resource)
        if match is None:
            raise fail(
                "resource",
                f"{self.resource!r} is not a supported resource (limits.<name> or "
                "requests.<name>, of cpu, memory, ephemeral-storage, hugepages-<size>)",
            )
        if self.divisor is not None:
            try:
                divisor = parse_amount(self.divisor)
            except ValueError:
                raise fail("divisor", f"{self.divisor!r} is not a valid quantity") from None
            allowed = _CPU_DIVISORS if match.group(2) == "cpu" else _MEMORY_DIVISORS
            if divisor not in {parse_amount(a) for a in allowed}:
                raise fail("divisor", f"must be one of {', '.join(allowed)}, not {self.divisor!r}")


# env


@attrs.frozen(kw_only=True)
class ConfigMapKeySelector:
    """The value of *key* in ConfigMap *name*."""

    name: str = field(object_name)
    key: str = field(config_key)
    optional: bool | None = optional_bool()


@attrs.frozen(kw_only=True)
class SecretKeySelector:
    """The value of *key* in Secret *name*."""

    name: str = field(object_name)
    key: str = field(config_key)
    optional: bool | None = optional_bool()


@attrs.frozen(kw_only=True)
class EnvVarSource:
    """Where an environment variable's value comes from: exactly one source."""

    field_ref: ObjectFieldSelector | None = model_field(ObjectFieldSelector, "a field selector")
    resource_field_ref: ResourceFieldSelector | None = model_field(
        ResourceFieldSelector, "a resource field selector"
    )
    config_map_key_ref: ConfigMapKeySelector | None = model_field(
        ConfigMapKeySelector, "a ConfigMap key selector"
    )
    secret_key_ref: SecretKeySelector | None = model_field(
        SecretKeySelector, "a Secret key selector"
    )

    def __attrs_post_init__(self) -> None:
        exactly_one(
            "",
            self,
            ("field_ref", "resource_field_ref", "config_map_key_ref", "secret_key_ref"),
            "source",
        )
        if self.field_ref is not None:
            check_field_path("fieldRef.fieldPath", self.field_ref.field_path, _ENV_FIELD_PATHS)


@attrs.frozen(kw_only=True)
class ConfigMapEnvSource:
    """Every key of ConfigMap *name* as an environment variable."""

    name: str = field(object_name)
    optional: bool | None = optional_bool()


@attrs.frozen(kw_only=True)
class SecretEnvSource:
    """Every key of Secret *name* as an environment variable."""

    name: str = field(object_name)
    optional: bool | None = optional_bool()


_ENV_PREFIX = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*\Z")


@attrs.frozen(kw_only=True)
class EnvFromSource:
    """A ConfigMap's or Secret's keys as environment variables, each after *prefix*."""

    prefix: str | None = field(optional_of(instance_of(str, "a string")), default=None)
    config_map_ref: ConfigMapEnvSource | None = model_field(ConfigMapEnvSource, "a ConfigMap")
    secret_ref: SecretEnvSource | None = model_field(SecretEnvSource, "a Secret")

    def __attrs_post_init__(self) -> None:
        exactly_one("", self, ("config_map_ref", "secret_ref"), "source")
        if self.prefix and not _ENV_PREFIX.match(self.prefix):
            raise fail("prefix", f"{self.prefix!r} is not a valid environment variable prefix")


# Volumes


@attrs.frozen(kw_only=True)
class PersistentVolumeClaimVolumeSource:
    """A PersistentVolumeClaim of the pod's namespace, by name."""

    claim_name: str = field(object_name)
    read_only: bool | None = optional_bool()


@attrs.frozen(kw_only=True)
class KeyToPath:
    """Project the value of *key* to the file *path* (relative) of the volume."""

    key: str = field(config_key)
    path: str = field(_relative_path)
    mode: int | None = field(_MODE, default=None)


def _items(what: str) -> object:
    return attrs.field(converter=to_tuple, validator=list_of(KeyToPath, what), factory=tuple)


@attrs.frozen(kw_only=True)
class ConfigMapVolumeSource:
    """The keys of ConfigMap *name* as files (all, or the *items* listed)."""

    name: str = field(object_name)
    items: tuple[KeyToPath, ...] = _items("key-to-path items")  # type: ignore[assignment]
    default_mode: int | None = field(_MODE, default=None)
    optional: bool | None = optional_bool()


@attrs.frozen(kw_only=True)
class SecretVolumeSource:
    """The keys of Secret *secret_name* as files (all, or the *items* listed)."""

    secret_name: str = field(object_name)
    items: tuple[KeyToPath, ...] = _items("key-to-path items")  # type: ignore[assignment]
    default_mode: int | None = field(_MODE, default=None)
    optional: bool | None = optional_bool()


@attrs.frozen(kw_only=True)
class DownwardAPIVolumeFile:
    """A file holding a field of the pod or a container's resource."""

    path: str = field(_relative_path)
    field_ref: ObjectFieldSelector | None = model_field(ObjectFieldSelector, "a field selector")
    resource_field_ref: ResourceFieldSelector | None = model_field(
        ResourceFieldSelector, "a resource field selector"
    )
    mode: int | None = field(_MODE, default=None)

    def __attrs_post_init__(self) -> None:
        exactly_one("", self, ("field_ref", "resource_field_ref"), "source")
        if self.field_ref is not None:
            check_field_path("fieldRef.fieldPath", self.field_ref.field_path, _VOLUME_FIELD_PATHS)
        if self.resource_field_ref is not None and self.resource_field_ref.container_name is None:
            raise fail("resourceFieldRef.containerName", "is required in a volume")


def _files(what: str) -> object:
    return attrs.field(
        converter=to_tuple, validator=list_of(DownwardAPIVolumeFile, what), factory=tuple
    )


@attrs.frozen(kw_only=True)
class DownwardAPIVolumeSource:
    """Fields of the pod as files."""

    items: tuple[DownwardAPIVolumeFile, ...] = _files("downward API files")  # type: ignore[assignment]
    default_mode: int | None = field(_MODE, default=None)


@attrs.frozen(kw_only=True)
class ConfigMapProjection:
    """A ConfigMap's keys in a projected volume."""

    name: str = field(object_name)
    items: tuple[KeyToPath, ...] = _items("key-to-path items")  # type: ignore[assignment]
    optional: bool | None = optional_bool()


@attrs.frozen(kw_only=True)
class SecretProjection:
    """A Secret's keys in a projected volume."""

    name: str = field(object_name)
    items: tuple[KeyToPath, ...] = _items("key-to-path items")  # type: ignore[assignment]
    optional: bool | None = optional_bool()


@attrs.frozen(kw_only=True)
class DownwardAPIProjection:
    """Fields of the pod in a projected volume."""

    items: tuple[DownwardAPIVolumeFile, ...] = _files("downward API files")  # type: ignore[assignment]


_PROJECTIONS = ("config_map", "secret", "downward_api")


@attrs.frozen(kw_only=True)
class VolumeProjection:
    """One source of a projected volume: exactly one of *config_map*, *secret*,
    *downward_api* (service account tokens and cluster trust bundles need an API server)."""

    config_map: ConfigMapProjection | None = model_field(ConfigMapProjection, "a ConfigMap")
    secret: SecretProjection | None = model_field(SecretProjection, "a Secret")
    downward_api: DownwardAPIProjection | None = model_field(
        DownwardAPIProjection, "a downward API projection"
    )

    def __attrs_post_init__(self) -> None:
        exactly_one("", self, _PROJECTIONS, "source")

    @property
    def paths(self) -> tuple[str, ...]:
        """The file paths this source writes (only those listed in items)."""
        source = self.config_map or self.secret or self.downward_api
        return tuple(item.path for item in getattr(source, "items", ()))


@attrs.frozen(kw_only=True)
class ProjectedVolumeSource:
    """Several sources in one directory; two sources may not write the same path."""

    sources: tuple[VolumeProjection, ...] = attrs.field(
        converter=to_tuple, validator=list_of(VolumeProjection, "volume projections"), factory=tuple
    )
    default_mode: int | None = field(_MODE, default=None)

    def __attrs_post_init__(self) -> None:
        seen: dict[str, int] = {}
        for index, source in enumerate(self.sources):
            for path in source.paths:
                if path in seen and seen[path] != index:
                    raise fail(
                        f"sources[{index}]",
                        f"path {path!r} is also written by sources[{seen[path]}]",
                    )
                seen[path] = index


@attrs.frozen(kw_only=True)
class ImageVolumeSource:
    """The files of an OCI image (or artifact), mounted read-only."""

    reference: str = field(nonempty_string)
    pull_policy: str | None = field(
        optional_of(one_of("Always", "IfNotPresent", "Never")), default=None
    )


@attrs.frozen(kw_only=True)
class VolumeResourceRequirements:
    """How much storage a claim requests (``requests.storage``), and its limit."""

    limits: FrozenDict | None = attrs.field(converter=to_resource_list, default=None)
    requests: FrozenDict | None = attrs.field(converter=to_resource_list, default=None)

    def __attrs_post_init__(self) -> None:
        for kind in ("limits", "requests"):
            values = getattr(self, kind)
            if values is None:
                continue
            if not isinstance(values, FrozenDict):
                raise fail(
                    kind, f"must be a mapping of resource names to quantities, not {values!r}"
                )
            for name, quantity in values.items():
                where = f'{kind}["{name}"]'
                if name != "storage":
                    raise fail(where, f"must be 'storage', not {name!r}")
                check_type(where, quantity, str, "a quantity")
                try:
                    amount = parse_amount(quantity)
                except ValueError:
                    raise fail(where, f"{quantity!r} is not a valid quantity") from None
                if amount < 0:
                    raise fail(where, f"must be greater than or equal to 0, not {quantity!r}")


_ACCESS_MODES = ("ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod")


@attrs.frozen(kw_only=True)
class PersistentVolumeClaimSpec:
    """The claim an ephemeral volume makes: created with the pod, deleted with it."""

    access_modes: tuple[str, ...] = attrs.field(
        converter=to_tuple, validator=list_of(str, "access modes"), factory=tuple
    )
    resources: VolumeResourceRequirements | None = model_field(
        VolumeResourceRequirements, "resource requirements"
    )
    storage_class_name: str | None = field(optional_of(instance_of(str, "a string")), default=None)
    volume_mode: str | None = field(optional_of(one_of("Filesystem")), default=None)

    def __attrs_post_init__(self) -> None:
        if not self.access_modes:
            raise fail("accessModes", "must specify at least 1 access mode")
        for index, mode in enumerate(self.access_modes):
            one_of(*_ACCESS_MODES)(f"accessModes[{index}]", mode)
        if self.resources is None or "storage" not in (self.resources.requests or {}):
            raise fail("resources.requests.storage", "is required")


@attrs.frozen(kw_only=True)
class PersistentVolumeClaimTemplate:
    """The claim template of an ephemeral volume."""

    spec: PersistentVolumeClaimSpec = model_field(
        PersistentVolumeClaimSpec, "a claim spec", optional=False
    )


@attrs.frozen(kw_only=True)
class EphemeralVolumeSource:
    """A volume claimed for the pod alone: on one machine, a scratch volume like
    ``emptyDir`` of the requested size."""

    volume_claim_template: PersistentVolumeClaimTemplate = model_field(
        PersistentVolumeClaimTemplate, "a claim template", optional=False
    )
