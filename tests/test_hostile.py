"""Hostile and malformed input (issue #12): each finding, refused cleanly or accepted as
Kubernetes accepts it. The wide net is tests/test_fuzz.py; these pin one finding each."""

from __future__ import annotations

import json
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest
import yaml

from asyncpod import (
    Container,
    ContainerPort,
    DependencyCycleError,
    HostPathVolumeSource,
    HTTPGetAction,
    HTTPHeader,
    Pod,
    SpecError,
    _cli,
)
from asyncpod._exceptions import MAX_MESSAGE_LENGTH
from asyncpod._probes import check_http
from asyncpod._yaml import MAX_DEPTH, MAX_MANIFEST_BYTES, MAX_NODES
from asyncpod.kube import load_pod

#: Every refusal must come within these bounds (the issue's budget): CPU seconds, which
#: other work on the machine does not inflate, and MiB allocated at the peak.
SECONDS, MEGABYTES = 2.0, 200


def manifest(container: str = "", spec: str = "", name: str = "p") -> str:
    """A Pod manifest: one container ``c`` with the extra YAML *container* (indented 4)."""
    return (
        f"apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n{spec}"
        f"  containers:\n  - name: c\n    image: busybox\n{container}"
    )


@contextmanager
def bounded() -> Iterator[None]:
    """The block takes at most SECONDS of CPU and allocates at most MEGABYTES at its peak."""
    tracemalloc.start()
    started = time.process_time()
    try:
        yield
    finally:
        elapsed = time.process_time() - started
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    # tracemalloc slows allocation-heavy code several times: the time bound is generous
    assert elapsed < SECONDS * 3, f"took {elapsed:.1f} s"
    assert peak < MEGABYTES, f"allocated {peak:.0f} MiB"


def refused(source: Any) -> SpecError:
    """The SpecError of loading *source*, within bounds, its message one bounded line."""
    with bounded(), pytest.raises(SpecError) as info:
        load_pod(source)
    assert len(str(info.value)) <= MAX_MESSAGE_LENGTH
    return info.value


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = _cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out + err


# Parsing: every input error is a SpecError, and the CLI shows no traceback


def test_deep_json_is_a_spec_error_not_a_recursion_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deep = '{"a":' * 1000 + "1" + "}" * 1000
    assert "nested more than" in refused(deep).reason
    path = tmp_path / "deep.json"
    path.write_text(deep)
    code, output = cli(capsys, "plan", str(path))
    assert code != 0
    assert "Traceback" not in output and "nested more than" in output


def test_deep_yaml_is_a_spec_error() -> None:
    assert "nested more than" in refused("a: " + "[" * 200 + "]" * 200).reason
    refused("a: " + "[" * 5000 + "]" * 5000)  # libyaml's own bound, 1000, may come first
    just_deep_enough = "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)
    assert "nested" not in refused(f"a: {just_deep_enough}").reason


@pytest.mark.parametrize("style", ["json", "yaml"])
def test_a_5000_digit_integer_is_a_spec_error(style: str) -> None:
    if style == "json":
        doc = json.loads(json.dumps(yaml.safe_load(manifest())))
        text = json.dumps(doc).replace('"busybox"}', '"busybox", "ports": [{"containerPort": X}]}')
        text = text.replace("X", "9" * 5000)
    else:
        text = manifest("    ports:\n    - containerPort: " + "9" * 5000 + "\n")
    error = refused(text)
    assert "too large" in error.reason or "must be an integer" in error.reason


def test_an_alias_bomb_is_refused_quickly_with_a_short_message() -> None:
    anchors = "  x0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    for i in range(1, 9):
        anchors += f"  x{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]\n"
    error = refused("bomb:\n" + anchors + manifest("    command: *a8\n"))  # 9**9 values
    assert f"more than {MAX_NODES} values" in error.reason


def test_a_self_referencing_anchor_is_refused() -> None:
    assert "contains itself" in refused(manifest("    command: &a [x, *a]\n")).reason


def test_a_20_mb_manifest_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    text = manifest(f"    command: [{'x' * 20_000_000}]\n")
    assert "too large" in refused(text).reason
    path = tmp_path / "big.yaml"
    path.write_text(text)
    assert "too large" in refused(path).reason


