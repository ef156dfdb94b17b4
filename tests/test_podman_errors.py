"""How Podman's answers become asyncpod errors, and what the event reader makes of them
(no Podman needed)."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from asyncpod import BackendError, ObjectExistsError, ObjectNotFoundError, PortInUseError
from asyncpod.backends import ContainerSpec, Mount, PodmanBackend, PodSpec
from asyncpod.backends._podman import _backend as podman_backend_module
from asyncpod.backends._podman._errors import PodmanStatusError, translate_errors
from asyncpod.backends._podman._events import EventIterator


def _raised(status: int, message: str, cause: str = "") -> BaseException:
    with pytest.raises(BackendError) as info, translate_errors("inspect it"):
        raise PodmanStatusError(status, message, cause)
    return info.value


@pytest.mark.parametrize(
    ("status", "message", "cause"),
    [
        (404, "no pod with name or ID p found: no such pod", "no such pod"),
        # Answers for an object removed while the request ran:
        (500, "container 1f2e does not exist in database: no such container", "no such container"),
        (500, "no pod with ID 4ace found in database: no such pod", "no such pod"),
        (500, "no volume with name v found: no such volume", "no such volume"),
    ],
)
def test_an_object_gone_is_not_found(status: int, message: str, cause: str) -> None:
    error = _raised(status, message, cause)
    assert isinstance(error, ObjectNotFoundError)
    assert str(error) == f"inspect it: {message}"


def test_other_answers() -> None:
    assert isinstance(_raised(409, "name is in use", "name is in use"), ObjectExistsError)
    assert isinstance(_raised(500, "address already in use"), PortInUseError)
    error = _raised(500, "something else broke")
    assert type(error) is BackendError


@pytest.mark.anyio
async def test_an_event_of_a_pod_removed_meanwhile_is_skipped() -> None:
    """Podman 4.3 pod events carry no labels: the reader looks them up; a pod removed
    meanwhile (HTTP 500 "no such pod" while it is being removed) is no error."""

    class Transport:
        async def call(self, method: str, path: str, **kwargs: Any) -> object:
            raise PodmanStatusError(500, "no pod with ID 4ace found in database", "no such pod")

    reader = EventIterator(Transport(), labels={})  # type: ignore[arg-type]
    raw: dict[str, Any] = {"Type": "pod", "Action": "stop", "Actor": {"ID": "4ace"}}
    assert await reader._convert(raw) is None


class _Reply:
    def __init__(self, data: object) -> None:
        self._data = data
        self.status = 200

    def json(self) -> object:
        return self._data


class _ScriptedTransport:
    """Answers each request from a script (path -> replies, in turn; an exception is
    raised) and records the requests made."""

    url = "unix:///nonexistent.sock"

    def __init__(self, answers: dict[str, list[object]]) -> None:
        self.answers = answers
        self.calls: list[str] = []

    async def call(self, method: str, path: str, **kwargs: Any) -> _Reply:
        self.calls.append(f"{method} {path}")
        answer = self.answers[path].pop(0)
        if isinstance(answer, Exception):
            raise answer
        return _Reply(answer)


def _scripted(backend: PodmanBackend, answers: dict[str, list[object]]) -> list[str]:
    """Make *backend* answer each request from *answers*; return the requests made."""
    transport = _ScriptedTransport(answers)
    backend._http = transport  # type: ignore[assignment]
    backend._url = transport.url
    return transport.calls


@pytest.mark.anyio
@pytest.mark.parametrize("answer", [{}, ["not", "an", "object"], None])
async def test_a_malformed_reply_is_a_backend_error(answer: object) -> None:
    """A reply without the expected fields (KeyError, TypeError) is translated too."""
    backend = PodmanBackend("unix:///nonexistent.sock")
    _scripted(backend, {"/pods/create": [answer]})
    with pytest.raises(BackendError, match="create pod 'p': unexpected answer from Podman"):
        await backend.create_pod(PodSpec(name="p", hostname="p"))


_INFRA_STOPPED = PodmanStatusError(
    500,
    "cannot get namespace path unless container i1 is running: container is stopped",
    "container is stopped",
)


@pytest.mark.anyio
async def test_a_start_that_found_the_infra_stopped_is_tried_again() -> None:
    """Two members of a pod started at once: Podman 4.3 may fail one of them, saying that
    the infra container is stopped, though it runs (CI saw it)."""
    backend = PodmanBackend("unix:///nonexistent.sock")
    calls = _scripted(
        backend,
        {
            "/containers/c1/start": [_INFRA_STOPPED, None],
            "/containers/c1/json": [{"Pod": "p1"}],
            "/pods/p1/json": [{"InfraContainerID": "i1"}],
            "/containers/i1/json": [{"State": {"Status": "running"}}],
        },
    )
    await backend.start_container("c1")
    assert calls == [
        "POST /containers/c1/start",
        "GET /containers/c1/json",
        "GET /pods/p1/json",
        "GET /containers/i1/json",
        "POST /containers/c1/start",
    ]


@pytest.mark.anyio
async def test_a_start_that_lost_the_infra_race_is_tried_again() -> None:
    """50 pods x 4 containers at once: members racing to start their pod's infra fail
    with "internal libpod error" (the log: "container state improper"), though the infra
    then runs. Not the member's failure: it is started again until it starts."""
    backend = PodmanBackend("unix:///nonexistent.sock")
    lost = PodmanStatusError(500, "starting some containers: internal libpod error")
    calls = _scripted(
        backend,
        {
            "/containers/c1/start": [lost, lost, None],
            "/containers/c1/json": [{"Pod": "p1"}] * 2,
            "/pods/p1/json": [{"InfraContainerID": "i1"}] * 2,
            "/containers/i1/json": [{"State": {"Status": "running"}}] * 2,
        },
    )
    await backend.start_container("c1")
    assert calls.count("POST /containers/c1/start") == 3


