"""The cattrs converter between the pod models and Kubernetes-shaped (camelCase) dicts.

Everything here is generic over the attrs models: field names are renamed by
:func:`~asyncpod._base.camel` (the one place that knows Kubernetes spellings such as
``hostIP``), and the manifest walker and the error translation read ``attrs.fields`` and
the resolved annotations. :mod:`asyncpod.kube` adds the YAML envelope on top.
"""

from __future__ import annotations

import base64
import binascii
import enum
import functools
import types
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, NamedTuple, TypeVar, Union, cast, get_args, get_origin

import attrs
import cattrs
from cattrs.cols import homogenous_tuple_structure_factory
from cattrs.errors import (
    AttributeValidationNote,
    BaseValidationError,
    ForbiddenExtraKeysError,
    IterableValidationNote,
)
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from . import _cluster, _models, _network, _objects, _resources, _security, _sources
from ._base import FrozenDict, camel, check_type, enum_value
from ._exceptions import SpecError, UnsupportedFieldError
from ._models import RAW, Container, ContainerRestartRule, HTTPHeader, Pod
from ._objects import ConfigMap, Secret

__all__ = [
    "POD_METADATA",
    "configure_converter",
    "converter",
    "kube_path",
    "make_converter",
    "manifest_schema",
    "normalize",
    "structure_object",
    "translate_error",
    "unstructure_object",
]

_T = TypeVar("_T")

#: The Pod fields that live under ``metadata:``; all others live under ``spec:``.
POD_METADATA: Final = ("name", "namespace", "labels", "annotations")

#: Model fields with no key of their own in a manifest. ``depends_on`` is beyond
#: Kubernetes and travels in annotations (see asyncpod.kube); the converter still maps
#: it to ``dependsOn``, but a manifest may not spell that key itself. ``cluster_fields``
#: holds keys of their own (``spec.nodeSelector``...), which asyncpod.kube places.
_NOT_IN_MANIFEST: Final = frozenset({(Container, "depends_on"), (Pod, "cluster_fields")})

#: Model fields that have a default in asyncpod but are required in Kubernetes: they are
#: written even at their default, so that every manifest asyncpod writes is a valid Pod.
_ALWAYS_WRITTEN: Final = frozenset({(HTTPHeader, "value"), (ContainerRestartRule, "action")})


# Types


def _resolve(cls: type[_T]) -> type[_T]:
    # The models are written with string annotations, and asyncpod/__init__ re-homes the
    # public classes to ``asyncpod`` (whose namespace lacks e.g. FrozenDict), so resolve
    # them against the namespace they were written in. attrs caches the result.
    attrs.resolve_types(cast(Any, cls), globalns=_NAMESPACE)
    return cls


#: The names the models' annotations use, from every module that defines models.
_NAMESPACE: Final = {
    name: value
    for module in (_resources, _security, _network, _sources, _objects, _models)
    for name, value in vars(module).items()
}