def test_the_size_limit_is_etcds() -> None:
    assert MAX_MANIFEST_BYTES == 1.5 * 2**20
    padding = "#" * (MAX_MANIFEST_BYTES - len(manifest()) - 1) + "\n"
    load_pod(padding + manifest())  # exactly at the limit
    assert "too large" in refused("#" + padding + manifest()).reason


def test_plan_dev_zero_ends(capsys: pytest.CaptureFixture[str]) -> None:
    assert "too large" in refused(Path("/dev/zero")).reason
    code, output = cli(capsys, "plan", "/dev/zero")
    assert code != 0 and "too large" in output and "Traceback" not in output


def nested_env(levels: int) -> str:
    env = "    env:\n    - name: V0\n      value: xxxxxxxxxxxxxxxx\n"
    for i in range(1, levels):
        env += f"    - name: V{i}\n      value: $(V{i - 1})$(V{i - 1})$(V{i - 1})$(V{i - 1})\n"
    return env


def test_nested_variable_references_are_measured_not_expanded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = manifest(f"    command: [echo, $(V39)]\n{nested_env(40)}")
    assert len(text) < 2500
    error = refused(text)
    assert error.path.startswith("spec.containers[0].env[")
    assert "MAX_ARG_STRLEN" in error.reason
    path = tmp_path / "env.yaml"
    path.write_text(text)
    with bounded():
        code, output = cli(capsys, "up", "--backend", "fake", str(path))
    assert code != 0 and "MAX_ARG_STRLEN" in output and "Traceback" not in output


def test_expansion_in_bounds_is_accepted_and_the_total_is_bounded() -> None:
    pod = load_pod(manifest(f"    command: [echo, $(V6)]\n{nested_env(7)}"))  # 16 * 4**6 bytes
    assert pod.containers[0].command == ("echo", "$(V6)")
    # 3 MB of env: beyond ARG_MAX, each string within MAX_ARG_STRLEN
    many = "".join(f"    - name: W{i}\n      value: $(W0)\n" for i in range(1, 30))
    error = refused(manifest(f"    env:\n    - name: W0\n      value: {'y' * 100_000}\n{many}"))
    assert "ARG_MAX" in error.reason and error.path == "spec.containers[0]"


def test_a_2000_container_cycle_gives_a_bounded_message() -> None:
    names = [f"c{i}" for i in range(2000)]
    containers = [
        Container(name=name, image="busybox", depends_on=[names[(i + 1) % len(names)]])
        for i, name in enumerate(names)
    ]
    with pytest.raises(DependencyCycleError) as info:
        Pod(name="p", containers=containers)
    assert len(str(info.value)) <= MAX_MESSAGE_LENGTH
    assert "characters left out" in str(info.value)
    assert len(info.value.cycle) == 2001  # the attribute keeps it all


def test_a_huge_value_of_the_wrong_type_is_quoted_briefly() -> None:
    error = refused(manifest(f"    command: [[{', '.join(['x' * 1000] * 100)}]]\n"))
    assert "must be a string" in error.reason and len(str(error)) < 600


# Probes: nothing from a manifest goes into a request as it is


class _Server(anyio.abc.ByteStream):
    """A stream to an HTTP server that records what it receives and answers 200."""

    def __init__(self) -> None:
        self.received = b""
        self._answered = False

    async def send(self, item: bytes) -> None:
        self.received += item

    async def receive(self, max_bytes: int = 65536) -> bytes:
        if self._answered:
            raise anyio.EndOfStream
        self._answered = True
        return b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"

    async def send_eof(self) -> None:
        pass

    async def aclose(self) -> None:
        pass


class _Backend:
    def __init__(self) -> None:
        self.server = _Server()

    async def connect(self, pod_id: str, port: int) -> anyio.abc.ByteStream:
        return self.server


async def probe(action: HTTPGetAction) -> bytes:
    backend = _Backend()
    container = Container(name="c", image="busybox", ports=[ContainerPort(container_port=80)])
    assert await check_http(backend, "pod", container, action)  # type: ignore[arg-type]
    return backend.server.received


@pytest.mark.anyio
async def test_a_probe_path_is_percent_encoded() -> None:
    request = await probe(HTTPGetAction(port=80, path="/héllo wörld/ü\u4e16?q=ä&x=%41%zz#frag"))
    line = request.split(b"\r\n", 1)[0]
    assert line == b"GET /h%C3%A9llo%20w%C3%B6rld/%C3%BC%E4%B8%96?q=%C3%A4&x=%41%25zz HTTP/1.1"


