"""A fuzz suite of malformed and hostile manifests (issue #12), on every input channel.

Every case is invalid by construction: a valid Pod mutated (a value of the wrong type, a
required key removed, an unknown key added), a hostile document (nesting, alias bombs,
huge sizes, huge numbers, nested ``$(VAR)`` references, control characters where a
request or a path would carry them), or random text. Each must give a SpecError from
``load_pod``, a clean error from ``asyncpod plan`` and ``asyncpod up --backend fake``
(no traceback, exit code 2, no backend ever opened), and a SpecError in the set-up of a
test whose ``asyncpod_pod`` marker names it -- within 2 s and 200 MiB each.
"""

from __future__ import annotations

import copy
import functools
import json
import random
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from asyncpod import SpecError, _cli, _demo
from asyncpod._exceptions import MAX_MESSAGE_LENGTH
from asyncpod.kube import load_pod

#: The budget of each case: CPU seconds (what asyncpod spends, however loaded the machine
#: the tests share is), and MiB allocated at the peak.
SECONDS, MEGABYTES = 2.0, 200

#: A valid Pod that uses most fields asyncpod supports: the seed of the mutations.
BASE: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {
        "name": "fuzz",
        "labels": {"app": "fuzz", "example.com/tier": "web"},
        "annotations": {"note": "seed", "depends-on.asyncpod.io/web": "db:ready"},
    },
    "spec": {
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 30,
        "hostname": "fuzz",
        "shareProcessNamespace": False,
        "volumes": [
            {"name": "scratch", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
            {"name": "host", "hostPath": {"path": "/tmp", "type": "Directory"}},
        ],
        "initContainers": [
            {"name": "init", "image": "busybox", "command": ["true"]},
            {
                "name": "sidecar",
                "image": "busybox",
                "restartPolicy": "Always",
                "startupProbe": {"tcpSocket": {"port": 9000}, "failureThreshold": 5},
            },
        ],
        "containers": [
            {
                "name": "db",
                "image": "localhost/busybox:latest",
                "args": ["sleep", "3600"],
                "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "$(A)-2"}],
                "ports": [{"containerPort": 5432, "name": "pg", "protocol": "TCP"}],
                "readinessProbe": {
                    "exec": {"command": ["true"]},
                    "initialDelaySeconds": 1,
                    "periodSeconds": 2,
                },
                "volumeMounts": [{"name": "scratch", "mountPath": "/data", "readOnly": True}],
            },
            {
                "name": "web",
                "image": "busybox",
                "command": ["httpd", "-f"],
                "workingDir": "/srv",
                "ports": [{"containerPort": 8080, "hostPort": 18080, "name": "http"}],
                "livenessProbe": {
                    "httpGet": {
                        "path": "/healthz",
                        "port": "http",
                        "httpHeaders": [{"name": "X-Probe", "value": "yes"}],
                    },
                    "timeoutSeconds": 3,
                },
                "lifecycle": {"preStop": {"sleep": {"seconds": 2}}},
                "volumeMounts": [{"name": "host", "mountPath": "/host", "subPath": "x"}],
            },
        ],
    },
}

#: Keys whose removal leaves the Pod invalid.
REQUIRED = [
    ("apiVersion",),
    ("kind",),
    ("metadata",),
    ("metadata", "name"),
    ("spec",),
    ("spec", "containers"),
    ("spec", "containers", 0, "name"),
    ("spec", "containers", 0, "image"),
    ("spec", "containers", 0, "ports", 0, "containerPort"),
    ("spec", "containers", 0, "readinessProbe", "exec"),
    ("spec", "containers", 0, "readinessProbe", "exec", "command"),
    ("spec", "containers", 0, "volumeMounts", 0, "mountPath"),
    ("spec", "containers", 0, "volumeMounts", 0, "name"),
    ("spec", "containers", 0, "env", 0, "name"),
    ("spec", "containers", 1, "livenessProbe", "httpGet", "port"),
    ("spec", "containers", 1, "ports"),
    ("spec", "containers", 1, "lifecycle", "preStop", "sleep", "seconds"),
    ("spec", "volumes"),
    ("spec", "volumes", 0, "name"),
    ("spec", "volumes", 1, "hostPath", "path"),
    ("spec", "initContainers", 0, "name"),
    ("spec", "initContainers", 1, "startupProbe", "tcpSocket"),
]

