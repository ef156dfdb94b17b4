"""asyncpod.kube: Kubernetes Pod manifests to and from the models."""

from __future__ import annotations

import json
import re
import string
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import attrs
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from asyncpod import (
    Condition,
    Container,
    ContainerPort,
    Dependency,
    DependencyCycleError,
    EmptyDirVolumeSource,
    EnvVar,
    ExecAction,
    HostPathVolumeSource,
    HTTPGetAction,
    HTTPHeader,
    Lifecycle,
    LifecycleHandler,
    Pod,
    Probe,
    Protocol,
    PullPolicy,
    RestartPolicy,
    RestartRuleOperator,
    SleepAction,
    SpecError,
    TCPSocketAction,
    UnsupportedFieldError,
    Volume,
    VolumeMount,
)
from asyncpod.kube import dump_pod, load_pod, make_converter
from kube_schema import ManifestError, check_pod_manifest

EXAMPLES = Path(__file__).parent.parent / "examples"
DATA = Path(__file__).parent / "data"

# The seed manifest, verbatim (the trailing space after 8001 included).
SEED = """\
apiVersion: v1
kind: Pod
metadata:
  name: javaweb-2
spec:
  initContainers:
  - image: app:v2
    name: war
    command: ["cp", "/app.war", "/app"]
    volumeMounts:
    - mountPath: /app
      name: app-volume
  containers:
  - image: tomcat:7.0
    name: tomcat
    command: ["sh","-c","/root/apache-tomcat-7.0.42-v2/bin/start.sh"]
    volumeMounts:
    - mountPath: /root/apache-tomcat-7.0/webapps
      name: app-volume
    ports:
    - containerPort: 8080
      hostPort: 8001\x20
  volumes:
  - name: app-volume
    emptyDir: {}
"""

SEED_POD = Pod(
    name="javaweb-2",
    init_containers=[
        Container(
            name="war",
            image="app:v2",
            command=["cp", "/app.war", "/app"],
            volume_mounts=[VolumeMount(name="app-volume", mount_path="/app")],
        )
    ],
    containers=[
        Container(
            name="tomcat",
            image="tomcat:7.0",
            command=["sh", "-c", "/root/apache-tomcat-7.0.42-v2/bin/start.sh"],
            volume_mounts=[
                VolumeMount(name="app-volume", mount_path="/root/apache-tomcat-7.0/webapps")
            ],
            ports=[ContainerPort(container_port=8080, host_port=8001)],
        )
    ],
    volumes=[Volume(name="app-volume", empty_dir=EmptyDirVolumeSource())],
)

SEED_DUMPED = """\
apiVersion: v1
kind: Pod
metadata:
  name: javaweb-2
spec:
  containers:
  - name: tomcat
    image: tomcat:7.0
    command:
    - sh
    - -c
    - /root/apache-tomcat-7.0.42-v2/bin/start.sh
    ports:
    - containerPort: 8080
      hostPort: 8001
    volumeMounts:
    - name: app-volume
      mountPath: /root/apache-tomcat-7.0/webapps
  initContainers:
  - name: war
    image: app:v2
    command:
    - cp
    - /app.war
    - /app
    volumeMounts:
    - name: app-volume
      mountPath: /app
  volumes:
  - name: app-volume
    emptyDir: {}
"""


def seed_doc() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(SEED)
    return doc


def load_doc(doc: dict[str, Any], **kwargs: Any) -> Pod:
    return load_pod(yaml.safe_dump(doc), **kwargs)


def rich_pod() -> Pod:
    http_probe = Probe(
        http_get=HTTPGetAction(
            port="http",
            path="/healthz",
            host="127.0.0.1",
            scheme="HTTPS",
            http_headers=[HTTPHeader(name="X-Probe", value="yes"), HTTPHeader(name="X-Empty")],
        ),
        initial_delay_seconds=2,
        period_seconds=3,
        timeout_seconds=4,
        success_threshold=2,
        failure_threshold=5,
    )
    return Pod(
        name="rich.example",
        labels={"app": "rich", "example.com/tier": "web"},
        annotations={"note": "multi\nline\n", "empty": ""},
        restart_policy=RestartPolicy.ON_FAILURE,
        termination_grace_period_seconds=60,
        hostname="rich-host",
        share_process_namespace=True,
        volumes=[
            Volume(
                name="cache", empty_dir=EmptyDirVolumeSource(medium="Memory", size_limit="64Mi")
            ),
            Volume(name="scratch", empty_dir=EmptyDirVolumeSource()),
            Volume(name="host", host_path=HostPathVolumeSource(path="/srv/data", type="Directory")),
        ],
        init_containers=[
            Container(name="migrate", image="localhost/app:1", args=["--migrate"]),
            Container(
                name="proxy",
                image="docker.io/library/envoy:v1.30",
                restart_policy=RestartPolicy.ALWAYS,
                ports=[ContainerPort(container_port=9901, name="admin")],
                readiness_probe=Probe(tcp_socket=TCPSocketAction(port="admin")),
                lifecycle=Lifecycle(pre_stop=LifecycleHandler(sleep=SleepAction(seconds=5))),
            ),
        ],
        containers=[
            Container(
                name="db",
                image="postgres:16",
                env=[EnvVar(name="POSTGRES_PASSWORD", value="secret"), EnvVar(name="EMPTY")],
                ports=[
                    ContainerPort(
                        container_port=5432,
                        host_port=15432,
                        host_ip="127.0.0.1",
                        protocol=Protocol.TCP,
                        name="pg",
                    ),
                    ContainerPort(container_port=5432, host_port=15432, protocol=Protocol.UDP),
                ],
                volume_mounts=[
                    VolumeMount(name="host", mount_path="/var/lib/postgresql", sub_path="pg"),
                ],
                readiness_probe=Probe(exec=ExecAction(command=["pg_isready", "-q"])),
                liveness_probe=Probe(
                    tcp_socket=TCPSocketAction(port=5432), termination_grace_period_seconds=10
                ),
                image_pull_policy=PullPolicy.IF_NOT_PRESENT,
            ),
            Container(
                name="web",
                image="quay.io/example/web@sha256:" + "ab" * 32,
                command=["sh", "-c", "echo one\necho two\n"],
                working_dir="/srv",
                ports=[ContainerPort(container_port=8080, name="http")],
                volume_mounts=[
                    VolumeMount(name="cache", mount_path="/cache"),
                    VolumeMount(name="host", mount_path="/data", read_only=True),
                ],
                startup_probe=Probe(http_get=HTTPGetAction(port=8080)),
                readiness_probe=http_probe,
                lifecycle=Lifecycle(
                    post_start=LifecycleHandler(exec=ExecAction(command=["touch", "/tmp/up"])),
                    pre_stop=LifecycleHandler(http_get=HTTPGetAction(port="http", path="/stop")),
                ),
                restart_policy=RestartPolicy.NEVER,
                image_pull_policy=PullPolicy.NEVER,
                depends_on=[
                    Dependency(name="db", condition=Condition.READY),
                    Dependency(name="proxy"),
                    Dependency(name="migrate-done", condition=Condition.COMPLETED),
                ],
            ),
            Container(name="migrate-done", image="busybox", command=["true"]),
        ],
    )