@pytest.mark.anyio
async def test_cr_lf_in_a_probe_path_cannot_smuggle_a_request() -> None:
    path = "/a HTTP/1.1\r\nx-evil: 1\r\n\r\nGET /second"
    request = await probe(HTTPGetAction(port=80, path=path))
    assert request.count(b"\r\n\r\n") == 1 and request.endswith(b"\r\n\r\n")
    assert b"x-evil" not in request.lower().split(b"\r\n", 1)[1]
    assert request.count(b"GET ") == 1
    assert request.startswith(b"GET /a%20HTTP/1.1%0D%0Ax-evil:%201%0D%0A%0D%0AGET%20/second ")


@pytest.mark.anyio
async def test_a_header_value_in_utf8() -> None:
    request = await probe(
        HTTPGetAction(port=80, http_headers=[HTTPHeader(name="X-Name", value="Grüße 世界")])
    )
    assert "x-name: Grüße 世界\r\n".encode() in request


@pytest.mark.parametrize(
    ("build", "path"),
    [
        (lambda: HTTPHeader(name="X-A\r\nX-B", value="1"), "name"),
        (lambda: HTTPHeader(name="X A", value="1"), "name"),
        (lambda: HTTPHeader(name="X:", value="1"), "name"),
        (lambda: HTTPHeader(name="X-A", value="1\r\nX-B: 2"), "value"),
        (lambda: HTTPHeader(name="X-A", value="1\x00"), "value"),
        (lambda: HTTPGetAction(port=80, host="a\r\nx-b: c"), "host"),
        (lambda: HTTPGetAction(port=80, host="a b"), "host"),
    ],
)
def test_control_characters_in_headers_and_hosts_are_refused(build: Any, path: str) -> None:
    with pytest.raises(SpecError) as info:
        build()
    assert info.value.path == path


def test_header_names_as_kubernetes_validates_them() -> None:
    assert HTTPHeader(name="X-Custom-1", value="a\tb").name == "X-Custom-1"


# Validation: wrongly accepted


def test_base_60_is_not_a_number() -> None:
    error = refused(manifest("    ports:\n    - containerPort: 80\n      hostPort: 2:13:20\n"))
    assert error.path == "spec.containers[0].ports[0].hostPort"
    assert "'2:13:20'" in error.reason


@pytest.mark.parametrize("name", ["a--b", "web--1"])
def test_a_port_name_with_two_hyphens_in_a_row_is_refused(name: str) -> None:
    with pytest.raises(SpecError) as info:
        ContainerPort(container_port=80, name=name)
    assert info.value.path == "name"


@pytest.mark.parametrize("path", ["/tmp/../etc", "/..", "/a/..", "/tmp/x\x00y"])
def test_host_paths_with_backsteps_or_nul_are_refused(path: str) -> None:
    with pytest.raises(SpecError) as info:
        HostPathVolumeSource(path=path)
    assert info.value.path == "path"


def test_a_host_path_with_dots_in_names_is_fine() -> None:
    assert HostPathVolumeSource(path="/tmp/..x/a..b/.").path == "/tmp/..x/a..b/."


def test_nul_in_a_host_path_from_a_manifest_is_refused() -> None:
    text = manifest(
        "    volumeMounts: [{name: v, mountPath: /v}]\n",
        spec='  volumes:\n  - name: v\n    hostPath: {path: "/tmp/a\\0b"}\n',
    )
    assert refused(text).path == "spec.volumes[0].hostPath.path"


def test_a_20_mb_command_is_refused_by_the_model() -> None:
    started = time.process_time()
    with pytest.raises(SpecError) as info:
        Pod(name="p", containers=[Container(name="c", image="i", command=["x" * 20_000_000])])
    assert time.process_time() - started < SECONDS
    assert info.value.path == "spec.containers[0].command[0]"
    assert len(str(info.value)) <= MAX_MESSAGE_LENGTH


# Validation: wrongly refused


def test_probe_timings_of_zero_are_the_defaults() -> None:
    probe = (
        "      exec: {command: [/bin/true]}\n      periodSeconds: 0\n      timeoutSeconds: 0\n"
        "      successThreshold: 0\n      failureThreshold: 0\n"
    )
    pod = load_pod(manifest(f"    livenessProbe:\n{probe}    readinessProbe:\n{probe}"))
    for loaded in (pod.containers[0].liveness_probe, pod.containers[0].readiness_probe):
        assert loaded is not None
        assert (loaded.period_seconds, loaded.timeout_seconds) == (10, 1)
        assert (loaded.success_threshold, loaded.failure_threshold) == (1, 3)