#: Values of another type than the one each leaf takes (never "says nothing").
WRONG: dict[type, list[Any]] = {
    str: [123, True, ["x"], {"k": "v"}],
    int: ["80", 1.5, True, [1], -7, 2**70],
    bool: ["true", 1, [True]],
    list: ["x", 5, {"a": 1}],
    dict: ["x", 5, [1]],
}
#: Leaves where a value above is valid (a quantity may be a number; 'seed' is just text).
ACCEPTS = {
    ("spec", "volumes", 0, "emptyDir", "sizeLimit"): (123,),
    ("spec", "containers", 1, "livenessProbe", "httpGet", "port"): (123,),
}


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*path, index))


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    doc = copy.deepcopy(doc)
    *parents, last = path
    target = doc
    for key in parents:
        target = target[key]
    if value is _DELETE:
        del target[last]
    else:
        target[last] = value
    return doc


_DELETE = object()


def _dump(doc: Any, index: int) -> str:
    """Alternately YAML (block style) and JSON."""
    if index % 2:
        return json.dumps(doc)
    return yaml.safe_dump(doc, sort_keys=False)


def _mutations() -> Iterator[tuple[str, Callable[[], Any]]]:
    count = 0
    for path, value in _paths(BASE):
        if not path:
            continue
        name = ".".join(map(str, path))
        for wrong in WRONG.get(type(value), ()):
            if any(wrong is accepted for accepted in ACCEPTS.get(path, ())):
                continue
            doc = _set(BASE, path, wrong)
            count += 1
            yield f"type:{name}={wrong!r:.12}", functools.partial(_dump, doc, count)
        if isinstance(value, dict):
            doc = _set(BASE, (*path, "bogusKey"), 1)
            count += 1
            yield f"unknown:{name}", functools.partial(_dump, doc, count)
    for path in REQUIRED:
        doc = _set(BASE, path, _DELETE)
        count += 1
        yield f"missing:{'.'.join(map(str, path))}", functools.partial(_dump, doc, count)


def _container(extra: str) -> str:
    return (
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n"
        f"  - name: c\n    image: busybox\n{extra}"
    )


def _volume(source: str) -> str:
    return _container("    volumeMounts: [{name: v, mountPath: /v}]\n").replace(
        "spec:\n", f"spec:\n  volumes:\n  - name: v\n    {source}\n"
    )


def _bomb(levels: int, width: int, use: str) -> str:
    anchors = "".join(
        f"  x{i}: &a{i} [" + ", ".join([f"*a{i - 1}" if i else "lol"] * width) + "]\n"
        for i in range(levels)
    )
    return "bomb:\n" + anchors + _container(use.replace("LAST", f"*a{levels - 1}"))


def _nested_env(levels: int, fan: int, use: str) -> str:
    env = "    env:\n    - name: V0\n      value: xxxxxxxx\n"
    for i in range(1, levels):
        env += f"    - name: V{i}\n      value: {f'$(V{i - 1})' * fan}\n"
    return _container(use.replace("LAST", f"$(V{levels - 1})") + env)


def _cycle(count: int) -> str:
    """*count* containers, each depending on the next, the last on the first."""
    annotations = "".join(
        f"    depends-on.asyncpod.io/c{i}: c{(i + 1) % count}\n" for i in range(count)
    )
    containers = "".join(f"  - name: c{i}\n    image: busybox\n" for i in range(count))
    return (
        f"apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations:\n{annotations}"
        f"spec:\n  containers:\n{containers}"
    )


def _probe(action: str) -> str:
    return _container(f"    readinessProbe:\n      httpGet: {action}\n")


