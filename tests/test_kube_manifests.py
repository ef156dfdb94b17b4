"""Real manifests: cluster-only fields, defaults, refused fields, lax mode, workloads, bundles."""

from __future__ import annotations

import base64
import copy
import logging
import re
from typing import Any

import attrs
import pytest
import yaml

from asyncpod import (
    Container,
    EmptyDirVolumeSource,
    EnvVar,
    Pod,
    RestartPolicy,
    SpecError,
    UnsupportedFieldError,
    Volume,
    VolumeMount,
)
from asyncpod._cluster import thaw
from asyncpod.kube import Bundle, dump, dump_pod, load, load_pod, make_converter
from kube_schema import check_object, check_pod_manifest

POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "web", "labels": {"app": "web"}},
    "spec": {
        "containers": [
            {
                "name": "web",
                "image": "busybox",
                "command": ["httpd", "-f"],
                "volumeMounts": [{"name": "data", "mountPath": "/data"}],
            }
        ],
        "volumes": [{"name": "data", "emptyDir": {}}],
    },
}

WEB = Pod(
    name="web",
    labels={"app": "web"},
    containers=[
        Container(
            name="web",
            image="busybox",
            command=["httpd", "-f"],
            volume_mounts=[VolumeMount(name="data", mount_path="/data")],
        )
    ],
    volumes=[Volume(name="data", empty_dir=EmptyDirVolumeSource())],
)


def pod_doc(**spec: Any) -> dict[str, Any]:
    document = copy.deepcopy(POD)
    document["spec"].update(spec)
    return document


def text(*documents: dict[str, Any]) -> str:
    return yaml.safe_dump_all(documents, sort_keys=False)


def workload(kind: str, api_version: str = "apps/v1", **spec: Any) -> dict[str, Any]:
    template = {"metadata": {"labels": {"app": "web"}}, "spec": copy.deepcopy(POD["spec"])}
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": template, **spec},
    }


def test_the_plain_pod_loads() -> None:
    assert load_pod(text(POD)) == WEB


# Cluster-only fields

CLUSTER_SPEC = {
    "nodeSelector": {"disktype": "ssd"},
    "tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
    "serviceAccountName": "builder",
    "priorityClassName": "high",
    "schedulerName": "default-scheduler",
}


def test_cluster_only_fields_are_kept_listed_logged_once_and_written_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    document = pod_doc(**CLUSTER_SPEC)
    document["metadata"]["namespace"] = "shop"
    document["spec"]["containers"][0]["resizePolicy"] = [
        {"resourceName": "cpu", "restartPolicy": "NotRequired"}
    ]
    caplog.set_level(logging.INFO, logger="asyncpod")
    pod = load_pod(text(document))
    expected = [
        "metadata.namespace",
        *(f"spec.{key}" for key in CLUSTER_SPEC),
        "spec.containers[0].resizePolicy",
    ]
    assert sorted(pod.ignored_fields) == sorted(expected)
    [record] = [r for r in caplog.records if "cluster-only" in r.getMessage()]
    assert record.levelno == logging.INFO
    assert record.name == "asyncpod"
    assert all(path in record.getMessage() for path in expected)
    assert pod.namespace == "shop"
    plain = attrs.evolve(pod.containers[0], resize_policy=())
    assert attrs.evolve(pod, cluster_fields={}, namespace=None, containers=[plain]) == WEB
    written = yaml.safe_load(dump_pod(pod))
    assert written == document  # deploys unchanged
    check_pod_manifest(written)
    assert load_pod(dump_pod(pod)) == pod


def test_the_converter_round_trips_cluster_fields_as_plain_json() -> None:
    converter = make_converter()
    pod = attrs.evolve(WEB, cluster_fields={"spec.tolerations": [{"key": "gpu"}]})
    raw = converter.unstructure(pod)
    assert raw["clusterFields"] == {"spec.tolerations": [{"key": "gpu"}]}
    assert type(raw["clusterFields"]["spec.tolerations"][0]) is dict
    assert converter.structure(raw, Pod) == pod


