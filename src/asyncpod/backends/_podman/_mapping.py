"""asyncpod's specs as libpod request bodies, and libpod's answers as asyncpod's types."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import stat
import tarfile
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path, PurePosixPath
from typing import Any

from ..._exceptions import BackendError
from .._base import ContainerInfo, ContainerSpec, Mount, PodSpec, RuntimeState, VolumeFile

__all__ = [
    "check_host_path",
    "container_body",
    "container_info",
    "host_path_of",
    "json_objects",
    "parse_time",
    "parse_version",
    "pod_body",
    "stop_signal",
]

_TIMESTAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:[.,](\d+))?(Z|[+-]\d\d:?\d\d)?$")
_STATES = {
    "configured": RuntimeState.CREATED,
    "created": RuntimeState.CREATED,
    "initialized": RuntimeState.CREATED,
    "running": RuntimeState.RUNNING,
    "paused": RuntimeState.RUNNING,
    "stopping": RuntimeState.RUNNING,
    "exited": RuntimeState.EXITED,
    "stopped": RuntimeState.EXITED,
    "removing": RuntimeState.EXITED,
}


def stop_signal(inspect: Mapping[str, Any]) -> int:
    """The container's stop signal: an int in Podman 4, a name like "SIGTERM" in 5."""
    value = (inspect.get("Config") or {}).get("StopSignal")
    if isinstance(value, int) and value > 0:
        return value
    if isinstance(value, str) and value:
        name = value.upper()
        name = name if name.startswith("SIG") else f"SIG{name}"
        try:
            return int(signal.Signals[name])
        except KeyError:
            if value.isdigit():
                return int(value)
    return int(signal.SIGTERM)


def parse_version(text: str) -> tuple[int, ...]:
    """``"4.3.1-dev"`` as ``(4, 3, 1)``."""
    numbers = re.findall(r"\d+", text.split("-")[0])
    return tuple(int(n) for n in numbers[:3]) or (0,)


def parse_time(text: object) -> float | None:
    """Podman's RFC 3339 timestamps (nanosecond fractions) as epoch seconds; ``None`` if unset."""
    if not isinstance(text, str) or not text or text.startswith("0001-01-01"):
        return None
    match = _TIMESTAMP.match(text.strip())
    if match is None:
        return None
    moment = datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S")
    zone = match.group(3) or "Z"
    if zone == "Z":
        tz = timezone.utc
    else:
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    fraction = float(f"0.{match.group(2)}") if match.group(2) else 0.0
    return moment.replace(tzinfo=tz).timestamp() + fraction


def json_objects(body: bytes) -> list[Any]:
    """Every JSON value in *body* (Podman streams several, one after another)."""
    text = body.decode("utf-8", "replace")
    decoder = json.JSONDecoder()
    values: list[Any] = []
    index = 0
    while True:
        while index < len(text) and text[index].isspace():
            index += 1
        if index >= len(text):
            return values
        try:
            value, index = decoder.raw_decode(text, index)
        except ValueError:
            return values
        values.append(value)


def container_info(container: str, data: Mapping[str, Any]) -> ContainerInfo:
    """A container's inspection (``GET /containers/{id}/json``) as a :class:`ContainerInfo`."""
    state = data.get("State") or {}
    status = str(state.get("Status") or "").lower()
    finished = parse_time(state.get("FinishedAt"))
    exit_code = state.get("ExitCode")
    return ContainerInfo(
        id=str(data.get("Id") or container),
        name=str(data.get("Name") or "").lstrip("/"),
        state=_STATES.get(status, RuntimeState.EXITED),
        exit_code=int(exit_code) if finished is not None and exit_code is not None else None,
        started_at=parse_time(state.get("StartedAt")),
        finished_at=finished,
        oom_killed=bool(state.get("OOMKilled")),
    )


def pod_body(spec: PodSpec) -> dict[str, Any]:
    """The body of ``POST /pods/create`` for *spec*."""
    shared = ["ipc", "net", "uts"] + (["pid"] if spec.share_pid else [])
    body: dict[str, Any] = {
        "name": spec.name,
        "hostname": spec.hostname,
        "labels": dict(spec.labels),
        "no_infra": False,
        "shared_namespaces": shared,
    }
    if spec.ports:
        body["portmappings"] = [
            {
                "container_port": port.container_port,
                "host_port": port.host_port,
                "protocol": port.protocol,
                **({"host_ip": port.host_ip} if port.host_ip else {}),
            }
            for port in spec.ports
        ]
    return body


