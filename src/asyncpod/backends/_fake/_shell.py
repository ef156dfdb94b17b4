"""The fake's shell and built-in tools: busybox's, as far as tests need them.

A container without a program runs its command with these: the tools below, ``httpd``
(busybox's, serving files; it backgrounds itself unless given ``-f``), and ``sh -c``
scripts of them: commands joined by ``;``, ``&&`` and ``||``, ``>`` and ``>&2``
redirection, ``exec``, ``exit``, ``trap ... TERM``, ``while ...; do ...; done``, and
background jobs (``CMD &``, then ``wait``). A tool runs the same way as a container's
command, from a script, or through exec.

What the shell cannot run, :func:`cannot_run` names, so that the backend refuses the
container at create time instead of running something else than Podman would.
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel

from ._filesystem import _FileSystem
from ._identity import id_output, user_ids

if TYPE_CHECKING:
    from ._container import FakeContainer

Output = Callable[[bytes], object]


async def _run_builtin(container: FakeContainer, argv: tuple[str, ...]) -> int:
    """Run *argv* as the container's main process."""

    def out(data: bytes) -> None:
        container.write_log("stdout", data.rstrip(b"\n"))

    def err(data: bytes) -> None:
        container.write_log("stderr", data.rstrip(b"\n"))

    return await run_command(container, argv, out, err)


async def run_command(
    container: FakeContainer, argv: tuple[str, ...], out: Output, err: Output
) -> int:
    """Run *argv* in *container* (its main process, or an exec): 127 if there is no such tool."""
    code = await _builtin(container, argv, out, err)
    if code is None:
        err(f"{argv[0] if argv else ''}: command not found\n".encode())
        return 127
    return code


async def run_exec(
    container: FakeContainer,
    argv: tuple[str, ...],
    out: Output,
    err: Output,
    *,
    env: Iterable[tuple[str, str]] = (),
    working_dir: str | None = None,
    user: str | None = None,
    stdin: bytes = b"",
) -> int:
    """Run *argv* as an exec session: ``env``, ``pwd``, ``id -u``, ``whoami`` and a ``cat``
    of its standard input answer from the session's settings, the rest as
    :func:`run_command` does."""
    name = _name(argv[0]) if argv else ""
    if name == "env" and len(argv) == 1:
        merged = dict(container.spec.env)
        merged.update(env)
        out(b"".join(f"{k}={v}\n".encode() for k, v in merged.items()))
        return 0
    if name == "pwd" and len(argv) == 1:
        out(f"{working_dir or container.spec.working_dir or '/'}\n".encode())
        return 0
    # a session's own user; without one, the container's (its securityContext's)
    if user is not None and (
        (name == "id" and argv[1:] == ("-u",)) or (name == "whoami" and len(argv) == 1)
    ):
        who = user.split(":")[0]
        if name == "whoami":
            who = "root" if who == "0" else who
        out(f"{who}\n".encode())
        return 0
    if name == "whoami" and len(argv) == 1:
        chunks: list[bytes] = []
        await run_command(container, ("id", "-u"), chunks.append, err)
        uid = b"".join(chunks).strip().decode() or "0"
        out(f"{'root' if uid == '0' else uid}\n".encode())
        return 0
    if name == "cat" and len(argv) == 1:
        if stdin:
            out(stdin)
        await anyio.lowlevel.checkpoint()
        return 0
    return await run_command(container, argv, out, err)


_TRAP = re.compile(r"""\btrap\s+(['"])exit(?:\s+(\d+))?\1\s+(?:SIG)?(?:TERM|15)\b""")


def _trapped_exit(argv: tuple[str, ...]) -> int | None:
    """The exit code of a ``sh -c`` script's ``trap 'exit N' TERM``, if it has one."""
    if len(argv) >= 3 and _name(argv[0]) == "sh" and argv[1] == "-c":
        found = _TRAP.search(argv[2])
        if found is not None:
            return int(found.group(2) or 0)
    return None


def _name(word: str) -> str:
    return word.rsplit("/", 1)[-1]


#: the shell's own words, which need no tool
_KEYWORDS = frozenset({"exit", "trap", "done", "wait"})
#: words that start a command without being it
_PREFIXES = frozenset({"exec", "while", "do"})


