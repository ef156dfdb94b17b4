"""PodmanBackend's streams against a scripted libpod stand-in on a Unix socket (no Podman).

The stand-in answers just the requests these tests make, and records which connection
each request came on, so connection handling can be checked without a real service.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import socketserver
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import anyio
import anyio.abc
import pytest

from asyncpod.backends import ContainerExit, ExecResult, ExitWatcher, PodmanBackend
from asyncpod.backends._podman._exits import conmon_exit_dir, read_exit_files

pytestmark = pytest.mark.anyio

_EXEC_START = "/exec/e1/start"


def _frame(stream: int, payload: bytes) -> bytes:
    return struct.pack(">BxxxI", stream, len(payload)) + payload


class _Libpod(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def __init__(self, path: str) -> None:
        super().__init__(path, _Handler)
        self.lock = threading.Lock()
        self.connections = 0
        #: (connection number, index of the request on that connection, path)
        self.requests: list[tuple[int, int, str]] = []
        self.exec_started = threading.Event()
        self.answer_exec = threading.Event()
        #: What each /events subscription is sent, in turn: lines, then the end of the
        #: stream, or (for the last one) nothing more until the server shuts down.
        self.event_streams: list[list[bytes]] = []
        self.event_queries: list[dict[str, list[str]]] = []
        #: numbers (from 1) of further subscriptions that stay open after their lines
        self.event_holds: set[int] = set()
        #: ends the held subscriptions (not the last one)
        self.release_held = threading.Event()
        #: container id -> what ``GET /containers/{id}/json`` answers
        self.containers: dict[str, dict[str, object]] = {}
        #: set once a subscription to events has been answered
        self.subscribed = threading.Event()
        #: set once an inspection of a container has been answered
        self.inspected = threading.Event()
        #: the filters of each ``GET /containers/json``
        self.list_queries: list[dict[str, list[str]]] = []
        #: when set, the first list is answered (as it was when asked) once this is set
        self.list_gate: threading.Event | None = None
        #: set once a list has been asked for (and, with the gate, is held)
        self.list_asked = threading.Event()
        self.shutting_down = threading.Event()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Podman does
    server: _Libpod

    def setup(self) -> None:
        super().setup()
        with self.server.lock:
            self.server.connections += 1
            self.connection_number = self.server.connections
        self.served = 0

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _path(self) -> str:
        path = self.path.split("?")[0]
        return "/" + path.split("/libpod/", 1)[1] if "/libpod/" in path else path

    def _answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _record(self) -> str:
        path = self._path()
        self.served += 1
        with self.server.lock:
            self.server.requests.append((self.connection_number, self.served, path))
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        return path

    def _events(self) -> None:
        with self.server.lock:
            self.server.event_queries.append(parse_qs(urlsplit(self.path).query))
            number = len(self.server.event_queries)
            lines = self.server.event_streams[number - 1]
            last = number == len(self.server.event_streams) or number in self.server.event_holds
        self.close_connection = True
        self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n")
        self.wfile.write(b"".join(line + b"\n" for line in lines))
        self.wfile.flush()
        self.server.subscribed.set()
        if number == len(self.server.event_streams):
            self.server.shutting_down.wait(10)
        elif last:
            for _ in range(1000):
                if self.server.release_held.is_set() or self.server.shutting_down.is_set():
                    break
                self.server.release_held.wait(0.01)

    def _list(self) -> None:
        """Like Podman: same key = any of its regular expressions, different keys = all."""
        filters = json.loads(parse_qs(urlsplit(self.path).query)["filters"][0])
        found = []
        with self.server.lock:
            self.server.list_queries.append(filters)
            gate, self.server.list_gate = self.server.list_gate, None
            for inspected in self.server.containers.values():
                state: dict[str, object] = inspected["State"]  # type: ignore[assignment]
                fields = {"id": inspected["Id"], "name": inspected["Name"]}
                if all(
                    any(
                        re.search(value, str(state["Status"] if key == "status" else fields[key]))
                        for value in values
                    )
                    for key, values in filters.items()
                ):
                    found.append(
                        {
                            "Id": inspected["Id"],
                            "Names": [inspected["Name"]],
                            "State": state["Status"],
                            "ExitCode": state["ExitCode"],
                        }
                    )
        self.server.list_asked.set()
        if gate is not None:
            gate.wait(10)
        self._answer(200, json.dumps(found).encode())

    def do_GET(self) -> None:
        path = self._record()
        if path == "/events":
            self._events()
        elif path in ("/pods/json", "/volumes/json"):
            self._answer(200, b"[]")
        elif path == "/containers/json":
            self._list()
        elif path == "/_ping":
            self._answer(200, b"OK", {"Libpod-API-Version": "4.3.1"})
        elif path == "/containers/c1/logs":
            # A finished log: a complete body, so urllib3 is done with the connection
            # after the last read.
            self._answer(200, _frame(1, b"hello\n"))
        elif path.startswith("/containers/") and path.endswith("/json"):
            found = self.server.containers.get(path.split("/")[2])
            if found is None:
                self._answer(404, b'{"message": "no such container", "cause": "no such container"}')
            else:
                self._answer(200, json.dumps(found).encode())
                self.server.inspected.set()
        elif path == "/exec/e1/json":
            self._answer(200, json.dumps({"Running": False, "ExitCode": 0}).encode())
        else:
            self._answer(404, b'{"message": "no such thing"}')

    def do_POST(self) -> None:
        path = self._record()
        if path == "/images/pull":
            self._answer(200, b'{"id": "i1"}')
        elif path == "/containers/c1/exec":
            self._answer(201, b'{"Id": "e1"}')
        elif path == _EXEC_START:
            # Like Podman: take the connection over, answer once the test says so, close.
            self.server.exec_started.set()
            self.close_connection = True
            if not self.server.answer_exec.wait(10):
                return
            head = b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\n"
            try:
                self.wfile.write(head + _frame(1, b"ok\n"))
            except OSError:
                pass  # the client is gone: what the test checks for
        else:
            self._answer(404, b'{"message": "no such thing"}')


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Real time: the stand-in answers from threads."""
    return str(request.param)