def test_cluster_fields_are_frozen_and_checked() -> None:
    pod = attrs.evolve(WEB, cluster_fields={"spec.nodeSelector": {"a": "b"}})
    assert hash(pod) == hash(attrs.evolve(WEB, cluster_fields={"spec.nodeSelector": {"a": "b"}}))
    with pytest.raises(TypeError):
        pod.cluster_fields["spec.nodeSelector"]["a"] = "c"  # type: ignore[index]
    with pytest.raises(SpecError, match="not the manifest path of a cluster-only field"):
        attrs.evolve(WEB, cluster_fields={"spec.hostNetwork": True})
    with pytest.raises(SpecError, match="names a container the pod does not have"):
        attrs.evolve(WEB, cluster_fields={"spec.initContainers[0].resizePolicy": []})


# Kubernetes defaults


@pytest.mark.parametrize(
    ("where", "key", "value"),
    [
        ("spec", "hostNetwork", False),
        ("spec", "hostPID", False),
        ("spec", "hostIPC", False),
        ("spec", "dnsPolicy", "ClusterFirst"),
        ("spec", "os", {"name": "linux"}),
        ("container", "terminationMessagePath", "/dev/termination-log"),
        ("container", "terminationMessagePolicy", "File"),
        ("container", "tty", False),
        ("container", "securityContext", {"privileged": False}),
    ],
)
def test_fields_at_their_kubernetes_default_load(where: str, key: str, value: Any) -> None:
    """A field at its Kubernetes default loads (filterwarnings=error: with no warning
    either) and deploys unchanged: the model holds it where it has the field."""
    document = pod_doc()
    target = document["spec"] if where == "spec" else document["spec"]["containers"][0]
    target[key] = value
    pod = load_pod(text(document))
    written = yaml.safe_load(dump_pod(pod))
    if written != pod_doc():  # not only dropped as saying nothing: kept as written
        assert written == document


@pytest.mark.parametrize(
    ("where", "key", "value"),
    [
        ("spec", "os", {"name": "plan9"}),
        ("container", "volumeDevices", [{"name": "data", "devicePath": "/dev/xvda"}]),
    ],
)
def test_the_same_fields_set_otherwise_are_unsupported(where: str, key: str, value: Any) -> None:
    document = pod_doc()
    target = document["spec"] if where == "spec" else document["spec"]["containers"][0]
    target[key] = value
    with pytest.raises(UnsupportedFieldError) as info:
        load_pod(text(document))
    prefix = "spec" if where == "spec" else "spec.containers[0]"
    assert info.value.paths == (f"{prefix}.{key}",)


def test_a_volume_without_a_source_is_an_empty_dir_as_in_kubernetes() -> None:
    assert load_pod(text(pod_doc(volumes=[{"name": "data"}]))) == WEB


# Refused, with reasons


@pytest.mark.parametrize(
    ("path", "value", "reason"),
    [
        ("spec.volumes", [{"name": "data", "nfs": {"server": "nas", "path": "/x"}}], "NFS"),
        ("spec.volumes", [{"name": "data", "csi": {"driver": "x"}}], "CSI"),
        ("spec.volumes", [{"name": "data", "gitRepo": {"repository": "r"}}], "init container"),
        ("spec.ephemeralContainers", [{"name": "debug", "image": "busybox"}], "exec"),
        ("spec.resourceClaims", [{"name": "gpu"}], "DRA"),
    ],
)
def test_refused_fields_say_why(path: str, value: Any, reason: str) -> None:
    document = pod_doc(**{path.split(".")[1]: value})
    with pytest.raises(UnsupportedFieldError) as info:
        load_pod(text(document))
    [where] = info.value.paths
    assert reason in info.value.reasons[where]
    assert reason in str(info.value)


