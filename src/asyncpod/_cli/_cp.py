"""``asyncpod cp``: copy files and directories into and out of a container, as tar archives
through the backend (:meth:`~asyncpod.backends.Backend.put_archive` and
:meth:`~asyncpod.backends.Backend.get_archive`)."""

from __future__ import annotations

import argparse
import io
import os
import posixpath
import re
import sys
import tarfile
from pathlib import Path, PurePosixPath

import anyio
import attrs

from .._exceptions import ObjectNotFoundError
from . import _backends
from ._errors import EXIT_NOT_FOUND, EXIT_OK, EXIT_USAGE, CliError
from ._signals import Stop
from ._target import container_name, find_container

__all__ = ["Remote", "cp", "parse_location"]

# POD/CONTAINER:PATH or POD:PATH (names as Kubernetes spells them); anything else is local
_REMOTE = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?)(/([a-z0-9]([-a-z0-9]*[a-z0-9])?))?:(.*)$")


@attrs.frozen
class Remote:
    """A path in a container: ``POD/CONTAINER:PATH`` or ``POD:PATH``."""

    pod: str
    container: str | None
    path: str


def parse_location(text: str) -> Remote | Path:
    """A ``cp`` argument: in a container if it starts with ``POD/CONTAINER:`` or ``POD:``
    (a local file whose name looks so is written ``./NAME``), else local."""
    match = _REMOTE.match(text)
    if match is None:
        return Path(text)
    pod, container, path = match.group(1), match.group(4), match.group(6)
    if not path:
        raise CliError(f"{text!r}: no path after the ':'", EXIT_USAGE)
    if not path.startswith("/"):
        path = f"/{path}"  # relative to the container's root, as podman cp takes it
    return Remote(pod, container, path)


async def cp(args: argparse.Namespace, stop: Stop) -> int:
    source, target = parse_location(args.source), parse_location(args.target)
    if isinstance(source, Remote) == isinstance(target, Remote):
        raise CliError(
            "one of SOURCE and DEST must be in a container (POD/CONTAINER:PATH), the other local",
            EXIT_USAGE,
        )
    remote = source if isinstance(source, Remote) else target
    assert isinstance(remote, Remote)
    if args.container is not None:
        if remote.container is not None and remote.container != args.container:
            raise CliError(
                f"container {remote.container!r} and -c {args.container!r} disagree", EXIT_USAGE
            )
        remote = attrs.evolve(remote, container=args.container)
    async with _backends.podman(args.url) as backend:
        pod, obj = await find_container(backend, remote.pod, remote.container)
        where = f"{pod.name}/{container_name(obj)}:{remote.path}"
        if isinstance(source, Remote):
            assert isinstance(target, Path)
            try:
                tarball = await backend.get_archive(obj.id, source.path)
            except ObjectNotFoundError:
                raise CliError(f"{where}: no such file or directory", EXIT_NOT_FOUND) from None
            count, warnings = await anyio.to_thread.run_sync(_unpack, tarball, target)
            for warning in warnings:
                print(f"asyncpod: warning: {where}: {warning}", file=sys.stderr)
            print(f"copied {where} to {target} ({_files(count)})")
        else:
            assert isinstance(target, Remote)
            if not source.exists() and not source.is_symlink():
                raise CliError(f"{source}: no such file or directory", EXIT_NOT_FOUND)
            # Into an existing directory: under the source's name; else as the path itself.
            directory, name = posixpath.split(target.path.rstrip("/") or "/")
            if target.path.endswith("/") or await backend.is_directory(obj.id, target.path):
                directory, name = target.path, source.name
            if not name:
                raise CliError(f"cannot copy onto {where}", EXIT_USAGE)
            tarball, count = await anyio.to_thread.run_sync(_pack, source, name)
            await backend.put_archive(obj.id, directory or "/", tarball)
            print(f"copied {source} to {where} ({_files(count)})")
    return EXIT_OK


def _files(count: int) -> str:
    return "1 file" if count == 1 else f"{count} files"


def _pack(source: Path, name: str) -> tuple[bytes, int]:
    """*source* (a file, or a directory and all in it) as a tar whose top entry is *name*."""
    buffer = io.BytesIO()
    count = 0
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        archive.add(source, arcname=name, recursive=False)
        if source.is_dir() and not source.is_symlink():
            for root, dirs, files in os.walk(source):
                dirs.sort()
                rel = Path(root).relative_to(source)
                for entry in sorted(dirs) + sorted(files):
                    path = Path(root) / entry
                    archive.add(path, arcname=str(PurePosixPath(name, rel, entry)), recursive=False)
                    count += not path.is_dir()
        else:
            count = 1
    return buffer.getvalue(), count