def _hostile() -> Iterator[tuple[str, Callable[[], Any]]]:
    cases: dict[str, Callable[[], Any]] = {
        # nesting
        "deep-json-101": lambda: '{"a":' * 101 + "1" + "}" * 101,
        "deep-json-1000": lambda: '{"a":' * 1000 + "1" + "}" * 1000,
        "deep-json-list-100000": lambda: "{" + '"a":' + "[" * 100_000 + "]" * 100_000 + "}",
        "deep-yaml-flow-101": lambda: "a: " + "[" * 101 + "]" * 101,
        "deep-yaml-flow-100000": lambda: "a: " + "[" * 100_000 + "]" * 100_000,
        "deep-yaml-block-150": lambda: "".join(f"{' ' * i}k{i}:\n" for i in range(150)) + "v",
        "deep-yaml-in-command": lambda: _container("    command: " + "[" * 500 + "]" * 500),
        # aliases
        "bomb-command": lambda: _bomb(9, 9, "    command: LAST\n"),
        "bomb-args-wide": lambda: _bomb(3, 200, "    args: LAST\n"),
        "bomb-env": lambda: _bomb(8, 10, "    env: LAST\n"),
        "bomb-labels": lambda: _container("").replace(
            "metadata:\n  name: p\n",
            "metadata:\n  name: p\n  x0: &m0 {a: 1, b: 1, c: 1, d: 1, e: 1, f: 1, g: 1}\n"
            + "".join(
                f"  x{i}: &m{i} {{a: *m{i - 1}, b: *m{i - 1}, c: *m{i - 1}, d: *m{i - 1}, "
                f"e: *m{i - 1}, f: *m{i - 1}, g: *m{i - 1}}}\n"
                for i in range(1, 9)
            )
            + "  labels: *m8\n",
        ),
        "bomb-merge": lambda: (
            "x: &a {k0: [1,1,1,1,1,1,1,1,1,1]}\n"
            + "".join(f"y{i}: &a{i} {{<<: *a, z{i}: [*a, *a, *a]}}\n" for i in range(50))
            + "z: ["
            + ", ".join(f"*a{i}" for i in range(50)) * 200
            + "]\n"
        ),
        "alias-self": lambda: _container("    command: &a [x, *a]\n"),
        "alias-self-map": lambda: "a: &a {b: *a}\n",
        "alias-unknown": lambda: _container("    command: *nope\n"),
        # sizes
        "size-20mb-command": lambda: _container(f"    command: [{'x' * 20_000_000}]\n"),
        "size-limit-plus-one": lambda: "#" * (3 * 512 * 1024) + "\n" + _container(""),
        "size-20mb-file": lambda: ("#" * 20_000_000 + "\n" + _container("")).encode(),
        "size-dev-zero": lambda: Path("/dev/zero"),
        "size-150k-values": lambda: _container("    command: [" + "x," * 150_000 + "x]\n"),
        "size-2000-cycle": lambda: _cycle(2000),
        "size-2000-duplicates": lambda: (
            _container("") + "".join("  - name: c\n    image: busybox\n" for _ in range(2000))
        ),
        # numbers
        "int-5000-yaml": lambda: _container("    ports:\n    - containerPort: " + "9" * 5000),
        "int-5000-grace": lambda: _container("").replace(
            "spec:\n", "spec:\n  terminationGracePeriodSeconds: " + "9" * 5000 + "\n"
        ),
        "int-5000-json": lambda: '{"apiVersion": "v1", "kind": "Pod", "x": ' + "9" * 5000 + "}",
        "int-25-json": lambda: '{"apiVersion": "v1", "kind": "Pod", "x": ' + "9" * 25 + "}",
        "int-nan-json": lambda: '{"apiVersion": "v1", "kind": "Pod", "x": NaN}',
        "int-infinity-json": lambda: '{"apiVersion": "v1", "kind": "Pod", "x": -Infinity}',
        "int-inf-yaml": lambda: _container("    ports:\n    - containerPort: .inf\n"),
        "int-base60": lambda: _container(
            "    ports:\n    - {containerPort: 80, hostPort: 2:13:20}"
        ),
        "int-65536": lambda: _container("    ports:\n    - {containerPort: 80, hostPort: 65536}"),
        "int-port-0": lambda: _container("    ports:\n    - containerPort: 0\n"),
        # $(VAR)
        "env-fan4-40": lambda: _nested_env(40, 4, "    command: [LAST]\n"),
        "env-fan2-80": lambda: _nested_env(80, 2, "    args: [LAST]\n"),
        "env-fan64-3": lambda: _nested_env(4, 64, ""),
        "env-literal-200k": lambda: _container(
            f"    env:\n    - name: BIG\n      value: {'v' * 200_000}\n"
        ),
        "env-argmax": lambda: _container(
            f"    env:\n    - name: W\n      value: {'y' * 100_000}\n"
            + "".join(f"    - name: W{i}\n      value: $(W)\n" for i in range(30))
        ),
        "env-bad-name": lambda: _container("    env:\n    - name: 1X\n      value: a\n"),
    }
    # probes
    for index, action in enumerate(
        [
            '{port: 80, httpHeaders: [{name: "X-A\\r\\nX-B", value: "1"}]}',
            '{port: 80, httpHeaders: [{name: "X A", value: "1"}]}',
            '{port: 80, httpHeaders: [{name: "X:", value: "1"}]}',
            '{port: 80, httpHeaders: [{name: "Ünï", value: "1"}]}',
            '{port: 80, httpHeaders: [{name: "", value: "1"}]}',
            '{port: 80, httpHeaders: [{name: "X-A", value: "1\\r\\nX-B: 2"}]}',
            '{port: 80, httpHeaders: [{name: "X-A", value: "a\\0b"}]}',
            '{port: 80, httpHeaders: [{name: "X-A", value: "\\n"}]}',
            '{port: 80, host: "a\\r\\nX-B: c"}',
            '{port: 80, host: "a b"}',
            '{port: 80, host: ""}',
            '{port: 80, path: "relative"}',
            '{port: 80, path: ""}',
            '{port: 80, scheme: "FTP"}',
            "{port: a--b}",
            "{port: 0}",
            '{port: "80"}',
            "{port: 80, path: [/]}",
        ]
    ):
        cases[f"probe-{index}"] = functools.partial(_probe, action)
    # paths
    for index, source in enumerate(
        [
            'hostPath: {path: "/tmp/a\\0b"}',
            "hostPath: {path: /tmp/../etc}",
            "hostPath: {path: /..}",
            "hostPath: {path: relative}",
            "hostPath: {path: /tmp, type: Bogus}",
            "emptyDir: {sizeLimit: -1Gi}",
            "emptyDir: {sizeLimit: 1e19}",
            "emptyDir: {sizeLimit: 1e999999999}",
            "emptyDir: {sizeLimit: 12XB}",
            'emptyDir: {sizeLimit: ""}',
            f"emptyDir: {{sizeLimit: '{'9' * 5000}'}}",
            f"emptyDir: {{sizeLimit: '0.{'0' * 5000}1'}}",
            "emptyDir: {sizeLimit: .inf}",
            "emptyDir: {medium: Disk}",
            "emptyDir: {}\n    hostPath: {path: /tmp}",
        ]
    ):
        cases[f"volume-{index}"] = functools.partial(_volume, source)
    for index, mount in enumerate(
        [
            '{name: v, mountPath: "/a\\0b"}',
            "{name: v, mountPath: relative}",
            "{name: v, mountPath: /a, subPath: /abs}",
            "{name: v, mountPath: /a, subPath: ../up}",
            "{name: nope, mountPath: /a}",
        ]
    ):
        cases[f"mount-{index}"] = functools.partial(_container, f"    volumeMounts: [{mount}]\n")
    for index, port in enumerate(
        ["a--b", "-a", "a-", "abcdefghijklmnop", "UPPER", "8080", "a_b", "ünï"]
    ):
        cases[f"port-name-{index}"] = functools.partial(
            _container, f"    ports:\n    - containerPort: 80\n      name: '{port}'\n"
        )
    # documents
    documents: dict[str, Callable[[], Any]] = {
        "doc-empty": lambda: "",
        "doc-only-separators": lambda: "---\n---\n...\n",
        "doc-two-pods": lambda: _container("") + "---\n" + _container(""),
        "doc-scalar": lambda: "just text\n",
        "doc-list": lambda: "- a\n- b\n",
        "doc-kind-service": lambda: _container("").replace("kind: Pod", "kind: Service"),
        "doc-api-v2": lambda: _container("").replace("apiVersion: v1", "apiVersion: v2"),
        "doc-kind-bool": lambda: _container("").replace("kind: Pod", "kind: yes"),
        "doc-spec-list": lambda: "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: []\n",
        "doc-no-containers": lambda: "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {}\n",
        "doc-tabs": lambda: _container("").replace("  - name", "\t- name"),
        "doc-invalid-utf8": lambda: _container("    command: [x]\n").encode() + b"\xff\xfe\n",
        "doc-latin1-file": lambda: _container("    command: [caf\xe9]\n").encode("latin-1"),
        "doc-surrogate": lambda: _container('    command: ["\ud800"]\n'),
        "doc-json-surrogate": lambda: '{"apiVersion": "v1", "kind": "Pod", "a": "\\ud800"}',
        "doc-tag-python": lambda: _container("    command: !!python/object:os.system [x]\n"),
        "doc-tag-custom": lambda: _container("    command: !foo [x]\n"),
        "doc-tag-binary": lambda: _container("    command: [!!binary aGVsbG8=]\n"),
        "doc-tag-set": lambda: _container("    command: !!set {a, b}\n"),
        "doc-tag-omap": lambda: _container("    env: !!omap [{A: b}]\n"),
        "doc-tag-int-huge": lambda: _container(
            f"    ports: [{{containerPort: !!int '{'9' * 5000}'}}]"
        ),
        "doc-tag-int-text": lambda: _container("    ports: [{containerPort: !!int 'eighty'}]"),
        "doc-tag-float": lambda: _container("    ports: [{containerPort: !!float '1e999'}]"),
        "doc-tag-timestamp": lambda: _container(
            "    ports: [{containerPort: !!timestamp 2024-01-01}]"
        ),
        "doc-duplicate-yaml": lambda: _container("    image: other\n"),
        "doc-duplicate-json": lambda: '{"apiVersion": "v1", "kind": "Pod", "kind": "Pod"}',
        "doc-unterminated-quote": lambda: _container('    command: ["abc\n'),
        "doc-bad-escape": lambda: _container('    command: ["\\q"]\n'),
        "doc-escaped-quote-bad-after": lambda: _container('    command: ["it\\\'s", "\\q"]\n'),
        "doc-bom-garbage": lambda: "\ufeff{[}]",
        "doc-nul-bytes": lambda: _container("").encode() + b"\x00" * 100,
        "doc-name-unicode": lambda: _container("").replace("name: p", "name: pöd"),
        "doc-name-date": lambda: _container("").replace("name: p", "name: 2024-01-01T10:00:00Z"),
        "doc-name-long": lambda: _container("").replace("name: p", f"name: {'a' * 100_000}"),
        "doc-image-rtl": lambda: _container("").replace("image: busybox", "image: busy\u202ebox"),
        "doc-key-null": lambda: _container("    ~: 1\n"),
        "doc-key-list": lambda: _container("    ? [a]\n    : 1\n"),
        "doc-key-int": lambda: _container("    1: 1\n"),
        "doc-annotation-huge": lambda: _container("").replace(
            "name: p\n", f"name: p\n  annotations: {{a: '{'x' * 300_000}'}}\n"
        ),
        "doc-depends-on-unknown": lambda: _container("").replace(
            "name: p\n", "name: p\n  annotations: {depends-on.asyncpod.io/c: 'nope'}\n"
        ),
    }
    cases.update(documents)
    yield from cases.items()