@pytest.mark.parametrize(
    ("size", "expected"),
    [("1e3", 1000), ("500m", 1), (".5Gi", 2**29), ("+1Gi", 2**30), ("1024", 1024), ("1E", 10**18)],
)
def test_size_limits_in_every_quantity_syntax(size: str, expected: int) -> None:
    text = manifest(spec=f"  volumes:\n  - name: v\n    emptyDir: {{sizeLimit: {size}}}\n")
    [volume] = load_pod(text).volumes
    assert volume.empty_dir is not None and volume.empty_dir.size_bytes == expected


@pytest.mark.parametrize("size", ["-1Gi", "1e19", "1e999999999", "12XB"])
def test_size_limits_that_are_refused(size: str) -> None:
    text = manifest(spec=f"  volumes:\n  - name: v\n    emptyDir: {{sizeLimit: '{size}'}}\n")
    assert refused(text).path == "spec.volumes[0].emptyDir.sizeLimit"


def test_date_like_names_and_values_stay_strings() -> None:
    text = manifest(
        "    env:\n    - name: DAY\n      value: 2024-01-01\n"
        "    - name: WHEN\n      value: 2001-12-14t21:59:43.10-05:00\n",
        name="2024-01-01",
    )
    pod = load_pod(text)
    assert pod.name == "2024-01-01"
    assert [v.value for v in pod.containers[0].env] == [
        "2024-01-01",
        "2001-12-14t21:59:43.10-05:00",
    ]


def test_the_same_port_name_in_two_containers() -> None:
    port = ContainerPort(container_port=80, name="http")
    other = ContainerPort(container_port=81, name="http")
    pod = Pod(
        name="p",
        containers=[
            Container(name="a", image="i", ports=[port]),
            Container(name="b", image="i", ports=[other]),
        ],
    )
    assert [c.ports[0].name for c in pod.containers] == ["http", "http"]
    with pytest.raises(SpecError, match="duplicate port name"):
        Container(name="a", image="i", ports=[port, other])


def test_host_port_zero_means_a_free_port() -> None:
    """Unlike Kubernetes (where 0 is "not published"), asyncpod publishes on a free port;
    two of them are no duplicate; a negative one is refused."""
    ports = "    ports:\n    - containerPort: 80\n      hostPort: 0\n"
    ports += "    - containerPort: 81\n      hostPort: 0\n"
    pod = load_pod(manifest(ports))
    assert [p.host_port for p in pod.containers[0].ports] == [0, 0]
    with pytest.raises(SpecError, match="hostPort"):
        load_pod(manifest("    ports:\n    - containerPort: 80\n      hostPort: -1\n"))


# YAML as kubectl reads it


def test_escaped_single_quote_in_double_quotes() -> None:
    text = manifest(
        "    command: [\"it\\'s\", 'single\\', plain\\'s, \"two \\\\\\' \\'\"]\n"
        "    args:\n    - |\n      block\\'s\n"
    )
    pod = load_pod(text)
    assert pod.containers[0].command == ("it's", "single\\", "plain\\'s", "two \\' '")
    assert pod.containers[0].args == ("block\\'s\n",)


@pytest.mark.parametrize(
    ("scalar", "value"),
    [
        ("0x1F", 31),
        ("0o17", 15),
        ("017", 15),
        ("1_000", 1000),
        ("+80", 80),
        ("08", 8.0),
        ("1e3", 1000.0),
        ("yes", True),
        ("off", False),
        ("2:13:20", "2:13:20"),
        ("2024-01-01", "2024-01-01"),
        ("18446744073709551615", 2**64 - 1),
        ("18446744073709551616", 1.8446744073709552e19),
        ("1e400", "1e400"),
        ("9" * 5000, "9" * 5000),
    ],
)
def test_plain_scalars_as_go_yaml_v2_reads_them(scalar: str, value: object) -> None:
    from asyncpod._yaml import load_documents

    [document] = load_documents(f"k: {scalar}\n")
    assert document["k"] == value and type(document["k"]) is type(value)
