"""What a fake container runs: a Program, or a function of a FakeContext."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeAlias

import anyio
import anyio.abc
import attrs

from .._base import ContainerResources, ContainerSecurity, ExecResult
from ._identity import user_ids
from ._network import ConnectionHandler, _serve_one

if TYPE_CHECKING:
    from ._backend import FakeBackend
    from ._container import FakeContainer

ProgramFn: TypeAlias = Callable[["FakeContext"], Awaitable["int | None"]]
ExecHandler: TypeAlias = Callable[[tuple[str, ...]], Awaitable[ExecResult]]


@attrs.frozen(kw_only=True)
class Program:
    """A declarative fake program.

    It writes *logs* (``"stdout"`` lines; prefix a line with ``"stderr:"`` for stderr),
    then exits with *exit_code* after *delay* seconds, or runs until stopped if *delay*
    is ``None``. *serve* lists ports it accepts TCP connections on (answering HTTP 200),
    and with *ignore_term* it only dies of SIGKILL.
    """

    exit_code: int = 0
    delay: float | None = 0.0
    logs: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    serve: tuple[int, ...] = attrs.field(default=(), converter=tuple)
    ignore_term: bool = False

    async def __call__(self, ctx: FakeContext) -> int:
        for line in self.logs:
            if line.startswith("stderr:"):
                ctx.log(line.removeprefix("stderr:"), stream="stderr")
            else:
                ctx.log(line)
        ctx.handle_term = self.ignore_term
        async with anyio.create_task_group() as tg:
            for port in self.serve:
                tg.start_soon(ctx.serve_http, port)
            if self.delay is None:
                await anyio.sleep_forever()
            else:
                await anyio.sleep(self.delay)
            tg.cancel_scope.cancel()
        return self.exit_code


class FakeContext:
    """What a fake program sees: its argv, environment, files, logs and network."""

    def __init__(self, container: FakeContainer, backend: FakeBackend) -> None:
        self._container = container
        self._backend = backend
        self._terminated: anyio.Event | None = None
        self._term_requested = False
        #: with True, SIGTERM only sets :attr:`terminated`; the program decides when to exit
        self.handle_term = False
        self.exec_handler: ExecHandler | None = None

    @property
    def terminated(self) -> anyio.Event:
        """Set when the container is asked to stop (SIGTERM)."""
        if self._terminated is None:
            self._terminated = anyio.Event()
            if self._term_requested:
                self._terminated.set()
        return self._terminated

    def _request_term(self) -> None:
        self._term_requested = True
        if self._terminated is not None:
            self._terminated.set()

    @property
    def name(self) -> str:
        """The container's name in the pod (:attr:`ContainerSpec.short_name`)."""
        return self._container.short_name

    @property
    def argv(self) -> tuple[str, ...]:
        """The command line the container runs (command + args, or the image's)."""
        return self._container.argv

    @property
    def env(self) -> dict[str, str]:
        """The container's environment."""
        return dict(self._container.spec.env)

    @property
    def security(self) -> ContainerSecurity | None:
        """The container's user, groups and privileges (``None``: the defaults)."""
        return self._container.spec.security

    @property
    def resources(self) -> ContainerResources | None:
        """The container's resource limits, recorded (the fake enforces none)."""
        return self._container.spec.resources

    @property
    def user_ids(self) -> tuple[int, int, tuple[int, ...]]:
        """The uid, gid and supplementary groups the container runs with."""
        return user_ids(self._container.spec.security, self._container.image_user)

    def log(self, line: str, *, stream: str = "stdout") -> None:
        """Write one log line."""
        self._container.write_log(stream, line.encode())

    def read_file(self, path: str) -> bytes:
        """Read a file of the container's filesystem (mounted volumes included)."""
        return self._container.fs.read(path)

    def write_file(self, path: str, data: bytes | str) -> None:
        """Write a file; raises :class:`PermissionError` on a read-only mount."""
        self._container.fs.write(path, data.encode() if isinstance(data, str) else data)

    def exists(self, path: str) -> bool:
        """Whether *path* is a file or a directory."""
        return self._container.fs.exists(path)

    def listdir(self, path: str) -> list[str]:
        """Names under directory *path*."""
        return self._container.fs.listdir(path)

    def listens(self, port: int) -> bool:
        """Whether something in the pod accepts connections on *port*."""
        return port in self._backend._pods[self._container.spec.pod].listeners

    async def serve(self, port: int, handler: ConnectionHandler) -> None:
        """Accept TCP connections on *port* of the pod until cancelled."""
        pod = self._backend._pods[self._container.spec.pod]
        if port in pod.listeners:
            raise OSError(98, f"port {port} is already in use in pod {pod.spec.name}")
        send, receive = anyio.create_memory_object_stream[anyio.abc.ByteStream](math.inf)
        pod.listeners[port] = send
        try:
            async with anyio.create_task_group() as tg, receive:
                async for stream in receive:
                    tg.start_soon(_serve_one, handler, stream)
        finally:
            pod.listeners.pop(port, None)
            send.close()

    async def serve_http(
        self,
        port: int,
        handler: Callable[[str], tuple[int, bytes]] | None = None,
    ) -> None:
        """Serve HTTP GET on *port*: *handler(path)* gives (status, body); default 200."""

        async def on_connection(stream: anyio.abc.ByteStream) -> None:
            request = b""
            while b"\r\n\r\n" not in request:
                try:
                    chunk = await stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    return
                request += chunk
            parts = request.split(b"\r\n", 1)[0].split()
            path = parts[1].decode() if len(parts) > 1 else "/"
            status, body = handler(path) if handler is not None else (200, b"ok\n")
            head = (
                f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            await stream.send(head.encode() + body)

        await self.serve(port, on_connection)

    async def serve_files(self, port: int, root: str) -> None:
        """Serve the files under *root* over HTTP on *port* (a fake web server)."""

        def handler(path: str) -> tuple[int, bytes]:
            full = root.rstrip("/") + "/" + path.lstrip("/")
            if self._container.fs.is_dir(full):
                full = full.rstrip("/") + "/index.html"
            try:
                return 200, self.read_file(full)
            except (FileNotFoundError, IsADirectoryError):
                return 404, b"not found\n"

        await self.serve_http(port, handler)
