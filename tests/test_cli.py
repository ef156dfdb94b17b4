"""The command line: demo, plan and up on the fake; errors and exit codes; signals; and, on
Podman, up --detach / ps / logs / down / gc."""

from __future__ import annotations

import errno
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import IO, Any

import anyio
import pytest

import asyncpod
from asyncpod._cli import main
from asyncpod._console import open_console
from asyncpod._labels import LABEL_OWNER_HOST, LABEL_OWNER_PID
from asyncpod._owner import hostname
from asyncpod.backends import PortMapping
from podman_images import TEST_IMAGE, left_behind
from processes import dead_pid

SEED = Path(__file__).parent.parent / "examples" / "javaweb-2.yaml"


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return str(path)


def pod_yaml(name: str, spec: str, image: str = "busybox") -> str:
    """A manifest: *spec* is the YAML of spec's body, with IMAGE standing for *image*."""
    body = "\n".join("  " + line for line in spec.strip().splitlines())
    return f"apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n{body}\n".replace(
        "IMAGE", image
    )


JOB = """
restartPolicy: Never
initContainers:
- {name: prep, image: IMAGE, command: [sh, -c, echo preparing]}
containers:
- {name: work, image: IMAGE, command: [sh, -c, "echo working; sleep 1; echo done"]}
"""


# demo


def test_demo_on_the_fake_serves_the_war(capsys: pytest.CaptureFixture[str]) -> None:
    """The demo brings javaweb-2 up in order, serves the war and leaves nothing behind."""
    assert main(["demo", "--backend", "fake"]) == 0
    out = capsys.readouterr().out
    assert "pod 'javaweb-2' on the fake backend" in out
    assert _demo_lines(out) == _demo_expected(host=False)
    assert re.search(r"war +init +Terminated \(Completed, exit code 0\)", out)
    assert out.rstrip().endswith("objects left: 0")


def _demo_lines(out: str) -> list[str]:
    """The time-stamped lines of the demo's output, without the stamps and the padding."""
    return [" ".join(line.split()) for line in re.findall(r"^\[ *[\d.]+s\] (.*)$", out, re.M)]


def _demo_expected(*, host: bool) -> list[str]:
    body = "28 bytes: b'PK\\x03\\x04 javaweb-2 stand-in war\\n'"
    war = "/app.war inside the pod -> " + body
    from_host = "GET http://127.0.0.1:8001/app.war from the host -> "
    return [
        "war Started",
        "war Exited (exit code 0)",
        "tomcat Started",
        "tomcat Ready",
        "pod is up",
        f"GET http://localhost:8080{war}",
        *([from_host + body] if host else []),
        "(pod) Terminating",
        "tomcat Killing: Stopping container tomcat",
        "tomcat Exited (exit code 0)",  # start.sh traps SIGTERM
        "(pod) TornDown",
        "pod removed; objects left: 0",
    ]


@pytest.mark.podman
@pytest.mark.xdist_group("javaweb-2")  # the seed's pod name and host port 8001
def test_demo_on_podman(
    podman_url: str, podman_client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """The README's first command on Podman: the same story, the war served on the host too."""
    assert main(["demo", "--backend", "podman", "--url", podman_url]) == 0
    out = capsys.readouterr().out
    assert "pod 'javaweb-2' on the podman backend" in out
    assert _demo_lines(out) == _demo_expected(host=True)
    assert left_behind(podman_client, "io.asyncpod.pod", "javaweb-2") == []


def test_demo_of_the_log_sidecar_shows_collected_lines(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The second example: the sidecar logs the lines the app writes to the shared volume."""
    assert main(["demo", "log-sidecar", "--backend", "fake"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"log-collector \| \w{3} \w{3} .* hello$", out, re.M)
    assert out.rstrip().endswith("objects left: 0")


def test_demo_without_podman_says_how_to_install_it(capsys: pytest.CaptureFixture[str]) -> None:
    """Where Podman cannot be reached the demo says how to install it, then runs on the fake."""
    assert main(["demo", "--url", "unix:///nonexistent/podman.sock"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Podman is not available here: no Podman service could be reached")
    assert "sudo apt-get install -y podman busybox-static" in out
    assert "sudo dnf install -y podman busybox" in out
    assert "bash .ci/podman-setup" in out
    assert "pod 'javaweb-2' on the fake backend" in out
    assert out.rstrip().endswith("objects left: 0")


def test_bundled_examples_are_found_from_any_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["plan", "log-sidecar"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "1. log-collector [sidecar]",
        "2. app [app] after log-collector:started",
    ]


# plan


def test_plan_prints_layers(capsys: pytest.CaptureFixture[str]) -> None:
    """plan prints the startup layers of a manifest."""
    assert main(["plan", str(SEED)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "1. war [init]",
        "2. tomcat [app] after war:completed",
    ]


# up on the fake


def test_up_runs_a_pod_that_ends(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """up brings the pod up, shows each change and the logs, and exits 0 once it Succeeded."""
    assert (
        main(["up", "--backend", "fake", "--logs", write(tmp_path, "job", pod_yaml("job", JOB))])
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "bringing up pod job on fake (Ctrl-C aborts)"
    assert "work: Running, ready" in lines
    assert "pod job: Running, Ready" in lines
    assert [x for x in lines if x.startswith("work |")] == ["work | working", "work | done"]
    assert "prep | preparing" in lines
    assert lines.index("work: Terminated: Completed (0)") < lines.index(
        "pod job: Succeeded, not ready"
    )
    assert lines[-2:] == ["pod job removed", "pod job succeeded"]


OBJECTS_POD = """
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data: {mode: from-manifest}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: other}
data: {mode: kept}
---
apiVersion: v1
kind: Pod
metadata: {name: objs}
spec:
  restartPolicy: Never
  containers:
  - name: app
    image: busybox
    command:
    - sh
    - -c
    - >-
      ls /etc/cfg; cat /etc/cfg/greeting.txt; cat /etc/other/mode;
      ls /etc/creds; cat /etc/creds/user
    volumeMounts:
    - {name: cfg, mountPath: /etc/cfg}
    - {name: other, mountPath: /etc/other}
    - {name: creds, mountPath: /etc/creds}
  volumes:
  - {name: cfg, configMap: {name: cfg}}
  - {name: other, configMap: {name: other}}
  - {name: creds, secret: {secretName: creds}}
"""


def test_up_runs_a_multi_document_file_with_configmap_and_secret_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """up runs the pod with the file's ConfigMaps; --configmap and --secret NAME=PATH make
    objects as kubectl's --from-file does (a file: one key named after it; a directory: one
    key per regular file), options of one NAME add up, and they replace the file's object
    of that name."""
    (tmp_path / "greeting.txt").write_text("hello\n")
    (tmp_path / "blob").write_bytes(b"\xff\xfe")  # not UTF-8: binaryData
    creds = tmp_path / "creds"
    (creds / "sub").mkdir(parents=True)
    (creds / "user").write_text("admin\n")
    (creds / "password").write_text("pw\n")
    (creds / "sub" / "ignored").write_text("x")  # a subdirectory: left out
    path = write(tmp_path, "objs", OBJECTS_POD)
    argv = ["up", "--backend", "fake", "--logs", path, "--secret", f"creds={creds}"]
    argv += ["--configmap", f"cfg={tmp_path / 'greeting.txt'}"]
    argv += ["--configmap", f"cfg={tmp_path / 'blob'}"]
    assert main(argv) == 0
    logged = [
        x[len("app | ") :] for x in capsys.readouterr().out.splitlines() if x.startswith("app |")
    ]
    assert logged == ["blob", "greeting.txt", "hello", "kept", "password", "user", "admin"]


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("cfg", "--configmap 'cfg': expected NAME=PATH"),
        ("=x", "--configmap '=x': expected NAME=PATH"),
        ("cfg=nothere", "--configmap 'cfg=nothere': no such file or directory: nothere"),
        ("cfg=empty", "holds no regular file"),
        ("cfg=bad key", "--configmap cfg: "),
        ("Bad_Name=greeting.txt", "--configmap Bad_Name: "),
    ],
)
def test_configmap_option_errors_exit_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    option: str,
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad key").write_text("x")
    (tmp_path / "greeting.txt").write_text("hi")
    path = write(tmp_path, "objs", OBJECTS_POD)
    assert main(["up", "--backend", "fake", path, "--configmap", option]) == 2
    err = capsys.readouterr().err
    assert err.startswith("asyncpod: error: ") and message in err, err


def test_a_secret_option_never_shows_its_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Secret of --secret that the pod misses a key of fails without showing a value."""
    (tmp_path / "user").write_text("hunter2-value")
    text = OBJECTS_POD.replace("cat /etc/creds/user", "true").replace(
        "{name: creds, secret: {secretName: creds}}",
        "{name: creds, secret: {secretName: creds, items: [{key: nokey, path: x}]}}",
    )
    path = write(tmp_path, "objs", text)
    assert main(["up", "--backend", "fake", path, "--secret", f"creds={tmp_path / 'user'}"]) == 2
    err = capsys.readouterr().err
    assert "Secret 'creds' has no key 'nokey'" in err
    assert "hunter2" not in err