def _non_optional(tp: Any) -> Any:
    """``X | None`` -> ``X``; anything else unchanged."""
    if get_origin(tp) in (Union, types.UnionType):
        args = [arg for arg in get_args(tp) if arg is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _tuple_item(tp: Any) -> Any:
    """The item type of ``tuple[X, ...]``, or ``None``."""
    args = get_args(tp)
    if get_origin(tp) is tuple and len(args) == 2 and args[1] is Ellipsis:
        return args[0]
    return None


def kube_path(cls: type, name: str) -> str:
    """The manifest path of field *name* of *cls*, relative to where a *cls* sits."""
    if cls is Pod:
        return f"{'metadata' if name in POD_METADATA else 'spec'}.{camel(name)}"
    return camel(name)


# The converter


def _structure_scalar(value: object, cls: type[Any]) -> Any:
    # YAML already typed every scalar: take it as is, never str(5) or bool("false").
    # str-valued enums land here too (singledispatch follows their MRO to str).
    if issubclass(cls, enum.Enum):
        return _structure_enum(value, cls)
    what = {str: "a string", int: "an integer", bool: "true or false"}[cls]
    check_type("", value, cls, what)
    return value


def _structure_enum(value: object, cls: type[enum.Enum]) -> Any:
    return enum_value("", value, cls)


def _unstructure_str(value: str) -> str:
    return value.value if isinstance(value, enum.Enum) else value


def _structure_port(value: object, _: object) -> int | str:
    check_type("", value, (int, str), "a port number or name")
    assert isinstance(value, (int, str))
    return value


def _structure_frozen_dict(value: object, _: object) -> FrozenDict:
    if not isinstance(value, Mapping):
        raise SpecError("", f"must be a mapping, not {type(value).__name__}")
    return FrozenDict(value)  # keys and values are checked by the model


def _tuple_hook(tp: Any, converter: cattrs.Converter) -> Callable[[object, object], Any]:
    items = homogenous_tuple_structure_factory(tp, converter)

    def structure(value: object, _: object) -> Any:
        if not isinstance(value, (list, tuple)):  # cattrs would iterate a str or a dict
            raise SpecError("", f"must be a list, not {type(value).__name__} {value!r}")
        return items(value, tp)

    return structure


def _renames(cls: type) -> dict[str, Any]:
    return {
        a.name: override(rename=camel(a.name), struct_hook=_as_is if a.metadata.get(RAW) else None)
        for a in attrs.fields(_resolve(cls))
    }


def _as_is(value: object, _: object) -> object:
    return value


def _unstructure_overrides(cls: type) -> dict[str, Any]:
    return {
        a.name: override(rename=camel(a.name), omit_if_default=(cls, a.name) not in _ALWAYS_WRITTEN)
        for a in attrs.fields(_resolve(cls))
    }


def _structure_hook(cls: type[_T], converter: cattrs.Converter) -> Callable[[object, object], _T]:
    fields: Callable[[Mapping[str, Any], Any], _T] = make_dict_structure_fn(
        _resolve(cls), converter, _cattrs_forbid_extra_keys=True, **_renames(cls)
    )

    def structure(value: object, _: object) -> _T:
        if not isinstance(value, Mapping):
            raise SpecError("", f"must be a mapping, not {type(value).__name__} {value!r}")
        return fields(value, cls)

    return structure


def _unstructure_hook(cls: type[Any], converter: cattrs.Converter) -> Callable[[Any], Any]:
    return make_dict_unstructure_fn(_resolve(cls), converter, **_unstructure_overrides(cls))


def configure_converter(converter: cattrs.Converter) -> None:
    """Teach *converter* the Kubernetes shape of the pod models.

    * attrs classes (de)serialise as camelCase dicts; unstructuring omits fields at their
      default (except where Kubernetes requires the key, as ``httpHeaders[].value``),
      structuring rejects unknown keys;
    * scalars are taken strictly (``"8080"`` is not a port, ``"false"`` is not a bool),
      enums from their values, ``int | str`` ports as either;
    * :class:`~asyncpod.FrozenDict` from and to plain dicts, tuples from lists only.

    Model validation errors surface as :class:`~asyncpod.SpecError` inside cattrs'
    exception groups; :func:`~asyncpod.kube.load_pod` turns those into one SpecError with
    a path.
    """
    converter.register_structure_hook_factory(attrs.has, _structure_hook)
    converter.register_unstructure_hook_factory(attrs.has, _unstructure_hook)
    converter.register_structure_hook_factory(lambda tp: _tuple_item(tp) is not None, _tuple_hook)
    for scalar in (str, int, bool):
        converter.register_structure_hook(scalar, _structure_scalar)
    converter.register_structure_hook_factory(
        lambda tp: isinstance(tp, type) and issubclass(tp, enum.Enum),
        lambda _: _structure_enum,
    )
    # cattrs would pass str-valued enums through as str: dump their values instead.
    converter.register_unstructure_hook(str, _unstructure_str)
    converter.register_structure_hook(int | str, _structure_port)
    converter.register_structure_hook(FrozenDict, _structure_frozen_dict)
    converter.register_unstructure_hook(FrozenDict, _cluster.thaw)  # nested: cluster_fields
    converter.register_structure_hook_func(lambda tp: tp == dict[str, bytes], _structure_bytes_map)
    converter.register_unstructure_hook(bytes, _unstructure_bytes)


def _structure_bytes_map(value: object, _: object) -> FrozenDict:
    """``data`` of a Secret, ``binaryData`` of a ConfigMap: base64 strings, decoded.

    An error names the key, never the value (it may be a secret's).
    """
    if not isinstance(value, Mapping):
        raise SpecError("", f"must be a mapping, not {type(value).__name__}")
    decoded: dict[Any, Any] = {}
    for key, item in value.items():
        if not isinstance(item, str):
            raise SpecError(f"[{key!r}]", f"must be a base64 string, not {type(item).__name__}")
        try:
            decoded[key] = base64.b64decode(item, validate=True)
        except (binascii.Error, ValueError):
            raise SpecError(f"[{key!r}]", "is not valid base64") from None
    return FrozenDict(decoded)


def _unstructure_bytes(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def make_converter() -> cattrs.Converter:
    """A new converter between the pod models and camelCase dicts (see configure_converter)."""
    result = cattrs.Converter(
        detailed_validation=True, unstruct_collection_overrides={Sequence: list}
    )
    configure_converter(result)
    return result


#: The converter asyncpod.kube uses.
converter: Final = make_converter()


# Errors


def translate_error(error: Exception) -> SpecError:
    """Turn what structuring a :class:`~asyncpod.Pod` raised into one SpecError.

    cattrs nests errors as exception groups whose notes name the attribute or index at
    each level; follow the first error down, building its manifest path. A SpecError at
    the bottom (a model validated itself) has a path relative to its model: prefix it.
    """
    path = ""
    while isinstance(error, BaseValidationError):
        inner = error.exceptions[0]
        for note in reversed(getattr(inner, "__notes__", ())):
            if isinstance(note, AttributeValidationNote):
                path = _join(path, kube_path(error.cl, note.name))
                break
            if isinstance(note, IterableValidationNote):
                path = f"{path}[{note.index}]"
                break
        error = inner
    if isinstance(error, UnsupportedFieldError):  # a model refused a value, with its reason
        return UnsupportedFieldError(
            [_join(path, where) for where in error.paths],
            {_join(path, where): reason for where, reason in error.reasons.items()},
        )
    if isinstance(error, SpecError):
        located = error.with_prefix(path)
        located.__dict__.pop("__notes__", None)  # cattrs' notes: the path says it all now
        return located
    if isinstance(error, ForbiddenExtraKeysError):
        return UnsupportedFieldError([_join(path, key) for key in sorted(error.extra_fields)])
    if isinstance(error, KeyError):
        return SpecError(path, "is required")
    return SpecError(path, str(error))


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


# The manifest walker


class ManifestKey(NamedTuple):
    """A key a manifest may have: the schema of its value, and whether it is required."""

    schema: Any  # a type, a Mapping[str, ManifestKey] for a plain nested mapping, or a rule
    required: bool


class OutputOnly(NamedTuple):
    """A key the system fills in (``status``, ``metadata.creationTimestamp``): it describes
    an object, not what to run, and Kubernetes ignores it when a Pod is created; so does
    asyncpod, whatever its value."""


class Refused(NamedTuple):
    """A Kubernetes field asyncpod cannot have, for *reason*: unsupported whenever it says
    something (see :func:`says_nothing`), with the reason in the error."""

    reason: str


class Behaviour(NamedTuple):
    """A Kubernetes field asyncpod does not model because it always behaves one way: the
    key is accepted (and dropped) when its value says exactly that, unsupported otherwise."""

    value: object


#: Kubernetes fields that do not apply on one machine, at the value that says so.
#: Podman's ``kube generate`` writes both.
_SPEC_BEHAVIOURS: Final = {
    "automountServiceAccountToken": Behaviour(False),  # there is no service account
    "enableServiceLinks": Behaviour(False),  # nor services to link
}


_WINDOWS: Final = "Windows containers are not supported"

#: Kubernetes fields of modelled objects that asyncpod refuses, and why.
_REFUSED: Final[Mapping[type, Mapping[str, str]]] = {
    _security.SecurityContext: {
        "windowsOptions": _WINDOWS,
        "cgroupOptions": "a container's cgroup mount options (a newer Kubernetes' "
        "cgroupOptions) are not applied",
    },
    _security.PodSecurityContext: {"windowsOptions": _WINDOWS},
    _resources.ResourceRequirements: {
        "claims": "dynamic resource allocation (ResourceClaims) needs a cluster"
    },
    _sources.VolumeProjection: {
        "serviceAccountToken": "there is no API server to issue service account tokens",
        "clusterTrustBundle": "there are no ClusterTrustBundles without a cluster",
        "podCertificate": "there is no API server or signer to issue pod certificates",
    },
    _models.EmptyDirVolumeSource: {
        "mode": "an emptyDir's directory mode (a newer Kubernetes' emptyDir.mode) is not applied"
    },
}


@functools.cache
def _keys(cls: type) -> Mapping[str, ManifestKey]:
    keys = {
        camel(a.name): ManifestKey(a.type, a.default is attrs.NOTHING)
        for a in attrs.fields(_resolve(cls))
        if (cls, a.name) not in _NOT_IN_MANIFEST
    }
    for key, reason in _REFUSED.get(cls, {}).items():
        keys[key] = ManifestKey(Refused(reason), required=False)
    return keys


@functools.cache
def manifest_schema() -> Mapping[str, ManifestKey]:
    """The keys of a Pod manifest, from the top: apiVersion, kind, metadata, spec, status."""
    in_metadata = {camel(name) for name in POD_METADATA}
    metadata = {key: known for key, known in _keys(Pod).items() if key in in_metadata}
    metadata["creationTimestamp"] = ManifestKey(OutputOnly(), required=False)
    spec = {key: known for key, known in _keys(Pod).items() if key not in in_metadata}
    spec |= {key: ManifestKey(rule, required=False) for key, rule in _SPEC_BEHAVIOURS.items()}
    return {
        "apiVersion": ManifestKey(str, required=True),
        "kind": ManifestKey(str, required=True),
        "metadata": ManifestKey(metadata, required=True),
        "spec": ManifestKey(spec, required=True),
        "status": ManifestKey(OutputOnly(), required=False),
    }


#: Keys of the Kubernetes objects whose fields are all optional and validated one by one,
#: so that Kubernetes takes an empty one (``{}``) as not set: ResourceRequirements and its
#: ResourceLists, (Pod)SecurityContext and its parts, Affinity and its parts, PodDNSConfig,
#: and maps of strings. An empty object under any other key is not nothing: Kubernetes
#: refuses, for instance, an empty ``valueFrom`` ("must specify one of: `fieldRef`,
#: `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`", validateEnvVarValueFrom in
#: pkg/apis/core/validation), or a ``seccompProfile`` without its required ``type``.
_EMPTY_IS_UNSET: Final = frozenset(
    {
        "resources",
        "limits",
        "requests",
        "securityContext",
        "capabilities",
        "seLinuxOptions",
        "windowsOptions",
        "affinity",
        "nodeAffinity",
        "podAffinity",
        "podAntiAffinity",
        "dnsConfig",
        "nodeSelector",
        "overhead",
    }
)


def says_nothing(value: object, key: object = None) -> bool:
    """Whether the value of the unknown key *key* means the same as no key at all.

    Null and ``[]`` do (Kubernetes validates an empty list as an absent one); ``{}`` does
    only for the keys of objects that Kubernetes takes as not set when empty, and mappings
    of such values do too (``securityContext: {capabilities: {}}``). Nothing else does:
    ``env: [{name: X, valueFrom: {}}]`` is invalid in Kubernetes, not an EnvVar without a
    source.
    """
    if isinstance(value, Mapping):
        return key in _EMPTY_IS_UNSET and all(says_nothing(v, k) for k, v in value.items())
    return value is None or (isinstance(value, list) and not value)


def normalize(
    value: Any,
    schema: Any,
    path: str,
    unsupported: list[str],
    reasons: dict[str, str] | None = None,
) -> Any:
    """A copy of the raw manifest *value* without the keys *schema* does not model.

    Each dropped key's path is appended to *unsupported*, unless its value says nothing
    (see :func:`says_nothing`: ``null``, ``[]``, ``resources: {}``, but not
    ``valueFrom: {}``), the key is output only (:class:`OutputOnly`), or its value is the
    one behaviour asyncpod has (:class:`Behaviour`). A :class:`Refused` key's reason goes
    to *reasons*, by path. A null known field that has a
    default is dropped too: in a manifest, null means "not set". Values of the wrong shape
    are kept as they are, for structuring to report.
    """
    schema = _non_optional(schema)
    if isinstance(schema, type) and attrs.has(schema):
        schema = _keys(schema)
    if isinstance(schema, Mapping):
        if not isinstance(value, Mapping):
            return value
        result: dict[Any, Any] = {}
        for key, item in value.items():
            # a key may hold a lone surrogate (JSON's "\ud800"): escape it in the path
            where = _join(path, str(key).encode("utf-8", "backslashreplace").decode("utf-8"))
            known = schema.get(key)
            if known is None:
                if not says_nothing(item, key):
                    unsupported.append(where)
            elif isinstance(known.schema, OutputOnly):
                pass
            elif isinstance(known.schema, Refused):
                if not says_nothing(item, key):
                    unsupported.append(where)
                    if reasons is not None:
                        reasons[where] = known.schema.reason
            elif isinstance(known.schema, Behaviour):
                expected = known.schema.value
                if item is not None and (type(item), item) != (type(expected), expected):
                    unsupported.append(where)
            elif not known.required and says_nothing(item, key):
                pass  # null, [], or an object Kubernetes takes as not set when empty
            else:
                result[key] = normalize(item, known.schema, where, unsupported, reasons)
        return result
    item_schema = _tuple_item(schema)
    if item_schema is not None and isinstance(value, list):
        return [
            normalize(item, item_schema, f"{path}[{index}]", unsupported, reasons)
            for index, item in enumerate(value)
        ]
    return value


# ConfigMaps and Secrets

_OBJECT_KINDS: Final[Mapping[str, type[ConfigMap] | type[Secret]]] = {
    "ConfigMap": ConfigMap,
    "Secret": Secret,
}


def structure_object(document: Mapping[str, Any]) -> ConfigMap | Secret:
    """The ConfigMap or Secret of a manifest document (``apiVersion: v1``).

    A Secret's ``stringData`` is merged over its ``data``, as Kubernetes does; errors name
    the manifest path (``data["key"]``), never a value.
    """
    kind = document.get("kind")
    cls = _OBJECT_KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise SpecError("kind", f"must be 'ConfigMap' or 'Secret', not {kind!r}")
    if document.get("apiVersion") != "v1":
        raise SpecError("apiVersion", f"must be 'v1', not {document.get('apiVersion')!r}")
    metadata = document.get("metadata")
    if not isinstance(metadata, Mapping):
        raise SpecError("metadata", "is required (a mapping with the object's name)")
    unknown = sorted(str(k) for k in metadata if k not in ("name", "creationTimestamp"))
    unknown = [f"metadata.{k}" for k in unknown]
    unknown += sorted(
        str(k)
        for k in document
        if k not in ("apiVersion", "kind", "metadata")
        and camel_to_field(cls, str(k)) is None
        and not (cls is Secret and k == "stringData")
    )
    if unknown:
        raise UnsupportedFieldError(unknown)
    fields: dict[str, Any] = {
        key: value
        for key, value in document.items()
        if key not in ("apiVersion", "kind", "metadata", "stringData") and value is not None
    }
    fields["name"] = metadata.get("name")
    if cls is Secret:
        string_data = document.get("stringData") or {}
        if not isinstance(string_data, Mapping):
            raise SpecError("stringData", f"must be a mapping, not {type(string_data).__name__}")
        for key, value in string_data.items():
            if not isinstance(value, str):
                raise SpecError(f"stringData[{key!r}]", "must be a string")
        data = dict(fields.get("data") or {})
        data.update(
            {k: base64.b64encode(v.encode("utf-8")).decode("ascii") for k, v in string_data.items()}
        )
        if data or "data" in fields:
            fields["data"] = data
    try:
        return converter.structure(fields, cls)
    except BaseValidationError as exc:
        error = translate_error(exc)
        if error.path == "name" or error.path.startswith("name."):
            error = error.with_prefix("metadata")
        raise error from None
    except SpecError as exc:
        raise exc.with_prefix("") from None


def camel_to_field(cls: type, key: str) -> str | None:
    """The field of *cls* a manifest key *key* sets, or ``None``."""
    for a in attrs.fields(_resolve(cls)):
        if camel(a.name) == key:
            name: str = a.name
            return name
    return None


def unstructure_object(obj: ConfigMap | Secret) -> dict[str, Any]:
    """The manifest (a dict) of a ConfigMap or Secret; Secret data as base64."""
    fields: dict[str, Any] = converter.unstructure(obj)
    name = fields.pop("name")
    return {"apiVersion": "v1", "kind": type(obj).__name__, "metadata": {"name": name}, **fields}