_PUNCTUATION = "-:{}[],&*!|>'\"%@`#?\n \t\\"


def _random() -> Iterator[tuple[str, Callable[[], Any]]]:
    rng = random.Random(12)
    alphabet = "abcxyz019" + _PUNCTUATION + "é\u4e16\x00\x1b\u2028"
    for index in range(100):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 300)))
        if index % 4 == 0:  # a Pod's head, then noise
            text = "apiVersion: v1\nkind: Pod\n" + text
        yield f"random-{index}", functools.partial(str, text)


CASES: dict[str, Callable[[], Any]] = {**dict(_mutations()), **dict(_hostile()), **dict(_random())}


def test_the_suite_is_large_and_its_seed_is_valid() -> None:
    assert len(CASES) >= 500, len(CASES)
    pod = load_pod(yaml.safe_dump(BASE))
    assert pod.container("web").depends_on[0].name == "db"
    assert load_pod(json.dumps(BASE)) == pod


#: The cases in chunks: one test per chunk keeps pytest's own cost per case small; a
#: failing chunk names each of its failing cases.
CHUNK = 50
CHUNKS = [list(CASES)[i : i + CHUNK] for i in range(0, len(CASES), CHUNK)]


def _each(names: list[str], check: Callable[[str], None]) -> None:
    failures = []
    for name in names:
        try:
            check(name)
        except AssertionError as exc:
            failures.append(f"{name}: {exc}")
    assert not failures, "\n".join(failures)