def test_up_of_a_failing_pod_exits_1_with_the_log_tail(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = """
restartPolicy: Never
containers:
- {name: work, image: IMAGE, command: [sh, -c, 'echo oops >&2; exit 3']}
"""
    assert main(["up", "--backend", "fake", write(tmp_path, "f", pod_yaml("f", spec))]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "asyncpod: error: pod f failed: 'work' exited with 3",
        "  work | oops",
    ]


def test_up_of_a_failing_init_container(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A bring-up failure: the error names the container, then its last log lines."""
    spec = """
restartPolicy: Never
initContainers:
- {name: prep, image: IMAGE, command: [sh, -c, 'echo no config >&2; exit 2']}
containers:
- {name: work, image: IMAGE}
"""
    assert main(["up", "--backend", "fake", write(tmp_path, "i", pod_yaml("i", spec))]) == 1
    captured = capsys.readouterr()
    assert "prep: exited (2)\nprep | no config\n" in captured.out
    assert captured.err.splitlines() == [
        "asyncpod: error: container 'prep' init container failed (exit code 2); last log lines:",
        "  | no config",
    ]


def test_up_shows_a_crash_looping_init_container(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """While the pod comes up: each run's exit and new log lines, then the back-off."""
    spec = """
initContainers:
- {name: prep, image: IMAGE, command: [sh, -c, 'echo nope >&2; exit 1']}
containers:
- {name: work, image: IMAGE}
"""
    path = write(tmp_path, "crash", pod_yaml("crash", spec))
    assert main(["up", "--backend", "fake", "--timeout", "1", path]) == 5
    assert capsys.readouterr().out.splitlines()[1:] == [
        "prep: started",
        "prep: exited (1)",
        "prep | nope",
        "prep: started",  # the first restart comes at once
        "prep: exited (1)",
        "prep | nope",
        "prep: back-off 10s restarting failed container prep",
        "pod crash removed",
    ]


def test_up_timeout_exits_5(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = """
containers:
- name: web
  image: IMAGE
  command: [sleep, inf]
  readinessProbe: {exec: {command: ["false"]}, periodSeconds: 1}
"""
    path = write(tmp_path, "slow", pod_yaml("slow", spec))
    assert main(["up", "--backend", "fake", "--timeout", "0.5", path]) == 5
    assert capsys.readouterr().err.splitlines()[0] == (
        "asyncpod: error: pod slow was not ready within 0.5s: web (Running, not ready; "
        "Readiness probe failed: command exited with 1)"
    )


# errors and exit codes


def test_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A bad manifest gives exit code 2 and one line naming the field."""
    bad = write(tmp_path, "bad", pod_yaml("p", "containers: [{name: A, image: x}]"))
    assert main(["plan", bad]) == 2
    err = capsys.readouterr().err
    assert err.startswith("asyncpod: error: spec.containers[0].name:")
    assert len(err.strip().splitlines()) == 1


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    bad = write(tmp_path, "bad", pod_yaml("p", "containers: [{name: A, image: x}]"))
    with pytest.raises(asyncpod.SpecError, match=r"spec\.containers\[0\]\.name"):
        main(["--debug", "plan", bad])


@pytest.mark.parametrize(
    ("argv", "code", "err"),
    [
        (["plan", "missing.yaml"], 2, ["asyncpod: error: missing.yaml: No such file or directory"]),
        (
            ["up", "--backend", "fake", "--detach", str(SEED)],
            2,
            [
                "asyncpod: error: --detach needs the podman backend: "
                "the fake's pods live in this process"
            ],
        ),
        (
            ["up", "--url", "unix:///nonexistent/podman.sock", str(SEED)],
            3,
            [
                "asyncpod: error: no Podman service could be reached (tried "
                "unix:///nonexistent/podman.sock: No such file or directory)",
                "asyncpod: hint: install Podman and start its service (see 'asyncpod demo'), "
                "pass --url, or try '--backend fake'",
            ],
        ),
        (["ps", "--url", "unix:///nonexistent/podman.sock"], 3, None),
    ],
)
def test_exit_codes(
    argv: list[str], code: int, err: list[str] | None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == code
    lines = capsys.readouterr().err.splitlines()
    if err is not None:
        assert lines == err
    assert "Traceback" not in "\n".join(lines)


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["up"])
    assert caught.value.code == 2
    assert "the following arguments are required: FILE" in capsys.readouterr().err


def test_help_documents_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("up", "down", "ps", "logs", "plan", "gc", "volumes", "demo"):
        assert command in out
    assert "128+N  stopped by signal N: 130 for Ctrl-C (SIGINT), 143 for SIGTERM" in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--version"])
    assert caught.value.code == 0
    assert capsys.readouterr().out == f"asyncpod {asyncpod.__version__}\n"


def test_every_option_has_help() -> None:
    """Each argument of each command says what it is for in --help (up --backend did not)."""
    import argparse

    from asyncpod._cli._parser import build_parser

    parser = build_parser("0")
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    undocumented = [
        f"{name} {'/'.join(action.option_strings) or action.dest}"
        for name, sub in [("asyncpod", parser), *subparsers.choices.items()]
        for action in sub._actions
        if not isinstance(action, (argparse._HelpAction, argparse._SubParsersAction))
        and not action.help
    ]
    assert undocumented == []
    assert set(subparsers.choices) == {
        "up",
        "down",
        "ps",
        "logs",
        "exec",
        "plan",
        "gc",
        "volumes",
        "demo",
        "cp",
        "describe",
        "events",
        "restart",
        "kill",
        "stats",
    }


def test_a_manifest_from_standard_input(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """'-' reads the manifest from standard input."""
    monkeypatch.setattr(sys, "stdin", io.StringIO(SEED.read_text()))
    assert main(["plan", "-"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "1. war [init]",
        "2. tomcat [app] after war:completed",
    ]


def test_up_of_a_manifest_from_standard_input(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(pod_yaml("piped", JOB)))
    assert main(["up", "--backend", "fake", "-"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "pod piped succeeded"


LAX = pod_yaml("lax", "ephemeralContainers: [{name: debug, image: busybox}]\n" + JOB)


def test_unsupported_fields_name_the_lax_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The hint names the command line's option, not load_pod's strict=False; with --lax
    the manifest loads, with one warning line."""
    path = write(tmp_path, "lax", LAX)
    assert main(["plan", path]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "asyncpod: error: unsupported field(s): spec.ephemeralContainers (debugging containers "
        "a cluster adds to a running pod: use RunningPod.exec())",
        "asyncpod: hint: pass --lax to drop them with a warning",
    ]
    assert main(["plan", "--lax", path]) == 0
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        "asyncpod: warning: asyncpod dropped unsupported field(s): spec.ephemeralContainers "
        "(debugging containers a cluster adds to a running pod: use RunningPod.exec())"
    ]
    assert captured.out.splitlines() == ["1. prep [init]", "2. work [app] after prep:completed"]
    assert main(["up", "--backend", "fake", "--lax", path]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "pod lax succeeded"


def test_the_demo_summarises_a_response_body() -> None:
    """A body is its size and first bytes, not 5 KB of base64."""
    from asyncpod._demo import summary

    assert summary(b"short") == "5 bytes: b'short'"
    assert summary(b"QUJD" * 1280) == f"5120 bytes: {b'QUJD' * 8!r}..."


# signals, in a real process


def start(*argv: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "asyncpod", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def read_until(stream: IO[str], text: str, seen: list[str]) -> None:
    for line in stream:
        seen.append(line.rstrip("\n"))
        if text in line:
            return
    raise AssertionError(f"{text!r} never came; got {seen}")


SERVER = """
terminationGracePeriodSeconds: 60
containers:
- name: web
  image: IMAGE
  command: [sleep, inf]
  lifecycle: {preStop: {sleep: {seconds: 50}}}
"""


@pytest.mark.parametrize("second", [False, True], ids=["graceful", "second-kills"])
def test_ctrl_c_tears_down_and_a_second_kills(tmp_path: Path, second: bool) -> None:
    """The first SIGINT starts the graceful teardown (a 50 s preStop hook here); a second
    kills at once. Either way the exit code is 130."""
    proc = start("up", "--backend", "fake", write(tmp_path, "srv", pod_yaml("srv", SERVER)))
    assert proc.stdout is not None
    seen: list[str] = []
    try:
        read_until(proc.stdout, "pod srv: Running, Ready", seen)
        proc.send_signal(signal.SIGINT)
        read_until(proc.stdout, "SIGINT: stopping pod srv", seen)
        if second:
            t0 = time.monotonic()
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=20) == 130
            assert time.monotonic() - t0 < 10
            assert "asyncpod: warning: killing every container of pod srv" in proc.stdout.read()
        else:
            with pytest.raises(subprocess.TimeoutExpired):
                proc.wait(timeout=1)  # the preStop hook holds the teardown
            proc.send_signal(signal.SIGTERM)  # a second signal: kill
            assert proc.wait(timeout=20) == 130
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()


STUBBORN = """
terminationGracePeriodSeconds: 3
initContainers:
- name: collector
  image: IMAGE
  restartPolicy: Always
  command: [sh, -c, "trap 'exit 0' TERM; while true; do sleep 0.2; done"]
containers:
- name: app
  image: IMAGE
  command: [sh, -c, "trap '' TERM; while true; do sleep 0.2; done"]
"""


def test_the_teardown_shows_terminating_and_the_kill(tmp_path: Path) -> None:
    """A PID 1 that ignores SIGTERM holds the teardown for the grace period: up says so
    (Terminating, and when the kill comes), says the app's end before the sidecar's, as
    they happened, and that the pod is removed. (It used to show 'Running, not ready' for
    the whole wait, list the sidecar first and say nothing at the end.)"""
    proc = start("up", "--backend", "fake", write(tmp_path, "stub", pod_yaml("stub", STUBBORN)))
    assert proc.stdout is not None
    seen: list[str] = []
    try:
        read_until(proc.stdout, "pod stub: Running, Ready", seen)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 130
        assert time.monotonic() - t0 > 3  # the grace period ran out: then the kill
        lines = proc.stdout.read().splitlines()
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    assert lines[:3] == [
        "SIGINT: stopping pod stub ...",
        "pod stub: Terminating (kill in 3s)",
        "app: Terminating (kill in 3s)",
    ]
    assert lines.index("app: Terminated: Error (137)") < lines.index(
        "collector: Terminated: Completed (0)"
    )
    assert lines[-1] == "pod stub removed"
    assert not any("Running" in line for line in lines)


@pytest.mark.anyio
async def test_the_table_counts_down_to_the_kill(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a terminal the pod and each container being stopped show Terminating and the
    seconds left until the kill; the footer follows the signals."""
    from asyncpod._cli._up import _Up
    from asyncpod._console import Terminating

    monkeypatch.setitem(sys.modules, "rich", None)
    monkeypatch.setenv("NO_COLOR", "1")
    term = Terminal()
    console = open_console(term)
    terminating = Terminating(since=50.0, kill_at=80.0, containers={"web": 51.0})
    console.status(_status(), 55.0, terminating=terminating)
    assert term.getvalue().splitlines() == [
        "pod p: Terminating (kill in 25s)",
        "CONTAINER  KIND  STATE                      READY  RESTARTS  AGE",
        "web        app   Terminating (kill in 25s)  no     0         55s",
    ]

    class Running:
        run_id = "r1"

        def status(self) -> asyncpod.PodStatus:
            return _status()

    shown = _Up(
        asyncpod.Pod(name="p", containers=[asyncpod.Container(name="web", image="x")]), console
    )
    shown.running = Running()  # type: ignore[assignment]
    footers = []
    for event, attribute in [
        (None, None),
        (asyncpod.EventReason.TERMINATING, "stopping"),
        (None, "killing"),
        (asyncpod.EventReason.TORN_DOWN, None),
    ]:
        if event is not None:
            shown.on_event(asyncpod.PodEvent(time=0.0, reason=event))
        if attribute is not None:
            setattr(shown, attribute, True)
        shown.refresh_now()
        footers.append(console.footer)
    assert footers == [
        "Ctrl-C stops the pod",
        "stopping (Ctrl-C again kills every container)",
        "killing every container",
        "",
    ]
    last = term.getvalue().rsplit("\x1b[J", 1)[1]
    assert last.splitlines()[0].startswith("pod p: removed")


def test_ctrl_c_ends_the_demo_on_the_fake() -> None:
    """Ctrl-C tears the demo's pod down and exits 130: the fake's containers outlive the
    interrupted demo (they used to be cancelled with it, and the teardown then waited for
    them forever). log-sidecar's scripts trap SIGTERM, as the fake honours."""
    proc = start("demo", "log-sidecar", "--backend", "fake")
    assert proc.stdout is not None
    seen: list[str] = []
    try:
        read_until(proc.stdout, "pod is up", seen)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 130
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()


HARNESS = str(Path(__file__).parent / "cli_harness.py")


def harness(mode: list[str], *argv: str, **kwargs: Any) -> subprocess.Popen[str]:
    """The command line in a process of its own, against stand-ins (see cli_harness.py)."""
    return subprocess.Popen(
        [sys.executable, HARNESS, *mode, "--", *argv],
        text=True,
        **{"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, **kwargs},
    )


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize(
    ("command", "signum"),
    [(["up", str(SEED)], signal.SIGINT), (["ps"], signal.SIGTERM), (["demo"], signal.SIGINT)],
    ids=["up-sigint", "ps-sigterm", "demo-sigint"],
)
def test_a_signal_during_backend_setup_stops_at_once_and_leaves_no_service(
    tmp_path: Path, command: list[str], signum: int
) -> None:
    """Starting a private Podman service takes seconds (10 until it gives up): a signal
    meanwhile ends the command at once, with 128+N, and the service is stopped. (It used to
    be ignored until the set-up ended, or, for SIGTERM, to kill us and leave the service.)"""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    pid_file = tmp_path / "service.pid"
    stand_in = bin_dir / "podman"  # a service that never answers
    stand_in.write_text(f"#!/bin/sh\necho $$ > {pid_file}\nexec sleep 600\n")
    stand_in.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    env.pop("CONTAINER_HOST", None)
    proc = harness(["no-service"], *command, env=env)
    service = 0
    try:
        for _ in range(200):
            if pid_file.exists() and pid_file.read_text().strip():
                break
            time.sleep(0.05)
        service = int(pid_file.read_text())
        time.sleep(0.3)
        t0 = time.monotonic()
        proc.send_signal(signum)
        assert proc.wait(timeout=20) == 128 + signum
        assert time.monotonic() - t0 < 5
        assert "Traceback" not in proc.communicate()[1]
        for _ in range(50):
            if not alive(service):
                break
            time.sleep(0.1)
        assert not alive(service)
    finally:
        proc.kill()
        proc.communicate()
        if service and alive(service):
            os.kill(service, signal.SIGKILL)


def test_events_follow_ends_at_ctrl_c_with_exit_0() -> None:
    """events --follow prints what the engine knows, waits for more, and Ctrl-C is how it
    is meant to end: exit code 0, no error."""
    proc = harness(["fake", "1"], "events", "--follow", env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout is not None
    seen: list[str] = []
    try:
        read_until(proc.stdout, "  p0  pod  Created", seen)
        time.sleep(0.3)  # following now
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
        assert proc.stderr is not None
        assert proc.stderr.read() == ""
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
        if proc.stderr is not None:
            proc.stderr.close()


@pytest.mark.parametrize("pods", [1, 2000], ids=["buffered", "while-printing"])
def test_a_closed_stdout_ends_quietly_with_141(pods: int) -> None:
    """`asyncpod ps | head -1`: once the reader is gone, no traceback and no error line,
    exit code 128 + SIGPIPE, as for a process SIGPIPE kills (it used to say
    'asyncpod: error: Broken pipe' and exit 1, or fail at exit)."""
    proc = harness(["fake", str(pods)], "ps")
    assert proc.stdout is not None
    proc.stdout.close()  # the reader is gone before anything is written
    _, err = proc.communicate(timeout=60)
    assert err == ""
    assert proc.returncode == 141


def test_ps_into_a_pipe_still_prints_everything() -> None:
    proc = harness(["fake", "3"], "ps")
    out, err = proc.communicate(timeout=60)
    assert (proc.returncode, err) == (0, "")
    assert [line.split()[0] for line in out.splitlines()] == ["POD", "p0", "p1", "p2"]


def test_a_socket_of_another_user_is_a_backend_error_with_a_hint(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Permission denied on the socket: exit code 3 and a hint that says what to do."""
    import asyncpod.backends._podman._service as podman_module

    monkeypatch.setattr(podman_module, "_probe_unix", lambda path: os.strerror(errno.EACCES))
    assert main(["ps", "--url", "unix:///run/podman/podman.sock"]) == 3
    assert capsys.readouterr().err.splitlines() == [
        "asyncpod: error: no Podman service could be reached (tried "
        "unix:///run/podman/podman.sock: Permission denied)",
        "asyncpod: hint: the Podman socket belongs to another user: run as that user "
        "(root's is /run/podman/podman.sock), or use your own, "
        "'systemctl --user start podman.socket'",
    ]


def test_an_unreadable_manifest_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def denied(arg: str, *, lax: bool = False) -> Any:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), arg)

    monkeypatch.setattr("asyncpod._cli._backends.load", denied)
    assert main(["up", "--backend", "fake", "secret.yaml"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "asyncpod: error: secret.yaml: Permission denied"
    ]


# down and gc on the fake: who owns what


class Owned:
    """The pod objects (their labels) that ps, down and gc find, and what the last command
    left of them."""

    def __init__(self) -> None:
        self.pods: list[dict[str, str]] = []
        #: each pod's containers, by pod name: a container's name and its shell command
        self.containers: dict[str, list[tuple[str, str]]] = {}
        #: each pod's published ports, by pod name
        self.ports: dict[str, tuple[Any, ...]] = {}
        self.left: list[str] = []
        #: called with the fake before a command runs, and after it (before clean-up)
        self.before: list[Callable[[Any], Awaitable[None]]] = []
        self.after: list[Callable[[Any], Awaitable[None]]] = []


@pytest.fixture
def owned(monkeypatch: pytest.MonkeyPatch) -> Owned:
    """ps, down and gc find a FakeBackend holding the pods of :class:`Owned`, not Podman."""
    from asyncpod.backends import ContainerSpec, FakeBackend, PodSpec

    owned = Owned()

    @asynccontextmanager
    async def backend(url: str | None) -> AsyncIterator[FakeBackend]:
        async with FakeBackend() as fake:
            fake.add_image("busybox")
            for labels in owned.pods:
                name = labels["io.asyncpod.pod"]
                pod = await fake.create_pod(
                    PodSpec(
                        name=name, hostname=name, labels=labels, ports=owned.ports.get(name, ())
                    )
                )
                for short, script in owned.containers.get(name, []):
                    spec = ContainerSpec(
                        name=f"{name}-{short}",
                        pod=pod,
                        image="busybox",
                        short_name=short,
                        command=("sh", "-c", script),
                        labels={**labels, "io.asyncpod.container": short},
                    )
                    container = await fake.create_container(spec)
                    await fake.start_container(container)
                    if script.startswith("exit"):
                        await fake.wait_container(container)
            for hook in owned.before:
                await hook(fake)
            try:
                yield fake
                for hook in owned.after:
                    await hook(fake)
            finally:
                owned.left = [o.labels["io.asyncpod.pod"] for o in fake.objects()]
                await fake.remove_objects(fake.objects())

    monkeypatch.setattr("asyncpod._cli._backends.podman", backend)
    return owned


def labelled(name: str, pid: int | str, **extra: str) -> dict[str, str]:
    return {
        "io.asyncpod.pod": name,
        "io.asyncpod.run": f"run-{name}",
        LABEL_OWNER_PID: str(pid),
        LABEL_OWNER_HOST: hostname(),
        **extra,
    }


def test_down_never_signals_a_pid_it_cannot_prove_is_the_owner(
    owned: Owned, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without a start time (no /proc where the owner ran) a live pid may be an unrelated
    process that reused it: down refuses instead of sending it SIGTERM (it used to)."""
    bystander = subprocess.Popen(["sleep", "30"])
    try:
        owned.pods.append(labelled("web", bystander.pid))
        assert main(["down", "web"]) == 1
        assert capsys.readouterr().err.splitlines() == [
            f"asyncpod: error: pod web is run by process {bystander.pid} on this host, "
            "which cannot be proven to be its owner (no start time)",
            "asyncpod: hint: stop that process, or pass --force to stop the pod from here",
        ]
        assert bystander.poll() is None
        assert owned.left == ["web"]
    finally:
        bystander.kill()
        bystander.wait()


def test_gc_collects_a_detached_run_whose_owner_died_during_bring_up(
    owned: Owned, capsys: pytest.CaptureFixture[str]
) -> None:
    """`up --detach` killed before the pod was ready: its objects say detached=true but
    have no marker, so gc collects them (it used to leave them for ever)."""
    owned.pods.append(labelled("half", dead_pid(), **{"io.asyncpod.detached": "true"}))
    assert main(["gc"]) == 0
    out = capsys.readouterr().out
    assert "removed pod half (run run-half): 1 pod" in out
    assert "left alone" not in out
    assert owned.left == []


def test_gc_grace_bounds_each_stop_and_the_backend_reaps_first(
    owned: Owned, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """gc --grace is each pod's stop budget (a label read back is not trusted to bound it);
    what the backend itself left of dead owners (Podman's private services) goes first."""
    from asyncpod._cli import _manage
    from asyncpod.backends import FakeBackend

    graces: list[float | None] = []

    async def stop_pod(backend: object, pod: object, *, grace: float | None = None) -> None:
        graces.append(grace)

    async def reap(self: FakeBackend) -> list[str]:
        return ["the private Podman service (pid 7) of an owner that is gone"]

    monkeypatch.setattr(_manage, "stop_pod", stop_pod)
    monkeypatch.setattr(FakeBackend, "reap", reap)
    owned.pods.append(labelled("old", dead_pid()))
    assert main(["gc", "--grace", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "stopped the private Podman service (pid 7) of an owner that is gone"
    assert graces == [3.0]
    assert owned.left == []


def test_gc_on_a_remote_service_leaves_what_it_cannot_judge(
    owned: Owned,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Over ssh:// or tcp:// the host name may be another machine's: a pid is not judged
    (it used to be, by this machine's processes), the pod is reported and left alone."""
    from asyncpod.backends import FakeBackend

    monkeypatch.setattr(FakeBackend, "is_local", property(lambda self: False))
    pid = dead_pid()
    owned.pods.append(labelled("far", pid))
    assert main(["gc"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "nothing to remove",
        f"left alone, owner unknown (it cannot be checked from here): far (pid {pid}@"
        f"{hostname()}) ('asyncpod down --force NAME' once it is garbage)",
    ]
    assert owned.left == ["far"]
    assert main(["down", "far"]) == 1
    assert "cannot be checked from here" in capsys.readouterr().err
    assert owned.left == ["far"]
    assert main(["down", "--force", "far"]) == 0
    assert owned.left == []


def test_ps_shows_phase_and_age_and_prints_json(
    owned: Owned, capsys: pytest.CaptureFixture[str]
) -> None:
    owned.pods += [labelled("done", dead_pid()), labelled("web", os.getpid())]
    owned.containers["done"] = [("job", "exit 3")]
    owned.containers["web"] = [("init", "exit 0"), ("nginx", "sleep 600")]
    # hostPort 0: the backend picks the port, and ps shows the one it picked
    owned.ports["web"] = (PortMapping(container_port=80, host_port=0, host_ip="127.0.0.1"),)
    assert main(["ps"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert rows[0] == ["POD", "RUN", "OWNER", "PHASE", "AGE", "CONTAINER", "STATE", "PORTS"]
    assert rows[1][:3] == ["done", "run-done", "pid"]
    assert rows[1][4:] == ["(gone)", "Failed", "0s", "job", "exited", "(3)", "0s", "ago"]
    assert rows[2][4:-1] == ["Running", "0s", "init", "exited", "(0)", "0s", "ago"]
    host, _, port = rows[2][-1].partition(":")
    assert host == "127.0.0.1"
    assert port.endswith("->80/tcp")
    published = int(port.partition("->")[0])
    assert published > 0
    assert rows[3] == ["nginx", "running", "0s"]

    assert main(["ps", "--json"]) == 0
    pods = json.loads(capsys.readouterr().out)
    assert [(p["name"], p["phase"], p["owner"]["state"]) for p in pods] == [
        ("done", "Failed", "gone"),
        ("web", "Running", "alive"),
    ]
    web = pods[1]
    assert web["owner"] == {
        "pid": str(os.getpid()),
        "host": hostname(),
        "state": "alive",
        "detached": False,
    }
    assert [(c["name"], c["state"], c["exit_code"]) for c in web["containers"]] == [
        ("init", "exited", 0),
        ("nginx", "running", None),
    ]
    assert pods[0]["ports"] == []
    assert len(web["ports"]) == 1
    assert web["ports"][0]["host_port"] > 0
    assert {k: v for k, v in web["ports"][0].items() if k != "host_port"} == {
        "container_port": 80,
        "host_ip": "127.0.0.1",
        "protocol": "tcp",
    }
    assert abs(web["started_at"] - time.time()) < 30
    assert web["started_at"] == web["containers"][0]["started_at"]


def test_ps_json_of_no_pods_is_an_empty_list(
    owned: Owned, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ps", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_down_of_several_pods(owned: Owned, capsys: pytest.CaptureFixture[str]) -> None:
    """down takes several names: each pod goes; names of no pod are an error at the end
    (exit code 4), once the others are down."""
    owned.pods += [labelled(name, dead_pid()) for name in ("a", "b", "c")]
    assert main(["down", "a", "nope", "b"]) == 4
    captured = capsys.readouterr()
    assert [line for line in captured.out.splitlines() if "removed" in line] == [
        "pod a removed: 1 pod",
        "pod b removed: 1 pod",
    ]
    assert captured.err.splitlines() == [
        "asyncpod: error: no pod named 'nope' is owned by asyncpod here",
        "asyncpod: hint: 'asyncpod ps' lists the pods asyncpod owns",
    ]
    assert owned.left == ["c"]
    owned.pods = owned.pods[2:]  # each command finds the pods of owned.pods anew
    assert main(["down", "c", "x", "y"]) == 4
    assert capsys.readouterr().err.splitlines()[0] == (
        "asyncpod: error: no pods named 'x', 'y' are owned by asyncpod here"
    )
    assert owned.left == []


# cp, restart, kill, stats, describe and events on the fake


async def _cid(fake: Any, pod: str, container: str) -> str:
    found = await fake.list_objects({"io.asyncpod.pod": pod, "io.asyncpod.container": container})
    assert len(found) == 1, found
    return str(found[0].id)


def _tar(files: dict[str, bytes]) -> bytes:
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


async def _untar(fake: Any, pod: str, container: str, path: str) -> dict[str, bytes]:
    import tarfile

    tarball = await fake.get_archive(await _cid(fake, pod, container), path)
    with tarfile.open(fileobj=io.BytesIO(tarball)) as archive:
        return {
            m.name: archive.extractfile(m).read()  # type: ignore[union-attr]
            for m in archive.getmembers()
            if m.isfile()
        }


def test_cp_copies_files_and_directories_in_and_out(
    owned: Owned, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """cp: POD/CONTAINER:PATH or kubectl's POD:PATH -c CONTAINER; a directory goes whole;
    into an existing directory under the source's name, else as the path named."""
    owned.pods.append(labelled("web", dead_pid()))
    owned.containers["web"] = [("app", "sleep 600"), ("side", "sleep 600")]

    async def seed(fake: Any) -> None:
        files = {"d/a": b"alpha\n", "d/sub/b": b"beta\n"}
        await fake.put_archive(await _cid(fake, "web", "app"), "/data", _tar(files))

    owned.before.append(seed)
    out = tmp_path / "out"
    assert main(["cp", "web/app:/data/d", str(out)]) == 0
    assert capsys.readouterr().out == f"copied web/app:/data/d to {out} (2 files)\n"
    assert (out / "a").read_text() == "alpha\n"
    assert (out / "sub" / "b").read_text() == "beta\n"
    # into an existing directory: under the source's name; kubectl's form
    assert main(["cp", "web:/data/d/a", str(out), "-c", "app"]) == 0
    assert (out / "a").read_text() == "alpha\n"
    assert main(["cp", "web/app:data/d/sub/b", str(out / "b-copy")]) == 0  # relative to /
    assert (out / "b-copy").read_text() == "beta\n"
    capsys.readouterr()

    seen: dict[str, dict[str, bytes]] = {}

    async def look(fake: Any) -> None:
        seen["srv"] = await _untar(fake, "web", "app", "/srv")

    owned.after.append(look)
    assert main(["cp", str(out), "web/app:/srv/"]) == 0
    assert seen["srv"] == {
        "srv/out/a": b"alpha\n",
        "srv/out/sub/b": b"beta\n",
        "srv/out/b-copy": b"beta\n",
    }
    assert main(["cp", str(out / "a"), "web/app:/srv/renamed"]) == 0
    assert seen["srv"] == {"srv/renamed": b"alpha\n"}
    capsys.readouterr()

    assert main(["cp", "web/app:/nope", str(tmp_path / "x")]) == 4
    assert capsys.readouterr().err.splitlines()[0] == (
        "asyncpod: error: web/app:/nope: no such file or directory"
    )
    assert main(["cp", str(tmp_path / "nope"), "web/app:/srv"]) == 4
    assert main(["cp", "web/nope:/data", str(tmp_path / "x")]) == 4
    assert main(["cp", "gone/app:/data", str(tmp_path / "x")]) == 4
    capsys.readouterr()
    assert main(["cp", "web:/data", str(tmp_path / "x")]) == 2  # two containers: which?
    assert "has several containers: name one of app, side" in capsys.readouterr().err
    assert main(["cp", str(out), str(tmp_path / "y")]) == 2
    assert main(["cp", "web/app:/data", "web/side:/data"]) == 2
    assert main(["cp", "web/app:/data", str(tmp_path / "x"), "-c", "side"]) == 2
    assert not (tmp_path / "x").exists()


def test_cp_into_a_container_looks_at_the_destination_without_copying_it_out(
    owned: Owned, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whether DEST is a directory is asked of the backend (Podman: a HEAD of the
    archive), not answered by taking DEST and all in it out of the container."""
    from asyncpod.backends import FakeBackend

    owned.pods.append(labelled("web", dead_pid()))
    owned.containers["web"] = [("app", "sleep 600")]

    async def seed(fake: Any) -> None:
        files = {"usr/bin/tool": b"x" * 1000, "usr/lib/lib.so": b"y" * 1000}
        await fake.put_archive(await _cid(fake, "web", "app"), "/", _tar(files))

    seen: dict[str, dict[str, bytes]] = {}

    async def look(fake: Any) -> None:
        seen["usr"] = await _untar(fake, "web", "app", "/usr")

    owned.before.append(seed)
    owned.after.append(look)
    taken: list[str] = []
    get_archive = FakeBackend.get_archive

    async def counting(self: Any, container: str, path: str) -> bytes:
        taken.append(path)
        return await get_archive(self, container, path)

    monkeypatch.setattr(FakeBackend, "get_archive", counting)
    (tmp_path / "f").write_bytes(b"f\n")
    assert main(["cp", str(tmp_path / "f"), "web/app:/usr"]) == 0
    assert taken == ["/usr"]  # only the test's own look afterwards
    assert seen["usr"]["usr/f"] == b"f\n"
    assert main(["cp", str(tmp_path / "f"), "web/app:/usr/g"]) == 0  # a new name
    assert taken == ["/usr", "/usr"]
    assert "usr/f" not in seen["usr"]  # each command's fake is new
    assert seen["usr"]["usr/g"] == b"f\n"


def _tar_of(*members: tuple[str, str, Any]) -> bytes:
    """A tar of (name, kind, what) entries: kind "file" (bytes, or (bytes, mode)), "dir",
    "sym" or "hard" (the link's target), "fifo"."""
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, kind, what in members:
            info = tarfile.TarInfo(name)
            data = b""
            if kind == "file":
                data, info.mode = what if isinstance(what, tuple) else (what, 0o644)
                info.size = len(data)
            elif kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
            elif kind in ("sym", "hard"):
                info.type = tarfile.SYMTYPE if kind == "sym" else tarfile.LNKTYPE
                info.linkname = what
            else:
                info.type = tarfile.FIFOTYPE
            archive.addfile(info, io.BytesIO(data) if kind == "file" else None)
    return buffer.getvalue()


def test_cp_out_keeps_what_the_container_sends_inside_the_destination(
    owned: Owned,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The container makes the archive: links that are absolute or lead out of the
    destination, entries outside it, hard links to files outside, fifos are skipped with a
    warning each; a file is never written through a link (one there is replaced); setuid
    bits are dropped; a link over a directory of the same archive does not crash."""
    from asyncpod.backends import FakeBackend

    owned.pods.append(labelled("web", dead_pid()))
    owned.containers["web"] = [("app", "sleep 600")]
    home = tmp_path / "home"
    home.mkdir()
    (home / ".bashrc").write_text("mine\n")
    archives = {
        "/x": _tar_of(
            ("x", "dir", None),
            ("x/sub", "dir", None),
            ("x/sub/f", "file", b"f\n"),
            ("x/run", "file", (b"#!/bin/sh\n", 0o6755)),
            ("x/evil", "sym", str(home / ".bashrc")),  # absolute
            ("x/up", "sym", "../../home/.bashrc"),  # relative, out of the destination
            ("x/ok", "sym", "sub/f"),
            ("x/m", "sym", "."),
            ("x/tricky", "sym", "m/../ok"),  # stored as "ok": what the kernel follows
            ("x/sneaky", "sym", "m/../../home"),  # via m: out of the destination
            ("x/../escape", "file", b"no\n"),
            ("/abs", "file", b"no\n"),
            ("x/hard", "hard", "x/sub/f"),
            ("x/hardout", "hard", "x/../home/.bashrc"),
            ("x/fifo", "fifo", None),
            ("x/sub/g", "hard", "x/evil"),  # a hard link to a link: not to a file
        ),
        "/y": _tar_of(("y", "dir", None), ("y/evil", "file", b"pwned\n")),
        "/z": _tar_of(("z", "dir", None), ("z/a", "sym", "b"), ("z/a/f", "file", b"f\n")),
    }

    async def get_archive(self: Any, container: str, path: str) -> bytes:
        await anyio.lowlevel.checkpoint()
        return archives[path]

    monkeypatch.setattr(FakeBackend, "get_archive", get_archive)
    out = tmp_path / "out"
    assert main(["cp", "web/app:/x", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.out == f"copied web/app:/x to {out} (6 files)\n"
    warned = [line.split(": ", 3)[3] for line in captured.err.splitlines()]
    assert captured.err.startswith("asyncpod: warning: web/app:/x: skipped ")
    assert sorted(warned) == sorted(
        [
            f"skipped 'x/evil': a symbolic link to {str(home / '.bashrc')!r}, "
            "outside the destination",
            "skipped 'x/up': a symbolic link to '../../home/.bashrc', outside the destination",
            "skipped 'x/sneaky': a symbolic link to 'm/../../home', outside the destination",
            "skipped 'x/../escape': outside the destination",
            "skipped '/abs': outside the destination",
            "skipped 'x/hardout': a hard link to 'x/../home/.bashrc', no file of the destination",
            "skipped 'x/fifo': not a file, directory or link",
            "skipped 'x/sub/g': a hard link to 'x/evil', no file of the destination",
        ]
    )
    assert sorted(p.name for p in out.iterdir()) == ["hard", "m", "ok", "run", "sub", "tricky"]
    assert os.readlink(out / "ok") == "sub/f"
    assert os.readlink(out / "tricky") == "ok"
    assert (out / "tricky").read_text() == "f\n"
    assert (out / "hard").stat().st_ino == (out / "sub" / "f").stat().st_ino
    assert (out / "run").stat().st_mode & 0o7777 == 0o755
    assert not (tmp_path / "escape").exists()

    # a link planted at a file's place (as an older cp let the container do) is replaced
    planted = tmp_path / "planted"
    planted.mkdir()
    (planted / "evil").symlink_to(home / ".bashrc")
    assert main(["cp", "web/app:/y", str(planted)]) == 0
    assert (home / ".bashrc").read_text() == "mine\n"
    assert not (planted / "y" / "evil").is_symlink()
    assert (planted / "y" / "evil").read_text() == "pwned\n"
    (planted / "y" / "evil").unlink()
    (planted / "y" / "evil").symlink_to(home / ".bashrc")
    assert main(["cp", "web/app:/y", str(planted)]) == 0
    assert (home / ".bashrc").read_text() == "mine\n"
    assert (planted / "y" / "evil").read_text() == "pwned\n"
    # and a planted directory link: nothing is written through it
    (planted / "y" / "evil").unlink()
    planted_dir = tmp_path / "planted2"
    planted_dir.mkdir()
    (planted_dir / "y").symlink_to(home)
    assert main(["cp", "web/app:/y", str(planted_dir)]) == 0
    assert sorted(p.name for p in home.iterdir()) == [".bashrc"]
    assert (planted_dir / "y" / "evil").read_text() == "pwned\n"
    capsys.readouterr()

    # a link over a directory the same archive made: skipped, no crash
    assert main(["cp", "web/app:/z", str(tmp_path / "z")]) == 0
    assert (tmp_path / "z" / "a" / "f").read_text() == "f\n"
    assert capsys.readouterr().err == (
        "asyncpod: warning: web/app:/z: skipped 'z/a': a directory is there\n"
    )


def test_restart_and_kill_a_container_of_an_unsupervised_pod(
    owned: Owned, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nobody supervises a pod whose owner is gone (or that was detached): restart stops
    the container within the grace period and starts it again itself; kill signals it."""
    owned.pods.append(labelled("web", dead_pid()))
    owned.containers["web"] = [("app", "echo up; sleep 600"), ("job", "exit 0")]
    seen: dict[str, Any] = {}

    async def look(fake: Any) -> None:
        cid = await _cid(fake, "web", "app")
        seen["app"] = await fake.inspect_container(cid)
        seen["actions"] = [e.action for e in await fake.past_events() if e.id == cid]

    owned.after.append(look)
    assert main(["restart", "web", "app", "--grace", "2"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "stopping container app of pod web (grace 2s) ...",
        "container app of pod web restarted",
    ]
    assert seen["app"].state.value == "running"
    assert seen["actions"] == ["create", "start", "died", "start"]

    # sh as PID 1 without a trap ignores SIGTERM, as on Linux; SIGKILL it cannot
    assert main(["kill", "web", "app", "--signal", "TERM"]) == 0
    assert capsys.readouterr().out == "sent SIGTERM to container app of pod web\n"
    assert seen["app"].state.value == "running"
    assert main(["kill", "web", "app", "-s", "9"]) == 0
    assert capsys.readouterr().out == "sent SIGKILL to container app of pod web\n"
    assert seen["app"].state.value == "exited"
    assert seen["app"].exit_code == 128 + 9

    assert main(["kill", "web", "job"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "asyncpod: error: container job of pod web is not running (exited)"
    ]
    assert main(["restart", "web", "nope"]) == 4
    assert main(["kill", "nope", "app"]) == 4
    with pytest.raises(SystemExit) as exc:
        main(["kill", "web", "app", "-s", "SIGNOPE"])
    assert exc.value.code == 2
    assert "no such signal: SIGNOPE" in capsys.readouterr().err


@pytest.mark.parametrize("detached", [False, True], ids=["owner-alive", "detached"])
def test_restart_of_a_pod_with_an_owner_only_stops_the_container(
    owned: Owned, detached: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    """A pod whose owner lives is that process's to restart: restart stops the container,
    and its supervisor does what the restart policy says; a detached pod has none."""
    from asyncpod.backends import VolumeSpec

    owned.pods.append(labelled("web", os.getpid()))
    owned.containers["web"] = [("app", "trap 'exit 0' TERM; while true; do sleep 0.2; done")]
    seen: dict[str, Any] = {}

    async def mark(fake: Any) -> None:
        labels = {"io.asyncpod.pod": "web", "io.asyncpod.run": "run-web"}
        marker = {**labels, "io.asyncpod.marker": "detached"}
        await fake.create_volume(VolumeSpec(name="asyncpod-detached-run-web", labels=marker))

    async def look(fake: Any) -> None:
        seen["app"] = await fake.inspect_container(await _cid(fake, "web", "app"))

    if detached:
        owned.before.append(mark)
    owned.after.append(look)
    assert main(["restart", "web", "app"]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    if detached:
        assert last == "container app of pod web restarted"
        assert seen["app"].state.value == "running"
    else:
        assert last == (
            f"container app stopped (exit code 0); pod web is supervised by process "
            f"{os.getpid()}, which restarts it as the pod's restart policy says"
        )
        assert seen["app"].state.value == "exited"


def test_restart_of_a_supervised_pod_sends_the_container_s_stop_signal(
    owned: Owned, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A supervised pod's container is stopped as stop_container would: by its own stop
    signal (the image's STOPSIGNAL), not always SIGTERM."""
    import signal

    from asyncpod.backends import FakeBackend

    owned.pods.append(labelled("web", os.getpid()))
    owned.containers["web"] = [("app", "sleep 600")]
    sent: list[int] = []
    kill = FakeBackend.kill_container

    async def stop_signal(self: Any, container: str) -> int:
        await anyio.lowlevel.checkpoint()
        return int(signal.SIGINT)  # as if the image said STOPSIGNAL SIGINT

    async def kill_container(self: Any, container: str, *, signal: int = 9) -> None:
        sent.append(signal)
        await kill(self, container, signal=signal)

    monkeypatch.setattr(FakeBackend, "stop_signal", stop_signal)
    monkeypatch.setattr(FakeBackend, "kill_container", kill_container)
    assert main(["restart", "web", "app", "--grace", "5"]) == 0
    assert sent == [signal.SIGINT]
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"container app stopped (exit code 130); pod web is supervised by process "
        f"{os.getpid()}, which restarts it as the pod's restart policy says"
    )


SUPERVISED = """
apiVersion: v1
kind: Pod
metadata: {name: sup}
spec:
  restartPolicy: POLICY
  terminationGracePeriodSeconds: 5
  containers:
  - {name: app, image: busybox, command: [sh, -c, "echo up; sleep 600"]}
"""


@pytest.mark.anyio
@pytest.mark.parametrize("policy", ["Always", "Never"])
async def test_restart_of_a_supervised_pod_is_its_supervisors_restart(
    policy: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`asyncpod restart` of a pod an `asyncpod up` (here: open_pod in this process) runs:
    the supervisor sees the exit and applies the restart policy, counting a restart;
    under Never the container stays exited."""
    from asyncpod._cli._control import restart
    from asyncpod._cli._parser import build_parser
    from asyncpod._cli._signals import Stop
    from asyncpod.backends import FakeBackend
    from asyncpod.kube import load_pod

    pod = load_pod(SUPERVISED.replace("POLICY", policy))
    async with FakeBackend() as fake:
        fake.add_image("busybox")

        @asynccontextmanager
        async def backend(url: str | None) -> AsyncIterator[FakeBackend]:
            yield fake

        monkeypatch.setattr("asyncpod._cli._backends.podman", backend)
        async with asyncpod.open_pod(pod, backend=fake) as running:
            args = build_parser("0").parse_args(["restart", "sup", "app"])
            assert await restart(args, Stop()) == 0
            assert "supervised by process" in capsys.readouterr().out
            with anyio.fail_after(30):
                # the supervisor saw the exit; under Always it started the container again
                while not (  # noqa: ASYNC110
                    isinstance(running.status().container("app").state, asyncpod.Terminated)
                    if policy == "Never"
                    else running.status().container("app").restart_count
                    and isinstance(running.status().container("app").state, asyncpod.Running)
                ):
                    await anyio.sleep(0.05)
            status = running.status().container("app")
            assert status.restart_count == (1 if policy == "Always" else 0)
            if policy == "Never":
                assert isinstance(status.state, asyncpod.Terminated)
            else:
                assert isinstance(status.state, asyncpod.Running)


def test_stats_shows_cpu_and_memory_or_why_not(
    owned: Owned, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """stats: CPU % over the interval and memory of each running container; a stopped one
    is '-', one the backend cannot measure (rootless cgroup v1) 'n/a'."""
    from asyncpod.backends import ContainerStats, FakeBackend

    samples = iter([1.0, 1.5])

    async def stats(self: FakeBackend, container: str) -> ContainerStats | None:
        if (await self.inspect_container(container)).name.endswith("-side"):
            return None  # as rootless Podman on cgroup v1: no cgroup to read
        return ContainerStats(
            cpu_seconds=next(samples), memory_bytes=3 << 20, memory_limit_bytes=12 << 20
        )

    monkeypatch.setattr(FakeBackend, "stats", stats)
    ticks = iter([10.0, 10.0, 10.5, 10.5])  # app and side, sampled twice
    monkeypatch.setattr("asyncpod._cli._control._now", lambda: next(ticks))
    owned.pods.append(labelled("web", dead_pid()))
    owned.containers["web"] = [("init", "exit 0"), ("app", "sleep 600"), ("side", "sleep 600")]
    assert main(["stats", "--interval", "0", "web"]) == 0
    assert [line.split("  ") for line in capsys.readouterr().out.splitlines()] == [
        line.split("  ")
        for line in [
            "POD  CONTAINER  CPU %       CPU TIME  MEM USAGE / LIMIT  MEM %",
            "web  init       - (exited)  -         -                  -",
            "web  app        100.00%     1.50s     3.0MiB / 12.0MiB   25.00%",
            "web  side       n/a         n/a       n/a                n/a",
        ]
    ]
    samples = iter([2.0, 2.25])
    ticks = iter([0.0, 0.0, 1.0, 1.0])
    assert main(["stats", "--json", "--interval", "0"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["container"], r["state"], r["cpu_percent"], r["memory_bytes"]) for r in rows] == [
        ("init", "exited", None, None),
        ("app", "running", 25.0, 3 << 20),
        ("side", "running", None, None),
    ]
    assert rows[1] == {
        "pod": "web",
        "container": "app",
        "state": "running",
        "cpu_percent": 25.0,
        "cpu_seconds": 2.25,
        "memory_bytes": 3 << 20,
        "memory_limit_bytes": 12 << 20,
    }
    assert main(["stats", "nope"]) == 4


def test_describe_and_events_of_a_pod(owned: Owned, capsys: pytest.CaptureFixture[str]) -> None:
    """describe: phase, owner, each container's state, reason, exit code, image and the
    restarts the event log shows, then the recent events; events: what the engine saw."""
    gone = dead_pid()
    owned.pods.append(labelled("web", gone))
    owned.containers["web"] = [("init", "exit 0"), ("app", "sleep 600"), ("bad", "exit 3")]

    async def restart_app(fake: Any) -> None:
        cid = await _cid(fake, "web", "app")
        await fake.stop_container(cid, grace=1)
        await fake.start_container(cid)

    owned.before.append(restart_app)
    assert main(["describe", "web"]) == 0
    out = capsys.readouterr().out
    head, _, rest = out.partition("Containers:\n")
    assert [line.split(None, 1) for line in head.splitlines()[:4]] == [
        ["Name:", "web"],
        ["Run:", "run-web"],
        ["Owner:", f"pid {gone} (gone)"],
        ["Phase:", "Running"],
    ]
    assert re.fullmatch(r"IP:\s+\d+\.\d+\.\d+\.\d+", head.splitlines()[4])
    containers, _, events = rest.partition("Events:\n")
    blocks = {b.split(":", 1)[0]: b for b in re.split(r"\n(?=  \w)", containers.strip("\n"))}
    assert "    Image:      busybox" in blocks["  app"]
    assert "    State:      Running" in blocks["  app"]
    assert "    Restarts:   1" in blocks["  app"]
    assert "      Reason:   Error" in blocks["  bad"]
    assert "      Exit Code: 3" in blocks["  bad"]
    assert "      Reason:   Completed" in blocks["  init"]
    rows = [line.split() for line in events.splitlines()]
    assert rows[0] == ["AGE", "OBJECT", "REASON", "DETAIL"]
    assert ["bad", "Error", "exit", "code", "3"] in [r[1:] for r in rows]
    assert [r[1:] for r in rows if r[1] == "app"] == [
        ["app", "Created"],
        ["app", "Started"],
        ["app", "Error", "exit", "code", "137"],  # PID 1 ignored SIGTERM: killed
        ["app", "Started"],
    ]

    assert main(["describe", "--json", "--events", "2", "web"]) == 0
    described = json.loads(capsys.readouterr().out)
    assert described["phase"] == "Running"
    assert [
        (c["name"], c["image"], c["state"], c["reason"], c["exit_code"], c["restarts"])
        for c in described["containers"]
    ] == [  # in start order: app's last start is the latest
        ("init", "busybox", "exited", "Completed", 0, 0),
        ("bad", "busybox", "exited", "Error", 3, 0),
        ("app", "busybox", "running", None, None, 1),
    ]
    assert len(described["events"]) == 2

    assert main(["events", "web"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ  web  ", line) for line in lines)
    assert [line.split("  ", 2)[2] for line in lines if "  bad  " in line] == [
        "bad  Created",
        "bad  Started",
        "bad  Error  exit code 3",
    ]
    assert main(["events", "--json"]) == 0
    parsed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {e["pod"] for e in parsed} == {"web"}
    assert {"container": "bad", "action": "died", "reason": "Error", "exit_code": 3}.items() <= (
        [e for e in parsed if e["container"] == "bad"][-1].items()
    )
    assert main(["events", "nope"]) == 4
    assert main(["describe", "nope"]) == 4


@pytest.fixture
def claims(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """volumes finds a FakeBackend holding the volumes of these claims (and one scratch
    volume of a pod, which is no claim); after a command, the list holds what is left."""
    from asyncpod._labels import LABEL_CLAIM
    from asyncpod.backends import FakeBackend, VolumeSpec

    claims: list[str] = []

    @asynccontextmanager
    async def backend(url: str | None) -> AsyncIterator[FakeBackend]:
        async with FakeBackend() as fake:
            for claim in claims:
                spec = VolumeSpec(name=claim, labels={LABEL_CLAIM: claim}, claim=True)
                await fake.create_volume(spec)
            await fake.create_volume(VolumeSpec(name="p-scratch", labels={"io.asyncpod.pod": "p"}))
            try:
                yield fake
            finally:
                left = [o.labels.get(LABEL_CLAIM) for o in fake.objects()]
                claims[:] = [c for c in left if c is not None]
                assert len(left) == len(claims) + 1  # the scratch volume stays

    monkeypatch.setattr("asyncpod._cli._backends.podman", backend)
    return claims


def test_volumes_lists_and_removes_claims(
    claims: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """volumes (or volumes ls) lists the claims, one a line; volumes rm removes the named
    ones; a name of no claim is exit code 4, once the others are gone."""
    claims += ["db-data", "cache"]
    assert main(["volumes"]) == 0
    assert capsys.readouterr().out.splitlines() == ["cache", "db-data"]
    assert main(["volumes", "ls"]) == 0
    assert capsys.readouterr().out.splitlines() == ["cache", "db-data"]
    assert main(["volumes", "rm", "cache", "nope", "cache"]) == 4
    captured = capsys.readouterr()
    assert captured.out.splitlines() == ["removed the volume of claim cache"]
    assert captured.err.splitlines() == [
        "asyncpod: error: no volume of claim 'nope' exists here",
        "asyncpod: hint: 'asyncpod volumes' lists the claims whose volumes exist",
    ]
    assert claims == ["db-data"]
    assert main(["volumes", "rm", "db-data"]) == 0
    assert claims == []
    assert main(["volumes"]) == 0
    assert capsys.readouterr().out == "removed the volume of claim db-data\n"


# console


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _status() -> asyncpod.PodStatus:
    return asyncpod.PodStatus(
        name="p",
        phase=asyncpod.Phase.RUNNING,
        conditions=asyncpod.PodConditions(initialized=True, containers_ready=True, ready=True),
        containers=(
            asyncpod.ContainerStatus(
                name="web",
                kind=asyncpod.StepKind.APP,
                image="x",
                state=asyncpod.Running(started_at=0.0),
                ready=True,
            ),
        ),
    )


def test_the_plain_table_is_redrawn_in_place(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without rich, a terminal gets a plain table, erased and redrawn on each update."""
    monkeypatch.setitem(sys.modules, "rich", None)  # as if not installed
    monkeypatch.setenv("NO_COLOR", "1")
    term = Terminal()
    console = open_console(term)
    console.status(_status(), 75.0)
    console.log("web", 0, "hello")
    console.close()
    out = term.getvalue()
    table = (
        "pod p: Running, Ready\n"
        "CONTAINER  KIND  STATE    READY  RESTARTS  AGE\n"
        "web        app   Running  yes    0         1m15s\n"
    )
    assert out == table + "\x1b[3F\x1b[J" + "web | hello\n" + table


def test_rich_renders_the_table_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("rich")
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("TERM", raising=False)
    term = Terminal()
    console = open_console(term)
    console.status(_status(), 5.0)
    console.close()
    out = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", term.getvalue())
    assert "pod p: Running, Ready" in out
    assert re.search(r"web\s+│ app\s+│ Running\s+│ yes\s+│ 0\s+│ 5s", out)


# Podman: up --detach, ps, logs, down, gc


@pytest.fixture
def pod_name(podman_client: Any) -> Iterator[str]:
    """A unique pod name; whatever carries it is removed after the test."""
    name = f"cli-{uuid.uuid4().hex[:8]}"
    yield name
    filters = json.dumps({"label": [f"io.asyncpod.pod={name}"]})
    api = podman_client.api
    for c in api.get("/containers/json", params={"filters": filters, "all": "true"}).json() or []:
        api.delete(f"/containers/{c['Id']}", params={"force": "true"})
    for p in api.get("/pods/json", params={"filters": filters}).json() or []:
        api.delete(f"/pods/{p['Id']}", params={"force": "true"})
    for v in api.get("/volumes/json", params={"filters": filters}).json() or []:
        api.delete(f"/volumes/{v['Name']}", params={"force": "true"})


SIDECAR_POD = """
terminationGracePeriodSeconds: 5
initContainers:
- name: init
  image: IMAGE
  command: [sh, -c, "echo init done > /data/x; echo init done"]
  volumeMounts: [{name: data, mountPath: /data}]
- name: side
  image: IMAGE
  restartPolicy: Always
  command: [sh, -c, "trap 'exit 0' TERM; echo side up; while true; do sleep 0.2; done"]
containers:
- name: app
  image: IMAGE
  command: [sh, -c, "trap 'exit 0' TERM; cat /data/x; echo app up; while true; do sleep 0.2; done"]
  volumeMounts: [{name: data, mountPath: /data}]
volumes:
- {name: data, emptyDir: {}}
"""


@pytest.mark.podman
@pytest.mark.alone  # ps lists the whole service
def test_detach_ps_logs_down(
    tmp_path: Path,
    podman_url: str,
    podman_client: Any,
    image: str,
    pod_name: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """up --detach leaves the pod running; ps and logs show it; down stops and removes it."""
    url = ["--url", podman_url]
    path = write(tmp_path, pod_name, pod_yaml(pod_name, SIDECAR_POD, TEST_IMAGE))
    assert main(["up", "--detach", *url, path]) == 0
    assert f"pod {pod_name} is ready and left running on Podman" in capsys.readouterr().out

    assert main(["ps", *url]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    mine = rows[[r[0] for r in rows].index(pod_name) :][:3]
    assert mine[0][2:4] == ["detached", "Running"]
    assert re.fullmatch(r"\d+s", mine[0][4])  # its age
    assert mine[0][5:8] == ["init", "exited", "(0)"]
    assert [r[0] for r in mine[1:]] == ["side", "app"]
    assert [r[1] for r in mine[1:]] == ["running", "running"]

    assert main(["logs", *url, pod_name]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "init | init done",
        "side | side up",
        "app  | init done",
        "app  | app up",
    ]
    assert main(["logs", *url, pod_name, "app"]) == 0
    assert capsys.readouterr().out.splitlines() == ["init done", "app up"]
    assert main(["logs", *url, pod_name, "nope"]) == 4

    assert main(["gc", *url, pod_name]) == 0  # detached: left alone
    assert "left alone, detached on purpose" in capsys.readouterr().out
    assert left_behind(podman_client, "io.asyncpod.pod", pod_name) != []

    t0 = time.monotonic()
    assert main(["down", *url, pod_name]) == 0
    assert time.monotonic() - t0 < 5  # both trap SIGTERM: no grace period runs out
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"pod {pod_name} removed: 3 containers, 1 pod, 1 volume"
    )
    assert left_behind(podman_client, "io.asyncpod.pod", pod_name) == []
    assert main(["down", *url, pod_name]) == 4


@pytest.mark.podman
@pytest.mark.alone  # gc lists the whole service
def test_gc_removes_the_objects_of_a_dead_owner(
    podman_url: str,
    podman_client: Any,
    image: str,
    pod_name: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Objects labelled with the pid of a process that is gone are garbage."""
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    labels = {
        "io.asyncpod.pod": pod_name,
        "io.asyncpod.run": "deadbeef0000",
        LABEL_OWNER_PID: dead.stdout.strip(),
        LABEL_OWNER_HOST: hostname(),
    }
    api = podman_client.api
    created = api.post("/pods/create", data=json.dumps({"name": pod_name, "labels": labels}))
    assert created.status_code == 201, created.text
    body = {
        "name": f"{pod_name}-c",
        "image": image,
        "pod": pod_name,
        "command": ["sleep", "600"],
        "labels": labels,
    }
    assert api.post("/containers/create", data=json.dumps(body)).status_code == 201
    volume = {"Name": f"{pod_name}-v", "Label": labels}
    assert api.post("/volumes/create", data=json.dumps(volume)).status_code == 201

    assert main(["gc", "--dry-run", "--url", podman_url, pod_name]) == 0
    assert capsys.readouterr().out.splitlines()[0] == (
        f"would remove pod {pod_name} (run deadbeef0000; pid {dead.stdout.strip()} is gone): "
        "1 container, 1 pod, 1 volume"
    )
    assert {f"pod {pod_name}", f"container {pod_name}-c", f"volume {pod_name}-v"} <= set(
        left_behind(podman_client, "io.asyncpod.pod", pod_name)
    )

    assert main(["gc", "--url", podman_url, pod_name]) == 0
    assert f"removed pod {pod_name} (run deadbeef0000): 1 container, 1 pod, 1 volume" in (
        capsys.readouterr().out
    )
    assert left_behind(podman_client, "io.asyncpod.pod", pod_name) == []


@pytest.mark.podman
@pytest.mark.alone  # down lists the whole service
def test_down_asks_a_live_up_to_tear_down(
    tmp_path: Path,
    podman_url: str,
    podman_client: Any,
    image: str,
    pod_name: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """down of a pod a live `asyncpod up` runs sends that process SIGTERM and waits."""
    path = write(tmp_path, pod_name, pod_yaml(pod_name, SIDECAR_POD, TEST_IMAGE))
    proc = start("up", "--url", podman_url, path)
    assert proc.stdout is not None
    seen: list[str] = []
    try:
        read_until(proc.stdout, f"pod {pod_name}: Running, Ready", seen)
        assert main(["down", "--url", podman_url, pod_name]) == 0
        assert capsys.readouterr().out.splitlines() == [
            f"pod {pod_name} is run by process {proc.pid}: sent it SIGTERM ...",
            f"pod {pod_name} stopped and removed by process {proc.pid}",
        ]
        assert proc.wait(timeout=20) == 143
        assert left_behind(podman_client, "io.asyncpod.pod", pod_name) == []
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()


@pytest.mark.podman
def test_logs_follow_stops_at_ctrl_c(
    tmp_path: Path, podman_url: str, image: str, pod_name: str
) -> None:
    """logs -f ends promptly on SIGINT, even following a container that never logged."""
    spec = """
containers:
- name: app
  image: IMAGE
  command: [sh, -c, "trap 'exit 0' TERM; echo app up; while true; do sleep 0.2; done"]
- name: silent
  image: IMAGE
  command: [sh, -c, "trap 'exit 0' TERM; while true; do sleep 0.2; done"]
"""
    path = write(tmp_path, pod_name, pod_yaml(pod_name, spec, TEST_IMAGE))
    assert main(["up", "--detach", "--url", podman_url, path]) == 0
    proc = start("logs", "-f", "--url", podman_url, pod_name)
    assert proc.stdout is not None
    seen: list[str] = []
    try:
        read_until(proc.stdout, "app    | app up", seen)
        time.sleep(0.5)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 130
        assert time.monotonic() - t0 < 5
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
        assert main(["down", "--url", podman_url, "--grace", "0", pod_name]) == 0


@pytest.mark.podman
def test_exec_and_logs_options(
    tmp_path: Path, podman_url: str, image: str, pod_name: str, capfd: pytest.CaptureFixture[str]
) -> None:
    """exec passes env, workdir and user and exits with the command's code; logs --tail and
    --timestamps select and stamp lines; --previous is refused for a pod left running."""
    spec = """
containers:
- name: app
  image: IMAGE
  command: [sh, -c, "echo one; echo two; echo three; sleep 1000"]
"""
    path = write(tmp_path, pod_name, pod_yaml(pod_name, spec, TEST_IMAGE))
    assert main(["up", "--detach", "--url", podman_url, path]) == 0
    try:
        capfd.readouterr()
        argv = ["exec", "--url", podman_url, "-e", "X=1", "-w", "/tmp", "-u", "1234"]
        code = main([*argv, pod_name, "app", "--", "sh", "-c", "echo $X; pwd; id -u; exit 3"])
        assert code == 3
        assert capfd.readouterr().out == "1\n/tmp\n1234\n"
        for _ in range(50):
            assert main(["logs", "--url", podman_url, "--tail", "2", pod_name]) == 0
            out = capfd.readouterr().out
            if out == "two\nthree\n":
                break
            time.sleep(0.1)
        assert out == "two\nthree\n"
        assert main(["logs", "--url", podman_url, "--timestamps", "--tail", "1", pod_name]) == 0
        stamp, text = capfd.readouterr().out.split()
        assert text == "three"
        assert stamp.endswith("Z")
        assert stamp[:4].isdigit()
        assert main(["logs", "--url", podman_url, "--previous", pod_name]) != 0
    finally:
        assert main(["down", "--url", podman_url, "--grace", "0", pod_name]) == 0


def test_up_with_a_secret_and_a_claim_then_volumes_rm(
    tmp_path: Path, podman_url: str, image: str, pod_name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """On Podman: up mounts a --secret's file; the claim's data outlives the run, 'volumes'
    lists it and 'volumes rm' removes it."""
    url = ["--url", podman_url]
    claim = f"{pod_name}-claim"
    (tmp_path / "token").write_text("t0ken")
    spec = f"""
restartPolicy: Never
containers:
- name: app
  image: IMAGE
  command:
  - sh
  - -c
  - test -f /data/kept && cat /data/kept && exit 3; cat /etc/creds/token > /data/kept
  volumeMounts:
  - {{name: creds, mountPath: /etc/creds}}
  - {{name: data, mountPath: /data}}
volumes:
- {{name: creds, secret: {{secretName: creds}}}}
- {{name: data, persistentVolumeClaim: {{claimName: {claim}}}}}
"""
    path = write(tmp_path, pod_name, pod_yaml(pod_name, spec, TEST_IMAGE))
    argv = ["up", *url, path, "--secret", f"creds={tmp_path / 'token'}"]
    try:
        assert main(argv) == 0  # nothing kept yet: it keeps the token
        capsys.readouterr()
        assert main(argv) == 1  # the first run's file is there: it shows it, exits 3
        assert "  app | t0ken" in capsys.readouterr().err.splitlines()
        assert main(["volumes", *url]) == 0
        assert claim in capsys.readouterr().out.splitlines()
    finally:
        main(["volumes", *url, "rm", claim])
    assert capsys.readouterr().out.splitlines() == [f"removed the volume of claim {claim}"]
    assert main(["volumes", *url]) == 0
    assert claim not in capsys.readouterr().out.splitlines()


CONTROLLED_POD = """
terminationGracePeriodSeconds: 5
initContainers:
- name: init
  image: IMAGE
  command: [sh, -c, "mkdir -p /data/d/sub; echo alpha > /data/d/a; echo beta > /data/d/sub/b"]
  volumeMounts: [{name: data, mountPath: /data}]
containers:
- name: app
  image: IMAGE
  command: [sh, -c, "trap 'exit 0' TERM; echo app up; while true; do sleep 0.2; done"]
  volumeMounts: [{name: data, mountPath: /data}]
volumes:
- {name: data, emptyDir: {}}
"""


@pytest.mark.podman
def test_cp_describe_events_restart_kill_stats_on_podman(
    tmp_path: Path,
    podman_url: str,
    podman_client: Any,
    image: str,
    pod_name: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The per-container commands against a pod left running by up --detach."""
    url = ["--url", podman_url]
    path = write(tmp_path, pod_name, pod_yaml(pod_name, CONTROLLED_POD, TEST_IMAGE))
    assert main(["up", "--detach", *url, path]) == 0
    try:
        capsys.readouterr()
        # cp out: a directory, a file; kubectl's form; a missing path
        out = tmp_path / "out"
        assert main(["cp", *url, f"{pod_name}/app:/data/d", str(out)]) == 0
        assert (out / "a").read_text() == "alpha\n"
        assert (out / "sub" / "b").read_text() == "beta\n"
        assert main(["cp", *url, f"{pod_name}:/data/d/a", str(tmp_path / "a"), "-c", "app"]) == 0
        assert (tmp_path / "a").read_text() == "alpha\n"
        capsys.readouterr()
        assert main(["cp", *url, f"{pod_name}/app:/nope", str(tmp_path / "x")]) == 4
        assert capsys.readouterr().err.splitlines()[0] == (
            f"asyncpod: error: {pod_name}/app:/nope: no such file or directory"
        )
        # cp in: into an existing directory, and as a new name
        assert main(["cp", *url, str(out), f"{pod_name}/app:/data/"]) == 0
        assert main(["cp", *url, str(tmp_path / "a"), f"{pod_name}/app:/data/renamed"]) == 0
        (tmp_path / "c").write_text("gamma\n")  # into a directory named without a "/"
        assert main(["cp", *url, str(tmp_path / "c"), f"{pod_name}/app:/data/d"]) == 0
        capsys.readouterr()
        argv = ["exec", *url, pod_name, "app", "--", "sh", "-c"]
        assert main([*argv, "cat /data/out/sub/b /data/renamed /data/d/c"]) == 0
        assert capsys.readouterr().out == "beta\nalpha\ngamma\n"

        # stats: the running container is measured, the exited init is not
        assert main(["stats", *url, "--json", "--interval", "0.5", pod_name]) == 0
        rows = {r["container"]: r for r in json.loads(capsys.readouterr().out)}
        assert rows["init"]["state"] == "exited"
        assert rows["init"]["memory_bytes"] is None
        assert rows["app"]["state"] == "running"
        host = podman_client.info()["host"]
        if host["security"]["rootless"] and host["cgroupVersion"] == "v1":
            # no cgroup of the container to read: n/a
            assert (rows["app"]["memory_bytes"], rows["app"]["cpu_percent"]) == (None, None)
        else:
            assert rows["app"]["memory_bytes"] > 0
            assert rows["app"]["cpu_percent"] >= 0

        # restart: nothing supervises a detached pod, so restart starts it again itself
        assert main(["restart", *url, pod_name, "app"]) == 0
        assert capsys.readouterr().out.splitlines()[-1] == (
            f"container app of pod {pod_name} restarted"
        )
        # kill: SIGTERM, which the script traps (exit 0); then it is not running
        assert main(["kill", *url, pod_name, "app", "-s", "SIGTERM"]) == 0
        assert capsys.readouterr().out == f"sent SIGTERM to container app of pod {pod_name}\n"
        for _ in range(100):
            assert main(["describe", *url, "--json", pod_name]) == 0
            described = json.loads(capsys.readouterr().out)
            app = described["containers"][-1]
            if app["state"] == "exited":
                break
            time.sleep(0.1)
        assert (app["name"], app["state"], app["reason"], app["exit_code"]) == (
            "app",
            "exited",
            "Completed",
            0,
        )
        assert app["image"] == TEST_IMAGE
        assert app["restarts"] == 1
        assert described["phase"] == "Succeeded"
        assert main(["kill", *url, pod_name, "app"]) == 1

        assert main(["describe", *url, pod_name]) == 0
        text = capsys.readouterr().out
        assert text.startswith(f"Name:     {pod_name}\n")
        assert "Owner:    detached\n" in text
        assert "    State:      Terminated\n      Reason:   Completed\n" in text

        assert main(["events", *url, pod_name]) == 0
        events = [line.split("  ")[2:] for line in capsys.readouterr().out.splitlines()]
        app_events = [e for e in events if e[0] == "app"]
        assert app_events[-3:] == [
            ["app", "Started"],
            ["app", "Killing"],
            ["app", "Completed", "exit code 0"],
        ]
        assert main(["events", *url, "--json", "--since", "3600", pod_name]) == 0
        parsed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert [e["action"] for e in parsed if e["container"] == "app"].count("start") == 2, parsed
    finally:
        assert main(["down", *url, "--grace", "0", pod_name]) == 0
    assert left_behind(podman_client, "io.asyncpod.pod", pod_name) == []


@pytest.mark.podman
def test_restart_of_a_pod_an_up_supervises_is_left_to_its_restart_policy(
    tmp_path: Path,
    podman_url: str,
    podman_client: Any,
    image: str,
    pod_name: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """restart of a pod a live `asyncpod up` runs stops the container; up sees the exit
    and starts it again (restartPolicy Always), counting the restart."""
    spec = """
restartPolicy: Always
terminationGracePeriodSeconds: 5
containers:
- name: app
  image: IMAGE
  command: [sh, -c, "trap 'exit 0' TERM; echo app up; while true; do sleep 0.2; done"]
"""
    path = write(tmp_path, pod_name, pod_yaml(pod_name, spec, TEST_IMAGE))
    proc = start("up", "--url", podman_url, path)
    assert proc.stdout is not None
    seen: list[str] = []
    try:
        read_until(proc.stdout, f"pod {pod_name}: Running, Ready", seen)
        assert main(["restart", "--url", podman_url, pod_name, "app"]) == 0
        assert capsys.readouterr().out.splitlines()[-1] == (
            f"container app stopped (exit code 0); pod {pod_name} is supervised by process "
            f"{proc.pid}, which restarts it as the pod's restart policy says"
        )
        # up's table: the supervisor saw the exit and started the container again
        read_until(proc.stdout, "app: Running, ready, restarts 1", seen)
        for _ in range(100):
            assert main(["describe", "--url", podman_url, "--json", pod_name]) == 0
            app = json.loads(capsys.readouterr().out)["containers"][0]
            if app["state"] == "running":
                break
            time.sleep(0.1)
        assert (app["state"], app["restarts"]) == ("running", 1)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 130
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    assert left_behind(podman_client, "io.asyncpod.pod", pod_name) == []
