"""Compute resources: ``resources`` (requests and limits) and ``resizePolicy``.

Quantities are read exactly, as Kubernetes' ``resource.Quantity`` does: ``500m`` CPU is
``Fraction(1, 2)``, ``1Gi`` is ``2**30``, ``1e3`` is ``1000``; never through floating point.
Only what one machine has is modelled: ``cpu``, ``memory``, ``ephemeral-storage`` and
``hugepages-<size>``. Extended resources (``example.com/gpu``) are device plugins' and are
refused as unsupported, as are dynamic resource ``claims``.
"""

from __future__ import annotations

import fractions
import math
import re
from collections.abc import Mapping
from typing import Any

import attrs

from ._base import (
    INT64_MAX,
    FrozenDict,
    check_type,
    fail,
    field,
    key_path,
    one_of,
)
from ._exceptions import UnsupportedFieldError

__all__ = [
    "ContainerResizePolicy",
    "ResourceRequirements",
    "check_pod_resources",
    "check_resize_policies",
    "parse_amount",
]

# <signedNumber><suffix>, suffix a binary SI unit, a decimal SI unit or a decimal exponent
# (k8s.io/apimachinery/pkg/api/resource/quantity.go)
_AMOUNT = re.compile(
    r"([+-]?)([0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
    r"(?:(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)|[eE]([+-]?[0-9]+))?\Z"
)
_SUFFIXES = {
    None: fractions.Fraction(1),
    "n": fractions.Fraction(1, 10**9),
    "u": fractions.Fraction(1, 10**6),
    "m": fractions.Fraction(1, 10**3),
    "k": fractions.Fraction(10**3),
    "M": fractions.Fraction(10**6),
    "G": fractions.Fraction(10**9),
    "T": fractions.Fraction(10**12),
    "P": fractions.Fraction(10**15),
    "E": fractions.Fraction(10**18),
    "Ki": fractions.Fraction(2**10),
    "Mi": fractions.Fraction(2**20),
    "Gi": fractions.Fraction(2**30),
    "Ti": fractions.Fraction(2**40),
    "Pi": fractions.Fraction(2**50),
    "Ei": fractions.Fraction(2**60),
}


#: Longer quantities are refused before any arithmetic (Python's int() takes 4300 digits).
_MAX_LENGTH = 4000
#: An integer part of more digits is beyond an int64 in any unit: saturated to this
_SATURATED = fractions.Fraction(10**30)


def parse_amount(text: str) -> fractions.Fraction:
    """The exact value of the Kubernetes quantity *text* (``500m``, ``1.5Gi``, ``2e3``).

    Bounded work whatever the text: an integer part of more than 30 digits gives
    +-10**30 (beyond an int64 in any unit), an exponent is clamped to +-99, and a text
    over 4,000 characters is refused. Raises :class:`ValueError` if *text* is not a
    quantity.
    """
    match = _AMOUNT.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a valid quantity")
    sign, number, suffix, exponent = match.groups()
    if len(number.partition(".")[0].lstrip("0")) > 30:
        return -_SATURATED if sign == "-" else _SATURATED
    if len(text) > _MAX_LENGTH:
        raise ValueError(f"{text!r} is not a valid quantity: too many digits")
    value = fractions.Fraction(number) * _SUFFIXES[suffix]
    if exponent is not None:
        # 10**exponent would take forever for e999999999: past +-99 the value is 0,
        # beyond any int64, or a fraction of a unit (rounded up by callers that round)
        value *= fractions.Fraction(10) ** max(-99, min(99, int(exponent)))
    return -value if sign == "-" else value


def _amount(path: str, value: object) -> fractions.Fraction:
    check_type(path, value, str, "a quantity such as '500m' or '64Mi'")
    assert isinstance(value, str)
    try:
        amount = parse_amount(value)
    except ValueError:
        raise fail(
            path, f"{value!r} is not a valid quantity (for example '500m', '64Mi')"
        ) from None
    if amount < 0:
        raise fail(path, f"must be greater than or equal to 0, not {value!r}")
    if amount > INT64_MAX:
        raise fail(path, f"{value!r} is too large: at most {INT64_MAX} (an int64)")
    return amount


def to_resource_list(value: Any) -> Any:
    """A mapping of quantities as a FrozenDict of strings: YAML reads ``cpu: 1`` as an int
    and ``cpu: 0.5`` as a float, which Kubernetes takes as the quantities "1" and "0.5"."""
    if not isinstance(value, Mapping):
        return value
    numbers = {
        key: repr(item)
        for key, item in value.items()
        if isinstance(item, (int, float)) and not isinstance(item, bool) and math.isfinite(item)
    }
    if not numbers and isinstance(value, FrozenDict):
        return value
    return FrozenDict({**value, **numbers})


