"""What a command works on: the manifest it names, and the backend it runs on."""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from .._bundle import Bundle
from .._demo import ensure_stand_ins, fake_backend, is_bundled, resolve_manifest
from .._exceptions import SpecError
from .._models import Pod
from .._objects import ConfigMap, Secret
from ..backends import Backend, get_backend
from ._errors import EXIT_USAGE, CliError

__all__ = ["STDIN", "config_maps", "load", "podman", "secrets", "up_backend"]

#: the manifest argument that reads standard input
STDIN = "-"


def load(arg: str, *, lax: bool = False) -> Bundle:
    """The bundle of a manifest argument: a file, a bundled example's name, or ``-`` for
    standard input; its pod, with the ConfigMaps, Secrets and claims of a multi-document
    file. With *lax*, unsupported fields are dropped with a warning line instead of
    failing."""
    from ..kube import load as load_bundle

    source = sys.stdin.read() if arg == STDIN else resolve_manifest(arg)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        bundle = load_bundle(source, strict=not lax)
    for warning in caught:
        print(f"asyncpod: warning: {warning.message}", file=sys.stderr)
    return bundle


def _files_by_name(option: str, values: Sequence[str]) -> dict[str, dict[str, bytes]]:
    """The keys of each object of ``--configmap``/``--secret NAME=PATH`` options, as
    ``kubectl create configmap NAME --from-file=PATH`` makes them: a file is one key named
    after it, a directory one key per regular file in it (subdirectories, links to
    directories and other special files are left out). Options of one NAME add up."""
    objects: dict[str, dict[str, bytes]] = {}
    for value in values:
        name, sep, path_text = value.partition("=")
        if not sep or not name or not path_text:
            raise CliError(f"{option} {value!r}: expected NAME=PATH", EXIT_USAGE)
        path = Path(path_text)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file())
            if not files:
                raise CliError(f"{option} {value!r}: {path} holds no regular file", EXIT_USAGE)
        elif path.is_file():
            files = [path]
        else:
            raise CliError(
                f"{option} {value!r}: {path} is no file or directory"
                if path.exists()
                else f"{option} {value!r}: no such file or directory: {path}",
                EXIT_USAGE,
            )
        keys = objects.setdefault(name, {})
        for file in files:
            if file.name in keys:
                raise CliError(f"{option} {name}: key {file.name!r} given twice", EXIT_USAGE)
            keys[file.name] = file.read_bytes()
    return objects


@contextlib.contextmanager
def _option(option: str, name: str) -> Iterator[None]:
    """Report an invalid object of *option* as a usage error naming the option."""
    try:
        yield
    except SpecError as exc:
        raise CliError(f"{option} {name}: {exc}", EXIT_USAGE) from None


def config_maps(values: Sequence[str]) -> list[ConfigMap]:
    """The ConfigMaps of ``--configmap NAME=PATH`` options: a UTF-8 file's text goes to
    ``data``, any other file's bytes to ``binaryData``, as kubectl does."""
    made = []
    for name, keys in _files_by_name("--configmap", values).items():
        data: dict[str, str] = {}
        binary: dict[str, bytes] = {}
        for key, value in keys.items():
            try:
                data[key] = value.decode("utf-8")
            except UnicodeDecodeError:
                binary[key] = value
        with _option("--configmap", name):
            made.append(ConfigMap(name=name, data=data, binary_data=binary))
    return made


def secrets(values: Sequence[str]) -> list[Secret]:
    """The Secrets of ``--secret NAME=PATH`` options (type Opaque)."""
    made = []
    for name, keys in _files_by_name("--secret", values).items():
        with _option("--secret", name):
            made.append(Secret(name=name, type="Opaque", data=keys))
    return made


@asynccontextmanager
async def podman(url: str | None) -> AsyncIterator[Backend]:
    """The Podman service at *url* (default: discovered), for the management commands."""
    async with get_backend("podman", url=url) as backend:
        yield backend


@asynccontextmanager
async def up_backend(name: str, url: str | None, pod: Pod) -> AsyncIterator[Backend]:
    """The backend ``up`` runs *pod* on: "podman", or "fake" (the examples' stand-in
    images included)."""
    if name == "fake":
        async with fake_backend(pod) as fake:
            yield fake
    else:
        async with podman(url) as backend:
            if is_bundled(pod):  # the examples' images are stand-ins built from busybox
                await ensure_stand_ins(backend, pod)
            yield backend