def cannot_run(argv: Iterable[str]) -> str | None:
    """The first program in *argv* (a command line, scripts included) that the fake's
    shell cannot run, or ``None`` if it can run all of it."""
    argv = tuple(argv)
    if not argv:
        return None
    name = _name(argv[0])
    if name == "sh":
        if len(argv) < 3 or argv[1] != "-c":
            return " ".join(argv)  # a shell reading stdin, or a script file
        try:
            items = list(_split_script(argv[2]))
            _parse(iter(items))
        except ValueError:
            return argv[2]  # beyond what the fake's shell parses
        for item in items:
            if isinstance(item, str):
                continue
            words = list(item)
            while words and words[0] in _PREFIXES:
                words = words[1:]
            if words and words[0] not in _KEYWORDS:
                words = _without_redirection(words)[0]
                expanded = next((word for word in words if "$" in word), None)
                if expanded is not None:
                    return expanded  # the fake's shell expands no variables
                missing = cannot_run(words)
                if missing is not None:
                    return missing
        return None
    if name in _TOOLS or name in ("httpd", "id"):
        return None
    return argv[0]


def _httpd_options(args: Iterable[str]) -> tuple[int, str, bool]:
    """``httpd [-f] [-p PORT] [-h HOME]``, as busybox spells it: (port, home, foreground)."""
    port, root, foreground = 80, "/www", False
    items = iter(args)
    for arg in items:
        if arg == "-p":
            port = int(next(items).rsplit(":", 1)[-1])
        elif arg == "-h":
            root = next(items)
        elif arg == "-f":
            foreground = True
    return port, root, foreground


async def _httpd(container: FakeContainer, args: list[str], err: Output) -> int:
    """busybox's httpd: serves files in the pod, in the foreground with ``-f``; otherwise
    it runs in the background, as the daemon it becomes, until the container exits."""
    port, root, foreground = _httpd_options(args)
    ctx, daemons = container.context, container.daemons
    if ctx is None or daemons is None:
        err(b"httpd: the container is not running\n")
        return 1
    if ctx.listens(port):
        err(f"httpd: bind: Address in use (port {port})\n".encode())
        return 1
    if foreground:
        await ctx.serve_files(port, root)
        return 0
    daemons.start_soon(ctx.serve_files, port, root)
    await anyio.lowlevel.checkpoint()  # it listens once this returns
    return 0


async def _id(container: FakeContainer, args: list[str], out: Output) -> int:
    """``id``, ``id -u``, ``id -g``, ``id -G``: the process's user and groups."""
    uid, gid, groups = user_ids(container.spec.security, container.image_user)
    options = {"-u": str(uid), "-g": str(gid), "-G": " ".join(map(str, (gid, *groups)))}
    if not args:
        out(f"{id_output(uid, gid, groups)}\n".encode())
        return 0
    if len(args) == 1 and args[0] in options:
        out(f"{options[args[0]]}\n".encode())
        return 0
    raise OSError(22, "unsupported option", " ".join(args))


async def _builtin(
    container: FakeContainer,
    argv: tuple[str, ...],
    out: Output,
    err: Output,
) -> int | None:
    """Run a built-in tool; ``None`` if *argv* is no built-in."""
    if not argv:
        return None
    name, args = _name(argv[0]), list(argv[1:])
    try:
        if name == "sh" and len(args) >= 2 and args[0] == "-c":
            return await _shell(container, args[1], out, err)
        if name == "httpd":
            return await _httpd(container, args, err)
        if name == "id":
            return await _id(container, args, out)
        if name == "env" and not args:  # the container's environment, as env(1) prints it
            out("".join(f"{k}={v}\n" for k, v in container.spec.env).encode())
            return 0
        tool = _TOOLS.get(name)
        if tool is None:
            return None
        return await tool(container.fs, args, out)
    except OSError as exc:
        err(f"{name}: {exc.filename or ''}: {exc.strerror}\n".encode())
        return 1