# Loading


def test_seed_loads_verbatim() -> None:
    assert load_pod(SEED) == SEED_POD


def test_example_files_load() -> None:
    path = EXAMPLES / "javaweb-2.yaml"
    assert path.read_text(encoding="utf-8") == SEED
    assert load_pod(path) == SEED_POD
    assert load_pod(str(path)) == SEED_POD  # a one-line str naming a file is a path

    sidecar = load_pod(EXAMPLES / "log-sidecar.yaml")
    [collector] = sidecar.sidecars
    assert "tail -F /var/log/app/app.log" in collector.command[-1]
    assert sidecar.containers[0].volume_mounts[0].mount_path == "/var/log/app"
    assert sidecar.volumes == (Volume(name="logs", empty_dir=EmptyDirVolumeSource()),)


def test_flow_style_yaml_and_json() -> None:
    flow = yaml.safe_dump(seed_doc(), default_flow_style=True, width=10_000)
    assert "\n" not in flow.strip()
    assert load_pod(flow) == SEED_POD
    assert load_pod(json.dumps(seed_doc())) == SEED_POD
    # JSON that PyYAML alone would reject: tab indentation and the \/ escape.
    tabbed = json.dumps(seed_doc(), indent="\t").replace("/app", "\\/app")
    assert load_pod(tabbed) == SEED_POD


def test_single_line_text_is_not_a_path(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="names a file only if it exists"):
        load_pod(str(tmp_path / "missing.yaml"))
    with pytest.raises(FileNotFoundError):
        load_pod(tmp_path / "missing.yaml")


# Dumping


def test_dump_seed_is_block_style_without_defaults() -> None:
    assert dump_pod(SEED_POD) == SEED_DUMPED


@pytest.mark.parametrize("pod", [SEED_POD, rich_pod()], ids=["seed", "rich"])
def test_round_trip(pod: Pod) -> None:
    assert load_pod(dump_pod(pod)) == pod


def test_dump_rich_pod() -> None:
    text = dump_pod(rich_pod())
    doc = yaml.safe_load(text)
    assert list(doc) == ["apiVersion", "kind", "metadata", "spec"]
    assert doc["metadata"]["annotations"] == {
        "note": "multi\nline\n",
        "empty": "",
        "depends-on.asyncpod.io/web": "db:ready, proxy, migrate-done:completed",
    }
    assert doc["spec"]["containers"][0]["ports"][0] == {
        "containerPort": 5432,
        "hostPort": 15432,
        "hostIP": "127.0.0.1",
        "name": "pg",
    }
    assert doc["spec"]["containers"][0]["ports"][1]["protocol"] == "UDP"
    assert doc["spec"]["volumes"][0] == {
        "name": "cache",
        "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"},
    }
    assert doc["spec"]["containers"][1]["readinessProbe"]["httpGet"]["httpHeaders"] == [
        {"name": "X-Probe", "value": "yes"},
        {"name": "X-Empty", "value": ""},  # required in Kubernetes: written even when empty
    ]
    assert "dependsOn" not in text
    assert "    note: |\n      multi\n      line\n" in text  # multi-line strings as literal blocks


def test_restart_policy_rules_round_trip() -> None:
    """KEP-5307 rules load, and dump with their required action even at its default."""
    text = """
apiVersion: v1
kind: Pod
metadata: {name: rules}
spec:
  restartPolicy: Never
  containers:
  - name: a
    image: busybox
    restartPolicy: Never
    restartPolicyRules:
    - {action: Restart, exitCodes: {operator: NotIn, values: [0, 1]}}
"""
    pod = load_pod(text)
    (rule,) = pod.containers[0].restart_policy_rules
    assert rule.exit_codes.operator is RestartRuleOperator.NOT_IN
    assert rule.exit_codes.values == (0, 1)
    dumped = yaml.safe_load(dump_pod(pod))["spec"]["containers"][0]["restartPolicyRules"]
    assert dumped == [{"action": "Restart", "exitCodes": {"operator": "NotIn", "values": [0, 1]}}]
    assert load_pod(dump_pod(pod)) == pod


# Everything asyncpod writes is a valid Kubernetes Pod (the official client's models)


@pytest.mark.parametrize("example", ["javaweb-2.yaml", "log-sidecar.yaml"])
def test_dumped_examples_are_valid_kubernetes(example: str) -> None:
    source = yaml.safe_load((EXAMPLES / example).read_text(encoding="utf-8"))
    check_pod_manifest(source)
    dumped = yaml.safe_load(dump_pod(load_pod(EXAMPLES / example)))
    check_pod_manifest(dumped)
    assert dumped["spec"].keys() == source["spec"].keys()


def test_dumped_rich_pod_is_valid_kubernetes() -> None:
    v1 = check_pod_manifest(yaml.safe_load(dump_pod(rich_pod())))
    assert v1.metadata.annotations["depends-on.asyncpod.io/web"] == (
        "db:ready, proxy, migrate-done:completed"
    )
    [_, empty] = v1.spec.containers[1].readiness_probe.http_get.http_headers
    assert (empty.name, empty.value) == ("X-Empty", "")


def _seed_with(**changes: Any) -> dict[str, Any]:
    """The seed manifest with its (first) app container's keys updated."""
    doc = seed_doc()
    doc["spec"]["containers"][0].update(changes)
    return doc


@pytest.mark.parametrize(
    ("doc", "match"),
    [
        (_seed_with(dependsOn=["war"]), r"^spec\.containers\[0\]: V1Container has no .*dependsOn"),
        (_seed_with(ports=[{"containerPort": "8080"}]), r"containerPort: must be of type int"),
        (_seed_with(ports=[{"container_port": 8080}]), r"has no field\(s\) container_port"),
        (_seed_with(readinessProbe={"tcpSocket": {"port": True}}), r"port: must be IntOrString"),
        (_seed_with(name=None), r"containers\[0\]\.name: null"),
        (_seed_with(env=[{"value": "x"}]), r"(?s)env\[0\]: V1EnvVar: .*\bname\b"),
        (_seed_with(command="true"), r"command: must be a list"),
        ({**seed_doc(), "status": {"phase": 1}}, r"^status\.phase: must be of type str"),
    ],
    ids=["unknown", "type", "snake-case", "int-or-string", "null", "required", "list", "status"],
)
def test_schema_check_rejects(doc: dict[str, Any], match: str) -> None:
    """The Kubernetes schema check itself: unknown keys, wrong types, missing fields fail."""
    with pytest.raises(ManifestError, match=match):
        check_pod_manifest(doc)


def test_converter_spells_kubernetes_names() -> None:
    converter = make_converter()
    port = ContainerPort(container_port=80, host_ip="::1", protocol=Protocol.SCTP)
    assert converter.unstructure(port) == {
        "containerPort": 80,
        "hostIP": "::1",
        "protocol": "SCTP",
    }
    assert converter.structure({"containerPort": 80, "hostIP": "::1"}, ContainerPort) == (
        ContainerPort(container_port=80, host_ip="::1")
    )


