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
from pathlib import PurePosixPath
from typing import Any

import attrs

from ..._exceptions import BackendError
from .._base import (
    ContainerInfo,
    ContainerResources,
    ContainerSecurity,
    ContainerSpec,
    ContainerStats,
    Mount,
    PodSpec,
    PortMapping,
    RuntimeState,
    VolumeFile,
)
from .._dns import parse_resolv_conf, pod_resolver

__all__ = [
    "HELD_VOLUMES_DIR",
    "HostFacts",
    "check_host_path",
    "check_sub_path",
    "container_body",
    "container_info",
    "host_facts",
    "host_path_of",
    "infra_address",
    "json_objects",
    "local_addresses",
    "parse_time",
    "parse_version",
    "pod_body",
    "pod_namespaces",
    "resource_limits",
    "security_fields",
    "published_ports",
    "stop_signal",
]

#: where a pod's infra container mounts the volumes it holds (``PodSpec.volumes``)
HELD_VOLUMES_DIR = "/.asyncpod/volumes"

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


@attrs.frozen
class HostFacts:
    """What the service's host can do, from ``GET /info``."""

    cgroup_version: str
    rootless: bool
    apparmor: bool

    @property
    def enforces_limits(self) -> bool:
        """Rootless Podman can set cgroup limits on cgroup v2 only."""
        return not (self.rootless and self.cgroup_version != "v2")

    @property
    def why_not_enforced(self) -> str:
        return f"rootless Podman cannot set cgroup limits on cgroup {self.cgroup_version}"


def host_facts(info: Mapping[str, Any]) -> HostFacts:
    """The answer to ``GET /info`` as :class:`HostFacts`."""
    host = info.get("host") or {}
    security = host.get("security") or {}
    return HostFacts(
        cgroup_version=str(host.get("cgroupVersion") or "v2"),
        rootless=bool(security.get("rootless")),
        apparmor=bool(security.get("apparmorEnabled")),
    )


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
        image=str(data.get("ImageName") or "") or None,
    )


def container_stats(data: Any) -> ContainerStats | None:
    """The one container of a libpod ``/containers/stats?stream=false`` answer."""
    if not isinstance(data, Mapping):
        raise BackendError(f"Podman answered stats with {type(data).__name__}, not an object")
    if data.get("Error"):
        raise BackendError(f"stats: {data['Error']}")
    entries = data.get("Stats") or []
    if not entries:
        return None
    entry = entries[0]
    try:
        limit = int(entry.get("MemLimit") or 0)
        return ContainerStats(
            cpu_seconds=int(entry.get("CPUNano") or 0) / 1e9,
            memory_bytes=int(entry.get("MemUsage") or 0),
            # no limit: the host's memory, or 2**64-1 on cgroup v1
            memory_limit_bytes=limit if 0 < limit < 2**62 else None,
        )
    except (TypeError, ValueError) as exc:
        raise BackendError(f"Podman's stats are malformed: {exc}") from exc


def pod_body(spec: PodSpec, host_resolver: str | None = None) -> dict[str, Any]:
    """The body of ``POST /pods/create`` for *spec*.

    A namespace of the host is not shared through the pod: each container joins the
    host's itself (see :func:`pod_namespaces`), so the pod leaves it out of
    ``shared_namespaces``, and a ``hostNetwork`` pod's infra container is in the host's
    network too (probes connect through it). *host_resolver* is the text of the host's
    ``resolv.conf``, which the pod's resolver extends (Podman would replace it).
    """
    shared = [] if spec.host_ipc else ["ipc"]
    shared += [] if spec.host_network else ["net", "uts"]
    shared += ["pid"] if spec.share_pid and not spec.host_pid else []
    body: dict[str, Any] = {
        "name": spec.name,
        "hostname": spec.hostname,
        "labels": dict(spec.labels),
        "no_infra": False,
        # an empty list would mean Podman's default (ipc, net and uts)
        "shared_namespaces": shared or ["none"],
    }
    if spec.resources is not None:
        body["resource_limits"] = resource_limits(spec.resources)
    if spec.sysctls:
        body["sysctl"] = dict(spec.sysctls)
    if spec.host_network:
        body["netns"] = {"nsmode": "host"}
    if spec.host_pid:
        body["pidns"] = {"nsmode": "host"}
    body.update(dns_fields(spec, host_resolver))
    if spec.host_aliases:
        body["hostadd"] = [f"{name}:{ip}" for ip, name in spec.host_aliases]
    if spec.volumes:
        # The infra container mounts them (read-only, out of the way) from the pod's
        # start to its removal: Podman mounts a tmpfs volume while a container that
        # mounts it runs, and drops its data once the last one stops. Containers joining
        # the pod see these mounts too (Podman passes the infra's volumes on).
        body["volumes"] = [
            {"Name": volume, "Dest": f"{HELD_VOLUMES_DIR}/{volume}", "Options": ["ro"]}
            for volume in spec.volumes
        ]
    if spec.ports and not spec.host_network:
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


