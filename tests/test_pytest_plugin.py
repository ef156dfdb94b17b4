"""The pytest plugin (pytest_asyncpod), exercised through pytester on small user projects.

Each user project runs its async tests on asyncio and trio, with the conftest recipe of
docs/pytest-plugin.md: the fake on virtual time, Podman on real time.
"""

from __future__ import annotations

import gc
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

SEED = Path(__file__).parent.parent / "examples" / "javaweb-2.yaml"

# Hypothesis' plugin takes seconds to set up a session; these sessions do not need it.
QUIET = "-p no:hypothesispytest -p no:cacheprovider"

CONFTEST = """
import pytest
from asyncpod.testing import virtual_time

@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request, asyncpod_backend_name):
    if asyncpod_backend_name == "fake":
        return virtual_time(request.param)
    return request.param
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A user project: strict markers, warnings are errors, the documented conftest."""
    # What an earlier test of this process leaked (podman-py's sockets, ignored here) is
    # collected now, not in the inner run, whose warnings are errors.
    gc.collect()
    pytester.makefile(
        ".ini", pytest=f"[pytest]\naddopts = --strict-markers {QUIET}\nfilterwarnings = error\n"
    )
    pytester.makeconftest(CONFTEST)
    return pytester


def test_loading_the_plugin_imports_no_asyncpod(pytester: pytest.Pytester) -> None:
    """The entry point registers the plugin; asyncpod is imported only by its fixtures."""
    pytester.makepyfile(
        """
        import sys

        def test_it(pytestconfig):
            assert pytestconfig.pluginmanager.has_plugin("asyncpod")
            assert "asyncpod" not in sys.modules
        """
    )
    pytester.runpytest_subprocess(*QUIET.split()).assert_outcomes(passed=1)


NAMES = """
import pytest

def test_unmarked(asyncpod_backend_name):
    print("unmarked:", asyncpod_backend_name)

@pytest.mark.asyncpod_backend("podman")
def test_podman(asyncpod_backend_name):
    print("marked podman:", asyncpod_backend_name)

@pytest.mark.asyncpod_backend("fake")
def test_fake(asyncpod_backend_name):
    print("marked fake:", asyncpod_backend_name)
"""


@pytest.mark.parametrize(
    ("ini", "args", "unmarked"),
    [
        ("", [], "fake"),
        ("", ["--asyncpod-backend=podman"], "podman"),
        ("asyncpod_backend = podman", [], "podman"),
        ("asyncpod_backend = podman", ["--asyncpod-backend=fake"], "fake"),
    ],
)
def test_backend_choice(
    pytester: pytest.Pytester, ini: str, args: list[str], unmarked: str
) -> None:
    """The marker wins, then --asyncpod-backend, then the ini option, then the fake."""
    pytester.makeini(f"[pytest]\naddopts = {QUIET}\n{ini}\n")
    pytester.makepyfile(NAMES)
    result = pytester.runpytest("-s", *args)
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        [f"*unmarked: {unmarked}*", "*marked podman: podman*", "*marked fake: fake*"]
    )


def test_fake_by_default_on_virtual_time(project: pytest.Pytester) -> None:
    """Unmarked tests get an open FakeBackend, on asyncio and trio, under virtual time."""
    project.makepyfile(
        """
        import anyio, pytest
        from asyncpod.backends import FakeBackend

        @pytest.mark.anyio
        async def test_fake(asyncpod_backend):
            assert isinstance(asyncpod_backend, FakeBackend)
            assert await asyncpod_backend.list_objects({}) == []   # open: it answers
            before = anyio.current_time()
            await anyio.sleep(3600)
            assert anyio.current_time() - before >= 3600
        """
    )
    result = project.runpytest("-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*test_fake[[]asyncio[]] PASSED*", "*test_fake[[]trio[]] PASSED*"])


def test_podman_on_virtual_time_is_refused(pytester: pytest.Pytester) -> None:
    """A virtual clock would race past Podman's real work: the fixture says what to fix."""
    pytester.makeini(f"[pytest]\naddopts = {QUIET}\n")
    pytester.makeconftest(
        """
        import pytest
        from asyncpod.testing import virtual_time

        @pytest.fixture(params=["asyncio", "trio"])
        def anyio_backend(request):
            return virtual_time(request.param)
        """
    )
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.anyio
        @pytest.mark.asyncpod_backend("podman")
        async def test_podman(asyncpod_backend):
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*the podman backend needs real time*"])