# Unsupported fields


UNSUPPORTED = """\
apiVersion: v1
kind: Pod
metadata:
  name: javaweb-2
  generateName: javaweb-
  creationTimestamp: null
spec:
  schedulerName: default-scheduler
  enableServiceLinks: true
  nodeSelector: {}
  initContainers:
  - image: app:v2
    name: war
    command: ["cp", "/app.war", "/app"]
    volumeMounts:
    - mountPath: /app
      name: app-volume
      readOnlyRecursive: true
  containers:
  - image: tomcat:7.0
    name: tomcat
    command: ["sh","-c","/root/apache-tomcat-7.0.42-v2/bin/start.sh"]
    volumeDevices:
    - {name: app-volume, devicePath: /dev/xvda}
    securityContext: {}
    envFrom: []
    dependsOn: [war]
    volumeMounts:
    - mountPath: /root/apache-tomcat-7.0/webapps
      name: app-volume
    ports:
    - containerPort: 8080
      hostPort: 8001
      hostIp: 127.0.0.1
  volumes:
  - name: app-volume
    emptyDir: {}
    awsElasticBlockStore: {volumeID: vol-1}
status:
  phase: Pending
"""

UNSUPPORTED_PATHS = {
    "metadata.generateName",
    "spec.initContainers[0].volumeMounts[0].readOnlyRecursive",
    "spec.containers[0].volumeDevices",
    "spec.containers[0].dependsOn",
    "spec.containers[0].ports[0].hostIp",
    "spec.volumes[0].awsElasticBlockStore",
}

#: what UNSUPPORTED sets that only a cluster gives a meaning: kept, not unsupported
UNSUPPORTED_CLUSTER_FIELDS = {
    "spec.schedulerName": "default-scheduler",
    "spec.enableServiceLinks": True,
}


def test_unsupported_fields_are_listed_at_once() -> None:
    with pytest.raises(UnsupportedFieldError) as info:
        load_pod(UNSUPPORTED)
    assert set(info.value.paths) == UNSUPPORTED_PATHS
    assert len(info.value.paths) == len(UNSUPPORTED_PATHS)
    assert "strict=False" in str(info.value)
    # a refused field says why, and what to use instead
    assert "awsElasticBlockStore (a cluster's network or cloud disk: use a hostPath" in str(
        info.value
    )


def test_unsupported_fields_dropped_with_one_warning() -> None:
    with pytest.warns(UserWarning, match="dropped unsupported field") as record:
        pod = load_pod(UNSUPPORTED, strict=False)
    assert len(record) == 1
    assert record[0].filename == __file__  # stacklevel points at the caller
    message = str(record[0].message)
    assert all(path in message for path in UNSUPPORTED_PATHS)
    assert pod == attrs.evolve(SEED_POD, cluster_fields=UNSUPPORTED_CLUSTER_FIELDS)


def test_empty_unknown_keys_are_dropped_silently() -> None:
    text = SEED + "status: {}\n"
    text = text.replace("  name: javaweb-2\n", "  name: javaweb-2\n  creationTimestamp: null\n")
    text = text.replace(
        "    name: tomcat\n",
        "    name: tomcat\n    resources: {}\n    env: []\n"
        "    securityContext: {capabilities: {}, seLinuxOptions: {level: null}}\n",
    )
    assert load_pod(text) == SEED_POD  # filterwarnings=error: no warning either


def test_output_only_fields_are_dropped_silently() -> None:
    doc = seed_doc()
    doc["metadata"]["creationTimestamp"] = "2026-11-27T01:17:51Z"
    doc["metadata"]["uid"] = "6b1c6a3e-0000-4000-8000-000000000000"
    doc["metadata"]["resourceVersion"] = "4711"
    doc["status"] = {"phase": "Running", "podIP": "10.88.0.5", "containerStatuses": [{}]}
    assert load_doc(doc) == SEED_POD


@pytest.mark.parametrize(
    ("key", "value"),
    [("automountServiceAccountToken", True), ("enableServiceLinks", False)],
)
def test_service_account_and_links_are_cluster_fields(key: str, value: Any) -> None:
    """What a cluster's API server and services would give the pod: kept, listed, ignored."""
    doc = seed_doc()
    doc["spec"][key] = value
    pod = load_doc(doc)
    assert pod.ignored_fields == (f"spec.{key}",)
    assert pod.cluster_fields == {f"spec.{key}": value}
    assert yaml.safe_load(dump_pod(pod))["spec"][key] is value


def test_security_context_is_loaded() -> None:
    doc = seed_doc()
    doc["spec"]["containers"][0]["securityContext"] = {"capabilities": {"add": ["NET_ADMIN"]}}
    context = load_doc(doc).containers[0].security_context
    assert context is not None and context.capabilities is not None
    assert context.capabilities.add == ("NET_ADMIN",)


def test_windows_options_are_refused_with_the_reason() -> None:
    doc = seed_doc()
    options: dict[str, object] = {"runAsUserName": "ContainerUser"}
    doc["spec"]["containers"][0]["securityContext"] = {"windowsOptions": options}
    with pytest.raises(UnsupportedFieldError) as info:
        load_doc(doc)
    assert info.value.paths == ("spec.containers[0].securityContext.windowsOptions",)
    assert "Windows containers are not supported" in str(info.value)
    # a Windows-only pod (a host process) is one error, strict or not
    options["hostProcess"] = True
    for strict in (True, False):
        with pytest.raises(SpecError, match="Windows containers are not supported") as error:
            load_pod(yaml.safe_dump(doc), strict=strict)
        assert not isinstance(error.value, UnsupportedFieldError)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("spec.os", {}),
        ("spec.containers.0.lifecycle", {"stopSignal": {}}),
        ("spec.volumes.0.nfs", {}),
    ],
)
def test_empty_unknown_objects_are_not_dropped_silently(path: str, value: Any) -> None:
    """An empty object says nothing only where Kubernetes takes it as not set."""
    doc = seed_doc()
    _set(path, value)(doc)
    with pytest.raises(UnsupportedFieldError) as info:
        load_doc(doc)
    [where] = info.value.paths
    assert where.startswith(re.sub(r"\.(\d+)", r"[\1]", path))
    with pytest.warns(UserWarning, match=re.escape(where)):
        load_doc(doc, strict=False)


@pytest.mark.parametrize(
    ("path", "value", "where"),
    [
        # Kubernetes: "must specify one of: `fieldRef`, `resourceFieldRef`, ..."
        ("spec.containers.0.env", [{"name": "X", "valueFrom": {}}], "env[0].valueFrom"),
        (
            "spec.containers.0.env",
            [{"name": "X", "valueFrom": {"secretKeyRef": None}}],
            "env[0].valueFrom",
        ),
        # Kubernetes: seccompProfile.type is required
        (
            "spec.containers.0.securityContext",
            {"seccompProfile": {}},
            "securityContext.seccompProfile.type",
        ),
        # a second handler or source, empty: Kubernetes refuses two of them
        (
            "spec.containers.0.livenessProbe",
            {"exec": {"command": ["true"]}, "grpc": {}},
            "livenessProbe.grpc.port",
        ),
        ("spec.volumes.0.configMap", {}, "configMap.name"),
    ],
)
def test_empty_objects_kubernetes_refuses_are_errors(path: str, value: Any, where: str) -> None:
    """An empty object Kubernetes refuses is a SpecError naming its path, not nothing."""
    doc = seed_doc()
    _set(path, value)(doc)
    with pytest.raises(SpecError) as info:
        load_doc(doc)
    assert not isinstance(info.value, UnsupportedFieldError)
    assert info.value.path.endswith(where)


