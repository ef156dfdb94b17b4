"""The Kubernetes fields modelled for issue #11: loaded, validated, dumped back."""

from __future__ import annotations

import fractions

import pytest
import yaml

import asyncpod
from asyncpod import EmptyDirVolumeSource, SpecError, UnsupportedFieldError
from asyncpod._resources import parse_amount
from asyncpod._serde import structure_object, unstructure_object
from asyncpod.kube import dump_pod, load_pod
from kube_schema import check_pod_manifest

FULL = """\
apiVersion: v1
kind: Pod
metadata:
  name: full
  namespace: team-a
spec:
  hostNetwork: false
  hostUsers: true
  dnsPolicy: None
  dnsConfig:
    nameservers: [10.0.0.10]
    searches: [svc.cluster.local]
    options: [{name: ndots, value: "2"}]
  hostAliases: [{ip: 127.0.0.1, hostnames: [db.local]}]
  hostname: web
  subdomain: api
  setHostnameAsFQDN: true
  activeDeadlineSeconds: 600
  resources:
    limits: {cpu: "2", memory: 1Gi}
  securityContext:
    runAsUser: 1000
    runAsNonRoot: true
    fsGroup: 2000
    fsGroupChangePolicy: OnRootMismatch
    supplementalGroups: [3000]
    supplementalGroupsPolicy: Strict
    sysctls: [{name: net.ipv4.ip_unprivileged_port_start, value: "0"}]
    seccompProfile: {type: Localhost, localhostProfile: profiles/audit.json}
  containers:
  - name: web
    image: busybox
    stdin: true
    stdinOnce: true
    tty: true
    terminationMessagePath: /tmp/term
    terminationMessagePolicy: FallbackToLogsOnError
    resources:
      requests: {cpu: 250m, memory: 64Mi, hugepages-2Mi: 4Mi}
      limits: {cpu: 500m, memory: 128Mi, ephemeral-storage: 1Gi, hugepages-2Mi: 4Mi}
    resizePolicy: [{resourceName: cpu, restartPolicy: NotRequired}]
    securityContext:
      privileged: false
      allowPrivilegeEscalation: false
      capabilities: {add: [NET_BIND_SERVICE], drop: [ALL]}
      readOnlyRootFilesystem: true
      appArmorProfile: {type: RuntimeDefault}
      procMount: Default
      seLinuxOptions: {level: "s0:c123,c456"}
    env:
    - {name: POD, valueFrom: {fieldRef: {fieldPath: "metadata.labels['app']"}}}
    - {name: MEM, valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: 1Mi}}}
    - {name: CONF, valueFrom: {configMapKeyRef: {name: conf, key: level, optional: true}}}
    - {name: PASS, valueFrom: {secretKeyRef: {name: creds, key: password}}}
    envFrom:
    - {prefix: CFG_, configMapRef: {name: conf}}
    - {secretRef: {name: creds, optional: false}}
    readinessProbe:
      grpc: {port: 9000, service: health}
    volumeMounts:
    - {name: claim, mountPath: /claim, readOnly: true, recursiveReadOnly: Enabled}
    - {name: conf, mountPath: /conf, subPathExpr: $(POD)}
    - {name: scratch, mountPath: /scratch, mountPropagation: HostToContainer}
  volumes:
  - {name: claim, persistentVolumeClaim: {claimName: data, readOnly: true}}
  - name: conf
    configMap: {name: conf, items: [{key: level, path: level.txt, mode: 0400}], defaultMode: 0644}
  - {name: creds, secret: {secretName: creds, optional: true}}
  - name: proj
    projected:
      sources:
      - configMap: {name: conf}
      - secret: {name: creds, items: [{key: password, path: pw}]}
      - downwardAPI: {items: [{path: labels, fieldRef: {fieldPath: metadata.labels}}]}
  - name: down
    downwardAPI:
      items:
      - path: cpu
        resourceFieldRef: {containerName: web, resource: requests.cpu, divisor: 1m}
  - {name: img, image: {reference: "quay.io/org/data:v1", pullPolicy: IfNotPresent}}
  - name: eph
    ephemeral:
      volumeClaimTemplate:
        spec:
          accessModes: [ReadWriteOnce]
          resources: {requests: {storage: 1Gi}}
  - name: scratch
"""