@pytest.mark.anyio
async def test_other_start_failures_are_not_tried_again() -> None:
    backend = PodmanBackend("unix:///nonexistent.sock")
    missing = PodmanStatusError(500, 'runc: exec: "nope": executable file not found in $PATH')
    _scripted(
        backend,
        {
            "/containers/c1/start": [missing, None],
            "/containers/c1/json": [{"Pod": "p1"}],
            "/pods/p1/json": [{"InfraContainerID": "i1"}],
            "/containers/i1/json": [{"State": {"Status": "running"}}],
        },
    )
    with pytest.raises(BackendError, match="executable file not found"):
        await backend.start_container("c1")


@pytest.mark.anyio
async def test_diagnosing_a_failed_start_never_starts_the_infra() -> None:
    """Podman 4.3 says just "internal libpod error" when a member's start fails because
    its pod's infra cannot start (a host port taken): the backend asks why by preparing
    the infra (``init``: its network, ports included), never by starting it."""
    backend = PodmanBackend("unix:///nonexistent.sock")
    taken = PodmanStatusError(
        500,
        "cannot listen on the TCP port: listen tcp4 :18098: bind: address already in use",
        "address already in use",
    )
    calls = _scripted(
        backend,
        {
            "/containers/c1/start": [
                PodmanStatusError(500, "starting some containers: internal libpod error")
            ],
            "/containers/c1/json": [{"Pod": "p1"}],
            "/pods/p1/json": [{"InfraContainerID": "i1"}],
            "/containers/i1/json": [{"State": {"Status": "created"}}],
            "/containers/i1/init": [taken],
            "/containers/i1/start": [taken],
        },
    )
    with pytest.raises(PortInUseError, match="the pod's infra container: cannot listen"):
        await backend.start_container("c1")
    assert calls == [
        "POST /containers/c1/start",
        "GET /containers/c1/json",
        "GET /pods/p1/json",
        "GET /containers/i1/json",
        "POST /containers/i1/init",
    ]