def test_null_known_field_means_unset() -> None:
    doc = seed_doc()
    doc["spec"]["containers"][0]["args"] = None
    doc["spec"]["restartPolicy"] = None
    assert load_doc(doc) == SEED_POD


# What `podman kube generate` writes

# Podman 4.3.1's output, verbatim (GET /libpod/generate/kube), for a pod made with the
# libpod API: two containers sharing a bind mount, the pod publishing 8080 on 127.0.0.1:18092.
PODMAN_GENERATED = (DATA / "podman-4.3.1-generate.yaml").read_text(encoding="utf-8")

PODMAN_GENERATED_POD = Pod(
    name="kubert-rest",
    labels={"app": "kubert-rest"},
    hostname="kubert-rest",
    restart_policy=RestartPolicy.NEVER,
    containers=[
        Container(
            name="kubert-rest-web",
            image="localhost/asyncpod-test-busybox:latest",
            command=["httpd", "-f", "-p", "8080", "-h", "/data"],
            ports=[ContainerPort(container_port=8080, host_ip="127.0.0.1", host_port=18092)],
            volume_mounts=[VolumeMount(name="tmp-kubert-host2-host-0", mount_path="/data")],
        ),
        Container(
            name="kubert-rest-side",
            image="localhost/asyncpod-test-busybox:latest",
            command=["sh", "-c", "echo hello > /data/index.html; exec sleep 1000"],
            env=[EnvVar(name="GREETING", value="hi")],
            working_dir="/tmp",
            volume_mounts=[VolumeMount(name="tmp-kubert-host2-host-0", mount_path="/data")],
        ),
    ],
    volumes=[
        Volume(
            name="tmp-kubert-host2-host-0",
            host_path=HostPathVolumeSource(path="/tmp/kubert-host2", type="Directory"),
        )
    ],
    cluster_fields={"spec.automountServiceAccountToken": False, "spec.enableServiceLinks": False},
)


def test_podman_generated_manifest_loads_as_it_is() -> None:
    """Everything Podman adds states what asyncpod does anyway: no error, no warning."""
    assert load_pod(PODMAN_GENERATED) == PODMAN_GENERATED_POD
    check_pod_manifest(yaml.safe_load(dump_pod(PODMAN_GENERATED_POD)))


def test_podman_named_volume_loads_as_a_claim() -> None:
    """Podman exports a named volume as a persistentVolumeClaim, which asyncpod models."""
    text = PODMAN_GENERATED.replace(
        "  - hostPath:\n      path: /tmp/kubert-host2\n      type: Directory\n",
        "  - persistentVolumeClaim:\n      claimName: kubert-data\n",
    )
    [volume] = load_pod(text).volumes
    assert volume.persistent_volume_claim is not None
    assert volume.persistent_volume_claim.claim_name == "kubert-data"
    assert volume.host_path is None


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("io.podman.annotations.privileged/kubert-rest-web", "TRUE"),
        ("io.podman.annotations.init/kubert-rest-side", "true"),
        ("io.podman.annotations.autoremove/kubert-rest-web", ""),
        ("io.kubernetes.cri-o.TTY/kubert-rest-side", "true"),
        ("io.kubernetes.cri-o.ContainerType/kubert-rest-web", "sandbox"),
    ],
)
def test_podman_options_asyncpod_lacks_are_unsupported(key: str, value: str) -> None:
    doc = yaml.safe_load(PODMAN_GENERATED)
    doc["metadata"]["annotations"][key] = value
    with pytest.raises(UnsupportedFieldError) as info:
        load_doc(doc)
    assert info.value.paths == (f"metadata.annotations[{json.dumps(key)}]",)
    with pytest.warns(UserWarning, match=re.escape(key)):
        assert load_doc(doc, strict=False) == PODMAN_GENERATED_POD


def test_podman_options_are_read_case_blind_and_other_annotations_kept() -> None:
    doc = yaml.safe_load(PODMAN_GENERATED)
    annotations = doc["metadata"]["annotations"]
    annotations["io.podman.annotations.init/kubert-rest-web"] = "false"
    annotations["io.kubernetes.cri-o.TTY/kubert-rest-web"] = "False"
    annotations["io.podman.annotations.init/no-such-container"] = "FALSE"
    annotations["io.podman.annotations.init.container.type"] = "always"  # not an option
    annotations["example.com/owner"] = "me"
    assert load_doc(doc).annotations == {
        "io.podman.annotations.init.container.type": "always",
        "example.com/owner": "me",
    }


def test_dump_refuses_podman_option_annotation() -> None:
    key = "io.podman.annotations.privileged/kubert-rest-web"
    pod = attrs.evolve(PODMAN_GENERATED_POD, annotations={key: "TRUE"})
    with pytest.raises(SpecError, match="Podman container option") as info:
        dump_pod(pod)
    assert info.value.path == f"metadata.annotations[{json.dumps(key)}]"