@pytest.mark.parametrize(
    ("change", "path"),
    [
        (lambda d: d["spec"].update(os={"name": "windows"}), "spec.os.name"),
        (
            lambda d: d["spec"].update(nodeSelector={"kubernetes.io/os": "windows"}),
            'spec.nodeSelector["kubernetes.io/os"]',
        ),
        (
            lambda d: d["spec"].update(nodeSelector={"beta.kubernetes.io/os": "windows"}),
            'spec.nodeSelector["beta.kubernetes.io/os"]',
        ),
        (
            lambda d: d["spec"]["containers"][0].update(
                securityContext={"windowsOptions": {"hostProcess": True}}
            ),
            "spec.containers[0].securityContext.windowsOptions.hostProcess",
        ),
    ],
)
@pytest.mark.parametrize("strict", [True, False])
def test_windows_pods_are_one_clear_error(change: Any, path: str, strict: bool) -> None:
    document = pod_doc()
    change(document)
    with pytest.raises(SpecError, match="Windows containers are not supported") as info:
        load_pod(text(document), strict=strict)
    assert info.value.path == path
    assert not isinstance(info.value, UnsupportedFieldError)


# Lax mode leaves a pod that validates


def test_lax_unsupported_volume_source_becomes_an_empty_dir() -> None:
    document = pod_doc(volumes=[{"name": "data", "nfs": {"server": "nas", "path": "/x"}}])
    with pytest.warns(UserWarning, match="dropped unsupported field") as record:
        pod = load_pod(text(document), strict=False)
    assert len(record) == 1
    message = str(record[0].message)
    assert "spec.volumes[0].nfs" in message
    assert "volume spec.volumes[0] ('data') is an emptyDir instead" in message
    assert pod == WEB


def test_lax_probe_with_an_unsupported_handler_is_dropped() -> None:
    document = pod_doc()
    container = document["spec"]["containers"][0]
    # a handler of a later Kubernetes (every handler of today's is supported)
    future = {"quicGet": {"port": 2379}}
    container["livenessProbe"] = {**future, "initialDelaySeconds": 10}
    container["readinessProbe"] = {"tcpSocket": {"port": 80}, **future}
    container["lifecycle"] = {"preStop": {"tcpSocket": {"port": 80}}}
    with pytest.warns(UserWarning, match="dropped unsupported field") as record:
        pod = load_pod(text(document), strict=False)
    message = str(record[0].message)
    assert "spec.containers[0].livenessProbe is dropped" in message
    assert "spec.containers[0].lifecycle.preStop is dropped" in message
    [web] = pod.containers
    assert web.liveness_probe is None
    assert web.lifecycle is None
    assert web.readiness_probe is not None  # it kept a supported handler
    assert web.readiness_probe.tcp_socket is not None


def test_lax_variable_with_an_unsupported_value_from_is_unset_not_empty() -> None:
    document = pod_doc()
    document["spec"]["containers"][0]["env"] = [
        {"name": "A", "value": "1"},
        # Kubernetes 1.34's env files (alpha): not supported
        {
            "name": "NODE",
            "valueFrom": {"fileKeyRef": {"volumeName": "cfg", "path": "a.env", "key": "NODE"}},
        },
        {"name": "B", "value": "2"},
    ]
    with pytest.warns(UserWarning, match=r"variable spec\.containers\[0\]\.env\[1\] \('NODE'\)"):
        pod = load_pod(text(document), strict=False)
    assert pod.containers[0].env == (EnvVar(name="A", value="1"), EnvVar(name="B", value="2"))


# Workloads


@pytest.mark.parametrize(
    ("kind", "api_version", "extra"),
    [
        ("Deployment", "apps/v1", {"replicas": 3}),
        ("DaemonSet", "apps/v1", {"minReadySeconds": 5}),
        ("ReplicaSet", "apps/v1", {"replicas": 3}),
        ("ReplicationController", "v1", {"replicas": 3, "selector": {"app": "web"}}),
        ("Deployment", "extensions/v1beta1", {"replicas": 3}),
    ],
)
def test_a_workload_runs_its_pod_template(kind: str, api_version: str, extra: Any) -> None:
    document = workload(kind, api_version, **extra)
    bundle = load(text(document))
    assert bundle.kind == kind
    assert bundle.pod == WEB
    assert sorted(bundle.ignored_fields) == sorted({"spec.selector", *(f"spec.{k}" for k in extra)})
    assert load_pod(text(document)) == WEB
    written = yaml.safe_load(dump(bundle))
    assert written == document
    if api_version in ("v1", "apps/v1"):
        check_object(f"V1{kind}", written)


