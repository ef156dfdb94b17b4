"""The documentation says what the code does."""

from __future__ import annotations

import copy
import importlib.util
import json
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs
import pytest
import yaml

import asyncpod
import asyncpod.backends
import asyncpod.kube
import asyncpod.testing
from asyncpod import UnsupportedFieldError
from asyncpod._serde import ManifestKey, Refused, _keys, _non_optional, _tuple_item, manifest_schema

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _load_module(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


# Kubernetes fields: docs/reference/kubernetes-fields.md

FIELDS_PAGE = DOCS / "reference" / "kubernetes-fields.md"

_SECTION = re.compile(r"^## `(\w+)`$", re.MULTILINE)
_ROW = re.compile(r"^\| `(\w+)` \| (yes|no|ignored) \|", re.MULTILINE)


def parse_fields_page(text: str) -> dict[str, dict[str, bool | None]]:
    """Kubernetes type -> {field: supported} from the page's tables (None: ignored)."""
    sections: dict[str, dict[str, bool | None]] = {}
    parts = _SECTION.split(text)
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        rows = _ROW.findall(body)
        fields = {
            field: None if supported == "ignored" else supported == "yes"
            for field, supported in rows
        }
        assert len(fields) == len(rows), f"{name}: a field is listed twice"
        sections[name] = fields
    return sections


def _model(schema: Any) -> type | None:
    """The attrs class a key holds (plain, ``X | None`` or ``tuple[X, ...]``), if any."""
    schema = _non_optional(schema)
    item = _tuple_item(schema)
    if item is not None:
        schema = _non_optional(item)
    return schema if isinstance(schema, type) and attrs.has(schema) else None


def schema_objects() -> dict[str, Mapping[str, ManifestKey]]:
    """Kubernetes type -> the keys the manifest reader knows, for every object of a Pod.

    The models are named after the Kubernetes types (``Container``, ``HTTPGetAction``...).
    """
    top = manifest_schema()
    found: dict[str, Mapping[str, ManifestKey]] = {
        "Pod": top,
        "ObjectMeta": top["metadata"].schema,
        "PodSpec": top["spec"].schema,
    }
    pending = list(found.values())
    while pending:
        for known in pending.pop().values():
            cls = _model(known.schema)
            if cls is not None and cls.__name__ not in found:
                found[cls.__name__] = _keys(cls)
                pending.append(found[cls.__name__])
    return found


# Where an object of each type sits in BASE_MANIFEST.
LOCATIONS: dict[str, tuple[str | int, ...]] = {
    "Pod": (),
    "ObjectMeta": ("metadata",),
    "PodSpec": ("spec",),
    "Container": ("spec", "containers", 0),
    "ContainerRestartRule": ("spec", "containers", 0, "restartPolicyRules", 0),
    "ContainerRestartRuleOnExitCodes": (
        "spec",
        "containers",
        0,
        "restartPolicyRules",
        0,
        "exitCodes",
    ),
    "EnvVar": ("spec", "containers", 0, "env", 0),
    "ContainerPort": ("spec", "containers", 0, "ports", 0),
    "VolumeMount": ("spec", "containers", 0, "volumeMounts", 0),
    "Probe": ("spec", "containers", 0, "readinessProbe"),
    "ExecAction": ("spec", "containers", 0, "livenessProbe", "exec"),
    "HTTPGetAction": ("spec", "containers", 0, "readinessProbe", "httpGet"),
    "HTTPHeader": ("spec", "containers", 0, "readinessProbe", "httpGet", "httpHeaders", 0),
    "TCPSocketAction": ("spec", "containers", 0, "startupProbe", "tcpSocket"),
    "Lifecycle": ("spec", "containers", 0, "lifecycle"),
    "LifecycleHandler": ("spec", "containers", 0, "lifecycle", "preStop"),
    "SleepAction": ("spec", "containers", 0, "lifecycle", "preStop", "sleep"),
    "Volume": ("spec", "volumes", 0),
    "EmptyDirVolumeSource": ("spec", "volumes", 0, "emptyDir"),
    "HostPathVolumeSource": ("spec", "volumes", 1, "hostPath"),
    "ResourceRequirements": ("spec", "containers", 0, "resources"),
    "ContainerResizePolicy": ("spec", "containers", 0, "resizePolicy", 0),
    "SecurityContext": ("spec", "containers", 0, "securityContext"),
    "Capabilities": ("spec", "containers", 0, "securityContext", "capabilities"),
    "SeccompProfile": ("spec", "containers", 0, "securityContext", "seccompProfile"),
    "AppArmorProfile": ("spec", "containers", 0, "securityContext", "appArmorProfile"),
    "SELinuxOptions": ("spec", "containers", 0, "securityContext", "seLinuxOptions"),
    "PodSecurityContext": ("spec", "securityContext"),
    "Sysctl": ("spec", "securityContext", "sysctls", 0),
    "PodDNSConfig": ("spec", "dnsConfig"),
    "PodDNSConfigOption": ("spec", "dnsConfig", "options", 0),
    "HostAlias": ("spec", "hostAliases", 0),
    "GRPCAction": ("spec", "initContainers", 0, "livenessProbe", "grpc"),
    "EnvVarSource": ("spec", "containers", 0, "env", 1, "valueFrom"),
    "ConfigMapKeySelector": ("spec", "containers", 0, "env", 1, "valueFrom", "configMapKeyRef"),
    "SecretKeySelector": ("spec", "containers", 0, "env", 2, "valueFrom", "secretKeyRef"),
    "ObjectFieldSelector": ("spec", "containers", 0, "env", 3, "valueFrom", "fieldRef"),
    "ResourceFieldSelector": ("spec", "containers", 0, "env", 4, "valueFrom", "resourceFieldRef"),
    "EnvFromSource": ("spec", "containers", 0, "envFrom", 0),
    "ConfigMapEnvSource": ("spec", "containers", 0, "envFrom", 0, "configMapRef"),
    "SecretEnvSource": ("spec", "containers", 0, "envFrom", 1, "secretRef"),
    "PersistentVolumeClaimVolumeSource": ("spec", "volumes", 2, "persistentVolumeClaim"),
    "ConfigMapVolumeSource": ("spec", "volumes", 3, "configMap"),
    "KeyToPath": ("spec", "volumes", 3, "configMap", "items", 0),
    "SecretVolumeSource": ("spec", "volumes", 4, "secret"),
    "ProjectedVolumeSource": ("spec", "volumes", 5, "projected"),
    "VolumeProjection": ("spec", "volumes", 5, "projected", "sources", 0),
    "ConfigMapProjection": ("spec", "volumes", 5, "projected", "sources", 0, "configMap"),
    "SecretProjection": ("spec", "volumes", 5, "projected", "sources", 1, "secret"),
    "DownwardAPIProjection": ("spec", "volumes", 5, "projected", "sources", 2, "downwardAPI"),
    "DownwardAPIVolumeSource": ("spec", "volumes", 6, "downwardAPI"),
    "DownwardAPIVolumeFile": ("spec", "volumes", 6, "downwardAPI", "items", 0),
    "ImageVolumeSource": ("spec", "volumes", 7, "image"),
    "EphemeralVolumeSource": ("spec", "volumes", 8, "ephemeral"),
    "PersistentVolumeClaimTemplate": ("spec", "volumes", 8, "ephemeral", "volumeClaimTemplate"),
    "PersistentVolumeClaimSpec": (
        *("spec", "volumes", 8, "ephemeral", "volumeClaimTemplate", "spec"),
    ),
    "VolumeResourceRequirements": (
        *("spec", "volumes", 8, "ephemeral", "volumeClaimTemplate", "spec", "resources"),
    ),
}

BASE_MANIFEST: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "fields"},
    "spec": {
        "containers": [
            {
                "name": "web",
                "image": "busybox",
                "env": [
                    {"name": "A", "value": "1"},
                    {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}},
                    {"name": "C", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
                    {"name": "D", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "E", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
                ],
                "envFrom": [{"configMapRef": {"name": "c"}}, {"secretRef": {"name": "s"}}],
                "resources": {"limits": {"cpu": "1"}},
                "resizePolicy": [{"resourceName": "cpu", "restartPolicy": "NotRequired"}],
                "securityContext": {
                    "capabilities": {"drop": ["ALL"]},
                    "seccompProfile": {"type": "RuntimeDefault"},
                    "appArmorProfile": {"type": "RuntimeDefault"},
                    "seLinuxOptions": {"level": "s0"},
                },
                "ports": [{"containerPort": 8080}],
                "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                "startupProbe": {"tcpSocket": {"port": 8080}},
                "readinessProbe": {
                    "httpGet": {"port": 8080, "httpHeaders": [{"name": "X", "value": "1"}]}
                },
                "livenessProbe": {"exec": {"command": ["true"]}},
                "lifecycle": {"preStop": {"sleep": {"seconds": 1}}},
                "restartPolicy": "OnFailure",
                "restartPolicyRules": [
                    {"action": "Restart", "exitCodes": {"operator": "In", "values": [42]}}
                ],
            }
        ],
        "initContainers": [
            {
                "name": "side",
                "image": "busybox",
                "restartPolicy": "Always",
                "livenessProbe": {"grpc": {"port": 9000}},
            }
        ],
        "securityContext": {"sysctls": [{"name": "net.ipv4.ip_forward", "value": "1"}]},
        "dnsConfig": {"options": [{"name": "ndots", "value": "2"}]},
        "hostAliases": [{"ip": "127.0.0.1", "hostnames": ["db"]}],
        "volumes": [
            {"name": "data", "emptyDir": {}},
            {"name": "host", "hostPath": {"path": "/tmp"}},
            {"name": "claim", "persistentVolumeClaim": {"claimName": "c"}},
            {"name": "cm", "configMap": {"name": "c", "items": [{"key": "k", "path": "k"}]}},
            {"name": "sec", "secret": {"secretName": "s"}},
            {
                "name": "proj",
                "projected": {
                    "sources": [
                        {"configMap": {"name": "c"}},
                        {"secret": {"name": "s"}},
                        {"downwardAPI": {}},
                    ]
                },
            },
            {
                "name": "down",
                "downwardAPI": {
                    "items": [{"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]
                },
            },
            {"name": "img", "image": {"reference": "busybox"}},
            {
                "name": "eph",
                "ephemeral": {
                    "volumeClaimTemplate": {
                        "spec": {
                            "accessModes": ["ReadWriteOnce"],
                            "resources": {"requests": {"storage": "1Gi"}},
                        }
                    }
                },
            },
        ],
    },
}


def _path(location: tuple[str | int, ...], key: str) -> str:
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else part
    return f"{text}.{key}" if text else key


def _at(document: Any, location: tuple[str | int, ...]) -> Any:
    for part in location:
        document = document[part]
    return document


@pytest.fixture(scope="module")
def fields_page() -> dict[str, dict[str, bool | None]]:
    return parse_fields_page(FIELDS_PAGE.read_text(encoding="utf-8"))


def _load(document: Mapping[str, Any]) -> asyncpod.Pod:
    return asyncpod.kube.load_pod(json.dumps(document))


def test_base_manifest_loads() -> None:
    """The manifest the checks below modify is valid as it is, every object included."""
    pod = _load(BASE_MANIFEST)
    for name, location in LOCATIONS.items():
        assert _at(BASE_MANIFEST, location) is not None, name
    assert pod.containers[0].lifecycle is not None


def test_fields_page_has_one_table_per_object(
    fields_page: dict[str, dict[str, bool | None]],
) -> None:
    """Every object of a Pod manifest has its table, and no table names something else."""
    assert sorted(fields_page) == sorted(schema_objects())
    assert sorted(LOCATIONS) == sorted(schema_objects())


def test_fields_page_supported_rows_are_what_asyncpod_reads(
    fields_page: dict[str, dict[str, bool | None]],
) -> None:
    """The "yes" rows of each table are exactly the keys the manifest reader knows."""
    for name, keys in schema_objects().items():
        listed = {field for field, supported in fields_page[name].items() if supported}
        read = {key for key, known in keys.items() if not isinstance(known.schema, Refused)}
        assert listed == read, name


def test_fields_page_unsupported_rows_are_rejected(
    fields_page: dict[str, dict[str, bool | None]],
) -> None:
    """Each "no" row, set in a manifest, is an UnsupportedFieldError naming exactly it."""
    checked = 0
    for name, fields in fields_page.items():
        for field, supported in fields.items():
            if supported is not False:
                continue
            document = copy.deepcopy(BASE_MANIFEST)
            _at(document, LOCATIONS[name])[field] = "set"
            with pytest.raises(UnsupportedFieldError) as info:
                _load(document)
            assert info.value.paths == (_path(LOCATIONS[name], field),)
            checked += 1
    assert checked >= 15  # issue #11 models most fields; cluster-only ones are ignored rows


def test_fields_page_ignored_rows_are_kept_and_listed(
    fields_page: dict[str, dict[str, bool | None]],
) -> None:
    """Each "ignored" row (a cluster-only field) loads, is listed, and is written back."""
    checked = 0
    for name, fields in fields_page.items():
        for field, supported in fields.items():
            if supported is not None:
                continue
            document = copy.deepcopy(BASE_MANIFEST)
            _at(document, LOCATIONS[name])[field] = ["set"]
            pod = _load(document)
            path = _path(LOCATIONS[name], field)
            base = set(_load(BASE_MANIFEST).ignored_fields)
            assert set(pod.ignored_fields) - base == {path}
            assert _at(yaml.safe_load(asyncpod.kube.dump_pod(pod)), LOCATIONS[name])[field] == [
                "set"
            ]
            checked += 1
    assert checked >= 10


# The timeline figures: docs/_ext/timelines.py draws them from runs on the fake


def test_javaweb2_timeline_shows_the_seed_order(tmp_path: Path) -> None:
    """The recorded bring-up has the init container done before Tomcat, inside the pod's life."""
    timelines = _load_module("docs_timelines", DOCS / "_ext" / "timelines.py")
    rows = timelines.record("javaweb-2-timeline").rows
    [(_, war_exit, war_code)] = rows["war"].runs
    [(tomcat_start, tomcat_exit, _)] = rows["tomcat"].runs
    assert war_code == 0
    assert war_exit <= tomcat_start
    assert rows["pod"].created <= min(row.created for row in rows.values())
    assert rows["pod"].removed == max(row.removed for row in rows.values())
    assert rows["tomcat"].stops == [tomcat_exit - 1.0]  # SIGTERM, then a 1 s shutdown
    written = timelines.write_all(tmp_path)
    assert sorted(path.name for path in written) == sorted(
        f"{name}.svg" for name in timelines.SCENARIOS
    )
    assert all(path.read_text(encoding="utf-8").startswith("<svg ") for path in written)


# The programs the docs show: docs/examples/<name>.py print docs/examples/<name>.out

EXAMPLES = DOCS / "examples"
EXAMPLE_NAMES = sorted(path.stem for path in EXAMPLES.glob("*.py"))


def _example(name: str) -> ModuleType:
    return _load_module(f"docs_example_{name}", EXAMPLES / f"{name}.py")


def test_examples_have_their_output() -> None:
    """Every program the docs show comes with the output they show."""
    assert EXAMPLE_NAMES
    assert sorted(path.stem for path in EXAMPLES.glob("*.out")) == EXAMPLE_NAMES


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_example_runs_from_anywhere(name: str) -> None:
    """The tutorial's programs are copied out of the checkout: they hold their manifest
    (the bundled example's, unchanged) instead of reading a file beside them."""
    source = (EXAMPLES / f"{name}.py").read_text(encoding="utf-8")
    assert "__file__" not in source
    module = _example(name)
    manifest = getattr(module, "MANIFEST", None)
    if manifest is not None:
        bundled = {
            pod.name: pod
            for pod in map(asyncpod.kube.load_pod, sorted(DOCS.parent.glob("examples/*.yaml")))
        }
        pod = asyncpod.kube.load_pod(manifest)
        assert bundled[pod.name] == pod


@pytest.mark.anyio
@pytest.mark.parametrize("name", EXAMPLE_NAMES)
async def test_example_prints_what_the_tutorial_shows(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each program the docs show, run on virtual time, prints its committed output."""
    await _example(name).main()
    expected = (EXAMPLES / f"{name}.out").read_text(encoding="utf-8")
    assert capsys.readouterr().out == expected


# The API reference: docs/reference/*.md document every public name

_DIRECTIVE = re.compile(
    r"^\.\. (?:auto(?:class|function|exception|data)|py:data)::\s+([\w.]+)"
    r"(?:\n   :module: ([\w.]+))?",
    re.MULTILINE,
)


def documented_names() -> set[str]:
    names = set()
    for page in (DOCS / "reference").glob("*.md"):
        for name, module in _DIRECTIVE.findall(page.read_text(encoding="utf-8")):
            names.add(f"{module}.{name}" if module else name)
    return names


@pytest.mark.parametrize(
    "module",
    [asyncpod, asyncpod.kube, asyncpod.backends, asyncpod.testing],
    ids=lambda module: module.__name__,
)
def test_reference_documents_every_public_name(module: ModuleType) -> None:
    """Each name in a public module's __all__ has its entry in the API reference."""
    if module is asyncpod.kube:  # documented whole, with automodule :members:
        assert ".. automodule:: asyncpod.kube\n   :members:" in (
            DOCS / "reference" / "kube.md"
        ).read_text(encoding="utf-8")
        return
    missing = {f"{module.__name__}.{name}" for name in module.__all__} - documented_names()
    assert not missing