def container_body(
    spec: ContainerSpec, volumes: list[dict[str, Any]], mounts: list[dict[str, Any]]
) -> dict[str, Any]:
    """The body of ``POST /containers/create`` for *spec*, with its volumes and mounts."""
    body: dict[str, Any] = {
        "name": spec.name,
        "pod": spec.pod,
        "image": spec.image,
        "labels": dict(spec.labels),
        "env": dict(spec.env),
        "log_configuration": {"driver": "k8s-file"},
    }
    # command replaces the image's entrypoint, args its command; None keeps the image's,
    # an empty list clears it (Kubernetes' rules are the supervisor's)
    if spec.command is not None:
        body["entrypoint"] = list(spec.command)
    if spec.args is not None:
        body["command"] = list(spec.args)
    if spec.working_dir:
        body["work_dir"] = spec.working_dir
    if volumes:
        body["volumes"] = volumes
    if mounts:
        body["mounts"] = mounts
    if spec.init:
        body["init_container_type"] = "once"
    return body


def host_path_of(spec: ContainerSpec, mount: Mount) -> str:
    """The host path a ``hostPath`` mount binds (its subPath applied)."""
    assert mount.host_path is not None
    path = mount.host_path
    if mount.sub_path:
        parts = PurePosixPath(mount.sub_path).parts
        if PurePosixPath(mount.sub_path).is_absolute() or ".." in parts:
            raise BackendError(
                f"container {spec.name!r}: subPath {mount.sub_path!r} must be a relative "
                "path inside the volume"
            )
        path = str(PurePosixPath(path, mount.sub_path))
    return path


_CHECKS = {
    "Directory": (stat.S_ISDIR, "a directory"),
    "File": (stat.S_ISREG, "a regular file"),
    "Socket": (stat.S_ISSOCK, "a unix socket"),
    "CharDevice": (stat.S_ISCHR, "a character device"),
    "BlockDevice": (stat.S_ISBLK, "a block device"),
}


def check_host_path(spec: ContainerSpec, path: str, kind: str) -> None:
    """Apply Kubernetes' ``hostPath.type`` *kind* to *path* (blocking file system calls)."""
    what = f"container {spec.name!r}: hostPath {path!r}"
    try:
        if kind == "DirectoryOrCreate":
            os.makedirs(path, mode=0o755, exist_ok=True)
            return
        if kind == "FileOrCreate":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).touch(mode=0o644, exist_ok=True)
            return
        info = os.stat(path)
    except FileNotFoundError:
        raise BackendError(f"{what} does not exist (hostPath type {kind})") from None
    except OSError as exc:
        raise BackendError(f"{what}: {exc.strerror or exc}") from exc
    if kind in _CHECKS:
        check, noun = _CHECKS[kind]
        if not check(info.st_mode):
            raise BackendError(f"{what} is not {noun} (hostPath type {kind})")


def files_tarball(
    files: Iterable[VolumeFile], sub_path: str | None = None, *, parents: bool = True
) -> bytes:
    """An uncompressed tar of *files* (with their modes and parent directories), for
    ``PUT /containers/{id}/archive``; with *sub_path*, only those under it, relative to it.
    Without *parents*, no directory entry: Podman makes missing ones (0755) and leaves
    existing ones as they are."""
    prefix = (sub_path or "").strip("/")
    buffer = io.BytesIO()
    made: set[str] = set()
    now = datetime.now(timezone.utc).timestamp()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for file in files:
            path = file.path
            if prefix:
                if not path.startswith(prefix + "/"):
                    continue
                path = path[len(prefix) + 1 :]
            parts = PurePosixPath(path).parts
            for depth in range(1, len(parts) if parents else 1):
                directory = "/".join(parts[:depth])
                if directory not in made:
                    made.add(directory)
                    info = tarfile.TarInfo(directory)
                    info.type = tarfile.DIRTYPE
                    info.mode = 0o755
                    info.mtime = int(now)
                    archive.addfile(info)
            info = tarfile.TarInfo(path)
            info.mtime = int(now)
            info.size = len(file.data)
            info.mode = file.mode
            archive.addfile(info, io.BytesIO(file.data))
    return buffer.getvalue()