def test_full_manifest_loads_and_round_trips() -> None:
    pod = load_pod(FULL)
    assert pod.namespace == "team-a"
    web = pod.containers[0]
    assert web.resources is not None
    assert web.resources.amount("requests", "cpu") == fractions.Fraction(1, 4)
    assert web.security_context is not None and web.security_context.capabilities is not None
    assert web.security_context.capabilities.drop == ("ALL",)
    assert web.env[3].value_from is not None and web.env[3].value_from.secret_key_ref is not None
    assert web.readiness_probe is not None and web.readiness_probe.grpc is not None
    assert pod.volumes[-1].empty_dir == asyncpod.EmptyDirVolumeSource()  # no source
    assert pod.dns_config is not None and pod.dns_config.nameservers == ("10.0.0.10",)
    text = dump_pod(pod)
    check_pod_manifest(yaml.safe_load(text))
    assert load_pod(text) == pod


def test_old_manifest_dumps_nothing_new() -> None:
    pod = asyncpod.Pod(name="p", containers=[asyncpod.Container(name="c", image="busybox")])
    assert yaml.safe_load(dump_pod(pod))["spec"] == {
        "containers": [{"name": "c", "image": "busybox"}]
    }


@pytest.mark.parametrize(
    ("old", "new", "path"),
    [
        ("namespace: team-a", "namespace: Team_A", "metadata.namespace"),
        ("nameservers: [10.0.0.10]", "nameservers: []", "spec.dnsConfig.nameservers"),
        ("nameservers: [10.0.0.10]", "nameservers: [dns]", "spec.dnsConfig.nameservers[0]"),
        ("dnsPolicy: None", "dnsPolicy: Sometimes", "spec.dnsPolicy"),
        (
            "requests: {cpu: 250m",
            "requests: {cpu: 750m",
            'spec.containers[0].resources.requests["cpu"]',
        ),
        ("memory: 64Mi", "memory: lots", 'spec.containers[0].resources.requests["memory"]'),
        (
            "requests: {cpu: 250m, memory: 64Mi, hugepages-2Mi: 4Mi}",
            "requests: {cpu: 250m, memory: 64Mi, hugepages-2Mi: 2Mi}",
            'spec.containers[0].resources.requests["hugepages-2Mi"]',
        ),
        (
            "type: Localhost, localhostProfile: profiles/audit.json",
            "type: Localhost",
            "spec.securityContext.seccompProfile.localhostProfile",
        ),
        (
            "privileged: false",
            "privileged: true",
            "spec.containers[0].securityContext.allowPrivilegeEscalation",
        ),
        (
            "fieldPath: \"metadata.labels['app']\"",
            "fieldPath: spec.containers",
            "spec.containers[0].env[0].valueFrom.fieldRef.fieldPath",
        ),
        (
            "{configMapKeyRef: {name: conf, key: level, optional: true}}",
            "{configMapKeyRef: {name: conf, key: level}, secretKeyRef: {name: s, key: k}}",
            "spec.containers[0].env[2].valueFrom",
        ),
        (
            "divisor: 1Mi",
            "divisor: 1m",
            "spec.containers[0].env[1].valueFrom.resourceFieldRef.divisor",
        ),
        (
            "subPathExpr: $(POD)",
            "subPathExpr: /abs",
            "spec.containers[0].volumeMounts[1].subPathExpr",
        ),
        (
            "readOnly: true, recursiveReadOnly",
            "readOnly: false, recursiveReadOnly",
            "spec.containers[0].volumeMounts[0].recursiveReadOnly",
        ),
        (
            "mountPropagation: HostToContainer",
            "mountPropagation: Bidirectional",
            "spec.containers[0].volumeMounts[2].mountPropagation",
        ),
        (
            "accessModes: [ReadWriteOnce]",
            "accessModes: []",
            "spec.volumes[6].ephemeral.volumeClaimTemplate.spec.accessModes",
        ),
        ("path: level.txt", "path: ../level.txt", "spec.volumes[1].configMap.items[0].path"),
        ("defaultMode: 0644", "defaultMode: 01777", "spec.volumes[1].configMap.defaultMode"),
        (
            "containerName: web, ",
            "",
            "spec.volumes[4].downwardAPI.items[0].resourceFieldRef.containerName",
        ),
        (
            "grpc: {port: 9000, service: health}",
            "grpc: {port: 0}",
            "spec.containers[0].readinessProbe.grpc.port",
        ),
        (
            "hostNetwork: false\n  hostUsers: true",
            "hostNetwork: true\n  hostUsers: false",
            "spec.hostNetwork",
        ),
        ("stdin: true", "stdin: false", "spec.containers[0].stdinOnce"),
        ("activeDeadlineSeconds: 600", "activeDeadlineSeconds: 0", "spec.activeDeadlineSeconds"),
    ],
)
def test_validation_errors_name_the_path(old: str, new: str, path: str) -> None:
    assert old in FULL
    with pytest.raises(SpecError) as info:
        load_pod(FULL.replace(old, new))
    assert not isinstance(info.value, UnsupportedFieldError)
    assert info.value.path == path


