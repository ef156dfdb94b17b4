"""Host namespaces, names and resolver: Kubernetes' rules in the spec building, the
Podman request bodies they become, and what the fake writes (no engine needed)."""

from __future__ import annotations

import pytest

from asyncpod import (
    Container,
    ContainerPort,
    HostAlias,
    Pod,
    PodDNSConfig,
    PodDNSConfigOption,
    SpecError,
)
from asyncpod._supervisor._spec import pod_spec
from asyncpod.backends import PodSpec
from asyncpod.backends._dns import parse_resolv_conf, pod_resolver
from asyncpod.backends._podman._mapping import dns_fields, pod_body, pod_namespaces

_WEB = Container(
    name="web", image="busybox", ports=[ContainerPort(container_port=80, host_port=80)]
)


def test_host_network_publishes_nothing_and_shares_no_network() -> None:
    spec = pod_spec(Pod(name="p", containers=[_WEB], host_network=True), {})
    assert (spec.host_network, spec.ports) == (True, ())
    body = pod_body(spec)
    assert body["netns"] == {"nsmode": "host"}
    assert body["shared_namespaces"] == ["ipc"]
    assert "portmappings" not in body
    assert pod_body(pod_spec(Pod(name="p", containers=[_WEB]), {}))["portmappings"]


def test_host_pid_and_ipc_are_not_shared_through_the_pod() -> None:
    spec = pod_spec(
        Pod(name="p", containers=[_WEB], host_pid=True, host_ipc=True, host_network=True,
            share_process_namespace=True),
        {},
    )  # fmt: skip
    body = pod_body(spec)
    assert body["shared_namespaces"] == ["none"]  # [] would be Podman's default
    assert body["pidns"] == {"nsmode": "host"}
    inspect = {
        "SharedNamespaces": [],
        "InfraConfig": {"HostNetwork": True, "pid_ns": "host", "HostAdd": ["a:10.0.0.1"]},
    }
    assert pod_namespaces(inspect) == {
        "netns": {"nsmode": "host"},
        "utsns": {"nsmode": "host"},
        "pidns": {"nsmode": "host"},
        "ipcns": {"nsmode": "host"},
        "hostadd": ["a:10.0.0.1"],
    }
    private = {"SharedNamespaces": ["ipc", "net", "uts"], "InfraConfig": {"pid_ns": "private"}}
    assert pod_namespaces(private) == {}


def test_hostname_fqdn_and_aliases() -> None:
    pod = Pod(
        name="p.x",
        containers=[_WEB],
        namespace="shop",
        subdomain="front",
        set_hostname_as_fqdn=True,
        host_aliases=[HostAlias(ip="10.0.0.5", hostnames=["db", "db2"])],
    )
    spec = pod_spec(pod, {})
    assert spec.hostname == "p.front.shop.svc.cluster.local"
    assert spec.host_aliases == (("10.0.0.5", "db"), ("10.0.0.5", "db2"))
    assert pod_body(spec)["hostadd"] == ["db:10.0.0.5", "db2:10.0.0.5"]
    without = pod_spec(Pod(name="p.x", containers=[_WEB], subdomain="front"), {})
    assert without.hostname == "p"
    long = Pod(name="p", hostname="h" * 40, subdomain="s" * 20, set_hostname_as_fqdn=True,
               containers=[_WEB])  # fmt: skip
    with pytest.raises(SpecError, match="longer than 64"):
        pod_spec(long, {})


_HOST = "search a.example\nnameserver 10.0.0.53\noptions ndots:1 rotate\n"


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (
            "Default",
            "search a.example b.example\nnameserver 10.0.0.53\nnameserver 192.0.2.1\n"
            "options ndots:5 rotate edns0\n",
        ),
        (
            "ClusterFirst",
            "search a.example b.example\nnameserver 10.0.0.53\nnameserver 192.0.2.1\n"
            "options ndots:5 rotate edns0\n",
        ),
        ("None", "search b.example\nnameserver 192.0.2.1\noptions ndots:5 edns0\n"),
    ],
)
def test_dns_policy_merges_dns_config(policy: str, expected: str) -> None:
    config = PodDNSConfig(
        nameservers=["192.0.2.1", "10.0.0.53"] if policy != "None" else ["192.0.2.1"],
        searches=["b.example"],
        options=[PodDNSConfigOption(name="ndots", value="5"), PodDNSConfigOption(name="edns0")],
    )
    spec = pod_spec(Pod(name="p", containers=[_WEB], dns_policy=policy, dns_config=config), {})
    assert pod_resolver(spec, parse_resolv_conf(_HOST)).render() == expected
    fields = dns_fields(spec, _HOST)
    resolver = parse_resolv_conf(expected)
    assert fields["dns_server"] == list(resolver.servers)
    assert fields["dns_search"] == list(resolver.searches)
    assert fields["dns_option"] == list(resolver.options)


def test_dns_without_config_is_the_engines() -> None:
    spec = pod_spec(Pod(name="p", containers=[_WEB], dns_policy="Default"), {})
    assert dns_fields(spec, _HOST) == {}
    alone = PodSpec(name="p", hostname="p", dns_from_host=False, dns_servers=("192.0.2.1",))
    assert dns_fields(alone, _HOST) == {"dns_server": ["192.0.2.1"], "dns_search": ["."]}


def test_the_kubelets_limits_on_merged_nameservers() -> None:
    spec = PodSpec(name="p", hostname="p", dns_servers=("192.0.2.1", "192.0.2.2", "192.0.2.3"))
    assert pod_resolver(spec, parse_resolv_conf(_HOST)).servers == (
        "10.0.0.53",
        "192.0.2.1",
        "192.0.2.2",
    )
