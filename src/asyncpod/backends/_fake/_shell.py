"""The fake's shell and built-in tools: busybox's, as far as tests need them."""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

import anyio

from ._filesystem import _FileSystem

if TYPE_CHECKING:
    from ._container import FakeContainer


async def _run_builtin(container: FakeContainer, argv: tuple[str, ...]) -> int:
    """Run *argv* as the container's main process."""

    def out(data: bytes) -> None:
        container.write_log("stdout", data.rstrip(b"\n"))

    def err(data: bytes) -> None:
        container.write_log("stderr", data.rstrip(b"\n"))

    if argv and argv[0].rsplit("/", 1)[-1] == "httpd" and container.context is not None:
        port, root = _httpd_options(argv[1:])
        await container.context.serve_files(port, root)
    code = await _builtin(container.fs, argv, out, err)
    if code is None:
        await anyio.sleep_forever()  # an unknown program: a server that runs until stopped
    assert code is not None
    return code


_TRAP = re.compile(r"""\btrap\s+(['"])exit(?:\s+(\d+))?\1\s+(?:SIG)?(?:TERM|15)\b""")


def _trapped_exit(argv: tuple[str, ...]) -> int | None:
    """The exit code of a ``sh -c`` script's ``trap 'exit N' TERM``, if it has one."""
    if len(argv) >= 3 and argv[0].rsplit("/", 1)[-1] == "sh" and argv[1] == "-c":
        found = _TRAP.search(argv[2])
        if found is not None:
            return int(found.group(2) or 0)
    return None


def _is_builtin(argv: tuple[str, ...]) -> bool:
    name = argv[0].rsplit("/", 1)[-1] if argv else ""
    return name in _TOOLS or name in ("sh", "httpd")


def _httpd_options(args: tuple[str, ...]) -> tuple[int, str]:
    """``httpd [-f] [-p PORT] [-h HOME]``, as busybox spells it."""
    port, root = 80, "/www"
    items = iter(args)
    for arg in items:
        if arg == "-p":
            port = int(next(items).rsplit(":", 1)[-1])
        elif arg == "-h":
            root = next(items)
    return port, root


async def _builtin(
    fs: _FileSystem,
    argv: tuple[str, ...],
    out: Callable[[bytes], object],
    err: Callable[[bytes], object],
) -> int | None:
    """Run a built-in tool; ``None`` if *argv* is no built-in."""
    if not argv:
        return None
    name, args = argv[0].rsplit("/", 1)[-1], list(argv[1:])
    try:
        if name == "sh" and len(args) >= 2 and args[0] == "-c":
            return await _shell(fs, args[1], out, err)
        tool = _TOOLS.get(name)
        if tool is None:
            return None
        return await tool(fs, args, out)
    except OSError as exc:
        err(f"{name}: {exc.filename or ''}: {exc.strerror}\n".encode())
        return 1


async def _shell(
    fs: _FileSystem, script: str, out: Callable[[bytes], object], err: Callable[[bytes], object]
) -> int | None:
    """A very small shell: commands joined by ';', '&&' and '||'."""
    code: int | None = 0
    op = ";"
    for token in _split_script(script):
        if token in (";", "&&", "||"):
            op = token
            continue
        if (op == "&&" and code != 0) or (op == "||" and code == 0):
            continue
        words = list(token)
        if words and words[0] == "exit":
            return int(words[1]) if len(words) > 1 else (code or 0)
        sink = out
        if words[-1:] == [">&2"]:
            words, sink = words[:-1], err
        elif len(words) >= 3 and words[-2] == ">":
            target, words = words[-1], words[:-2]
            captured: list[bytes] = []
            code = await _builtin(fs, tuple(words), captured.append, err)
            if code is None:
                return None
            fs.write(target, b"".join(captured))
            continue
        code = await _builtin(fs, tuple(words), sink, err)
        if code is None:
            return None
    return code