def test_manifest_path_from_the_rootdir(project: pytest.Pytester) -> None:
    """The seed's manifest, verbatim, named relative to the rootdir by the marker, on a fake
    configured by overriding asyncpod_backend."""
    project.mkdir("manifests").joinpath("javaweb-2.yaml").write_text(SEED.read_text())
    project.mkdir("tests").joinpath("test_seed.py").write_text(
        """
import pytest
import asyncpod
from asyncpod.backends import FakeBackend, Program

@pytest.fixture
def asyncpod_backend(asyncpod_backend):
    if isinstance(asyncpod_backend, FakeBackend):
        asyncpod_backend.add_image("app:v2", {"/app.war": b"the war"})
        # the fake cannot run tomcat's start.sh: a stand-in serves its port
        asyncpod_backend.programs["tomcat"] = Program(delay=None, serve=[8080])
    return asyncpod_backend

@pytest.mark.anyio
@pytest.mark.asyncpod_pod("manifests/javaweb-2.yaml")
async def test_seed(asyncpod_pod, asyncpod_backend):
    assert asyncpod_pod.pod.name == "javaweb-2"
    status = asyncpod_pod.status()
    assert status.phase is asyncpod.Phase.RUNNING
    assert status.container("war").exit_code == 0
    tomcat = asyncpod_backend.container("tomcat")
    assert tomcat.fs.read("/root/apache-tomcat-7.0/webapps/app.war") == b"the war"
"""
    )
    project.runpytest("tests").assert_outcomes(passed=2)


def test_pods_from_objects_text_and_paths(project: pytest.Pytester) -> None:
    """A Pod object by the marker; run_pod takes Pod objects, manifest text and paths, and
    raises what a failed bring-up raises."""
    project.makefile(".yaml", web=_manifest("from-path", "busybox"))
    project.makepyfile(
        """
        import pathlib, pytest
        import asyncpod

        pytestmark = pytest.mark.anyio

        POD = asyncpod.Pod(
            name="from-object",
            containers=[asyncpod.Container(name="web", image="busybox", command=["sleep", "9"])],
        )
        TEXT = pathlib.Path("web.yaml").read_text().replace("from-path", "from-text")

        @pytest.mark.asyncpod_pod(POD)
        async def test_marker_object(asyncpod_pod):
            assert asyncpod_pod.pod is POD
            assert asyncpod_pod.status().phase is asyncpod.Phase.RUNNING

        async def test_run_pod(run_pod, asyncpod_backend):
            first = await run_pod(POD)
            second = await run_pod(TEXT)
            third = await run_pod(pathlib.Path("web.yaml").resolve())
            assert [p.pod.name for p in (first, second, third)] == [
                "from-object", "from-text", "from-path"]
            assert (await second.exec("c", ["echo", "hi"])).stdout == b"hi\\n"
            with pytest.raises(asyncpod.ObjectExistsError, match="from-path"):
                await run_pod("web.yaml")   # the same pod again: its name is taken
            assert len(asyncpod_backend.objects()) == 6   # three pods, three containers

        async def test_run_pod_refuses_other_things(run_pod):
            with pytest.raises(TypeError, match="not int"):
                await run_pod(42)
        """
    )
    project.runpytest().assert_outcomes(passed=6)


def test_teardown_after_failing_tests_leaves_nothing(project: pytest.Pytester) -> None:
    """Failed tests still tear their pods down, run_pod's in reverse order."""
    project.makepyfile(
        """
        import pytest
        import asyncpod

        backends = []
        started = {}

        def pod(name):
            return asyncpod.Pod(
                name=name,
                containers=[asyncpod.Container(name="c", image="busybox", command=["sleep", "9"])],
                volumes=[asyncpod.Volume(name="v", empty_dir=asyncpod.EmptyDirVolumeSource())],
            )

        @pytest.mark.anyio
        @pytest.mark.asyncpod_pod(pod("marked"))
        async def test_marker_fails(asyncpod_pod, asyncpod_backend):
            backends.append(asyncpod_backend)
            assert len(asyncpod_backend.objects()) == 3   # pod, container, volume
            pytest.fail("boom")

        @pytest.mark.anyio
        async def test_run_pod_fails(run_pod, asyncpod_backend):
            backends.append(asyncpod_backend)
            first = await run_pod(pod("first"))
            second = await run_pod(pod("second"))
            started[asyncpod_backend] = [first.id, second.id]
            assert len(asyncpod_backend.objects()) == 6
            raise RuntimeError("bang")

        def test_nothing_left():
            assert len(backends) == 4   # both tests, on asyncio and trio
            for backend in backends:
                assert backend.objects() == []
            for backend, ids in started.items():   # the last pod first
                assert [pod for op, pod in backend.calls if op == "remove_pod"] == ids[::-1]
        """
    )
    result = project.runpytest()
    result.assert_outcomes(failed=4, passed=1)
    assert result.stdout.lines.count("E       Failed: boom") == 2
    assert result.stdout.lines.count("E       RuntimeError: bang") == 2


