"""The building blocks of the models: :class:`FrozenDict` and the validation helpers.

Every model module builds its attrs classes with these: a field validated by a
``check(path, value)`` function (:func:`field`), which raises :class:`~asyncpod.SpecError`
naming the field by its Kubernetes (camelCase) path (:func:`camel`). Nothing here knows a
particular model, so every model module (and :mod:`asyncpod._serde`) may import it.
"""

from __future__ import annotations

import enum
import json
import re
import reprlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import attrs

from ._exceptions import SpecError

__all__ = [
    "DNS_LABEL",
    "DNS_SUBDOMAIN",
    "INT32_MAX",
    "INT64_MAX",
    "IRREGULAR_CAMEL",
    "SURROGATE",
    "FrozenDict",
    "as_tuple",
    "bounded_int",
    "camel",
    "check_type",
    "check_unicode",
    "dns_label",
    "enum_value",
    "exactly_one",
    "fail",
    "field",
    "instance_of",
    "int32",
    "int64",
    "int_range",
    "key_path",
    "list_of",
    "model_field",
    "nonempty_string",
    "one_of",
    "optional_bool",
    "optional_of",
    "to_tuple",
    "validator",
]


class FrozenDict(Mapping[str, str]):
    """An immutable, hashable ``str -> str`` mapping (labels, annotations)."""

    __slots__ = ("_data", "_hash")

    def __init__(self, data: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        self._data: dict[str, str] = dict(data)
        self._hash: int | None = None

    def __getitem__(self, key: str) -> str:
        return self._data[key]

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def get(self, key: str, default: Any = None) -> Any:
        """The value of *key*, else *default*; as fast as ``dict.get``."""
        return self._data.get(key, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(frozenset(self._data.items()))
        return self._hash

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return self._data == dict(other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"FrozenDict({self._data!r})"


DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")
DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z")


#: Kubernetes field names that are not the plain camelCase of the snake_case name.
IRREGULAR_CAMEL = {
    "host_ip": "hostIP",
    "host_pid": "hostPID",
    "host_ipc": "hostIPC",
    "set_hostname_as_fqdn": "setHostnameAsFQDN",
    "downward_api": "downwardAPI",
}


def camel(name: str) -> str:
    """The Kubernetes (camelCase) spelling of a field name: ``host_port`` -> ``hostPort``."""
    if name in IRREGULAR_CAMEL:
        return IRREGULAR_CAMEL[name]
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def fail(path: str, reason: str) -> SpecError:
    return SpecError(path, reason)


def check_type(path: str, value: object, kind: type | tuple[type, ...], what: str) -> None:
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in as_tuple(kind)):
        raise fail(path, f"must be {what}, not {type(value).__name__} {_REPR.repr(value)}")
    if isinstance(value, str) and not value.isascii():
        check_unicode(path, value)


#: A UTF-16 surrogate: a Python str may hold one alone (JSON's "\ud800" escape decodes to
#: it), but UTF-8 cannot encode it (RFC 3629, section 3), so neither a YAML or JSON
#: manifest nor Podman's API can carry it; Kubernetes' Go decoder would replace it.
SURROGATE = re.compile("[\ud800-\udfff]")


def check_unicode(path: str, value: str) -> None:
    found = SURROGATE.search(value)
    if found is not None:
        raise fail(
            path,
            f"{value!r} is not Unicode text: it holds a lone surrogate {found.group()!r} at "
            f"index {found.start()}, which UTF-8 cannot encode",
        )


#: The repr of a value of the wrong type in a message: bounded, however large the value.
_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 80
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict = 2, 4, 4


def as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def dns_label(path: str, value: object) -> None:
    check_type(path, value, str, "a string")
    assert isinstance(value, str)
    if len(value) > 63 or not DNS_LABEL.match(value):
        raise fail(
            path,
            f"{value!r} is not a valid DNS-1123 label (at most 63 characters: lower-case "
            "letters, digits and '-', starting and ending with a letter or digit)",
        )


#: The largest values of Go's int32 and int64, the types of Kubernetes' integer fields: the
#: API server refuses a manifest whose value does not fit its field's type.
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1


def int_range(path: str, value: object, low: int, high: int) -> None:
    check_type(path, value, int, "an integer")
    assert isinstance(value, int)
    if not low <= value <= high:
        raise fail(path, f"must be between {low} and {high}, not {value}")


def bounded_int(low: int, high: int, kind: str) -> Any:
    def validate(path: str, value: object) -> None:
        check_type(path, value, int, "an integer")
        assert isinstance(value, int)
        if value < low:
            raise fail(path, f"must be at least {low}, not {value}")
        if value > high:
            raise fail(path, f"must be at most {high} (an {kind} in Kubernetes), not {value}")

    return validate


def int32(low: int) -> Any:
    """The check of a Kubernetes int32 field whose values start at *low*."""
    return bounded_int(low, INT32_MAX, "int32")


def int64(low: int) -> Any:
    """The check of a Kubernetes int64 field whose values start at *low*."""
    return bounded_int(low, INT64_MAX, "int64")


def enum_value(path: str, value: object, kind: type[enum.Enum]) -> Any:
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(repr(m.value) for m in kind)
        raise fail(path, f"must be one of {allowed}, not {value!r}") from None


def validator(validate: Any) -> Any:
    """An attrs validator that reports the field's camelCase name as the path."""

    def validator(_inst: object, attribute: attrs.Attribute[Any], value: Any) -> None:
        validate(camel(attribute.name), value)

    return validator


def field(validate: Any = None, **kwargs: Any) -> Any:
    """An attrs field validated by *validate(path, value)*."""
    if validate is None:
        return attrs.field(**kwargs)
    return attrs.field(validator=validator(validate), **kwargs)


def to_tuple(value: Any) -> Any:
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        return value  # left for the validator to reject with a proper path
    return tuple(value)


def list_of(kind: type | tuple[type, ...], what: str) -> Any:
    """A validator for a tuple of *kind* items (converted from any iterable)."""

    def validate(path: str, value: object) -> None:
        if not isinstance(value, tuple):
            raise fail(path, f"must be a list of {what}, not {type(value).__name__}")
        for index, item in enumerate(value):
            check_type(f"{path}[{index}]", item, kind, what)

    return validator(validate)


def optional_of(check: Any) -> Any:
    def validate(path: str, value: object) -> None:
        if value is not None:
            check(path, value)

    return validate


def instance_of(kind: type, what: str) -> Any:
    def validate(path: str, value: object) -> None:
        check_type(path, value, kind, what)

    return validate


def nonempty_string(path: str, value: object) -> None:
    check_type(path, value, str, "a string")
    if not value:
        raise fail(path, "must not be empty")


def exactly_one(path: str, owner: object, names: tuple[str, ...], what: str) -> None:
    given = [name for name in names if getattr(owner, name) is not None]
    if len(given) != 1:
        spelled = ", ".join(camel(name) for name in names)
        found = ", ".join(camel(name) for name in given) or "none"
        raise fail(path, f"exactly one {what} of {spelled} must be set (found: {found})")


def model_field(kind: type, what: str, *, optional: bool = True) -> Any:
    check = instance_of(kind, what)
    return field(
        optional_of(check) if optional else check, default=None if optional else attrs.NOTHING
    )


def key_path(path: str, key: object) -> str:
    """``metadata.labels["app"]``: a map entry's path, its key quoted as JSON when a str."""
    return f"{path}[{json.dumps(key) if isinstance(key, str) else repr(key)}]"


def one_of(*allowed: str) -> Any:
    """The check of a string field that takes one of the values *allowed*."""

    def validate(path: str, value: object) -> None:
        check_type(path, value, str, "a string")
        if value not in allowed:
            spelled = ", ".join(repr(a) for a in allowed)
            raise fail(path, f"must be one of {spelled}, not {value!r}")

    return validate


def optional_bool() -> Any:
    """An optional (``None``: not set) boolean field."""
    return field(optional_of(instance_of(bool, "true or false")), default=None)