def test_a_workload_error_names_the_path_in_the_workload() -> None:
    document = workload("Deployment")
    document["spec"]["template"]["spec"]["containers"][0]["image"] = "Not An Image"
    with pytest.raises(SpecError) as info:
        load(text(document))
    assert info.value.path == "spec.template.spec.containers[0].image"
    document = workload("Deployment")
    document["spec"]["template"]["spec"]["containers"][0]["volumeDevices"] = [
        {"name": "data", "devicePath": "/dev/xvda"}
    ]
    with pytest.raises(UnsupportedFieldError) as unsupported:
        load(text(document))
    assert unsupported.value.paths == ("spec.template.spec.containers[0].volumeDevices",)


def test_a_workload_of_the_wrong_api_version() -> None:
    with pytest.raises(SpecError, match="must be 'apps/v1' for a Deployment") as info:
        load(text(workload("Deployment", "v1")))
    assert info.value.path == "apiVersion"


def test_a_job_keeps_its_restart_policy_and_back_off_limit() -> None:
    document = workload("Job", "batch/v1", backoffLimit=4, completions=1)
    del document["spec"]["selector"]
    document["spec"]["template"]["spec"]["restartPolicy"] = "OnFailure"
    bundle = load(text(document))
    assert bundle.pod.restart_policy is RestartPolicy.ON_FAILURE
    assert bundle.backoff_limit == 4
    assert bundle.ignored_fields == ("spec.completions",)
    assert yaml.safe_load(dump(bundle)) == document
    check_object("V1Job", document)
    del document["spec"]["backoffLimit"]
    assert load(text(document)).backoff_limit == 6  # Kubernetes' default


def test_a_job_must_not_restart_always() -> None:
    document = workload("Job", "batch/v1")
    with pytest.raises(SpecError, match="OnFailure or Never") as info:
        load(text(document))
    assert info.value.path == "spec.template.spec.restartPolicy"


def test_a_cron_job_runs_its_job_template() -> None:
    pod_template = {"spec": {**copy.deepcopy(POD["spec"]), "restartPolicy": "Never"}}
    document = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "web"},
        "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": pod_template}}},
    }
    bundle = load(text(document))
    assert bundle.pod == attrs.evolve(WEB, labels={}, restart_policy="Never")
    assert bundle.backoff_limit == 6
    assert bundle.ignored_fields == ("spec.schedule",)
    assert yaml.safe_load(dump(bundle)) == document
    check_object("V1CronJob", document)
    pod_template["spec"]["containers"][0]["image"] = "Not An Image"
    with pytest.raises(SpecError) as info:
        load(text(document))
    assert info.value.path == "spec.jobTemplate.spec.template.spec.containers[0].image"


STATEFUL_SET = {
    "apiVersion": "apps/v1",
    "kind": "StatefulSet",
    "metadata": {"name": "db"},
    "spec": {
        "serviceName": "db",
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": copy.deepcopy(POD["spec"]["containers"])},
        },
        "volumeClaimTemplates": [
            {
                "metadata": {"name": "data"},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "1Gi"}},
                },
            }
        ],
    },
}


def test_a_stateful_set_claim_template_becomes_a_claim_and_its_volume() -> None:
    bundle = load(text(STATEFUL_SET))
    [claim] = bundle.claims
    assert (claim.kind, claim.name, claim.generated) == ("PersistentVolumeClaim", "data-db-0", True)
    assert thaw(claim.document)["spec"]["resources"]["requests"]["storage"] == "1Gi"
    check_object("V1PersistentVolumeClaim", thaw(claim.document))
    [volume] = bundle.pod.volumes
    assert volume.name == "data"
    assert volume.persistent_volume_claim is not None
    assert volume.persistent_volume_claim.claim_name == "data-db-0"
    check_object("V1StatefulSet", STATEFUL_SET)