_STANDARD = ("cpu", "memory", "ephemeral-storage")
_HUGEPAGES = "hugepages-"
#: what pod-level resources (``spec.resources``) take
_POD_LEVEL = ("cpu", "memory", _HUGEPAGES)
_EXTENDED_REASON = (
    "extended resources (device plugins, such as GPUs) are not supported on one machine"
)
_PIDS_REASON = "a PID limit in resources (a newer Kubernetes' limits.pids) is not applied"


def _resource_list(
    path: str, value: object, allowed: tuple[str, ...]
) -> dict[str, fractions.Fraction]:
    if not isinstance(value, FrozenDict):
        raise fail(path, f"must be a mapping of resource names to quantities, not {value!r}")
    amounts: dict[str, fractions.Fraction] = {}
    items: list[tuple[object, object]] = list(value.items())
    for name, quantity in items:
        where = key_path(path, name)
        check_type(where, name, str, "a resource name")
        assert isinstance(name, str)
        if name.startswith(_HUGEPAGES) and _HUGEPAGES in allowed:
            try:
                size = parse_amount(name[len(_HUGEPAGES) :])
            except ValueError:
                size = fractions.Fraction(0)
            if size <= 0:
                raise fail(where, f"{name!r} is not a valid hugepages resource (hugepages-<size>)")
        elif name not in allowed:
            if "/" in name and not name.split("/")[0].endswith("kubernetes.io"):
                raise UnsupportedFieldError([where], {where: _EXTENDED_REASON})
            if name == "pids":
                raise UnsupportedFieldError([where], {where: _PIDS_REASON})
            spelled = ", ".join(repr(a + ("<size>" if a == _HUGEPAGES else "")) for a in allowed)
            raise fail(where, f"must be one of {spelled}, not {name!r}")
        amounts[name] = _amount(where, quantity)
    return amounts


def _check_requirements(
    owner: ResourceRequirements, allowed: tuple[str, ...], path: str = ""
) -> None:
    prefix = f"{path}." if path else ""
    limits = (
        {} if owner.limits is None else _resource_list(f"{prefix}limits", owner.limits, allowed)
    )
    requests = (
        {}
        if owner.requests is None
        else _resource_list(f"{prefix}requests", owner.requests, allowed)
    )
    for name, amount in requests.items():
        where = key_path(f"{prefix}requests", name)
        if name not in limits or owner.limits is None:
            continue
        if amount > limits[name]:
            raise fail(where, f"must be less than or equal to {name} limit of {owner.limits[name]}")
        if name.startswith(_HUGEPAGES) and amount != limits[name]:
            raise fail(where, f"must be equal to {name} limit of {owner.limits[name]}")
    if any(name.startswith(_HUGEPAGES) for name in (*limits, *requests)) and not any(
        name in (*limits, *requests) for name in ("cpu", "memory")
    ):
        raise fail(path, "HugePages require cpu or memory")


@attrs.frozen(kw_only=True)
class ResourceRequirements:
    """A container's (or, since Kubernetes 1.32, the pod's) ``resources``.

    *limits* and *requests* map ``cpu``, ``memory``, ``ephemeral-storage`` and
    ``hugepages-<size>`` to quantities (``"500m"``, ``"64Mi"``); a request is at most its
    limit, a hugepages request equals its limit.
    """

    limits: FrozenDict | None = attrs.field(converter=to_resource_list, default=None)
    requests: FrozenDict | None = attrs.field(converter=to_resource_list, default=None)

    def __attrs_post_init__(self) -> None:
        _check_requirements(self, (*_STANDARD, _HUGEPAGES))

    def amount(self, kind: str, name: str) -> fractions.Fraction | None:
        """The exact quantity of resource *name* in ``limits`` or ``requests`` (*kind*)."""
        values = self.limits if kind == "limits" else self.requests
        if values is None or name not in values:
            return None
        return parse_amount(values[name])


def check_pod_resources(path: str, resources: ResourceRequirements) -> None:
    """Pod-level resources (``spec.resources``) take cpu, memory and hugepages only."""
    _check_requirements(resources, _POD_LEVEL, path)


@attrs.frozen(kw_only=True)
class ContainerResizePolicy:
    """Whether resizing *resource_name* in place restarts the container."""

    resource_name: str = field(one_of("cpu", "memory"))
    restart_policy: str = field(one_of("NotRequired", "RestartContainer"))


def check_resize_policies(path: str, value: object) -> None:
    """A container's ``resizePolicy``: one entry per resource at most."""
    if not isinstance(value, tuple):
        raise fail(path, f"must be a list of resize policies, not {type(value).__name__}")
    seen: set[str] = set()
    for index, policy in enumerate(value):
        check_type(f"{path}[{index}]", policy, ContainerResizePolicy, "a resize policy")
        if policy.resource_name in seen:
            raise fail(f"{path}[{index}].resourceName", f"duplicate {policy.resource_name!r}")
        seen.add(policy.resource_name)