def _unpack(tarball: bytes, target: Path) -> tuple[int, list[str]]:
    """Unpack an archive of :meth:`get_archive` (one top entry) as *target*, or into it if
    it is an existing directory; the files made, and a warning for each entry skipped.

    The container says what the archive holds, so nothing of it may land outside the
    destination (the top entry's place): entries whose path leaves it, symbolic links that
    are absolute or point out of it, hard links to anything but a file in it, devices and
    fifos are skipped. Files are written without following a link at their place (one
    there is replaced), and every parent is resolved and must lie inside. Links are made
    last, so that no file is written through one; a link's target is stored normalised
    (``a/../b`` as ``b``), so that what the kernel follows is what was checked. Setuid,
    setgid and sticky bits are dropped."""
    warnings: list[str] = []
    count = 0
    with tarfile.open(fileobj=io.BytesIO(tarball)) as archive:
        members = archive.getmembers()
        if not members:
            return 0, warnings
        first = posixpath.normpath(members[0].name)
        top = PurePosixPath(first).parts[0] if first else ""
        if first.startswith("/") or top in ("", ".", ".."):
            raise CliError(f"refusing an archive whose top entry is {members[0].name!r}")
        base = target / top if target.is_dir() else target
        root = _Root(base.parent.resolve() / base.name)
        hard: list[tuple[tarfile.TarInfo, Path]] = []
        soft: list[tuple[tarfile.TarInfo, Path]] = []
        for member in members:
            path = root.member(member.name, top)
            if path is None:
                warnings.append(f"skipped {member.name!r}: outside the destination")
            elif member.isdir():
                count += _make_dir(root, member, path, warnings)
            elif member.isfile():
                extracted = archive.extractfile(member)
                assert extracted is not None
                count += _write_file(root, member, path, extracted.read(), warnings)
            elif member.islnk():
                hard.append((member, path))
            elif member.issym():
                soft.append((member, path))
            else:
                warnings.append(f"skipped {member.name!r}: not a file, directory or link")
        for member, path in hard:
            count += _hard_link(root, member, path, top, warnings)
        for member, path in soft:
            count += _symlink(root, member, path, warnings)
    return count, warnings


@attrs.frozen
class _Root:
    """Where an archive is unpacked (its parent resolved): what must hold all of it."""

    path: Path

    def member(self, name: str, top: str) -> Path | None:
        """Where the entry *name* belongs (lexically), or ``None`` if outside."""
        normal = posixpath.normpath(name)
        parts = PurePosixPath(normal).parts
        if normal.startswith("/") or not parts or parts[0] != top or ".." in parts:
            return None
        return self.path.joinpath(*parts[1:])

    def holds(self, path: Path) -> bool:
        return path == self.path or self.path in path.parents

    def place(self, path: Path) -> Path | None:
        """*path* with its parent resolved (the final component as it is, not followed),
        or ``None`` if that is outside."""
        if path == self.path:
            return path
        try:
            real = path.parent.resolve() / path.name
        except (OSError, RuntimeError):  # a loop of links
            return None
        return real if self.holds(real) else None

    def make_parent(self, path: Path) -> Path | None:
        """:meth:`place` of *path*, once its parent directories are made (resolved again
        after: what was made may be a link's target); ``None`` if that is outside."""
        real = self.place(path)
        if real is None:
            return None
        real.parent.mkdir(parents=True, exist_ok=True)
        return self.place(path)


def _clear(path: Path) -> bool:
    """Remove a link or file at *path* (never follows one); ``False`` if a directory is there."""
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        path.unlink()
    return not path.is_dir() or path.is_symlink()


def _make_dir(root: _Root, member: tarfile.TarInfo, path: Path, warnings: list[str]) -> int:
    real = root.place(path)
    if real is None:
        warnings.append(f"skipped {member.name!r}: its directory is outside the destination")
        return 0
    if real.is_symlink() or (real.exists() and not real.is_dir()):
        real.unlink()
    real.mkdir(parents=True, exist_ok=True)
    return 0


def _write_file(
    root: _Root, member: tarfile.TarInfo, path: Path, data: bytes, warnings: list[str]
) -> int:
    real = root.make_parent(path)
    if real is None:
        warnings.append(f"skipped {member.name!r}: its directory is outside the destination")
        return 0
    if not _clear(real):
        warnings.append(f"skipped {member.name!r}: a directory is there")
        return 0
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(real, flags, 0o600)
    try:
        _write_all(fd, data)
        os.fchmod(fd, member.mode & 0o777)
    finally:
        os.close(fd)
    return 1


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _hard_link(
    root: _Root, member: tarfile.TarInfo, path: Path, top: str, warnings: list[str]
) -> int:
    source = root.member(member.linkname, top)
    real_source = root.place(source) if source is not None else None
    if real_source is None or real_source.is_symlink() or not real_source.is_file():
        warnings.append(
            f"skipped {member.name!r}: a hard link to {member.linkname!r}, "
            "no file of the destination"
        )
        return 0
    real = root.make_parent(path)
    if real is None:
        warnings.append(f"skipped {member.name!r}: its directory is outside the destination")
        return 0
    if real == real_source:
        return 1
    if not _clear(real):
        warnings.append(f"skipped {member.name!r}: a directory is there")
        return 0
    os.link(real_source, real)
    return 1


def _symlink(root: _Root, member: tarfile.TarInfo, path: Path, warnings: list[str]) -> int:
    link = member.linkname
    real = root.make_parent(path)
    if real is None:
        warnings.append(f"skipped {member.name!r}: its directory is outside the destination")
        return 0
    normal = posixpath.normpath(link) if link else ""
    pointed = real.parent.joinpath(normal) if normal else None
    try:
        resolved = pointed.resolve() if pointed is not None else None
    except (OSError, RuntimeError):
        resolved = None
    if (
        link.startswith("/")
        or pointed is None
        or resolved is None
        or not root.holds(Path(os.path.normpath(pointed)))
        or not root.holds(resolved)
    ):
        warnings.append(
            f"skipped {member.name!r}: a symbolic link to {link!r}, outside the destination"
        )
        return 0
    if not _clear(real):
        warnings.append(f"skipped {member.name!r}: a directory is there")
        return 0
    os.symlink(normal, real)
    return 1