@pytest.fixture
def libpod() -> Iterator[_Libpod]:
    directory = tempfile.mkdtemp(prefix="asyncpod-")  # short: a socket path has ~100 bytes
    server = _Libpod(str(Path(directory) / "libpod.sock"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.answer_exec.set()
        server.shutting_down.set()
        server.shutdown()
        server.server_close()
        thread.join(5)
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
async def backend(libpod: _Libpod) -> AsyncIterator[PodmanBackend]:
    async with PodmanBackend(f"unix://{libpod.server_address}", start_service=False) as backend:
        yield backend


async def test_closing_a_read_stream_spares_the_next_request(
    libpod: _Libpod, backend: PodmanBackend
) -> None:
    """A log stream read to its end, closed while an exec starts, leaves that exec alone.

    urllib3 pools a connection again once its body is read; the stream used to shut that
    connection's socket down on close even so, cutting off whichever request had taken it
    from the pool meanwhile (in the conformance suite: an exec right after a container
    exited, while the supervisor read that container's last log lines).
    """
    results: list[ExecResult] = []

    async def run_exec() -> None:
        results.append(await backend.exec("c1", ("true",)))

    with anyio.fail_after(15):
        async with anyio.create_task_group() as tg:
            async with backend.logs("c1") as records:
                assert [record.text async for record in records] == ["hello"]
                tg.start_soon(run_exec)
                assert await anyio.to_thread.run_sync(libpod.exec_started.wait, 10)
            libpod.answer_exec.set()
    assert results == [ExecResult(0, b"ok\n", b"")]


async def test_streams_start_on_a_connection_of_their_own(
    libpod: _Libpod, backend: PodmanBackend
) -> None:
    """A stream (a hijacked exec start above all) never rides a pooled keep-alive connection.

    A pull leaves one in the pool of long requests.
    """
    libpod.answer_exec.set()
    with anyio.fail_after(15):
        for _ in range(2):
            await backend.pull_image("localhost/i:1")
            assert await backend.exec("c1", ("true",)) == ExecResult(0, b"ok\n", b"")
            async with backend.logs("c1") as records:
                assert [record.text async for record in records] == ["hello"]
    streamed = [
        index for _, index, path in libpod.requests if path in (_EXEC_START, "/containers/c1/logs")
    ]
    assert streamed == [1, 1, 1, 1], libpod.requests


def _event(name: str, seconds: int) -> bytes:
    return json.dumps(
        {
            "Type": "container",
            "Action": "start",
            "Actor": {"ID": f"id-{name}", "Attributes": {"name": name}},
            "time": seconds,
            "timeNano": seconds * 1_000_000_000 + 5,
        }
    ).encode()


async def test_an_ended_event_stream_is_subscribed_again(
    libpod: _Libpod, backend: PodmanBackend
) -> None:
    """Podman's file event logger ends a subscription with ``since`` when it rotates its log.

    The iterator subscribes again from a little before the newest event read, and skips the
    events sent twice.
    """
    first, second, third = _event("a", 1_000), _event("b", 1_010), _event("c", 1_011)
    libpod.event_streams = [[first, second], [], [second, third]]
    names = []
    with anyio.fail_after(15):
        async with backend.events() as events:
            async for event in events:
                names.append(event.name)
                if len(names) == 3:
                    break
    assert names == ["a", "b", "c"]
    first_since, *later = (int(query["since"][0]) for query in libpod.event_queries)
    assert first_since > 1_700_000_000  # now, by the Date header of a ping
    assert later == [first_since, first_since]  # never before the subscription

    libpod.event_queries.clear()
    libpod.event_streams = [[first, second], [second, third]]
    with anyio.fail_after(15):
        async with backend.events() as events:
            # The same, as if the subscription had been made long ago.
            events._events._since = 1  # type: ignore[attr-defined]
            names = [(await events.__anext__()).name for _ in range(3)]
    assert names == ["a", "b", "c"]
    assert int(libpod.event_queries[1]["since"][0]) == 1_008  # 2 s before "b"


async def test_an_event_stream_that_keeps_ending_is_given_up(
    libpod: _Libpod, backend: PodmanBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    from asyncpod import BackendUnavailableError
    from asyncpod.backends._podman._events import EventStream

    monkeypatch.setattr(EventStream, "_EMPTY_ENDS", 2)
    libpod.event_streams = [[_event("a", 1_000)], [], [], [], []]
    with anyio.fail_after(15):
        async with backend.events() as events:
            assert (await events.__anext__()).name == "a"
            with pytest.raises(BackendUnavailableError, match="keeps ending"):
                await events.__anext__()
    assert len(libpod.event_queries) == 4


async def test_closing_the_subscription_ends_a_waiting_reader(
    libpod: _Libpod, backend: PodmanBackend
) -> None:
    """Leaving ``events()`` while a task waits for an event ends that task's iteration.

    Closing the stream makes the waiting read see the stream's end, which the iterator
    took for a rotation of the log: it subscribed again, and nothing closed that stream.
    """
    libpod.event_streams = [[_event("a", 1_000)], [_event("b", 1_001)]]
    libpod.event_holds = {1}
    got: list[object] = []

    async def read(events: AsyncIterator[object]) -> None:
        got.extend([event async for event in events])
        got.append("ended")

    with anyio.fail_after(15):
        async with anyio.create_task_group() as tg:
            async with backend.events() as events:
                assert (await events.__anext__()).name == "a"
                tg.start_soon(read, events)
                await anyio.sleep(0.5)  # the reader waits in a read of the stream
    assert got == ["ended"]
    assert len(libpod.event_queries) == 1  # no subscription after the close


async def test_a_stream_that_only_replays_what_was_read_is_given_up(
    libpod: _Libpod, backend: PodmanBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stream that ends after sending only events already read made no progress.

    It used to reset the count of fruitless ends and be subscribed again at once: a hot
    loop of subscriptions that never gave up.
    """
    from asyncpod import BackendUnavailableError
    from asyncpod.backends._podman._events import EventStream

    monkeypatch.setattr(EventStream, "_EMPTY_ENDS", 2)
    a = _event("a", 1_000)
    libpod.event_streams = [[a]] * 40 + [[]]
    with anyio.fail_after(10):
        async with backend.events() as events:
            assert (await events.__anext__()).name == "a"
            with pytest.raises(BackendUnavailableError, match="keeps ending"):
                await events.__anext__()
    assert len(libpod.event_queries) <= 5


async def test_cancelled_waits_do_not_count_as_ended_streams(
    libpod: _Libpod, backend: PodmanBackend
) -> None:
    """One fruitless end, then a caller polling with short timeouts.

    Each wait cancelled in the pause before a new subscription used to count as one more
    ended stream: after ten polls the iterator gave up though only one stream had ended.
    """
    libpod.event_streams = [[_event("a", 1_000)], [], [_event("b", 1_001)]]
    with anyio.fail_after(15):
        async with backend.events() as events:
            assert (await events.__anext__()).name == "a"
            for _ in range(15):
                with anyio.move_on_after(0.03):
                    await events.__anext__()
            assert (await events.__anext__()).name == "b"


def _container(ident: str, status: str, started: int, exit_code: int = 0) -> dict[str, object]:
    """An inspection of a container started at *started* (seconds since the epoch)."""
    stamp = datetime.fromtimestamp(started, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    finished = stamp if status == "exited" else "0001-01-01T00:00:00Z"
    state = {"Status": status, "StartedAt": stamp, "FinishedAt": finished, "ExitCode": exit_code}
    return {"Id": ident, "Name": ident, "State": state}


def _died(ident: str, exit_code: int, nanoseconds: int) -> bytes:
    attributes = {"name": ident, "containerExitCode": str(exit_code)}
    return json.dumps(
        {
            "Type": "container",
            "Action": "died",
            "Actor": {"ID": ident, "Attributes": attributes},
            "timeNano": nanoseconds,
        }
    ).encode()


async def _subscribed(libpod: _Libpod) -> None:
    """Until the watcher's first subscription has been answered, and taken up."""
    assert await anyio.to_thread.run_sync(libpod.subscribed.wait, 10)
    await anyio.sleep(0.2)


def _events_only(backend: PodmanBackend) -> None:
    """Exits from the event stream and inspections only: no lists of exited containers."""
    backend._exits._poll_interval = None


def _with_lists(backend: PodmanBackend) -> None:
    """Exits also from a list of the exited containers every 0.1 s."""
    backend._exits._poll_interval = 0.1


async def _inspected(libpod: _Libpod) -> None:
    """Until the stand-in has answered an inspection of a container."""
    assert await anyio.to_thread.run_sync(libpod.inspected.wait, 10)


async def test_an_exit_between_two_event_streams_is_found(
    libpod: _Libpod, backend: PodmanBackend
) -> None:
    """The first stream ends (a rotation of the event log) and its died event never comes:
    the new subscription inspects every watched container again."""
    _events_only(backend)
    libpod.containers["c1"] = _container("c1", "running", 2_000)
    libpod.event_streams = [[], []]
    libpod.event_holds = {1}
    with anyio.fail_after(10):
        async with backend.watch_exits() as exits:
            await _subscribed(libpod)
            exits.watch("c1")
            await _inspected(libpod)
            libpod.containers["c1"] = _container("c1", "exited", 2_000, exit_code=5)
            libpod.release_held.set()
            assert await exits.__anext__() == ContainerExit("c1", 5)
    assert len(libpod.event_queries) == 2


async def test_a_late_died_event_of_an_earlier_run_is_not_an_exit(
    libpod: _Libpod, backend: PodmanBackend
) -> None:
    """The event of an exit already reported (by an inspection) comes after the restart:
    it is older than the container's start, so the watcher waits for the next one."""
    _events_only(backend)
    libpod.containers["c1"] = _container("c1", "running", 2_000)
    libpod.event_streams = [[], [_died("c1", 3, 1_999_500_000_000), _died("c1", 4, 2_001 * 10**9)]]
    libpod.event_holds = {1}
    with anyio.fail_after(10):
        async with backend.watch_exits() as exits:
            await _subscribed(libpod)
            exits.watch("c1")
            await _inspected(libpod)
            libpod.release_held.set()
            assert await exits.__anext__() == ContainerExit("c1", 4)


async def test_another_watcher_reads_the_events_once_the_reading_one_closes(
    libpod: _Libpod, backend: PodmanBackend
) -> None:
    """One subscription serves every watcher of a backend; the watcher whose task read it
    closes first, and the exits of the other one's containers are still reported."""
    _events_only(backend)
    libpod.containers["c2"] = _container("c2", "running", 2_000)
    libpod.event_streams = [[], [_died("c2", 7, 2_001 * 10**9)]]
    libpod.event_holds = {1}
    close_first = anyio.Event()
    first_open = anyio.Event()

    async def first() -> None:
        async with backend.watch_exits():
            first_open.set()
            await close_first.wait()

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(first)
            await first_open.wait()
            await _subscribed(libpod)
            async with backend.watch_exits() as second:
                second.watch("c2")
                await _inspected(libpod)
                assert len(libpod.event_queries) == 1  # shared
                close_first.set()
                assert await second.__anext__() == ContainerExit("c2", 7)


async def test_an_exit_is_found_by_a_list_before_its_event_comes(
    libpod: _Libpod, backend: PodmanBackend
) -> None:
    """The died event is late (here: never comes); the list of exited containers, asked
    every 0.1 s while a container is watched, reports the exit."""
    _with_lists(backend)
    ident = "ab" * 32  # watched by id
    libpod.containers[ident] = _container(ident, "running", 2_000)
    libpod.containers["c1"] = _container("c1", "running", 2_000)  # by name
    libpod.containers["c2"] = _container("c2", "exited", 2_000)  # not watched
    libpod.event_streams = [[]]
    with anyio.fail_after(10):
        async with backend.watch_exits() as exits:
            await _subscribed(libpod)
            exits.watch(ident)
            exits.watch("c1")
            await _inspected(libpod)
            libpod.containers["c1"] = _container("c1", "exited", 2_000, exit_code=6)
            assert await exits.__anext__() == ContainerExit("c1", 6)
            libpod.containers[ident] = _container(ident, "exited", 2_000, exit_code=5)
            assert await exits.__anext__() == ContainerExit(ident, 5)
    assert len(libpod.event_queries) == 1
    assert all(query == {"status": ["exited", "stopped"]} for query in libpod.list_queries)


async def test_a_list_asked_before_a_watch_does_not_report_an_earlier_run(
    libpod: _Libpod, backend: PodmanBackend
) -> None:
    """A list asked while the container had exited (its first run), answered after that exit
    was reported by its event and the container was started again and watched, is not
    taken for the second run's exit."""
    _with_lists(backend)
    libpod.containers["c1"] = _container("c1", "running", 2_000)
    libpod.event_streams = [[], [_died("c1", 3, 2_001 * 10**9)]]
    libpod.event_holds = {1}
    with anyio.fail_after(10):
        async with backend.watch_exits() as exits:
            await _subscribed(libpod)
            exits.watch("c1")
            await _inspected(libpod)
            libpod.containers["c1"] = _container("c1", "exited", 2_000, exit_code=3)
            gate = libpod.list_gate = threading.Event()
            libpod.list_asked.clear()
            assert await anyio.to_thread.run_sync(libpod.list_asked.wait, 10)  # held
            libpod.release_held.set()  # the died event, and a new subscription's inspection
            assert await exits.__anext__() == ContainerExit("c1", 3)
            libpod.containers["c1"] = _container("c1", "running", 2_005)  # restarted
            libpod.inspected.clear()
            exits.watch("c1")
            await _inspected(libpod)
            gate.set()  # the held list: c1 exited with 3
            await anyio.sleep(0.5)  # and later lists: c1 running
            libpod.containers["c1"] = _container("c1", "exited", 2_005, exit_code=4)
            assert await exits.__anext__() == ContainerExit("c1", 4)


# conmon's exit files (a local service): the hub reads them from a directory of its own
# here, set as if found from the first container's conmon.


def _with_exit_dir(backend: PodmanBackend, directory: Path) -> None:
    """Exits also from exit files in *directory*; no lists of exited containers."""
    backend._exits._poll_interval = None
    backend._exits._exit_dir = str(directory)


def _running_now(ident: str) -> dict[str, object]:
    """An inspection of a container started a second ago (exit files are dated by now)."""
    return _container(ident, "running", int(time.time()) - 1)


async def _no_exit(exits: ExitWatcher, seconds: float) -> None:
    """Nothing is reported for *seconds*."""
    with anyio.move_on_after(seconds):
        exit = await exits.__anext__()
        pytest.fail(f"unexpected report: {exit}")


async def test_an_exit_file_reports_the_exit_before_any_event(
    libpod: _Libpod, backend: PodmanBackend, tmp_path: Path
) -> None:
    """The died event never comes: the exit code conmon wrote is reported, at once."""
    _with_exit_dir(backend, tmp_path)
    ident = "ab" * 32
    libpod.containers[ident] = _running_now(ident)
    libpod.containers["c1"] = _running_now("c1")
    libpod.event_streams = [[]]
    with anyio.fail_after(10):
        async with backend.watch_exits() as exits:
            await _subscribed(libpod)
            exits.watch(ident)
            exits.watch("c1")  # by name: its file is named by its id
            await _inspected(libpod)
            await anyio.sleep(0.2)
            (tmp_path / "c1").write_text("6")
            (tmp_path / "other").write_text("1")  # not watched
            with anyio.fail_after(0.5):
                assert await exits.__anext__() == ContainerExit("c1", 6)
            (tmp_path / ident).write_text("5\n")
            assert await exits.__anext__() == ContainerExit(ident, 5)
            await _no_exit(exits, 0.3)


async def test_an_empty_exit_file_is_read_again(
    libpod: _Libpod, backend: PodmanBackend, tmp_path: Path
) -> None:
    """conmon has created the file but not written the code yet: nothing is reported until
    the code is there."""
    _with_exit_dir(backend, tmp_path)
    libpod.containers["c1"] = _running_now("c1")
    libpod.event_streams = [[]]
    with anyio.fail_after(10):
        async with backend.watch_exits() as exits:
            await _subscribed(libpod)
            exits.watch("c1")
            await _inspected(libpod)
            (tmp_path / "c1").write_text("")
            await _no_exit(exits, 0.3)
            (tmp_path / "c1").write_text("137")
            assert await exits.__anext__() == ContainerExit("c1", 137)


async def test_an_exit_file_removed_before_it_is_read_leaves_the_exit_to_the_event(
    libpod: _Libpod, backend: PodmanBackend, tmp_path: Path
) -> None:
    """Podman's cleanup removed the file before a listing read it: the died event reports
    the exit, once."""
    _with_exit_dir(backend, tmp_path)
    libpod.containers["c1"] = _running_now("c1")
    libpod.event_streams = [[], [_died("c1", 9, time.time_ns())]]
    libpod.event_holds = {1}
    with anyio.fail_after(10):
        async with backend.watch_exits() as exits:
            await _subscribed(libpod)
            exits.watch("c1")
            await _inspected(libpod)
            (tmp_path / "c1").write_text("")  # being written...
            await anyio.sleep(0.1)
            (tmp_path / "c1").unlink()  # ...and removed
            await _no_exit(exits, 0.2)
            libpod.release_held.set()  # the died event
            assert await exits.__anext__() == ContainerExit("c1", 9)
            await _no_exit(exits, 0.3)


async def test_an_exit_in_a_file_and_an_event_is_reported_once(
    libpod: _Libpod, backend: PodmanBackend, tmp_path: Path
) -> None:
    """The file reports the exit; the died event that follows does not report it again,
    nor does the file, still there, report the next run's exit when it is watched again."""
    _with_exit_dir(backend, tmp_path)
    start = int(time.time()) - 3
    libpod.containers["c1"] = _container("c1", "running", start)
    libpod.event_streams = [[], [_died("c1", 3, time.time_ns())]]
    libpod.event_holds = {1}
    with anyio.fail_after(10):
        async with backend.watch_exits() as exits:
            await _subscribed(libpod)
            exits.watch("c1")
            await _inspected(libpod)
            (tmp_path / "c1").write_text("3")
            assert await exits.__anext__() == ContainerExit("c1", 3)
            libpod.release_held.set()  # the died event, and an inspection: exited
            libpod.containers["c1"] = _container("c1", "exited", start, exit_code=3)
            await _no_exit(exits, 0.5)
            # Started again, 2 s later (the file of the first run was not removed).
            os.utime(tmp_path / "c1", (start, start))
            libpod.containers["c1"] = _container("c1", "running", start + 2)
            libpod.inspected.clear()
            exits.watch("c1")
            await _inspected(libpod)
            await _no_exit(exits, 0.3)
            (tmp_path / "c1").write_text("4")
            assert await exits.__anext__() == ContainerExit("c1", 4)


def test_the_exit_dir_is_read_from_the_conmon_of_the_container(tmp_path: Path) -> None:
    """conmon's ``--exit-dir``, from the command line of the process with ConmonPid, is
    taken only if that process names the container and the directory can be listed."""
    ident = "cd" * 32
    argv = ["-c", ident, "-u", ident, "--exit-dir", str(tmp_path), "--full-attach"]
    script = "import sys; print(flush=True); sys.stdin.read()"
    with subprocess.Popen(
        [sys.executable, "-c", script, *argv], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    ) as proc:
        assert proc.stdout is not None
        proc.stdout.readline()  # it runs
        try:
            assert conmon_exit_dir(proc.pid, ident) == str(tmp_path)
            assert conmon_exit_dir(proc.pid, "ef" * 32) is None  # another container's
            assert conmon_exit_dir(os.getpid(), ident) is None  # not a conmon
            assert conmon_exit_dir(0, ident) is None
        finally:
            proc.communicate(b"")
    assert conmon_exit_dir(proc.pid, ident) is None  # gone


def test_read_exit_files(tmp_path: Path) -> None:
    """The numbers in the files of the wanted ids; empty, other and unreadable ones not."""
    (tmp_path / "a").write_text("0")
    (tmp_path / "b").write_text("")
    (tmp_path / "c").write_text("-1\n")
    (tmp_path / "d").write_text("2")
    (tmp_path / "e").write_text("garbage")
    found = read_exit_files(str(tmp_path), {"a", "b", "c", "e", "z"})
    assert {ident: code for ident, (code, _) in found.items()} == {"a": 0, "c": -1}
    assert found["a"][1] == (tmp_path / "a").stat().st_mtime
    assert read_exit_files(str(tmp_path / "missing"), {"a"}) == {}


async def test_a_scanner_woken_as_it_is_handed_over_leaves_the_new_one_waking(
    libpod: _Libpod, backend: PodmanBackend, tmp_path: Path
) -> None:
    """The reading watcher closes just as its (idle) scanner is woken: that scanner resumes
    once more before its cancellation takes effect, and the one that took over is still
    woken by the next watch and reads that container's exit file. (Which of the two runs
    first is up to the event loop: the handover is done several times.)"""
    _with_exit_dir(backend, tmp_path)
    rounds = 8
    libpod.event_streams = [[] for _ in range(rounds + 1)]
    libpod.event_holds = set(range(1, rounds + 1))

    async def hold(close: anyio.Event, *, task_status: anyio.abc.TaskStatus[ExitWatcher]) -> None:
        async with backend.watch_exits() as exits:
            task_status.started(exits)
            await close.wait()
            backend._exits._wake_scanner()  # as if a watch of another watcher came now

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            close = anyio.Event()
            await tg.start(hold, close)
            for number in range(rounds):
                next_close = anyio.Event()
                exits = await tg.start(hold, next_close)
                await anyio.sleep(0.05)  # the scanner waits for a watch
                close.set()
                await anyio.sleep(0.05)  # handed over
                ident = f"c{number}"
                libpod.containers[ident] = _running_now(ident)
                exits.watch(ident)
                (tmp_path / ident).write_text(str(number))
                with anyio.fail_after(2):
                    assert await exits.__anext__() == ContainerExit(ident, number)
                close = next_close
            close.set()
