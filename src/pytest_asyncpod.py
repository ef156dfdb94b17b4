"""asyncpod's pytest plugin: a backend and running pods as fixtures.

Installed with asyncpod and registered through the ``pytest11`` entry point ``asyncpod``
(``-p no:asyncpod`` turns it off; ``-p asyncpod`` loads it when plugin autoloading is off).
It lives outside the ``asyncpod`` package so that loading it costs nothing: it only adds
options, markers and fixtures, and asyncpod is imported when a test asks for a fixture.

Fixtures (the async ones run under anyio's pytest plugin: mark tests ``@pytest.mark.anyio``):

- ``asyncpod_backend_name``: ``"fake"`` or ``"podman"``: the test's ``asyncpod_backend``
  marker, else ``--asyncpod-backend``, else the ``asyncpod_backend`` ini option, else fake.
- ``asyncpod_backend``: that backend, open for the duration of the test.
- ``asyncpod_pod``: the :class:`~asyncpod.RunningPod` of the test's ``asyncpod_pod`` marker.
- ``run_pod``: ``running = await run_pod(pod)`` brings a pod up for the rest of the test.

Pods are torn down after the test, whether it passed or failed: every object they created
is removed. A failed test's report shows, for each of its pods, its status, last events and
last log lines (:meth:`~asyncpod.RunningPod.diagnose`). See ``docs/howto/pytest-plugin.md``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import anyio
import anyio.abc
import pytest

if TYPE_CHECKING:
    from asyncpod import Pod, RunningPod
    from asyncpod.backends import Backend

#: what ``run_pod`` and the ``asyncpod_pod`` marker take: a pod, a manifest's path or its text
_PodSource: TypeAlias = "Pod | str | os.PathLike[str]"

_BACKENDS = ("fake", "podman")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("asyncpod")
    group.addoption(
        "--asyncpod-backend",
        choices=_BACKENDS,
        default=None,
        help="backend of the asyncpod_backend fixture, unless a test's marker names one "
        "(default: the asyncpod_backend ini option, else fake)",
    )
    group.addoption(
        "--asyncpod-podman-url",
        default=None,
        metavar="URL",
        help="Podman service for the podman backend (default: the asyncpod_podman_url ini "
        "option, else CONTAINER_HOST, else this user's Podman socket)",
    )
    parser.addini("asyncpod_backend", "default of --asyncpod-backend (fake)", default="fake")
    parser.addini("asyncpod_podman_url", "default of --asyncpod-podman-url", default="")


def pytest_configure(config: pytest.Config) -> None:
    if config.getini("asyncpod_backend") not in _BACKENDS:
        raise pytest.UsageError(
            f"asyncpod_backend ini option: {config.getini('asyncpod_backend')!r} "
            f"is not one of {', '.join(_BACKENDS)}"
        )
    config.addinivalue_line(
        "markers",
        "asyncpod_backend(name): run this test's asyncpod_backend fixture on 'fake' or 'podman', "
        "whatever --asyncpod-backend says",
    )
    config.addinivalue_line(
        "markers",
        "asyncpod_pod(pod): the pod the asyncpod_pod fixture brings up: an asyncpod.Pod, "
        "a manifest's path (relative to the rootdir) or its text",
    )


@pytest.fixture
def asyncpod_backend_name(request: pytest.FixtureRequest) -> str:
    """The backend this test runs on: ``"fake"`` (the default) or ``"podman"``.

    The test's ``@pytest.mark.asyncpod_backend(name)`` wins, then ``--asyncpod-backend``,
    then the ``asyncpod_backend`` ini option. Your ``anyio_backend`` fixture can ask for it,
    to run the fake on virtual time and Podman on real time.
    """
    marker = request.node.get_closest_marker("asyncpod_backend")
    if marker is None:
        name = request.config.getoption("asyncpod_backend") or request.config.getini(
            "asyncpod_backend"
        )
        return str(name)
    if len(marker.args) != 1 or marker.kwargs or marker.args[0] not in _BACKENDS:
        pytest.fail(
            f"@pytest.mark.asyncpod_backend takes one backend name, {' or '.join(_BACKENDS)}; "
            f"got {_call_text(marker)}",
            pytrace=False,
        )
    return str(marker.args[0])


@pytest.fixture
async def asyncpod_backend(
    asyncpod_backend_name: str, request: pytest.FixtureRequest
) -> AsyncIterator[Backend]:
    """An open backend for this test: a new :class:`~asyncpod.backends.FakeBackend`, or a
    :class:`~asyncpod.backends.PodmanBackend`, as ``asyncpod_backend_name`` says.

    Override this fixture to configure the backend (programs, images, a Podman URL); the
    ``asyncpod_pod`` and ``run_pod`` fixtures run their pods on whatever it yields.
    """
    from asyncpod.backends import get_backend

    options: dict[str, Any] = {}
    if asyncpod_backend_name == "podman":
        from asyncpod.testing._clock import on_virtual_time

        if on_virtual_time():
            pytest.fail(
                "the podman backend needs real time, but this test runs on a virtual clock: "
                "make your anyio_backend fixture return a plain backend name for Podman "
                "tests (see the asyncpod_backend_name fixture)",
                pytrace=False,
            )
        options["url"] = (
            request.config.getoption("asyncpod_podman_url")
            or request.config.getini("asyncpod_podman_url")
            or None
        )
    async with get_backend(asyncpod_backend_name, **options) as backend:
        yield backend


class _Pods:
    """The pods of one test, each run by a child task of the fixture's own task group.

    So a test's cancel scopes and task groups never interleave with a pod's, and a pod
    that fails after it came up does not cancel the test: its error is raised at
    teardown. Teardown stops the pods last first.
    """

    def __init__(self, task_group: anyio.abc.TaskGroup, backend: Backend) -> None:
        self._task_group = task_group
        self._backend = backend
        self._up: list[tuple[anyio.Event, anyio.Event]] = []
        self._errors: list[Exception] = []
        self.running: list[RunningPod] = []

    async def start(self, pod: Pod) -> RunningPod:
        running: RunningPod = await self._task_group.start(self._serve, pod)
        return running

    async def _serve(self, pod: Pod, *, task_status: anyio.abc.TaskStatus[RunningPod]) -> None:
        from asyncpod import open_pod

        stop, done = anyio.Event(), anyio.Event()
        up = False
        try:
            async with open_pod(pod, backend=self._backend) as running:
                self._up.append((stop, done))
                self.running.append(running)
                up = True
                task_status.started(running)
                await stop.wait()
        except Exception as exc:
            if not up:
                raise  # a failed bring-up: raised by start(), in the test
            self._errors.append(exc)
        finally:
            done.set()

    async def close(self) -> None:
        """Tear the pods down, the last one first; raise the first error a pod had."""
        for stop, done in reversed(self._up):
            stop.set()
            await done.wait()
        if self._errors:
            raise self._errors[0]


#: the report of a test's call phase, for the pods' teardown to add their diagnoses to
_CALL_REPORT = pytest.StashKey["pytest.TestReport"]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.stash[_CALL_REPORT] = report


async def _diagnose(pods: _Pods, item: pytest.Item) -> None:
    """A failed test's report gets, for each of its pods, why it is (not) ready: its
    status, last events and last log lines (shown with the failure)."""
    report = item.stash.get(_CALL_REPORT, None)
    if report is None or not report.failed:
        return
    for running in pods.running:
        try:
            with anyio.move_on_after(10):
                diagnosis = await running.diagnose()
                report.sections.append((f"asyncpod: pod {running.pod.name}", str(diagnosis)))
        except Exception as exc:  # a diagnosis is a courtesy: never fail the teardown for it
            report.sections.append((f"asyncpod: pod {running.pod.name}", f"no diagnosis: {exc}"))


@pytest.fixture
async def _asyncpod_pods(
    asyncpod_backend: Backend, request: pytest.FixtureRequest
) -> AsyncIterator[_Pods]:
    async with anyio.create_task_group() as task_group:
        pods = _Pods(task_group, asyncpod_backend)
        try:
            yield pods
        finally:
            await _diagnose(pods, request.node)
            await pods.close()


@pytest.fixture
async def asyncpod_pod(_asyncpod_pods: _Pods, request: pytest.FixtureRequest) -> RunningPod:
    """The pod named by the test's ``@pytest.mark.asyncpod_pod(pod)``, up on
    ``asyncpod_backend`` (as :func:`asyncpod.open_pod` yields it) and torn down after the
    test, whether it passed or failed.

    *pod* is an :class:`asyncpod.Pod`, a manifest's path (relative to the rootdir) or a
    manifest's text (a string with a newline).
    """
    marker = request.node.get_closest_marker("asyncpod_pod")
    if marker is None or len(marker.args) != 1 or marker.kwargs:
        got = "no marker" if marker is None else _call_text(marker)
        pytest.fail(
            "the asyncpod_pod fixture brings up the pod of the test's marker: "
            f"@pytest.mark.asyncpod_pod(pod_or_manifest); got {got}",
            pytrace=False,
        )
    from asyncpod import SpecError

    try:
        pod = _load(marker.args[0], request.config.rootpath)
    except (OSError, SpecError) as exc:  # a missing or invalid manifest: no traceback
        reason = f"{exc.strerror}: {exc.filename}" if isinstance(exc, OSError) else str(exc)
        pytest.fail(f"{_call_text(marker)}: {reason}", pytrace=False)
    return await _asyncpod_pods.start(pod)


@pytest.fixture
def run_pod(
    _asyncpod_pods: _Pods, request: pytest.FixtureRequest
) -> Callable[[_PodSource], Awaitable[RunningPod]]:
    """``running = await run_pod(pod)`` brings *pod* up on ``asyncpod_backend``.

    *pod* is an :class:`asyncpod.Pod`, a manifest's path (relative to the rootdir) or a
    manifest's text (a string with a newline). A failed bring-up raises, as
    :func:`asyncpod.open_pod` does, with nothing left behind. Each pod runs in a task of
    its own, so the test may call this inside its cancel scopes and task groups; a pod
    that fails after it came up does not interrupt the test, its error is raised at
    teardown. The pods are torn down after the test, the last one first, whether it
    passed or failed.
    """
    root = request.config.rootpath

    async def run(pod: _PodSource) -> RunningPod:
        return await _asyncpod_pods.start(_load(pod, root))

    return run


def _load(source: object, root: Path) -> Pod:
    from asyncpod import Pod
    from asyncpod.kube import load_pod

    if isinstance(source, Pod):
        return source
    if isinstance(source, str) and "\n" in source:
        return load_pod(source)
    if isinstance(source, (str, os.PathLike)):
        return load_pod(root / source)
    raise TypeError(
        "a pod is an asyncpod.Pod, a manifest's path or its text, "
        f"not {type(source).__name__}: {source!r}"
    )


def _call_text(marker: pytest.Mark) -> str:
    arguments = [repr(arg) for arg in marker.args]
    arguments += [f"{key}={value!r}" for key, value in marker.kwargs.items()]
    return f"@pytest.mark.{marker.name}({', '.join(arguments)})"