def test_marker_misuse_is_reported(project: pytest.Pytester) -> None:
    """asyncpod_pod without its marker, or a marker with a bad argument, errors clearly."""
    project.makepyfile(
        """
        import pytest

        pytestmark = pytest.mark.anyio

        async def test_no_marker(asyncpod_pod):
            pass

        @pytest.mark.asyncpod_backend("docker")
        async def test_bad_backend(asyncpod_backend):
            pass

        @pytest.mark.asyncpod_pod("pods/missing.yaml")
        async def test_missing_manifest(asyncpod_pod):
            pass

        @pytest.mark.asyncpod_pod("apiVersion: v1\\nkind: Pod\\n")
        async def test_invalid_manifest(asyncpod_pod):
            pass
        """
    )
    result = project.runpytest()
    result.assert_outcomes(errors=8)
    result.stdout.fnmatch_lines(
        [
            "*asyncpod_pod fixture brings up the pod of the test's marker*got no marker*",
            "*asyncpod_backend takes one backend name*got @pytest.mark.asyncpod_backend('docker')",
            "*@pytest.mark.asyncpod_pod('pods/missing.yaml'): No such file or directory: *",
            "*@pytest.mark.asyncpod_pod('apiVersion: v1\\nkind: Pod\\n'): metadata: is required",
        ]
    )
    assert "Traceback" not in result.stdout.str()
    assert "FileNotFoundError" not in result.stdout.str()


def test_bad_ini_backend_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeini(f"[pytest]\naddopts = {QUIET}\nasyncpod_backend = docker\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*asyncpod_backend ini option: 'docker' is not one of*"])


#: runs until SIGTERM, and then exits at once
SERVER = ["sh", "-c", "trap 'exit 0' TERM; sleep 1000 & wait"]


def _manifest(name: str, image: str) -> str:
    return f"""\
apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: c
    image: {image}
    command: {json.dumps(SERVER)}
"""


@pytest.mark.podman
def test_podman_selected_by_marker(
    project: pytest.Pytester, podman_url: str, podman_client: Any, image: str
) -> None:
    """On Podman: a manifest's pod by the marker, a Pod object by run_pod, on asyncio and
    trio; a failing test's pod is gone from Podman afterwards."""
    name = f"plugin-{uuid.uuid4().hex[:8]}"
    project.makepyfile(
        f"""
        import pytest
        import asyncpod
        from asyncpod.backends import PodmanBackend, RuntimeState

        pytestmark = [pytest.mark.anyio, pytest.mark.asyncpod_backend("podman")]

        @pytest.mark.asyncpod_pod({_manifest(name + "-m", image)!r})
        async def test_marker_pod_fails(asyncpod_pod, asyncpod_backend):
            assert isinstance(asyncpod_backend, PodmanBackend)
            assert asyncpod_pod.status().phase is asyncpod.Phase.RUNNING
            assert await asyncpod_backend.list_objects({{"io.asyncpod.pod": "{name}-m"}})
            pytest.fail("boom")

        async def test_run_pod_object(run_pod, asyncpod_backend):
            pod = asyncpod.Pod(
                name="{name}-r",
                containers=[asyncpod.Container(name="c", image="{image}", command={SERVER!r})],
                termination_grace_period_seconds=2,
            )
            running = await run_pod(pod)
            info = await asyncpod_backend.inspect_container(running.container_id("c"))
            assert info.state is RuntimeState.RUNNING
        """
    )
    result = project.runpytest(f"--asyncpod-podman-url={podman_url}")
    result.assert_outcomes(failed=2, passed=2)
    assert result.stdout.lines.count("E       Failed: boom") == 2
    for suffix in ("-m", "-r"):
        assert _podman_objects(podman_client, f"{name}{suffix}") == []


def _podman_objects(client: Any, pod: str) -> list[str]:
    """Podman's pods, containers and volumes labelled as parts of asyncpod pod *pod*."""
    filters = json.dumps({"label": [f"io.asyncpod.pod={pod}"]})
    found = [p["Name"] for p in client.api.get("/pods/json", params={"filters": filters}).json()]
    params = {"filters": filters, "all": "true"}
    found += [c["Names"][0] for c in client.api.get("/containers/json", params=params).json()]
    found += [
        v["Name"] for v in client.api.get("/volumes/json", params={"filters": filters}).json()
    ]
    return found