def resource_limits(resources: ContainerResources) -> dict[str, Any]:
    """*resources* as an OCI ``LinuxResources`` object (SpecGenerator ``resource_limits``)."""
    limits: dict[str, Any] = {}
    cpu = {
        key: value
        for key, value in (
            ("quota", resources.cpu_quota),
            ("period", resources.cpu_period),
            ("shares", resources.cpu_shares),
        )
        if value is not None
    }
    if cpu:
        limits["cpu"] = cpu
    memory = {
        key: value
        for key, value in (
            ("limit", resources.memory_limit),
            ("reservation", resources.memory_reservation),
        )
        if value is not None
    }
    if memory:
        limits["memory"] = memory
    if resources.pids_limit is not None:
        limits["pids"] = {"limit": resources.pids_limit}
    return limits


def security_fields(security: ContainerSecurity) -> dict[str, Any]:
    """*security* as SpecGenerator fields (the AppArmor profile is the backend's to add,
    knowing whether the host has AppArmor)."""
    body: dict[str, Any] = {}
    if security.user is not None:
        body["user"] = security.user
    if security.groups:
        body["groups"] = [str(group) for group in security.groups]
    if security.privileged:
        body["privileged"] = True
    if security.no_new_privileges:
        body["no_new_privileges"] = True
    if security.cap_add:
        body["cap_add"] = list(security.cap_add)
    if security.cap_drop:
        body["cap_drop"] = list(security.cap_drop)
    if security.read_only_rootfs:
        body["read_only_filesystem"] = True
    if security.seccomp == "unconfined":
        body["seccomp_profile_path"] = "unconfined"
    elif security.seccomp is not None and security.seccomp != "runtime/default":
        body["seccomp_profile_path"] = security.seccomp
    if security.unmasked_proc:
        body["unmask"] = ["ALL"]
    return body


def dns_fields(spec: PodSpec, host_resolver: str | None) -> dict[str, list[str]]:
    """``dns_server``, ``dns_search`` and ``dns_option`` for *spec*, Kubernetes' merge applied.

    Podman replaces each list of the host's resolver it is given, so with
    ``dns_from_host`` the host's entries (of *host_resolver*, when known) come first in
    each list that the pod extends; a list the pod leaves alone is the host's anyway.
    """
    if spec.dns_from_host and not (spec.dns_servers or spec.dns_searches or spec.dns_options):
        return {}  # the host's resolver, as Podman gives it
    merged = pod_resolver(spec, parse_resolv_conf(host_resolver or ""))
    fields: dict[str, list[str]] = {}
    if spec.dns_servers or not spec.dns_from_host:
        fields["dns_server"] = list(merged.servers)
    if spec.dns_searches or not spec.dns_from_host:
        fields["dns_search"] = list(merged.searches) or ["."]  # "." means none
    if spec.dns_options:
        fields["dns_option"] = list(merged.options)
    return fields