# Bundles

CONFIG_MAP = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "conf"},
    "data": {"a": "1"},
}
SECRET = {
    "apiVersion": "v1",
    "kind": "Secret",
    "metadata": {"name": "pw"},
    "stringData": {"pw": "x"},
}
CLAIM = {
    "apiVersion": "v1",
    "kind": "PersistentVolumeClaim",
    "metadata": {"name": "store"},
    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
}
SERVICE = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "web"},
    "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]},
}
INGRESS = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "web"}}


def test_a_file_of_documents_is_one_bundle(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="asyncpod")
    source = text(CONFIG_MAP, SERVICE, POD, SECRET, CLAIM, INGRESS)
    bundle = load(source)
    assert isinstance(bundle, Bundle)
    assert bundle.pod == WEB
    assert bundle.kind == "Pod"
    assert [str(o) for o in bundle.config_maps] == ["ConfigMap/conf"]
    assert [str(o) for o in bundle.secrets] == ["Secret/pw"]
    assert [str(o) for o in bundle.claims] == ["PersistentVolumeClaim/store"]
    assert [str(o) for o in bundle.skipped] == ["Service/web", "Ingress/web"]
    assert "Service/web, Ingress/web" in caplog.text
    written = list(yaml.safe_load_all(dump(bundle, secrets=True)))
    assert written == [CONFIG_MAP, SECRET, CLAIM, POD, SERVICE, INGRESS]
    for document in written[:5]:
        check_object(f"V1{document['kind']}", document)
    assert load(dump(bundle, secrets=True)) == bundle


def test_dump_leaves_secrets_out_unless_asked() -> None:
    """By default no Secret value is written, in any form: each Secret is left out and
    named in a comment line; secrets=True writes it as it was read."""
    value = "s3cr3t-Qx7"
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db"},
        "data": {"password": base64.b64encode(value.encode()).decode()},
        "stringData": {"token": value + "-t"},
    }
    bundle = load(text(CONFIG_MAP, POD, secret, SECRET))
    written = dump(bundle)
    assert value not in written
    assert base64.b64encode(value.encode()).decode() not in written
    assert written.splitlines()[:2] == [
        "# Secret/db left out: pass secrets=True",
        "# Secret/pw left out: pass secrets=True",
    ]
    assert [d["kind"] for d in yaml.safe_load_all(written)] == ["ConfigMap", "Pod"]
    reread = load(written)
    assert reread.secrets == ()
    assert reread.pod == bundle.pod
    with_secrets = dump(bundle, secrets=True)
    assert not with_secrets.startswith("#")
    assert list(yaml.safe_load_all(with_secrets)) == [CONFIG_MAP, secret, SECRET, POD]
    assert load(with_secrets) == bundle


def test_load_pod_refuses_a_file_whose_config_it_would_lose() -> None:
    with pytest.raises(SpecError, match=re.escape("ConfigMap/conf")) as info:
        load_pod(text(POD, CONFIG_MAP))
    assert "asyncpod.kube.load" in str(info.value)
    assert load_pod(text(SERVICE, POD)) == WEB  # a Service: nothing lost here


@pytest.mark.parametrize(
    ("documents", "match"),
    [
        ([POD, POD], "found 2 (Pod/web, Pod/web): asyncpod runs one pod"),
        ([POD, workload("Deployment")], "found 2"),
        ([SERVICE, CONFIG_MAP], "found 0"),
        ([SERVICE], "must be 'Pod' or a workload"),
    ],
)
def test_a_file_runs_exactly_one_pod(documents: list[dict[str, Any]], match: str) -> None:
    with pytest.raises(SpecError, match=re.escape(match)):
        load(text(*documents))


def test_a_list_counts_as_its_items() -> None:
    document = {"apiVersion": "v1", "kind": "List", "items": [SERVICE, POD]}
    bundle = load(text(document))
    assert bundle.pod == WEB
    assert [str(o) for o in bundle.skipped] == ["Service/web"]