# Errors


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A mutation setting the key at dotted *path* (indices as [n]) of a manifest."""
    *parents, last = re.findall(r"[^.\[\]]+", path)

    def mutate(doc: dict[str, Any]) -> None:
        node: Any = doc
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        if value is _DELETE:
            del node[last]
        else:
            node[int(last) if last.isdigit() else last] = value

    return mutate


_DELETE = object()

_SECOND = {"name": "Bad_Name", "image": "busybox"}


@pytest.mark.parametrize(
    ("mutate", "path", "match"),
    [
        (
            lambda d: d["spec"]["containers"].append(dict(_SECOND)),
            "spec.containers[1].name",
            "not a valid DNS-1123 label",
        ),
        (
            _set("spec.containers.0.volumeMounts.0.name", "nope"),
            "spec.containers[0].volumeMounts[0].name",
            "names no volume of the pod: 'nope'",
        ),
        (
            _set("spec.containers.0.ports.0.containerPort", "abc"),
            "spec.containers[0].ports[0].containerPort",
            "must be an integer, not str 'abc'",
        ),
        (
            _set("spec.containers.0.ports.0.containerPort", "8080"),
            "spec.containers[0].ports[0].containerPort",
            "must be an integer",
        ),
        (
            _set("spec.containers.0.ports.0.containerPort", 70000),
            "spec.containers[0].ports[0].containerPort",
            "between 1 and 65535",
        ),
        (
            _set("spec.containers.0.ports.0.hostIP", ""),
            "spec.containers[0].ports[0].hostIP",
            "must not be empty",
        ),
        (
            _set("spec.containers.0.ports.0.protocol", "HTTP"),
            "spec.containers[0].ports[0].protocol",
            "must be one of 'TCP', 'UDP', 'SCTP', not 'HTTP'",
        ),
        (
            _set("spec.containers.0.volumeMounts.0.readOnly", "false"),
            "spec.containers[0].volumeMounts[0].readOnly",
            "must be true or false",
        ),
        (
            _set("spec.initContainers.0.command", "cp /app.war /app"),
            "spec.initContainers[0].command",
            "must be a list, not str",
        ),
        (
            _set("spec.initContainers.0.command.1", 5),
            "spec.initContainers[0].command[1]",
            "must be a string, not int 5",
        ),
        (
            _set("spec.containers.0.image", _DELETE),
            "spec.containers[0].image",
            "is required",
        ),
        (
            _set("spec.containers.0", "tomcat"),
            "spec.containers[0]",
            "must be a mapping, not str",
        ),
        (_set("spec.containers", []), "spec.containers", "at least one container"),
        (
            _set("spec.volumes.0.hostPath", {"path": "/srv"}),
            "spec.volumes[0]",
            "exactly one volume source of emptyDir, hostPath",
        ),
        (
            _set("spec.volumes.0.emptyDir", {"medium": "Disk"}),
            "spec.volumes[0].emptyDir.medium",
            "must be '' or 'Memory'",
        ),
        (
            _set("spec.containers.0.readinessProbe", {"httpGet": {"port": "web"}}),
            "spec.containers[0].readinessProbe.httpGet.port",
            "names no port of this container: 'web'",
        ),
        (
            _set("spec.containers.0.readinessProbe", {"httpGet": {"port": True}}),
            "spec.containers[0].readinessProbe.httpGet.port",
            "must be a port number or name",
        ),
        (_set("spec.restartPolicy", "Sometimes"), "spec.restartPolicy", "must be one of"),
        (
            _set("spec.terminationGracePeriodSeconds", -1),
            "spec.terminationGracePeriodSeconds",
            "at least 0",
        ),
        (_set("metadata.name", _DELETE), "metadata.name", "is required"),
        (_set("metadata.name", "Java_Web"), "metadata.name", "not a valid pod name"),
        (_set("metadata.labels", {"version": 1}), 'metadata.labels["version"]', "string"),
        (_set("metadata.labels", ["a"]), "metadata.labels", "must be a mapping"),
        (_set("metadata", ["a"]), "metadata", "must be a mapping"),
        (_set("spec", _DELETE), "spec", "is required"),
    ],
)
def test_error_paths(mutate: Callable[[dict[str, Any]], None], path: str, match: str) -> None:
    doc = seed_doc()
    mutate(doc)
    with pytest.raises(SpecError, match=re.escape(match)) as info:
        load_doc(doc)
    assert type(info.value) is SpecError
    assert info.value.path == path
    assert str(info.value).startswith(f"{path}: ")


@pytest.mark.parametrize(
    ("key", "value", "path"),
    [
        ("kind", "Deployment", "apiVersion"),  # a Deployment is apps/v1
        ("kind", "Service", "kind"),
        ("kind", _DELETE, "kind"),
        ("apiVersion", "apps/v1", "apiVersion"),
        ("apiVersion", "v2", "apiVersion"),
    ],
)
def test_wrong_kind_or_api_version(key: str, value: Any, path: str) -> None:
    doc = seed_doc()
    doc["spec"]["template"] = {"anything": 1}  # reported after kind and apiVersion
    _set(key, value)(doc)
    with pytest.raises(SpecError) as info:
        load_doc(doc)
    assert info.value.path == path


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (SEED + "---\n" + SEED, "exactly one Pod or workload, found 2 (Pod/javaweb-2, Pod/"),
        ("", "found 0"),
        ("# just a comment\n", "found 0"),
        ("- a\n- b\n", "must be a mapping, not list"),
        ("apiVersion: v1\nkind: [Pod\n", "not a valid YAML or JSON document"),
    ],
)
def test_not_one_manifest(text: str, match: str) -> None:
    with pytest.raises(SpecError, match=re.escape(match)) as info:
        load_pod(text)
    assert info.value.path == ""


def test_trailing_document_marker_is_fine() -> None:
    assert load_pod(SEED + "---\n") == SEED_POD


# depends_on in annotations


DEPENDENT = """\
apiVersion: v1
kind: Pod
metadata:
  name: deps
  annotations:
    owner: team-a
    depends-on.asyncpod.io/web: "db:ready, cache"
spec:
  containers:
  - name: db
    image: postgres:16
    readinessProbe:
      exec:
        command: [pg_isready]
  - name: cache
    image: redis:7
  - name: web
    image: nginx:1.25
"""


def test_depends_on_annotation_round_trip() -> None:
    pod = load_pod(DEPENDENT)
    assert pod.annotations == {"owner": "team-a"}
    assert pod.container("web").depends_on == (
        Dependency(name="db", condition=Condition.READY),
        Dependency(name="cache", condition=Condition.STARTED),
    )
    text = dump_pod(pod)
    assert (
        yaml.safe_load(text)["metadata"]["annotations"]
        == yaml.safe_load(DEPENDENT)["metadata"]["annotations"]
    )
    assert load_pod(text) == pod


def _with_annotations(annotations: dict[str, Any]) -> str:
    doc = yaml.safe_load(DEPENDENT)
    doc["metadata"]["annotations"] = annotations
    doc["spec"]["initContainers"] = [{"name": "init", "image": "busybox"}]
    return yaml.safe_dump(doc)


_WEB = 'metadata.annotations["depends-on.asyncpod.io/web"]'


@pytest.mark.parametrize(
    ("annotations", "path", "match"),
    [
        (
            {"depends-on.asyncpod.io/x": "db"},
            'metadata.annotations["depends-on.asyncpod.io/x"]',
            "names no container of the pod: 'x'",
        ),
        ({"depends-on.asyncpod.io/web": "nope"}, _WEB, "names no container of the pod: 'nope'"),
        ({"depends-on.asyncpod.io/web": "db:done"}, _WEB, "must be one of 'started'"),
        ({"depends-on.asyncpod.io/web": "cache:ready"}, _WEB, "needs a readiness probe"),
        ({"depends-on.asyncpod.io/web": "db,,cache"}, _WEB, "an entry without a container"),
        ({"depends-on.asyncpod.io/web": "web"}, _WEB, "cannot depend on itself"),
        ({"depends-on.asyncpod.io/web": "db, db:ready"}, _WEB, "duplicate dependency 'db'"),
        ({"depends-on.asyncpod.io/web": "init"}, _WEB, "'init' is an init container"),
        ({"depends-on.asyncpod.io/web": 3}, _WEB, "must be a string"),
        (
            {"depends-on.asyncpod.io/init": "db"},
            'metadata.annotations["depends-on.asyncpod.io/init"]',
            "init containers run in list order",
        ),
    ],
)
def test_depends_on_annotation_errors(annotations: dict[str, Any], path: str, match: str) -> None:
    with pytest.raises(SpecError, match=re.escape(match)) as info:
        load_pod(_with_annotations(annotations))
    assert info.value.path == path


def test_dependency_cycle() -> None:
    text = """\