def _file(case: Any, directory: Path) -> Path:
    """The file of *case*: its path, or a file the text or bytes are written to."""
    if isinstance(case, Path):
        return case
    path = directory / "case.yaml"
    if isinstance(case, bytes):
        path.write_bytes(case)
    else:
        path.write_text(case, encoding="utf-8", errors="surrogatepass")
    return path


@pytest.mark.parametrize("chunk", range(len(CHUNKS)))
def test_load_pod_refuses_them_within_bounds(chunk: int, tmp_path: Path) -> None:
    def check(name: str) -> None:
        case = CASES[name]()
        source = _file(case, tmp_path) if isinstance(case, bytes) else case
        started = time.process_time()
        with pytest.raises(SpecError) as info:
            load_pod(source)
        elapsed = time.process_time() - started
        assert elapsed < SECONDS, f"took {elapsed:.2f} s"
        assert len(str(info.value)) <= MAX_MESSAGE_LENGTH, "message too long"

    _each(CHUNKS[chunk], check)


@pytest.fixture
def no_backend(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records every backend the CLI would open (none must be)."""
    opened: list[str] = []

    @asynccontextmanager
    async def podman(url: str | None) -> Any:
        opened.append("podman")
        raise AssertionError("the CLI opened Podman for an invalid manifest")
        yield  # type: ignore[unreachable]  # pragma: no cover (the yield makes a generator)

    def fake(pod: Any = None) -> Any:
        opened.append("fake")
        raise AssertionError("the CLI made a fake backend for an invalid manifest")

    monkeypatch.setattr(_cli._backends, "podman", podman)
    monkeypatch.setattr(_cli._backends, "fake_backend", fake)
    monkeypatch.setattr(_demo, "fake_backend", fake)
    return opened


@pytest.mark.parametrize("chunk", range(len(CHUNKS)))
def test_the_cli_refuses_them_cleanly(
    chunk: int, tmp_path: Path, capsys: pytest.CaptureFixture[str], no_backend: list[str]
) -> None:
    """``plan`` within the memory budget, ``up --backend fake`` within the time budget."""

    def check(name: str) -> None:
        path = str(_file(CASES[name](), tmp_path))
        tracemalloc.start()
        try:
            plan = _cli.main(["plan", path])
            peak = tracemalloc.get_traced_memory()[1] / 2**20
        finally:
            tracemalloc.stop()
        assert peak < MEGABYTES, f"plan allocated {peak:.0f} MiB"
        started = time.process_time()
        up = _cli.main(["up", "--backend", "fake", path])
        elapsed = time.process_time() - started
        assert elapsed < SECONDS, f"up took {elapsed:.2f} s"
        out, err = capsys.readouterr()
        assert (plan, up) == (_cli._errors.EXIT_USAGE, _cli._errors.EXIT_USAGE), err
        assert out == "" and "Traceback" not in err, err
        assert len(err.splitlines()) <= 4, err  # twice: the error, then at most a hint
        assert no_backend == []

    _each(CHUNKS[chunk], check)


PLUGIN_CONFTEST = """
import json, pytest
from asyncpod.testing import virtual_time

@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request):
    return virtual_time(request.param)