@pytest.mark.parametrize(
    ("old", "new", "path", "reason"),
    [
        (
            "cpu: 500m,",
            "cpu: 500m, example.com/gpu: 1,",
            'spec.containers[0].resources.limits["example.com/gpu"]',
            "extended resources",
        ),
        (
            "requests: {cpu: 250m",
            "claims: [{name: gpu}]\n      requests: {cpu: 250m",
            "spec.containers[0].resources.claims",
            "ResourceClaims",
        ),
        (
            "procMount: Default",
            "windowsOptions: {runAsUserName: admin}",
            "spec.containers[0].securityContext.windowsOptions",
            "Windows containers are not supported",
        ),
        (
            "- configMap: {name: conf}",
            "- serviceAccountToken: {path: token}",
            "spec.volumes[3].projected.sources[0].serviceAccountToken",
            "service account",
        ),
    ],
)
def test_refused_fields_say_why(old: str, new: str, path: str, reason: str) -> None:
    assert old in FULL
    with pytest.raises(UnsupportedFieldError) as info:
        load_pod(FULL.replace(old, new))
    assert info.value.paths == (path,)
    assert reason in str(info.value)


def test_quantities_are_exact() -> None:
    assert parse_amount("500m") == fractions.Fraction(1, 2)
    assert parse_amount("1.5Gi") == 3 * 2**29
    assert parse_amount("2e3") == 2000
    assert parse_amount("100n") == fractions.Fraction(1, 10**7)
    with pytest.raises(ValueError):
        parse_amount("1.5.5")


def test_one_quantity_grammar_for_resources_and_size_limits() -> None:
    """sizeLimit takes the n and u suffixes too; resources are bounded like sizeLimit."""
    assert EmptyDirVolumeSource(size_limit="1500n").size_bytes == 1
    assert parse_amount("9" * 5000) == 10**30  # saturated, not thousands of digits of work
    assert parse_amount("1e999999999") == fractions.Fraction(10) ** 99
    with pytest.raises(SpecError) as info:
        load_pod(
            FULL.replace('limits: {cpu: "2", memory: 1Gi}', 'limits: {cpu: "1e30", memory: 1Gi}')
        )
    assert "too large" in str(info.value)
    assert info.value.path.endswith('resources.limits["cpu"]')


def test_pod_resources_take_cpu_memory_and_hugepages_only() -> None:
    with pytest.raises(SpecError) as info:
        load_pod(
            FULL.replace('limits: {cpu: "2", memory: 1Gi}', "limits: {ephemeral-storage: 1Gi}")
        )
    assert info.value.path == 'spec.resources.limits["ephemeral-storage"]'


def test_config_map_loads_and_dumps() -> None:
    document = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "conf"},
        "data": {"level": "debug"},
        "binaryData": {"blob": "AAE="},
        "immutable": True,
    }
    config = structure_object(document)
    assert isinstance(config, asyncpod.ConfigMap)
    assert config.binary_data["blob"] == b"\x00\x01"
    assert unstructure_object(config) == document
    with pytest.raises(SpecError) as info:
        structure_object({**document, "data": {"bad key": "x"}})
    assert info.value.path == 'data["bad key"]'


def test_secret_merges_string_data_and_hides_values() -> None:
    secret = structure_object(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "creds"},
            "type": "Opaque",
            "data": {"user": "YWRtaW4=", "password": "b2xk"},
            "stringData": {"password": "hunter2"},
        }
    )
    assert isinstance(secret, asyncpod.Secret)
    assert secret.data == {"user": b"admin", "password": b"hunter2"}
    assert "hunter2" not in repr(secret) and "admin" not in repr(secret)
    assert "password" in repr(secret)
    assert unstructure_object(secret)["data"] == {"user": "YWRtaW4=", "password": "aHVudGVyMg=="}
    with pytest.raises(SpecError) as info:
        asyncpod.Secret(name="creds", data={"password": 12345})
    assert "12345" not in str(info.value)
    with pytest.raises(SpecError) as info:
        structure_object(
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"k": "%%"}}
        )
    assert "%%" not in str(info.value)