def pod_namespaces(pod: Mapping[str, Any]) -> dict[str, Any]:
    """What a container of *pod* (its inspection, ``GET /pods/{id}/json``) must set
    itself: the host namespaces the pod does not share, and for a ``hostNetwork`` pod
    the resolver and ``/etc/hosts`` lines that Podman applies only to the infra
    container's own network."""
    infra = pod.get("InfraConfig") or {}
    shared = pod.get("SharedNamespaces") or []
    fields: dict[str, Any] = {}
    if infra.get("HostNetwork"):
        fields["netns"] = {"nsmode": "host"}
        fields["utsns"] = {"nsmode": "host"}
        for key, field in (
            ("DNSServer", "dns_server"),
            ("DNSSearch", "dns_search"),
            ("DNSOption", "dns_option"),
            ("HostAdd", "hostadd"),
        ):
            if infra.get(key):
                fields[field] = list(infra[key])
    if str(infra.get("pid_ns") or "") == "host":
        fields["pidns"] = {"nsmode": "host"}
    if "ipc" not in shared:
        fields["ipcns"] = {"nsmode": "host"}
    return fields


def infra_address(inspect: Mapping[str, Any]) -> str:
    """The IPv4 address of an infra container on a bridge network, from its inspect
    (``""`` if it has none there: slirp4netns, pasta, host)."""
    settings = inspect.get("NetworkSettings") or {}
    if settings.get("IPAddress"):
        return str(settings["IPAddress"])
    for network in (settings.get("Networks") or {}).values():
        if (network or {}).get("IPAddress"):
            return str(network["IPAddress"])
    return ""


def local_addresses(fib_trie: str) -> list[str]:
    """The IPv4 addresses of a network namespace but loopback's, in order, from its
    ``/proc/<pid>/net/fib_trie`` (each is a ``/32 host LOCAL`` entry)."""
    found: list[str] = []
    previous = ""
    for line in fib_trie.splitlines():
        text = line.strip()
        if text.startswith("/32 host LOCAL"):
            if previous and not previous.startswith("127.") and previous not in found:
                found.append(previous)
        elif text.startswith("|-- "):
            previous = text[4:]
    return found


def published_ports(bindings: Mapping[str, Any]) -> tuple[PortMapping, ...]:
    """The mappings of an inspect's ``PortBindings`` (``{"80/tcp": [{"HostIp": "",
    "HostPort": "42961"}]}``), in port order."""
    ports = []
    for key, hosts in bindings.items():
        number, _, protocol = str(key).partition("/")
        for host in hosts or ():
            ports.append(
                PortMapping(
                    container_port=int(number),
                    host_port=int(host.get("HostPort") or 0),
                    host_ip=str(host.get("HostIp") or ""),
                    protocol=protocol or "tcp",
                )
            )
    return tuple(sorted(ports, key=lambda p: (p.container_port, p.protocol, p.host_ip)))


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
    if spec.resources is not None:
        body["resource_limits"] = resource_limits(spec.resources)
    if spec.security is not None:
        body.update(security_fields(spec.security))
    if spec.stdin:
        body["stdin"] = True
    if spec.tty:
        body["terminal"] = True
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


_NOFOLLOW_DIR = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC


def check_sub_path(spec: ContainerSpec, mount: Mount) -> None:
    """Refuse a ``hostPath`` subPath that crosses a symlink inside the volume.

    A workload that can write to a shared host directory could plant a symlink there, and
    a later pod's subPath would then bind whatever it points to, the host's ``/``
    included (the class of CVE-2017-1002101). Each existing component of the subPath is
    opened relative to the one before it without following symlinks (blocking calls). A
    component that does not exist yet ends the check. What remains is the window between
    this check and Podman's bind mount.
    """
    assert mount.host_path is not None
    assert mount.sub_path
    parts = PurePosixPath(mount.sub_path).parts
    try:
        fd = os.open(mount.host_path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return  # no volume to escape from: Podman reports the missing path
    try:
        for index, part in enumerate(parts):
            try:
                child = os.open(part, _NOFOLLOW_DIR, dir_fd=fd)
            except FileNotFoundError:
                return
            os.close(fd)
            fd = child
            if stat.S_ISLNK(os.fstat(fd).st_mode):
                crossed = str(PurePosixPath(mount.host_path, *parts[: index + 1]))
                raise BackendError(
                    f"container {spec.name!r}: subPath {mount.sub_path!r} of hostPath "
                    f"{mount.host_path!r} crosses the symlink {crossed!r}; refused, as it "
                    "could lead out of the volume"
                )
    finally:
        os.close(fd)


def _open_dir_creating(path: str) -> int:
    """An ``O_PATH`` fd of directory *path*, its missing components created 0755.

    The part of *path* that exists is the administrator's and is followed like any path;
    a component created here, or found only as the walk goes, is never a symlink followed
    (one planted meanwhile fails the walk with ``ELOOP`` or ``ENOTDIR``).
    """
    pure = PurePosixPath(os.path.abspath(path))
    existing = pure
    missing: list[str] = []
    while not os.path.lexists(existing) and existing != existing.parent:
        missing.insert(0, existing.name)
        existing = existing.parent
    fd = os.open(existing, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in missing:
            try:
                os.mkdir(part, 0o700, dir_fd=fd)
            except FileExistsError:
                child = os.open(part, _NOFOLLOW_DIR | os.O_DIRECTORY, dir_fd=fd)
            else:
                child = os.open(part, _NOFOLLOW_DIR | os.O_DIRECTORY, dir_fd=fd)
                # Kubernetes' mode, whatever the umask (chmod: fchmod needs a real fd).
                os.chmod(f"/proc/self/fd/{child}", 0o755)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def _create_directory(path: str) -> None:
    os.close(_open_dir_creating(path))


def _create_file(path: str) -> None:
    pure = PurePosixPath(os.path.abspath(path))
    parent = _open_dir_creating(str(pure.parent))
    try:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(pure.name, flags, 0o600, dir_fd=parent)
        except FileExistsError:
            return  # Podman checks what it is; a symlink is not followed by us
        try:
            os.fchmod(fd, 0o644)
        finally:
            os.close(fd)
    finally:
        os.close(parent)


def check_host_path(spec: ContainerSpec, path: str, kind: str) -> None:
    """Apply Kubernetes' ``hostPath.type`` *kind* to *path* (blocking file system calls).

    ``DirectoryOrCreate`` and ``FileOrCreate`` create what is missing with Kubernetes'
    modes (0755, 0644, whatever the umask), without following a symlink in what they
    create.
    """
    what = f"container {spec.name!r}: hostPath {path!r}"
    try:
        if kind == "DirectoryOrCreate":
            _create_directory(path)
            return
        if kind == "FileOrCreate":
            _create_file(path)
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


def group_dir_tarball(group: int) -> bytes:
    """A tar of one entry, the directory it is put in: owned by root and *group*, with
    mode ``drwxrwsrwx`` (an emptyDir of a pod with an fsGroup)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        info = tarfile.TarInfo(".")
        info.type = tarfile.DIRTYPE
        info.mode = 0o2777
        info.uid, info.gid = 0, group
        info.mtime = int(datetime.now(timezone.utc).timestamp())
        archive.addfile(info)
    return buffer.getvalue()


def files_tarball(
    files: Iterable[VolumeFile],
    sub_path: str | None = None,
    *,
    parents: bool = True,
    group: int | None = None,
) -> bytes:
    """An uncompressed tar of *files* (with their modes and parent directories), for
    ``PUT /containers/{id}/archive``; with *sub_path*, only those under it, relative to it.
    Without *parents*, no directory entry: Podman makes missing ones (0755) and leaves
    existing ones as they are. With *group* (a pod's fsGroup), every entry is root's and
    the group's, readable by the group, directories set-group-ID, as the kubelet sets a
    read-only volume's ownership (to be put with ``copyUIDGID=false``)."""
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
                    info.mode = 0o755 if group is None else 0o2755
                    info.mtime = int(now)
                    if group is not None:
                        info.uid, info.gid = 0, group
                    archive.addfile(info)
            info = tarfile.TarInfo(path)
            info.mtime = int(now)
            info.size = len(file.data)
            info.mode = file.mode if group is None else file.mode | 0o440
            if group is not None:
                info.uid, info.gid = 0, group
            archive.addfile(info, io.BytesIO(file.data))
    return buffer.getvalue()