@pytest.mark.anyio
async def test_host_path_checks_run_in_a_worker_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """``hostPath.type`` checks touch the file system (mkdir, stat): never on the event loop."""
    backend = PodmanBackend("unix:///nonexistent.sock")
    _scripted(backend, {"/pods/p1/json": [{}], "/containers/create": [{"Id": "c1"}]})
    threads: list[int] = []
    monkeypatch.setattr(
        podman_backend_module,
        "check_host_path",
        lambda spec, path, kind: threads.append(threading.get_ident()),
    )
    mount = Mount(target="/m", host_path="/srv/data", host_path_type="DirectoryOrCreate")
    spec = ContainerSpec(name="c", pod="p1", image="i", mounts=(mount,))
    assert await backend.create_container(spec) == "c1"
    assert len(threads) == 1
    assert threads[0] != threading.get_ident()


@pytest.mark.anyio
async def test_a_list_is_asked_again_when_an_object_vanishes_while_podman_lists() -> None:
    """Podman 4.3 fails a whole ``GET /volumes/json`` when another client removes one of
    the volumes meanwhile: the list is asked again; other errors are raised at once."""
    from asyncpod.backends._podman._http import Reply, Transport

    answers: list[Any] = [
        PodmanStatusError(500, "no volume with name v found: no such volume"),
        PodmanStatusError(500, "no pod with ID 4ace found in database: no such pod"),
        Reply(200, b'[{"Name": "w"}]', {}),
        PodmanStatusError(500, "something else broke"),
    ]
    asked: list[str] = []

    class Scripted(Transport):
        def __init__(self) -> None:  # no connection
            pass

        async def call(self, method: str, path: str, **options: Any) -> Reply:
            asked.append(path)
            answer = answers.pop(0)
            if isinstance(answer, BaseException):
                raise answer
            return answer  # type: ignore[no-any-return]

    transport = Scripted()
    assert await transport.list("/volumes/json") == [{"Name": "w"}]
    assert asked == ["/volumes/json"] * 3
    with pytest.raises(PodmanStatusError, match="something else"):
        await transport.list("/volumes/json")
    assert len(asked) == 4


@pytest.mark.anyio
async def test_past_volume_events_of_an_earlier_run_are_not_the_current_runs() -> None:
    """A pod's volume has the same name in every run. The events of the volume of an
    earlier run are not reported with the labels of the current one, and its ``remove``
    does not make the current volume's own events be dropped."""
    from asyncpod.backends._podman._http import Reply, Transport

    def volume_event(action: str, seconds: float) -> dict[str, Any]:
        return {
            "Type": "volume",
            "Action": action,
            "Actor": {"ID": "", "Attributes": {"name": "p-data"}},
            "timeNano": int(seconds * 1e9),
        }

    labels = {"io.asyncpod.pod": "p", "io.asyncpod.run": "r2"}
    volumes = [{"Name": "p-data", "Labels": labels, "CreatedAt": "2026-01-01T00:00:10.5Z"}]
    start = 1_767_225_600  # 2026-01-01T00:00:00Z
    log = [
        volume_event("create", start + 1),  # the first run's volume
        volume_event("remove", start + 5),
        volume_event("create", start + 10.51),  # the current one
        volume_event("prune", start + 12),
    ]

    class Scripted(Transport):
        def __init__(self) -> None:  # no connection
            pass

        async def call(self, method: str, path: str, **options: Any) -> Reply:
            answers = {
                "/pods/json": [],
                "/volumes/json": volumes,
                "/events": b"\n".join(json.dumps(raw).encode() for raw in log),
            }
            answer = answers[path]
            return Reply(
                200, answer if isinstance(answer, bytes) else json.dumps(answer).encode(), {}
            )

    reader = EventIterator(Scripted(), labels={"io.asyncpod.pod": "p"})
    found = await reader.past(None)
    assert [(event.action, event.time, dict(event.labels)) for event in found] == [
        ("create", start + 10.51, labels),
        ("prune", start + 12, labels),
    ]
    # Without its creation time (not given), the earlier volume's remove still does not
    # hide the current one's events.
    del volumes[0]["CreatedAt"]
    found = await EventIterator(Scripted(), labels={"io.asyncpod.pod": "p"}).past(None)
    assert [event.action for event in found] == ["create", "remove", "create", "prune"]