def _split_script(script: str) -> Iterator[Any]:
    lexer = shlex.shlex(script, posix=True, punctuation_chars=";&|>")
    lexer.whitespace_split = True
    words: list[str] = []
    for token in lexer:
        if token == ">&" and words is not None:
            words.append(">&" + next(lexer))
        elif token in (";", "&&", "||"):
            if words:
                yield words
            words = []
            yield token
        else:
            words.append(token)
    if words:
        yield words


async def _tool_true(fs: _FileSystem, args: list[str], out: Callable[[bytes], object]) -> int:
    return 0


async def _tool_false(fs: _FileSystem, args: list[str], out: Callable[[bytes], object]) -> int:
    return 1


async def _tool_echo(fs: _FileSystem, args: list[str], out: Callable[[bytes], object]) -> int:
    out((" ".join(args) + "\n").encode())
    return 0


async def _tool_sleep(fs: _FileSystem, args: list[str], out: Callable[[bytes], object]) -> int:
    seconds = float(args[0]) if args else 0.0
    if math.isinf(seconds):
        await anyio.sleep_forever()
    await anyio.sleep(seconds)
    return 0


async def _tool_cat(fs: _FileSystem, args: list[str], out: Callable[[bytes], object]) -> int:
    for path in args:
        out(fs.read(path))
    return 0


async def _tool_cp(fs: _FileSystem, args: list[str], out: Callable[[bytes], object]) -> int:
    if len(args) != 2:
        raise OSError(22, "usage: cp SOURCE DEST", "")
    source, dest = args
    data = fs.read(source)
    if fs.is_dir(dest):
        dest = dest.rstrip("/") + "/" + source.rstrip("/").rsplit("/", 1)[-1]
    fs.write(dest, data)
    return 0


async def _tool_touch(fs: _FileSystem, args: list[str], out: Callable[[bytes], object]) -> int:
    for path in args:
        if not fs.exists(path):
            fs.write(path, b"")
    return 0


async def _tool_rm(fs: _FileSystem, args: list[str], out: Callable[[bytes], object]) -> int:
    for path in (a for a in args if not a.startswith("-")):
        if fs.exists(path) or "-f" not in args:
            fs.remove(path)
    return 0


async def _tool_mkdir(fs: _FileSystem, args: list[str], out: Callable[[bytes], object]) -> int:
    for path in (a for a in args if not a.startswith("-")):
        fs.mkdir(path)
    return 0


async def _tool_ls(fs: _FileSystem, args: list[str], out: Callable[[bytes], object]) -> int:
    for path in args or ["/"]:
        out("".join(f"{name}\n" for name in fs.listdir(path)).encode())
    return 0


async def _tool_test(fs: _FileSystem, args: list[str], out: Callable[[bytes], object]) -> int:
    if len(args) == 2 and args[0] in ("-e", "-f", "-d"):
        path = args[1]
        ok = {
            "-e": fs.exists(path),
            "-f": fs.exists(path) and not fs.is_dir(path),
            "-d": fs.is_dir(path),
        }[args[0]]
        return 0 if ok else 1
    raise OSError(22, "unsupported test expression", " ".join(args))


async def _tool_write(fs: _FileSystem, args: list[str], out: Callable[[bytes], object]) -> int:
    """``write PATH TEXT``: a fake-only tool that writes TEXT to PATH (shells would redirect)."""
    if len(args) != 2:
        raise OSError(22, "usage: write PATH TEXT", "")
    fs.write(args[0], args[1].encode())
    return 0


_TOOLS: dict[str, Callable[[_FileSystem, list[str], Callable[[bytes], object]], Awaitable[int]]] = {
    "true": _tool_true,
    "false": _tool_false,
    "echo": _tool_echo,
    "sleep": _tool_sleep,
    "cat": _tool_cat,
    "cp": _tool_cp,
    "touch": _tool_touch,
    "rm": _tool_rm,
    "mkdir": _tool_mkdir,
    "ls": _tool_ls,
    "test": _tool_test,
    "write": _tool_write,
}
