"""``asyncpod cp``: copy files and directories into and out of a container, as tar archives
through the backend (:meth:`~asyncpod.backends.Backend.put_archive` and
:meth:`~asyncpod.backends.Backend.get_archive`)."""

from __future__ import annotations

import argparse
import io
import os
import posixpath
import re
import tarfile
from pathlib import Path, PurePosixPath

import anyio
import attrs

from .._exceptions import ObjectNotFoundError
from ..backends import Backend
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
            count = await anyio.to_thread.run_sync(_unpack, tarball, target)
            print(f"copied {where} to {target} ({_files(count)})")
        else:
            assert isinstance(target, Remote)
            if not source.exists() and not source.is_symlink():
                raise CliError(f"{source}: no such file or directory", EXIT_NOT_FOUND)
            # Into an existing directory: under the source's name; else as the path itself.
            directory, name = posixpath.split(target.path.rstrip("/") or "/")
            if target.path.endswith("/") or await _is_dir(backend, obj.id, target.path):
                directory, name = target.path, source.name
            if not name:
                raise CliError(f"cannot copy onto {where}", EXIT_USAGE)
            tarball, count = await anyio.to_thread.run_sync(_pack, source, name)
            await backend.put_archive(obj.id, directory or "/", tarball)
            print(f"copied {source} to {where} ({_files(count)})")
    return EXIT_OK


def _files(count: int) -> str:
    return "1 file" if count == 1 else f"{count} files"


async def _is_dir(backend: Backend, cid: str, path: str) -> bool:
    """Whether *path* of the container is a directory (``False`` if missing)."""
    try:
        tarball = await backend.get_archive(cid, path)
    except ObjectNotFoundError:
        return False
    with tarfile.open(fileobj=io.BytesIO(tarball)) as archive:
        first = archive.next()
        return first is not None and first.isdir()


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


def _unpack(tarball: bytes, target: Path) -> int:
    """Unpack an archive of :meth:`get_archive` (one top entry) as *target*, or into it if
    it is an existing directory. Entries that would land outside are refused; links are
    made last, so that no file is written through one."""
    links: list[tuple[Path, str]] = []
    count = 0
    with tarfile.open(fileobj=io.BytesIO(tarball)) as archive:
        members = archive.getmembers()
        if not members:
            return 0
        top = PurePosixPath(members[0].name).parts[0]
        base = target / top if target.is_dir() else target
        for member in members:
            parts = PurePosixPath(member.name).parts
            if (
                not parts
                or parts[0] != top
                or any(p in ("..", "") for p in parts)
                or (member.name.startswith("/"))
            ):
                raise CliError(f"refusing an archive entry outside {top!r}: {member.name!r}")
            path = base.joinpath(*parts[1:])
            if member.isdir():
                path.mkdir(parents=True, exist_ok=True)
            elif member.isfile():
                path.parent.mkdir(parents=True, exist_ok=True)
                extracted = archive.extractfile(member)
                assert extracted is not None
                path.write_bytes(extracted.read())
                os.chmod(path, member.mode & 0o777)
                count += 1
            elif member.issym():
                links.append((path, member.linkname))
                count += 1
    for path, link in links:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink() or path.exists():
            path.unlink()
        os.symlink(link, path)
    return count