@pytest.fixture(autouse=True)
async def nothing_created(asyncpod_backend):
    yield
    assert asyncpod_backend.objects() == []

@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if call.excinfo is not None:
        with open("errors.jsonl", "a") as out:
            line = {"test": item.nodeid, "when": call.when, "type": call.excinfo.type.__name__,
                    "spec": issubclass(call.excinfo.type, Exception)
                    and any(c.__name__ == "SpecError" for c in call.excinfo.type.__mro__)
                    # the plugin reports a marker's invalid manifest as one line
                    or call.excinfo.type.__name__ == "Failed"
                    and "@pytest.mark.asyncpod_pod(" in str(call.excinfo.value)}
            out.write(json.dumps(line) + "\\n")
    return report
"""


def test_the_pytest_plugin_markers_refuse_them(pytester: pytest.Pytester) -> None:
    """One pytest session: a test per case, its marker naming the case's file.

    Every fourth case: the plugin adds nothing per case but the marker, and each of its
    tests sets up a backend (twice: asyncio and trio)."""
    names = list(CASES)[::4]
    for index, name in enumerate(names):
        case = CASES[name]()
        target = pytester.path / f"case{index}.yaml"
        if isinstance(case, Path):
            target = case
        elif isinstance(case, bytes):
            target.write_bytes(case)
        else:
            target.write_text(case, encoding="utf-8", errors="surrogatepass")
        names[index] = str(target)
    pytester.makeconftest(PLUGIN_CONFTEST)
    pytester.makepyfile(
        test_cases=f"""
        import pytest

        CASES = {names!r}

        @pytest.mark.anyio
        @pytest.mark.parametrize(
            "case", [pytest.param(c, marks=pytest.mark.asyncpod_pod(c)) for c in CASES]
        )
        async def test_case(case, asyncpod_pod):
            raise AssertionError("an invalid manifest came up")
        """
    )
    started = time.process_time()
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-q", "--tb=no")
    elapsed = time.process_time() - started
    result.assert_outcomes(errors=2 * len(names))
    lines = [json.loads(line) for line in (pytester.path / "errors.jsonl").read_text().splitlines()]
    assert len(lines) == 2 * len(names)
    assert all(line["when"] == "setup" and line["spec"] for line in lines), [
        line for line in lines if not line["spec"]
    ][:3]
    assert elapsed < SECONDS * len(names) / 10  # far less than the budget of each