class _Exit(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


#: a parsed script: ("cmd", words), ("bg", words), ("op", ";" | "&&" | "||"),
#: ("while", cond, body)
_Node = tuple[Any, ...]


def _parse(items: Iterator[Any], until: str | None = None) -> tuple[list[_Node], list[str]]:
    """Parse a script's items up to a command that starts with *until* (returned)."""
    nodes: list[_Node] = []
    for item in items:
        if item == "&":
            if not nodes or nodes[-1][0] != "cmd":
                raise ValueError("& after no command")
            nodes[-1] = ("bg", nodes[-1][1])
            nodes.append(("op", ";"))
            continue
        if isinstance(item, str):
            nodes.append(("op", item))
            continue
        words = list(item)
        if until is not None and words[0] == until:
            return nodes, words
        if words[0] == "while":
            head = iter([words[1:]] if words[1:] else [])
            cond, do = _parse(_chain(head, items), "do")
            body, done = _parse(_chain(iter([do[1:]] if do[1:] else []), items), "done")
            if not do or not done or done[1:]:
                raise ValueError("while without do ... done")
            nodes.append(("while", cond, body))
        else:
            nodes.append(("cmd", words))
    return nodes, []


def _chain(first: Iterator[Any], rest: Iterator[Any]) -> Iterator[Any]:
    yield from first
    yield from rest


def _without_redirection(words: list[str]) -> tuple[list[str], str | None]:
    """The command's words, and where its output goes: ``"&2"``, a path, or ``None``."""
    if words[-1:] == [">&2"]:
        return words[:-1], "&2"
    if len(words) >= 3 and words[-2] == ">":
        return words[:-2], words[-1]
    return words, None


async def _shell(container: FakeContainer, script: str, out: Output, err: Output) -> int:
    """A very small shell: see the module's docstring for what it understands."""
    try:
        nodes, _ = _parse(iter(list(_split_script(script))))
    except ValueError as exc:
        err(f"sh: syntax error: {exc}\n".encode())
        return 2
    try:
        return await _run_nodes(container, nodes, out, err, [])
    except _Exit as exit_:
        return exit_.code


async def _run_nodes(
    container: FakeContainer, nodes: list[_Node], out: Output, err: Output, jobs: list[anyio.Event]
) -> int:
    code = 0
    op = ";"
    for node in nodes:
        if node[0] == "op":
            op = node[1]
            continue
        if (op == "&&" and code != 0) or (op == "||" and code == 0):
            continue
        if node[0] == "while":
            code = 0
            while await _run_nodes(container, node[1], out, err, jobs) == 0:
                code = await _run_nodes(container, node[2], out, err, jobs)
            continue
        if node[0] == "bg":
            code = _background(container, node[1], out, err, jobs)
            continue
        code = await _run_words(container, node[1], code, out, err, jobs)
    return code


def _background(
    container: FakeContainer, words: list[str], out: Output, err: Output, jobs: list[anyio.Event]
) -> int:
    """Start ``words &``: it runs until done, or until the container exits."""
    if container.daemons is None:
        err(b"sh: no background jobs here\n")
        return 1
    done = anyio.Event()

    async def job() -> None:
        try:
            await _run_words(container, words, 0, out, err, [])
        except _Exit:
            pass
        finally:
            done.set()

    container.daemons.start_soon(job)
    jobs.append(done)
    return 0


async def _run_words(
    container: FakeContainer,
    words: list[str],
    last: int,
    out: Output,
    err: Output,
    jobs: list[anyio.Event],
) -> int:
    if words[0] == "exec":
        words = words[1:]
    if words[0] == "exit":
        raise _Exit(int(words[1]) if len(words) > 1 else last)
    if words[0] == "trap":
        return 0  # the TERM trap's effect is the backend's (see _trapped_exit)
    if words[0] == "wait":
        for done in jobs:
            await done.wait()
        return 0
    words, target = _without_redirection(words)
    if target == "&2":
        return await run_command(container, tuple(words), err, err)
    if target is None:
        return await run_command(container, tuple(words), out, err)
    captured: list[bytes] = []
    code = await run_command(container, tuple(words), captured.append, err)
    try:
        container.fs.write(target, b"".join(captured))
    except OSError as exc:
        err(f"sh: can't create {target}: {exc.strerror}\n".encode())
        return 1
    return code


def _split_script(script: str) -> Iterator[Any]:
    lexer = shlex.shlex(script, posix=True, punctuation_chars=";&|>\n")
    lexer.whitespace = " \t\r"
    lexer.whitespace_split = True
    words: list[str] = []
    for token in lexer:
        if token == ">&" and words is not None:
            words.append(">&" + next(lexer))
        elif token in (";", "&&", "||", "&", "\n"):
            if words:
                yield words
            words = []
            yield ";" if token == "\n" else token
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


async def _tool_stat(fs: _FileSystem, args: list[str], out: Callable[[bytes], object]) -> int:
    """``stat -c %a PATH...``: the permission bits in octal, one a line (busybox's form)."""
    if len(args) < 3 or args[:2] != ["-c", "%a"]:
        raise OSError(22, "usage: stat -c %a PATH...", " ".join(args))
    out("".join(f"{fs.mode(path):o}\n" for path in args[2:]).encode())
    return 0


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
    "stat": _tool_stat,
    "write": _tool_write,
}