SCOPES = """
import anyio
import pytest
import asyncpod

pytestmark = pytest.mark.anyio

def pod(name):
    container = asyncpod.Container(name="c", image="busybox", command=["sleep", "99"])
    return asyncpod.Pod(name=name, containers=[container])

async def test_inside_a_timeout(run_pod):
    with anyio.fail_after(30):
        running = await run_pod(pod("timed"))
    assert running.status().phase is asyncpod.Phase.RUNNING

async def test_inside_a_task_group(run_pod):
    async with anyio.create_task_group():
        await run_pod(pod("grouped"))

@pytest.mark.asyncpod_pod(pod("marked"))
async def test_with_the_marker_pod_too(run_pod, asyncpod_pod, asyncpod_backend):
    await run_pod(pod("extra"))
    assert len(asyncpod_backend.objects()) == 4  # 2 pods, 2 containers

async def test_a_pod_failing_later_fails_the_test_at_teardown(run_pod, asyncpod_backend):
    await run_pod(pod("doomed"))
    # The crashed container is restarted, and the restart meets a bug.
    asyncpod_backend.inject("start_container", error=RuntimeError("the backend broke"))
    asyncpod_backend.crash("c")
    await anyio.sleep(5)  # the test itself goes on
"""


def test_pods_run_in_tasks_of_their_own(project: pytest.Pytester) -> None:
    """run_pod works inside the test's cancel scopes and task groups, beside the marker's
    pod; a pod failing after bring-up does not cancel the test, its error comes at
    teardown (and nothing hangs)."""
    project.makepyfile(test_scopes=SCOPES)
    result = project.runpytest("--timeout=60")
    result.assert_outcomes(passed=8, errors=2)
    result.stdout.fnmatch_lines(["*RuntimeError: the backend broke*"])


def _blocks(text: str, language: str) -> list[str]:
    return [
        block.split("\n", 1)[1] for block in text.split("```")[1::2] if block.startswith(language)
    ]


def test_the_howtos_first_example_passes(project: pytest.Pytester) -> None:
    """docs/howto/pytest-plugin.md's first test module, with the manifest it shows at the
    path it names, passes as written (on the fake)."""
    howto = (Path(__file__).parent.parent / "docs/howto/pytest-plugin.md").read_text()
    [module, *_] = _blocks(howto, "python")
    [manifest, *_] = _blocks(howto, "yaml")
    assert '"tests/pods/web.yaml"' in module
    (project.path / "tests" / "pods").mkdir(parents=True)
    (project.path / "tests" / "pods" / "web.yaml").write_text(manifest)
    (project.path / "tests" / "test_howto.py").write_text(module)
    project.runpytest().assert_outcomes(passed=4)


def test_a_failed_test_shows_why_its_pod_is_not_ready(project: pytest.Pytester) -> None:
    """The report of a failing test shows each pod's status, last events and log lines;
    running.fail_after's timeout says the same; a passing test shows nothing."""
    project.makepyfile(
        """
        import pytest
        from asyncpod import Container, ExecAction, Pod, Probe

        POD = Pod(
            name="web",
            containers=[
                Container(
                    name="web",
                    image="busybox:latest",
                    command=["sh", "-c", "echo cannot read config >&2; sleep 1000"],
                    readiness_probe=Probe(
                        exec=ExecAction(command=["sh", "-c", "echo no config; exit 1"]),
                        period_seconds=1,
                    ),
                )
            ],
            termination_grace_period_seconds=2,
        )

        @pytest.mark.anyio
        async def test_unready(run_pod):
            running = await run_pod(POD)
            async with running.fail_after(5):
                await running.wait_ready()

        @pytest.mark.anyio
        async def test_fine(run_pod):
            await run_pod(POD)
        """
    )
    result = project.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=2, failed=2)
    out = result.stdout.str()
    assert "PodTimeoutError: pod 'web': still waiting after 5 s" in out
    assert out.count("asyncpod: pod web") == 2  # a section per failed test, none otherwise
    result.stdout.fnmatch_lines(
        [
            "*- asyncpod: pod web -*",
            "pod 'web': Running, not ready",
            "  app container 'web': running, not ready",
            "last events (seconds ago):",
            "*web  Unhealthy  Readiness probe failed: command exited with 1: no config*",
            "last log lines of 'web':",
            "  | cannot read config",
        ]
    )
