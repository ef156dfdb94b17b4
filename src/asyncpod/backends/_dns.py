"""A pod's resolver (``/etc/resolv.conf``) as Kubernetes builds it, for the backends."""

from __future__ import annotations

import attrs

from ._base import PodSpec

__all__ = ["Resolver", "parse_resolv_conf", "pod_resolver"]

#: the kubelet's limits: it keeps the first 3 nameservers and 32 search domains
_MAX_SERVERS = 3
_MAX_SEARCHES = 32


@attrs.frozen
class Resolver:
    """The nameservers, search domains and options of a ``resolv.conf``."""

    servers: tuple[str, ...] = ()
    searches: tuple[str, ...] = ()
    #: ``name`` or ``name:value``
    options: tuple[str, ...] = ()

    def render(self) -> str:
        """As the text of a ``resolv.conf``."""
        lines = [f"search {' '.join(self.searches)}"] if self.searches else []
        lines += [f"nameserver {server}" for server in self.servers]
        lines += [f"options {' '.join(self.options)}"] if self.options else []
        return "".join(f"{line}\n" for line in lines)


def parse_resolv_conf(text: str) -> Resolver:
    """The resolver that the ``resolv.conf`` *text* configures."""
    servers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    for line in text.splitlines():
        words = line.split("#", 1)[0].split(";", 1)[0].split()
        if not words:
            continue
        if words[0] == "nameserver" and len(words) > 1:
            servers.append(words[1])
        elif words[0] in ("search", "domain"):
            searches = words[1:]  # the last one wins, as in the C library's resolver
        elif words[0] == "options":
            options += words[1:]
    return Resolver(tuple(servers), tuple(searches), tuple(options))


def pod_resolver(spec: PodSpec, host: Resolver) -> Resolver:
    """The resolver of *spec*'s containers on a host whose resolver is *host*.

    Kubernetes' merge: with ``dns_from_host``, the pod's nameservers and search domains
    are appended to the host's (duplicates dropped) and its options replace the host's
    of the same name; without it, the pod's own alone.
    """
    if not spec.dns_from_host:
        return Resolver(spec.dns_servers, spec.dns_searches, spec.dns_options)
    servers = tuple(dict.fromkeys(host.servers + spec.dns_servers))[:_MAX_SERVERS]
    searches = tuple(dict.fromkeys(host.searches + spec.dns_searches))[:_MAX_SEARCHES]
    options = {option.split(":", 1)[0]: option for option in host.options}
    options.update({option.split(":", 1)[0]: option for option in spec.dns_options})
    return Resolver(servers, searches, tuple(options.values()))