apiVersion: v1
kind: Pod
metadata:
  name: cycle
  annotations:
    depends-on.asyncpod.io/a: b
    depends-on.asyncpod.io/b: c
    depends-on.asyncpod.io/c: a:completed
spec:
  containers:
  - {name: a, image: busybox}
  - {name: b, image: busybox}
  - {name: c, image: busybox}
"""
    with pytest.raises(DependencyCycleError) as info:
        load_pod(text)
    assert info.value.cycle == ("a", "b", "c", "a")
    assert str(info.value) == (
        'metadata.annotations["depends-on.asyncpod.io/c"]: dependency cycle: a -> b -> c -> a'
    )


def test_depends_on_empty_annotation_means_none() -> None:
    pod = load_pod(_with_annotations({"depends-on.asyncpod.io/web": " "}))
    assert pod.container("web").depends_on == ()
    assert pod.annotations == {}


def test_dump_refuses_reserved_annotation() -> None:
    pod = load_pod(_with_annotations({"owner": "me"}))
    pod = attrs.evolve(pod, annotations={"depends-on.asyncpod.io/web": "db"})
    with pytest.raises(SpecError, match="reserved") as info:
        dump_pod(pod)
    assert info.value.path == _WEB


# Property: any valid Pod survives dump -> load.
#
# The strategies are built once, at module level: hypothesis validates every strategy
# object it meets, so building them inside composites per draw makes generation slow.

_LOWER = "abcdefghijklmnopqrstuvwxyz"
_LABEL = st.builds(
    lambda head, tail: head + tail.rstrip("-"),
    st.sampled_from(_LOWER),
    st.text(_LOWER + "0123456789-", max_size=8),
)
_TEXT = st.text(max_size=12)  # any unicode: exercises YAML quoting
_NONEMPTY = st.text(min_size=1, max_size=12)
_COMMAND = st.lists(_TEXT, min_size=1, max_size=3)
_POSITIVE = st.integers(1, 100)
_PORT_NUMBER = st.integers(1, 65535)
_IMAGES = st.sampled_from(
    [
        "busybox",
        "localhost/asyncpod/busybox:latest",
        "app:v2",
        "registry.example.com:5000/team/app:1.0",
        "quay.io/x/y@sha256:" + "0f" * 32,
    ]
)
_HANDLER_KINDS = st.sampled_from(["exec", "http_get", "tcp_socket"])
# printable: CR, LF and other control characters are refused in HTTP headers and hosts
_PRINTABLE = st.characters(blacklist_categories=("Cc", "Cs"))
_HEADER_NAMES = st.text(string.ascii_letters + string.digits + "-", min_size=1, max_size=12)
_HEADERS = st.lists(
    st.builds(HTTPHeader, name=_HEADER_NAMES, value=st.text(_PRINTABLE, max_size=12)), max_size=2
)
_HOSTS = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zs")), min_size=1, max_size=12)
_ENV = st.lists(
    st.builds(
        EnvVar,
        name=st.builds(str.__add__, st.sampled_from("_Ab"), st.text("AZaz09_.-", max_size=6)),
        value=_TEXT,
    ),
    max_size=3,
)
_SUB_PATH = st.lists(_LABEL, min_size=1, max_size=2).map("/".join)
_LABEL_KEY = _LABEL | st.builds("{}.io/{}".format, _LABEL, _LABEL)
_LABEL_VALUE = st.from_regex(r"(([A-Za-z0-9][-A-Za-z0-9_.]{0,10})?[A-Za-z0-9])?", fullmatch=True)
_LABELS = st.dictionaries(_LABEL_KEY, _LABEL_VALUE, max_size=3)
_ANNOTATION_KEY = _LABEL_KEY | st.builds("{}.IO/{}".format, _LABEL, _LABEL.map(str.upper))
_ANNOTATIONS = st.dictionaries(_ANNOTATION_KEY, _TEXT, max_size=3)
_VOLUME_SOURCE = st.one_of(
    st.builds(
        EmptyDirVolumeSource,
        medium=st.sampled_from(["", "Memory"]),
        size_limit=st.sampled_from([None, "64Mi", "1Gi", "500k", "1.5G"]),
    ).map(lambda source: {"empty_dir": source}),
    st.builds(
        HostPathVolumeSource,
        path=_LABEL.map("/{}".format),
        type=st.sampled_from(["", "Directory", "DirectoryOrCreate", "File"]),
    ).map(lambda source: {"host_path": source}),
)


_T = TypeVar("_T")


def _optional(strategy: st.SearchStrategy[_T]) -> st.SearchStrategy[_T | None]:
    return st.none() | strategy


_OPTIONAL_TEXT = _optional(_NONEMPTY)


@st.composite
def _probes(draw: st.DrawFn, port_names: tuple[str, ...], kind: str) -> Probe:
    def port() -> int | str:
        if bool(port_names) and draw(
            st.booleans()
        ):  # (bool: mypy infers draw's type from the left)
            return draw(st.sampled_from(port_names))
        return draw(_PORT_NUMBER)

    handler = draw(_HANDLER_KINDS)
    action: Any
    if handler == "exec":
        action = ExecAction(command=draw(_COMMAND))
    elif handler == "http_get":
        action = HTTPGetAction(
            port=port(),
            path="/" + draw(_TEXT),
            host=draw(_optional(_HOSTS)),
            scheme=draw(st.sampled_from(["HTTP", "HTTPS"])),
            http_headers=draw(_HEADERS),
        )
    else:
        action = TCPSocketAction(port=port(), host=draw(_optional(_HOSTS)))
    return Probe(
        **{handler: action},
        initial_delay_seconds=draw(st.integers(0, 100)),
        period_seconds=draw(_POSITIVE),
        timeout_seconds=draw(_POSITIVE),
        success_threshold=draw(_POSITIVE) if kind == "readiness" else 1,
        failure_threshold=draw(_POSITIVE),
        termination_grace_period_seconds=(
            None if kind == "readiness" else draw(_optional(_POSITIVE))
        ),
    )


@st.composite
def _handlers(draw: st.DrawFn, grace: int) -> LifecycleHandler:
    kind = draw(st.sampled_from(["exec", "http_get", "sleep"]))
    if kind == "exec":
        return LifecycleHandler(exec=ExecAction(command=draw(_COMMAND)))
    if kind == "http_get":
        return LifecycleHandler(http_get=HTTPGetAction(port=draw(_PORT_NUMBER)))
    seconds = draw(st.integers(0, 120)) % (grace + 1)  # a sleep may not outlast the grace period
    return LifecycleHandler(sleep=SleepAction(seconds=seconds))


@st.composite
def _containers(
    draw: st.DrawFn,
    name: str,
    role: str,  # "init", "sidecar" or "app"
    volumes: tuple[str, ...],
    first_port: int,
    grace: int,
    dependencies: tuple[Dependency, ...],
) -> Container:
    """A container whose ports are numbered from *first_port* (unique pod-wide)."""
    ports = [
        ContainerPort(
            container_port=draw(_PORT_NUMBER),
            host_port=draw(st.sampled_from([None, 20000 + number])),
            host_ip=draw(st.sampled_from([None, "127.0.0.1", "::1"])),
            protocol=draw(st.sampled_from(Protocol)),
            name=draw(st.sampled_from([None, f"p{number}"])),
        )
        for number in range(first_port, first_port + draw(st.integers(0, 2)))
    ]
    port_names = tuple(p.name for p in ports if p.name is not None)
    mount_paths = draw(st.lists(_LABEL, max_size=len(volumes), unique=True))
    mounts = [
        VolumeMount(
            name=draw(st.sampled_from(volumes)),
            mount_path="/" + path,
            read_only=draw(st.booleans()),
            sub_path=draw(_optional(_SUB_PATH)),
        )
        for path in mount_paths
    ]
    hooked = role != "init"  # plain init containers take no probes or hooks

    def probe(kind: str) -> Probe | None:
        return draw(_optional(_probes(port_names, kind))) if hooked else None

    def hook() -> LifecycleHandler | None:
        return draw(_optional(_handlers(grace)))

    if role == "app":
        restart_policy = draw(_optional(st.sampled_from(RestartPolicy)))
    else:
        restart_policy = RestartPolicy.ALWAYS if role == "sidecar" else None
    return Container(
        name=name,
        image=draw(_IMAGES),
        command=draw(st.lists(_TEXT, max_size=3)),
        args=draw(st.lists(_TEXT, max_size=3)),
        working_dir=draw(_OPTIONAL_TEXT),
        env=draw(_ENV),
        ports=ports,
        volume_mounts=mounts,
        image_pull_policy=draw(_optional(st.sampled_from(PullPolicy))),
        restart_policy=restart_policy,
        startup_probe=probe("startup"),
        readiness_probe=probe("readiness"),
        liveness_probe=probe("liveness"),
        lifecycle=(
            Lifecycle(post_start=hook(), pre_stop=hook())
            if hooked and draw(st.booleans())
            else None
        ),
        depends_on=dependencies,
    )


@st.composite
def pods(draw: st.DrawFn) -> Pod:
    """A valid Pod: init containers, sidecars and app containers, with a random DAG of
    depends_on among app containers (each depends only on earlier ones, or sidecars)."""
    names = draw(st.lists(_LABEL, min_size=1, max_size=5, unique=True))
    first_app = draw(st.integers(0, len(names) - 1))
    roles = [draw(st.sampled_from(["init", "sidecar"])) for _ in names[:first_app]]
    roles += ["app"] * (len(names) - first_app)
    volume_names = tuple(draw(st.lists(_LABEL, max_size=3, unique=True)))
    grace = draw(st.integers(0, 120))
    built: list[tuple[str, Container]] = []
    for name, role in zip(names, roles, strict=True):
        dependencies = []
        targets = [c for r, c in built if r in ("app", "sidecar")]
        if role == "app" and targets:
            chosen = draw(st.lists(st.sampled_from(targets), unique_by=lambda c: c.name))
            for target in chosen:
                conditions = [Condition.STARTED, Condition.COMPLETED]
                if target.readiness_probe is not None:
                    conditions.append(Condition.READY)
                condition = draw(st.sampled_from(conditions))
                dependencies.append(Dependency(name=target.name, condition=condition))
        first_port = sum(len(c.ports) for _, c in built)
        container = draw(
            _containers(name, role, volume_names, first_port, grace, tuple(dependencies))
        )
        built.append((role, container))
    return Pod(
        name=".".join(draw(st.lists(_LABEL, min_size=1, max_size=3))),
        init_containers=[c for r, c in built if r != "app"],
        containers=[c for r, c in built if r == "app"],
        volumes=[Volume(name=name, **draw(_VOLUME_SOURCE)) for name in volume_names],
        restart_policy=draw(st.sampled_from(RestartPolicy)),
        termination_grace_period_seconds=grace,
        hostname=draw(_optional(_LABEL)),
        share_process_namespace=draw(st.booleans()),
        labels=draw(_LABELS),
        annotations=draw(_ANNOTATIONS),
    )


@settings(max_examples=60, deadline=None)
@given(pods())
def test_property_dump_load_round_trip(pod: Pod) -> None:
    text = dump_pod(pod)
    check_pod_manifest(yaml.safe_load(text))  # a valid Kubernetes Pod: no dependsOn key
    assert load_pod(text) == pod


@pytest.mark.parametrize(
    "text",
    [
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n"
        "  - name: a\n    image: busybox\n    command: [a]\n    command: [b]\n",
        '{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "name": "q"},'
        ' "spec": {"containers": [{"name": "a", "image": "busybox"}]}}',
    ],
    ids=["yaml", "json"],
)
def test_a_key_twice_is_an_error(text: str) -> None:
    """YAML and JSON parsers keep the last of two equal keys; a manifest may not have them."""
    with pytest.raises(SpecError, match="duplicate key"):
        load_pod(text)


def test_dump_quotes_strings_other_yaml_readers_would_not_read_as_strings() -> None:
    """y/n are booleans to Go's YAML (kubectl, Podman), 0o17 an integer to YAML 1.2."""
    values = ["y", "N", "0o17", "no", "yes", "on", "1e3", "2.5E-1", "0x1F", "null"]
    pod = Pod(
        name="p",
        containers=[
            Container(
                name="a",
                image="busybox",
                env=[EnvVar(name=f"V{i}", value=v) for i, v in enumerate(values)],
            )
        ],
    )
    text = dump_pod(pod)
    for value in values:
        assert f"value: '{value}'" in text, value
    assert load_pod(text) == pod


