"""The pod's names and resolver: ``hostAliases``, ``dnsConfig``; and the ``grpc`` probe.

Validation follows ``pkg/apis/core/validation``: IP addresses where Kubernetes wants them,
at most 3 nameservers and 32 search domains.
"""

from __future__ import annotations

import ipaddress

import attrs

from ._base import (
    DNS_SUBDOMAIN,
    check_type,
    fail,
    field,
    instance_of,
    int_range,
    list_of,
    nonempty_string,
    optional_of,
    to_tuple,
)

__all__ = ["GRPCAction", "HostAlias", "PodDNSConfig", "PodDNSConfigOption"]


def _ip(path: str, value: object) -> None:
    check_type(path, value, str, "an IP address")
    assert isinstance(value, str)
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise fail(path, f"{value!r} is not a valid IP address") from None


def _ips(path: str, value: object) -> None:
    if not isinstance(value, tuple):
        raise fail(path, f"must be a list of IP addresses, not {type(value).__name__}")
    for index, item in enumerate(value):
        _ip(f"{path}[{index}]", item)


def _subdomains(path: str, value: object) -> None:
    if not isinstance(value, tuple):
        raise fail(path, f"must be a list of DNS names, not {type(value).__name__}")
    for index, item in enumerate(value):
        where = f"{path}[{index}]"
        check_type(where, item, str, "a DNS name")
        assert isinstance(item, str)
        # a search domain may end with a dot (it is then absolute)
        name = item[:-1] if item.endswith(".") and len(item) > 1 else item
        if len(name) > 253 or not DNS_SUBDOMAIN.match(name):
            raise fail(where, f"{item!r} is not a valid DNS subdomain")


@attrs.frozen(kw_only=True)
class HostAlias:
    """Lines added to the pod's ``/etc/hosts``: *hostnames* resolve to *ip*."""

    ip: str = field(_ip)
    hostnames: tuple[str, ...] = attrs.field(
        converter=to_tuple, validator=list_of(str, "host names"), factory=tuple
    )

    def __attrs_post_init__(self) -> None:
        _subdomains("hostnames", self.hostnames)


@attrs.frozen(kw_only=True)
class PodDNSConfigOption:
    """A resolver option (``options`` of ``resolv.conf``), such as ``ndots: "2"``."""

    name: str = field(nonempty_string)
    value: str | None = field(optional_of(instance_of(str, "a string")), default=None)


@attrs.frozen(kw_only=True)
class PodDNSConfig:
    """The pod's ``resolv.conf``, merged with what ``dnsPolicy`` gives."""

    nameservers: tuple[str, ...] = attrs.field(converter=to_tuple, factory=tuple)
    searches: tuple[str, ...] = attrs.field(converter=to_tuple, factory=tuple)
    options: tuple[PodDNSConfigOption, ...] = attrs.field(
        converter=to_tuple, validator=list_of(PodDNSConfigOption, "options"), factory=tuple
    )

    def __attrs_post_init__(self) -> None:
        _ips("nameservers", self.nameservers)
        if len(self.nameservers) > 3:
            raise fail(
                "nameservers", f"must hold at most 3 nameservers, not {len(self.nameservers)}"
            )
        _subdomains("searches", self.searches)
        if len(self.searches) > 32:
            raise fail("searches", f"must hold at most 32 search paths, not {len(self.searches)}")
        if sum(len(s) for s in self.searches) + max(len(self.searches) - 1, 0) > 2048:
            raise fail("searches", "must hold at most 2048 characters in all")


@attrs.frozen(kw_only=True)
class GRPCAction:
    """A gRPC health check (``grpc.health.v1``) of *port* in the pod's network namespace."""

    port: int = field(lambda path, value: int_range(path, value, 1, 65535))
    #: the service name sent in the health check request; ``None``: the server's health
    service: str | None = field(optional_of(instance_of(str, "a string")), default=None)