@pytest.mark.parametrize(
    "key",
    [
        "io.podman.annotations.seccomp/web",
        "io.podman.annotations.privileged",
        "seccomp.security.alpha.kubernetes.io/defaultProfileName",
    ],
)
def test_annotations_that_set_what_runs_are_unsupported(key: str) -> None:
    """Podman options and security annotations asyncpod does not honour are not kept
    silently."""
    manifest = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "annotations": {key: "unconfined"}},
        "spec": {"containers": [{"name": "web", "image": "busybox"}]},
    }
    with pytest.raises(UnsupportedFieldError) as info:
        load_pod(json.dumps(manifest))
    assert info.value.paths == (f"metadata.annotations[{json.dumps(key)}]",)
    with pytest.raises(SpecError, match="does not honour"):
        dump_pod(Pod(name="p", annotations={key: "x"}, containers=[Container(name="w", image="b")]))
    kept = "io.podman.annotations.init.container.type"
    manifest["metadata"]["annotations"] = {kept: "always"}  # type: ignore[index]
    assert load_pod(json.dumps(manifest)).annotations == {kept: "always"}


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("seccomp.security.alpha.kubernetes.io/pod", "runtime/default"),
        ("seccomp.security.alpha.kubernetes.io/pod", "localhost/profiles/audit.json"),
        ("container.seccomp.security.alpha.kubernetes.io/web", "unconfined"),
        ("container.apparmor.security.beta.kubernetes.io/web", "localhost/k8s-deny-write"),
        ("container.apparmor.security.beta.kubernetes.io/web", "runtime/default"),
    ],
)
def test_kubernetes_security_annotations_are_kept_and_written_back(key: str, value: str) -> None:
    """The profiles of the annotations before the seccompProfile and appArmorProfile fields
    are kept on the pod (the supervisor applies them) and written back."""
    manifest = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "annotations": {key: value}},
        "spec": {"containers": [{"name": "web", "image": "busybox"}]},
    }
    pod = load_pod(json.dumps(manifest))
    assert pod.annotations == {key: value}
    assert load_pod(dump_pod(pod)) == pod


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("seccomp.security.alpha.kubernetes.io/pod", "strict", "must be 'runtime/default'"),
        ("seccomp.security.alpha.kubernetes.io/pod", "localhost/", "'localhost/<profile>'"),
        ("container.apparmor.security.beta.kubernetes.io/web", "docker/default", "must be"),
        ("container.apparmor.security.beta.kubernetes.io/db", "unconfined", "no container"),
        ("container.seccomp.security.alpha.kubernetes.io/db", "unconfined", "no container"),
    ],
)
def test_kubernetes_security_annotations_are_checked(key: str, value: str, message: str) -> None:
    """As Kubernetes checks them: a known profile, for a container of the pod."""
    manifest = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "annotations": {key: value}},
        "spec": {"containers": [{"name": "web", "image": "busybox"}]},
    }
    with pytest.raises(SpecError, match=re.escape(message)) as info:
        load_pod(json.dumps(manifest))
    assert info.value.path == f"metadata.annotations[{json.dumps(key)}]"


_RESTART_ALL = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "p"},
    "spec": {
        "restartPolicy": "Never",
        "initContainers": [
            {
                "name": "watcher",
                "image": "busybox",
                "restartPolicy": "Always",
                "restartPolicyRules": [
                    {
                        "action": "RestartAllContainers",
                        "exitCodes": {"operator": "In", "values": [88]},
                    }
                ],
            }
        ],
        "containers": [{"name": "main", "image": "busybox"}],
    },
}


def test_restart_all_containers_is_unsupported_and_lax_drops_the_rule() -> None:
    """KEP-5532's action, which restarts the whole pod in place, is refused with its reason;
    lax drops the rule whole (without its action it would be a Restart rule)."""
    text = json.dumps(_RESTART_ALL)
    path = "spec.initContainers[0].restartPolicyRules[0].action"
    with pytest.raises(UnsupportedFieldError, match="RestartAllContainers") as info:
        load_pod(text)
    assert info.value.paths == (path,)
    with pytest.warns(UserWarning, match=re.escape(path)):
        pod = load_pod(text, strict=False)
    [watcher] = pod.init_containers
    assert watcher.restart_policy_rules == ()
    assert watcher.restart_policy is RestartPolicy.ALWAYS


def test_lax_drop_of_every_resource_leaves_no_resources() -> None:
    """An extended resource or a PID limit dropped by the lax reader leaves no empty
    ``resources``, which would read back as no resources at all."""
    manifest = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {
            "resources": {"limits": {"pids": "2048"}},
            "containers": [
                {
                    "name": "a",
                    "image": "busybox",
                    "resources": {
                        "limits": {"example.com/dongle": 2, "example.com/gpu": 1},
                        "requests": {"example.com/dongle": 2},
                    },
                },
                {
                    "name": "b",
                    "image": "busybox",
                    "resources": {"limits": {"example.com/dongle": 2, "cpu": "1"}},
                },
            ],
        },
    }
    text = json.dumps(manifest)
    with pytest.raises(UnsupportedFieldError, match="extended resources"):
        load_pod(text)
    with pytest.warns(UserWarning, match="extended resources") as record:
        pod = load_pod(text, strict=False)
    assert "a PID limit in resources" in str(record[0].message)
    assert pod.resources is None
    assert pod.containers[0].resources is None
    resources = pod.containers[1].resources
    assert resources is not None
    assert resources.limits == {"cpu": "1"}
    assert resources.requests is None
    assert load_pod(dump_pod(pod)) == pod


# Lone surrogates: a Python str can hold one (JSON's "\ud800"), UTF-8 cannot


def _json_manifest(container: dict[str, Any], **metadata: Any) -> str:
    doc = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", **metadata},
        "spec": {"containers": [{"name": "a", "image": "busybox", **container}]},
    }
    return json.dumps(doc)  # ASCII: the surrogates travel as \ud800 escapes


@pytest.mark.parametrize(
    ("container", "metadata", "path"),
    [
        ({"command": ["sh", "\ud800"]}, {}, "spec.containers[0].command[1]"),
        ({"args": ["a\udc00b"]}, {}, "spec.containers[0].args[0]"),
        ({"env": [{"name": "X", "value": "\ud800"}]}, {}, "spec.containers[0].env[0].value"),
        ({"workingDir": "/\ud800"}, {}, "spec.containers[0].workingDir"),
        ({}, {"annotations": {"note": "\udfff"}}, 'metadata.annotations["note"]'),
        ({}, {"labels": {"\ud800": "x"}}, 'metadata.labels["\\ud800"]'),
    ],
)
def test_lone_surrogates_are_spec_errors_naming_the_field(
    container: dict[str, Any], metadata: dict[str, Any], path: str
) -> None:
    """What dump_pod could not write as a manifest that loads back is refused on load."""
    with pytest.raises(SpecError) as info:
        load_pod(_json_manifest(container, **metadata))
    assert info.value.path == path
    str(info.value).encode("utf-8")  # the message itself can be printed and logged


def test_lone_surrogate_in_the_text_is_a_spec_error() -> None:
    """libyaml cannot read such a str (UnicodeEncodeError); the error says where it is."""
    text = SEED.replace("name: tomcat", "name: tom\ud800cat")
    with pytest.raises(SpecError, match=r"lone surrogate .* at line 15, column 14"):
        load_pod(text)


def test_unsupported_key_with_a_lone_surrogate_is_printable() -> None:
    with pytest.raises(UnsupportedFieldError) as info:
        load_pod(_json_manifest({"\ud800x": 1}))
    assert info.value.paths == ("spec.containers[0].\\ud800x",)
    str(info.value).encode("utf-8")


@settings(max_examples=100, deadline=None)
# st.text drops surrogates whatever its alphabet: join the characters instead
@given(st.lists(st.characters() | st.characters(categories=["Cs"]), max_size=6).map("".join))
def test_property_any_string_round_trips_or_is_a_spec_error(text: str) -> None:
    """Any str, surrogates included: a valid pod that round-trips, or a SpecError."""
    try:
        pod = Pod(
            name="p",
            annotations={"note": text},
            containers=[
                Container(
                    name="a", image="busybox", command=[text], env=[EnvVar(name="X", value=text)]
                )
            ],
        )
    except SpecError as exc:
        assert "lone surrogate" in exc.reason
        assert re.search("[\ud800-\udfff]", text)
        return
    assert load_pod(dump_pod(pod)) == pod
