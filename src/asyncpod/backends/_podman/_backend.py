"""The Podman backend: asyncpod's contract over the libpod REST API, through podman-py.

The pieces: :mod:`._service` finds (or starts) the service, :mod:`._http` talks to it
(podman-py in worker threads), :mod:`._mapping` turns specs into request bodies and answers
into asyncpod's types, :mod:`._events`, :mod:`._exits` and :mod:`._logs` read its streams,
and :mod:`._netns` connects inside a pod. Where podman-py's typed API is wrong or missing
(see ``shared/reference/podman-api.md``), raw libpod JSON goes through ``client.api``.

Failures are translated in one place, :func:`._errors.translate_errors`.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import socket
import struct
import tarfile
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

import anyio
import anyio.abc
import attrs

from ..._exceptions import BackendError, ImageError
from .._base import (
    Backend,
    BackendEvent,
    ContainerInfo,
    ContainerResources,
    ContainerSpec,
    ContainerStats,
    ExecResult,
    ExitWatcher,
    LogRecord,
    Mount,
    OwnedObject,
    PodSpec,
    PortMapping,
    RuntimeState,
    VolumeFile,
    VolumeSpec,
)
from ._errors import PodmanStatusError, translate_errors
from ._events import EventIterator, label_filters, matches
from ._exits import EventExitWatcher, ExitHub, conmon_exit_dir
from ._http import VANISHED, Reply, Transport, q
from ._logs import FrameDecoder, LogIterator, format_time
from ._mapping import (
    HostFacts,
    check_host_path,
    check_sub_path,
    container_body,
    container_info,
    container_stats,
    files_tarball,
    group_dir_tarball,
    host_facts,
    host_path_of,
    infra_address,
    json_objects,
    local_addresses,
    parse_version,
    pod_body,
    pod_namespaces,
    published_ports,
    stop_signal,
)
from ._netns import connect_in_netns
from ._service import PrivateService, connect, reap_orphaned_services, unix_path
from ._ssh import SSHTunnel

__all__ = ["PodmanBackend"]

_log = logging.getLogger("asyncpod.podman")

_SUBPATH_VERSION = (4, 4, 0)
#: Kubernetes' mountPropagation as a bind mount's option
_PROPAGATION = {"None": "rprivate", "HostToContainer": "rslave", "Bidirectional": "rshared"}
_TMPFS_SIZE_VERSION = (4, 8, 0)
_WAIT_SLICE = 10.0  # seconds one wait request may block before it is re-issued
_CREATED_POLL = 0.2  # seconds between checks whether a waited-on container has started
# Podman 4.3 answers POST /wait about 0.25 s after the exit, while inspect shows it within
# ~10 ms: poll the state first, backing off, then fall back to the blocking wait (which
# costs nothing while a long-running container runs).
_EXIT_POLLS = (0.01, 0.01, 0.02, 0.02, 0.04, 0.05, 0.1, 0.1, 0.2, 0.2, 0.25, 0.25, 0.25, 0.25)
# How Podman says that a pod's infra container did not run as a member of the pod started.
_NO_NAMESPACE = "cannot get namespace path unless container"
#: what a member's start says when it lost the race to start its pod's infra container
_INFRA_RACE = (
    _NO_NAMESPACE,
    "internal libpod error",
    "container state improper",
    "already running",
)
#: how often a start that lost that race is made (the infra runs by the next one)
_START_ATTEMPTS = 4
#: tries of a copy into a container whose copier lost its pipe
_PUT_ATTEMPTS = 3
#: tries of a termination message copied out of a container that just exited
_COPY_OUT_ATTEMPTS = 3
_NOT_FOUND_EXEC = ("executable file not found", "no such file or directory", "not found")


def _host_view(socket_path: str, path: str) -> str:
    """*path* as the service at *socket_path* sees it, as this process can reach it: the
    same path where it exists here, else through the service's root (``/proc/PID/root``,
    PID the socket's peer): a service in a mount namespace of its own (pivoted into
    another root) sees other files at the same paths. Blocking."""
    if os.path.isdir(path):
        return path
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(2)
            sock.connect(socket_path)
            creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        pid = struct.unpack("3i", creds)[0]
    except OSError:
        return path
    seen = f"/proc/{pid}/root{path}"
    return seen if pid > 0 and os.path.isdir(seen) else path


def _termination_volume(pod: str) -> str:
    """The volume that holds the termination logs of the containers of *pod* (an id)."""
    return f"asyncpod-termination-logs-{pod}"


class PodmanBackend(Backend):
    """Run pods on Podman (4.3 or later) through its libpod REST API.

    *url* is the service to use (``unix://``, ``tcp://`` or ``ssh://``). Without it,
    ``CONTAINER_HOST`` is used, then this user's rootless socket
    (``$XDG_RUNTIME_DIR/podman/podman.sock``) or, for root, ``/run/podman/podman.sock``. If
    none answers and *start_service* is true, a private ``podman system service`` is
    started and stopped again by :meth:`~asyncpod.backends.Backend.aclose`.

    *exit_poll_interval* is how often (seconds) the exit watchers also list the exited
    containers, while any container is watched, besides reading Podman's events (which
    Podman 4.3 delivers 0.1-0.5 s late); ``None``, the default, reads the events only.
    Each list costs the service ~0.2 ms of CPU per container on its host.

    *exit_files*: for a service on this machine (:attr:`is_local`), the exit watchers also
    read the exit codes that Podman's conmon writes to files the moment a container's
    process dies, 0.1-0.5 s before Podman's event says so (one worker thread lists their
    directory every 20 ms while any container is watched).
    """

    name = "podman"

    def __init__(
        self,
        url: str | None = None,
        *,
        pool_size: int = 10,
        stream_pool_size: int = 64,
        request_timeout: float = 60.0,
        start_service: bool = True,
        exit_poll_interval: float | None = None,
        exit_files: bool = True,
    ) -> None:
        self._requested_url = url
        self._pool_size = max(1, pool_size)
        self._stream_pool_size = max(1, stream_pool_size)
        self._timeout = request_timeout
        self._start_service = start_service
        self._http: Transport | None = None
        self._url: str | None = None  # kept after aclose
        self._version: tuple[int, ...] = (0,)
        self._version_text = ""
        self._service: PrivateService | None = None
        self._tunnel: SSHTunnel | None = None  # to an ssh:// service
        #: volumes of files not yet written, by name: filled through the first container
        #: created that mounts them (every container is created before any starts)
        self._unfilled: dict[str, tuple[VolumeFile, ...]] = {}
        #: the group (a pod's fsGroup) that owns the files of a volume of files, by name
        self._file_groups: dict[str, int] = {}
        #: volumes owned by a group whose mode is not set yet, by name: set through the
        #: first container created that mounts them, as the files are written
        self._unowned: dict[str, int] = {}
        #: volumes of a Secret's files: held as Podman secrets, by volume name
        self._secret_files: dict[str, list[tuple[str, VolumeFile]]] = {}
        #: container id -> the host file bound at its termination message path
        self._termination_files: dict[str, str] = {}
        self._exits = ExitHub(
            self._transport,
            self.inspect_container,
            exit_poll_interval,
            locate=self._conmon_exit_dir if exit_files else None,
        )
        self._host: HostFacts | None = None  # learnt when first needed
        self._warned_pods: set[str] = set()  # pods told that their limits are not enforced
        self._pod_names: dict[str, str] = {}  # pod ids created here, and their names

    # Connection

    @property
    def url(self) -> str | None:
        """The URL of the service in use (after :meth:`~asyncpod.backends.Backend.aopen`)."""
        return self._url

    @property
    def is_local(self) -> bool:
        """True for a service on a unix socket of this machine that this process's user
        owns; false over ``ssh://`` or ``tcp://``, for another user's service (root using a
        rootless user's socket), and before :meth:`~asyncpod.backends.Backend.aopen`."""
        path = unix_path(self.url) if self.url is not None else None
        if path is None:
            return False
        try:
            return os.stat(path).st_uid == os.geteuid()
        except OSError:
            return False

    async def reap(self) -> list[str]:
        """Stop the private ``podman system service`` processes spawned for owners that are
        gone (each records its owner in its directory), and remove their directories; remove
        the termination-log volumes of pods that are gone (an owner killed between a
        container's create and :meth:`~asyncpod.backends.Backend.remove_pod` leaves one)."""
        pids = await anyio.to_thread.run_sync(reap_orphaned_services)
        reaped = [
            f"the private Podman service (pid {pid}) of an owner that is gone" for pid in pids
        ]
        if self._http is None:
            return reaped
        prefix = _termination_volume("")
        with translate_errors("list termination-log volumes"):
            volumes = await self._transport().list("/volumes/json")
            pods = {pod["Id"] for pod in await self._transport().list("/pods/json")}
        for volume in volumes:
            name = str(volume.get("Name") or "")
            if not name.startswith(prefix) or name[len(prefix) :] in pods:
                continue
            try:
                with translate_errors(f"remove volume {name!r}"):
                    await self._call("DELETE", f"/volumes/{q(name)}", ok=(404,))
            except BackendError as exc:  # in use by a pod made since: it is that pod's
                _log.debug("kept the termination-log volume %r: %s", name, exc)
                continue
            reaped.append(f"the termination-log volume {name!r} of a pod that is gone")
        return reaped

    @property
    def server_version(self) -> str:
        """The server's ``Libpod-API-Version`` (after :meth:`~asyncpod.backends.Backend.aopen`)."""
        return self._version_text

    @property
    def _local_socket(self) -> str | None:
        return unix_path(self.url) if self.url else None

    async def aopen(self) -> None:
        if self._http is not None:
            return
        self._http, version, closing = await connect(
            self._requested_url,
            start_service=self._start_service,
            pool_size=self._pool_size,
            stream_pool_size=self._stream_pool_size,
            request_timeout=self._timeout,
        )
        if isinstance(closing, SSHTunnel):  # the service stays remote: its URL is the ssh one
            self._tunnel, self._url = closing, closing.url
        else:
            self._service, self._url = closing, self._http.url
        self._version_text = version
        self._version = parse_version(version) if version else (0,)
        _log.debug("connected to Podman %s at %s", version or "?", self._url)

    async def aclose(self) -> None:
        http, service, tunnel = self._http, self._service, self._tunnel
        self._http = self._service = self._tunnel = None
        if http is not None:
            http.close()
        if service is not None:
            await service.stop()
        if tunnel is not None:
            await tunnel.aclose()

    def _transport(self) -> Transport:
        if self._http is None:
            raise BackendError("the Podman backend is not open: use 'async with backend:'")
        return self._http

    async def _call(self, method: str, path: str, **options: Any) -> Reply:
        """One request (see :meth:`._http.Transport.call` for *options*)."""
        return await self._transport().call(method, path, **options)

    async def _host_facts(self) -> HostFacts:
        """What the service's host can enforce (``GET /info``), asked once."""
        if self._host is None:
            with translate_errors("read the service's host information"):
                reply = await self._call("GET", "/info")
            self._host = host_facts(reply.json())
        return self._host

    def _warn_unenforced(self, pod: str, name: str, resources: ContainerResources) -> None:
        """Say once per *pod* (its id) that its limits are not enforced."""
        if pod in self._warned_pods:
            return
        self._warned_pods.add(pod)
        assert self._host is not None
        _log.warning(
            "pod %s: resource limits (%s) are not enforced: %s; it runs without them",
            name,
            ", ".join(resources.limits),
            self._host.why_not_enforced,
        )

    # Pods

    async def create_pod(self, spec: PodSpec) -> str:
        unenforced = spec.resources
        if unenforced is not None and not (await self._host_facts()).enforces_limits:
            spec = attrs.evolve(spec, resources=None)
        else:
            unenforced = None
        body = pod_body(spec, await self._host_resolver(spec))
        with translate_errors(f"create pod {spec.name!r}"):
            reply = await self._call("POST", "/pods/create", body=body)
            pod = str(reply.json()["Id"])
        self._pod_names[pod] = spec.name
        if unenforced is not None:
            self._warn_unenforced(pod, spec.name, unenforced)
        return pod

    async def _host_resolver(self, spec: PodSpec) -> str | None:
        """The host's ``resolv.conf``, when the pod's resolver extends it (a local service
        only: a remote host's is not ours to read; its own values are then used alone)."""
        if not (spec.dns_from_host and (spec.dns_servers or spec.dns_searches or spec.dns_options)):
            return None
        if self._local_socket is None:
            _log.warning(
                "pod %r: the resolver of a remote Podman cannot be read, so dnsConfig "
                "replaces it instead of extending it",
                spec.name,
            )
            return None
        try:
            return await anyio.Path("/etc/resolv.conf").read_text(errors="replace")
        except OSError:
            return None

    async def published_ports(self, pod: str) -> tuple[PortMapping, ...]:
        # Podman picks a free port for host_port 0 when it creates the pod (4.3 and on);
        # the pod's inspect shows the bindings its infra container got.
        with translate_errors(f"inspect pod {pod!r}"):
            reply = await self._call("GET", f"/pods/{q(pod)}/json")
            data = reply.json() or {}
            return published_ports((data.get("InfraConfig") or {}).get("PortBindings") or {})

    async def pod_ip(self, pod: str) -> str:
        """The address of the pod's infra container, which it prepares (``init``: its
        namespaces and network, without running it) if it never ran (``""`` if it ran and
        stopped): on a bridge network, as
        Podman inspects it; otherwise (rootless slirp4netns or pasta), the address of its
        network namespace, read from ``/proc`` on a local service (``""`` on a remote one)."""
        with translate_errors(f"inspect pod {pod!r}"):
            reply = await self._call("GET", f"/pods/{q(pod)}/json")
            infra = str((reply.json() or {}).get("InfraContainerID") or "")
            if not infra:
                return ""
            data = await self._inspect(infra)
            status = str((data.get("State") or {}).get("Status") or "")
            if status in ("configured", "created"):  # never run: prepared now
                try:
                    await self._call("POST", f"/containers/{q(infra)}/init", ok=(304,))
                except PodmanStatusError as exc:  # a member's start says why, as it always has
                    _log.debug("pod %s: its infra container cannot be prepared: %s", pod, exc)
                    return ""
                data = await self._inspect(infra)
            elif status not in ("initialized", "running", "paused"):
                return ""  # stopped or exited: no network, and none made for a question
        if (data.get("HostConfig") or {}).get("NetworkMode") == "host":
            return ""  # the host's: the caller knows it better
        address = infra_address(data)
        pid = int((data.get("State") or {}).get("Pid") or 0)
        if address or self._local_socket is None or pid <= 0:
            return address
        try:
            table = await anyio.Path(f"/proc/{pid}/net/fib_trie").read_text()
        except OSError as exc:
            _log.debug("pod %s: cannot read the addresses of its network: %s", pod, exc)
            return ""
        return next(iter(local_addresses(table)), "")

    async def remove_pod(self, pod: str) -> None:
        self._warned_pods.discard(pod)
        self._pod_names.pop(pod, None)
        with translate_errors(f"remove pod {pod!r}"):
            for attempt in (1, 2):
                reply = await self._call(
                    "DELETE", f"/pods/{q(pod)}", params={"force": "true", "timeout": 0}, ok=(404,)
                )
                data = reply.json() if reply.status != 404 else None
                error = str(data.get("Err") or "") if isinstance(data, dict) else ""
                if not error:
                    break
                # a member removed meanwhile by another client fails the removal, not the
                # pod's: removed again, the pod goes (404 if someone else removed it)
                if attempt == 2 or not VANISHED.search(error):
                    raise BackendError(f"remove pod {pod!r}: {error}")
        volume = _termination_volume(pod)
        try:  # best effort: the pod is gone, whatever happens to its logs' volume
            with translate_errors(f"remove volume {volume!r}"):
                await self._call("DELETE", f"/volumes/{q(volume)}", ok=(404,))
        except BackendError as exc:
            _log.debug("could not remove the termination logs of pod %r: %s", pod, exc)

    # Volumes

    async def create_volume(self, spec: VolumeSpec) -> str:
        if spec.claim:
            with translate_errors(f"look up volume {spec.name!r}"):
                reply = await self._call("GET", f"/volumes/{q(spec.name)}/exists", ok=(404,))
            if reply.status == 204:
                return spec.name
        body: dict[str, Any] = {"Name": spec.name, "Driver": "local", "Label": dict(spec.labels)}
        if spec.files and spec.memory:
            # A Secret's files: Podman secrets, mounted file by file (in the container's
            # run directory, a tmpfs), removed with the volume. The volume itself only
            # marks them as the run's, for gc; it stays empty.
            await self._remove_secrets(spec.name)  # what a crashed run left under this name
            made: list[tuple[str, VolumeFile]] = []
            self._secret_files[spec.name] = made
            for index, file in enumerate(spec.files):
                name = f"{spec.name}.{index}"
                if not file.data:  # Podman refuses an empty secret: nothing to hide here
                    made.append(("", file))
                    continue
                with translate_errors(f"create the secret files of volume {spec.name!r}"):
                    await self._call(
                        "POST", "/secrets/create", params={"name": name}, body=bytes(file.data)
                    )
                made.append((name, file))
        elif spec.memory:
            options = {"type": "tmpfs", "device": "tmpfs"}
            mount_options = []
            if spec.size_bytes:
                if self._version >= _TMPFS_SIZE_VERSION:
                    mount_options.append(f"size={spec.size_bytes}")
                else:
                    # Before 4.8 "size" always meant an XFS project quota and failed
                    # ("Filesystem does not support Project Quota"), even for tmpfs;
                    # nr_blocks (pages) reaches tmpfs untouched.
                    page = os.sysconf("SC_PAGE_SIZE") if self._local_socket else 4096
                    mount_options.append(f"nr_blocks={-(-spec.size_bytes // page)}")
            if spec.group is not None:  # tmpfs takes its owner and mode as options
                mount_options += ["uid=0", f"gid={spec.group}", "mode=2777"]
            if mount_options:
                options["o"] = ",".join(mount_options)
            body["Options"] = options
        elif spec.group is not None and not spec.files and not spec.claim:
            # An owner given, Podman no longer gives the volume to the user of the first
            # container that mounts it; the mode is set through that container.
            body["Options"] = {"o": f"uid=0,gid={spec.group}"}
        with translate_errors(f"create volume {spec.name!r}"):
            reply = await self._call("POST", "/volumes/create", body=body)
            name = str(reply.json()["Name"])
        if spec.files and spec.group is not None:
            self._file_groups[name] = spec.group
        if spec.files and not spec.memory:
            self._unfilled[name] = spec.files
        elif spec.group is not None and not spec.memory and not spec.claim:
            self._unowned[name] = spec.group
        return name

    async def remove_volume(self, volume: str) -> None:
        self._unfilled.pop(volume, None)
        self._unowned.pop(volume, None)
        self._file_groups.pop(volume, None)
        self._secret_files.pop(volume, None)
        await self._remove_secrets(volume)
        with translate_errors(f"remove volume {volume!r}"):
            await self._call("DELETE", f"/volumes/{q(volume)}", ok=(404,))

    async def _remove_secrets(self, volume: str) -> None:
        """Remove the Podman secrets holding the files of *volume*."""
        with translate_errors(f"remove the secret files of volume {volume!r}"):
            secrets = (await self._call("GET", "/secrets/json")).json() or []
            for secret in secrets:
                name = str((secret.get("Spec") or {}).get("Name") or "")
                if name.startswith(f"{volume}.") and name[len(volume) + 1 :].isdigit():
                    await self._call("DELETE", f"/secrets/{q(name)}", ok=(404,))

    async def _fill_volumes(self, spec: ContainerSpec, container: str) -> None:
        """Write the files of each unfilled volume *spec* mounts, through *container*;
        set the mode of each volume owned by a group that is not set yet."""
        for mount in spec.mounts:
            group = self._unowned.get(mount.volume or "")
            if group is not None and not mount.sub_path and not mount.read_only:
                with translate_errors(f"set the mode of volume {mount.volume!r}"):
                    # as written: Podman would give it to the container's user
                    await self._put_archive(
                        container,
                        params={"path": mount.target, "copyUIDGID": "false"},
                        body=group_dir_tarball(group),
                    )
                self._unowned.pop(mount.volume or "", None)
            files = self._unfilled.get(mount.volume or "")
            if files is None:
                continue
            group = self._file_groups.get(mount.volume or "")
            tarball = files_tarball(files, mount.sub_path, group=group)
            params = {"path": mount.target}
            if group is not None:  # as written: Podman would give them to the container's user
                params["copyUIDGID"] = "false"
            with translate_errors(f"write the files of volume {mount.volume!r}"):
                await self._put_archive(container, params=params, body=tarball)
            if not mount.sub_path:
                self._unfilled.pop(mount.volume or "", None)

    async def _put_archive(self, container: str, *, params: Mapping[str, str], body: bytes) -> None:
        """``PUT`` *body* (a tarball) into *container*, again when Podman's copier lost its
        pipe (Podman 4.3: "passing bulk input to subprocess: write |1: broken pipe", a race
        of its own, containers/buildah#6573): writing the same files twice is harmless."""
        for attempt in range(1, _PUT_ATTEMPTS + 1):
            try:
                await self._call(
                    "PUT", f"/containers/{q(container)}/archive", params=params, body=body
                )
                return
            except PodmanStatusError as exc:
                if attempt == _PUT_ATTEMPTS or "broken pipe" not in exc.message:
                    raise
                _log.debug(
                    "copying into %s lost its pipe (attempt %d): %s", container, attempt, exc
                )
                await anyio.sleep(0.1 * attempt)

    def _secret_targets(self, mount: Mount) -> list[tuple[str, VolumeFile, str]]:
        """The files of *mount*'s volume of a Secret's files: each with its Podman secret
        (``""`` for an empty file, which Podman cannot hold as one) and its target."""
        found = []
        prefix = (mount.sub_path or "").strip("/")
        for name, file in self._secret_files[mount.volume or ""]:
            if prefix and file.path != prefix and not file.path.startswith(prefix + "/"):
                continue
            rel = file.path[len(prefix) :].strip("/") if prefix else file.path
            target = f"{mount.target.rstrip('/')}/{rel}" if rel else mount.target
            found.append((name, file, target))
        return found

    def _secret_entries(self, mount: Mount) -> list[dict[str, Any]]:
        """The Podman secrets that make the files of *mount*'s volume, at their targets."""
        group = self._file_groups.get(mount.volume or "")
        owner = {} if group is None else {"UID": 0, "GID": group}
        return [
            {
                "Source": name,
                "Target": target,
                "Mode": file.mode if group is None else file.mode | 0o440,
                **owner,
            }
            for name, file, target in self._secret_targets(mount)
            if name
        ]

    async def _write_empty_secret_files(self, spec: ContainerSpec, container: str) -> None:
        """Write the empty files of the Secrets' volumes *spec* mounts into *container*'s
        root at their targets (Podman refuses an empty secret; an empty file holds nothing
        to keep off the disk)."""
        empty = [
            VolumeFile(path=target.lstrip("/"), data=b"", mode=file.mode)
            for mount in spec.mounts
            if mount.volume is not None and mount.volume in self._secret_files
            for name, file, target in self._secret_targets(mount)
            if not name
        ]
        if empty:
            with translate_errors(f"write the empty secret files of container {spec.name!r}"):
                await self._put_archive(
                    container,
                    params={"path": "/"},
                    body=files_tarball(empty, parents=False),
                )

    # Images

    async def image_exists(self, image: str) -> bool:
        with translate_errors(f"look up image {image!r}", image=image):
            reply = await self._call("GET", f"/images/{q(image)}/exists", ok=(404,))
            return reply.status == 204

    async def pull_image(self, image: str) -> None:
        params = {"reference": image, "policy": "always", "quiet": "true"}
        with translate_errors(f"pull image {image!r}", image=image, pull=True):
            reply = await self._call(
                "POST", "/images/pull", params=params, read_timeout=None, long=True
            )
        for value in json_objects(reply.body):
            if isinstance(value, dict) and value.get("error"):
                raise ImageError(image, f"pull failed: {value['error']}")

    async def import_image(
        self, reference: str, tarball: bytes, *, changes: Sequence[str] = ()
    ) -> None:
        """Import a root filesystem *tarball* as image *reference* (``podman import``).

        *changes* are Dockerfile instructions such as ``ENV PATH=/bin``. Podman-only: no
        registry needed, which is how the demo and the tests make their images.
        """
        params = {"reference": reference, "changes": list(changes)}
        with translate_errors(f"import image {reference!r}", image=reference):
            reply = await self._call(
                "POST", "/images/import", params=params, body=tarball, read_timeout=None, long=True
            )
        for value in json_objects(reply.body):
            if isinstance(value, dict) and value.get("error"):
                raise ImageError(reference, f"import failed: {value['error']}")

    # Containers

    async def _mount_entries(
        self, spec: ContainerSpec
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        volumes: list[dict[str, Any]] = []
        mounts: list[dict[str, Any]] = []
        for mount in spec.mounts:
            mode = "ro" if mount.read_only else "rw"
            if mount.recursive_read_only == "Enabled":
                # "IfPossible" is a plain read-only mount: Podman cannot say whether
                # its runtime makes submounts read-only too ("rro" is ignored by one
                # that cannot), so "Enabled" cannot be promised
                raise BackendError(
                    f"container {spec.name!r}: mount {mount.target!r} asks for "
                    "recursiveReadOnly: Enabled, which the Podman backend cannot ensure "
                    "(use IfPossible)"
                )
            if mount.volume is not None and mount.volume in self._secret_files:
                continue  # Podman secrets (see create_container)
            if mount.image is not None:
                if mount.sub_path:
                    raise BackendError(
                        f"container {spec.name!r}: mount {mount.target!r} of image "
                        f"{mount.image!r} uses subPath, which Podman's image mounts cannot do"
                    )
                continue  # image_volumes (see create_container)
            if mount.volume is not None:
                entry: dict[str, Any] = {"Name": mount.volume, "Dest": mount.target}
                entry["Options"] = [mode]
                if mount.sub_path:
                    if self._version < _SUBPATH_VERSION:
                        raise BackendError(
                            f"container {spec.name!r}: mount {mount.target!r} uses subPath, "
                            f"which needs Podman 4.4 or later (the server is "
                            f"{self._version_text or 'older'})"
                        )
                    entry["SubPath"] = mount.sub_path
                volumes.append(entry)
            elif mount.host_path is not None:
                source = await self._prepare_host_path(spec, mount)
                options = ["rbind", mode]
                if mount.propagation:
                    options.append(_PROPAGATION[mount.propagation])
                mounts.append(
                    {
                        "type": "bind",
                        "source": source,
                        "destination": mount.target,
                        "options": options,
                    }
                )
            else:
                raise BackendError(
                    f"container {spec.name!r}: mount {mount.target!r} has neither a volume "
                    "nor a host path"
                )
        return volumes, mounts

    async def _prepare_host_path(self, spec: ContainerSpec, mount: Mount) -> str:
        """Apply Kubernetes ``hostPath.type`` checks (possible for a local service only),
        in a worker thread: they touch the file system."""
        path = host_path_of(spec, mount)
        if mount.sub_path and self._local_socket is not None:
            await anyio.to_thread.run_sync(check_sub_path, spec, mount)
        if mount.host_path_type and self._local_socket is not None:
            await anyio.to_thread.run_sync(check_host_path, spec, path, mount.host_path_type)
        return path  # a remote service checks (and fails) itself

    async def image_user(self, image: str) -> str | None:
        with translate_errors(f"inspect image {image!r}", image=image):
            reply = await self._call("GET", f"/images/{q(image)}/json")
        config = reply.json().get("Config") or {}
        return str(config.get("User") or "")

    async def create_container(self, spec: ContainerSpec) -> str:
        if spec.resources is not None and not (await self._host_facts()).enforces_limits:
            self._warn_unenforced(spec.pod, self._pod_names.get(spec.pod, spec.pod), spec.resources)
            spec = attrs.evolve(spec, resources=None)
        volumes, mounts = await self._mount_entries(spec)
        termination = await self._termination_file(spec)
        termination_file = None if termination is None else termination[1]
        if termination is not None:
            assert spec.termination_message_path is not None
            mounts.append(
                {
                    "type": "bind",
                    "source": termination[0],
                    "destination": spec.termination_message_path,
                    "options": ["rbind", "rw"],
                }
            )
        body = container_body(spec, volumes, mounts)
        if spec.security is not None and spec.security.apparmor is not None:
            body.update(await self._apparmor(spec, spec.security.apparmor))
        secrets = [
            entry
            for mount in spec.mounts
            if mount.volume is not None and mount.volume in self._secret_files
            for entry in self._secret_entries(mount)
        ]
        if secrets:
            body["secrets"] = secrets
        images = [
            {"Source": mount.image, "Destination": mount.target, "ReadWrite": False}
            for mount in spec.mounts
            if mount.image is not None
        ]
        if images:
            body["image_volumes"] = images
        with translate_errors(f"create container {spec.name!r}", image=spec.image):
            reply = await self._call("GET", f"/pods/{q(spec.pod)}/json")
            body.update(pod_namespaces(reply.json() or {}))
            reply = await self._call("POST", "/containers/create", body=body)
            data = reply.json()
            for warning in data.get("Warnings") or ():
                _log.warning("Podman, creating container %r: %s", spec.name, warning)
            container = str(data["Id"])
        if termination_file is not None:
            self._termination_files[container] = termination_file
        await self._fill_volumes(spec, container)
        await self._write_empty_secret_files(spec, container)
        return container

    async def _termination_file(self, spec: ContainerSpec) -> tuple[str, str] | None:
        """The file to bind at *spec*'s termination message path, made empty: its path as
        the service sees it, and as this process reaches it.

        As the kubelet does: a file of its own outside the container, which outlives it
        (the container's ``/dev`` is a tmpfs that goes with it, and Podman 4.3 cannot copy
        a bound file out of a container). It is in a volume of the pod's, which
        :meth:`remove_pod` removes (not an object of the run: it carries none of its
        labels, and no count of the run's objects shows it). Only for a service on this
        machine, and
        only where the container's own file would be lost, under ``/dev``: elsewhere
        the file stays in the container's filesystem, for :meth:`get_archive`.
        """
        path = spec.termination_message_path
        if path is None or self._local_socket is None or not path.startswith("/dev/"):
            return None
        name = _termination_volume(spec.pod)
        body = {"Name": name, "Driver": "local"}
        with translate_errors(f"create the termination log of container {spec.name!r}"):
            # made by the pod's first container (Podman 4.3 answers a second create with
            # 500 "volume already exists": another container may just have made it)
            reply = await self._call("GET", f"/volumes/{q(name)}/json", ok=(404,))
            if reply.status == 404:
                reply = await self._call("POST", "/volumes/create", body=body, ok=(409, 500))
                if reply.status in (409, 500):
                    reply = await self._call("GET", f"/volumes/{q(name)}/json")
            directory = str(reply.json()["Mountpoint"])
        socket_path = self._local_socket
        here = await anyio.to_thread.run_sync(_host_view, socket_path, directory)
        file = os.path.join(here, spec.name)

        def make() -> None:
            fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o666)
            try:
                os.fchmod(fd, 0o666)  # whoever the container runs as may write it
            finally:
                os.close(fd)

        try:
            await anyio.to_thread.run_sync(make)
        except OSError as exc:
            _log.debug("no termination log for container %r: %s", spec.name, exc)
            return None
        return os.path.join(directory, spec.name), file

    async def read_termination_message(self, container: str, path: str) -> bytes:
        file = self._termination_files.get(container)
        if file is None:
            # An exit can be known (from conmon's exit file) while Podman's cleanup still
            # unmounts the container: a copy out of it then fails or is empty for a moment
            # (Podman 4.3 answers an empty body). Asked again a little later, an empty
            # answer too (the file may seem missing only for that moment).
            for attempt in range(1, _COPY_OUT_ATTEMPTS + 1):
                try:
                    data = await super().read_termination_message(container, path)
                except (BackendError, tarfile.TarError):
                    if attempt == _COPY_OUT_ATTEMPTS:
                        raise
                    data = b""
                if data or attempt == _COPY_OUT_ATTEMPTS:
                    return data
                await anyio.sleep(0.2 * attempt)
            return b""

        def read() -> bytes:
            with open(file, "rb") as f:
                f.seek(max(os.fstat(f.fileno()).st_size - 4096, 0))
                return f.read(4096)

        try:
            return await anyio.to_thread.run_sync(read)
        except OSError as exc:
            raise BackendError(f"read the termination log of {container!r}: {exc}") from exc

    async def _apparmor(self, spec: ContainerSpec, profile: str) -> dict[str, Any]:
        """The AppArmor field of *spec*'s body: none where the host has no AppArmor (the
        runtime's default and unconfined then mean the same), an error for a profile."""
        if (await self._host_facts()).apparmor:
            return {"apparmor_profile": "" if profile == "runtime/default" else profile}
        if profile in ("runtime/default", "unconfined"):
            return {}
        raise BackendError(
            f"container {spec.name!r}: cannot enforce AppArmor profile {profile!r}: "
            "AppArmor is not enabled on the host"
        )

    async def start_container(self, container: str) -> None:
        path = f"/containers/{q(container)}/start"
        file = self._termination_files.get(container)
        if file is not None:  # each run starts with an empty file, as a new container would
            with contextlib.suppress(OSError):
                await anyio.to_thread.run_sync(os.truncate, file, 0)
        with translate_errors(f"start container {container!r}"):
            for attempt in range(1, _START_ATTEMPTS + 1):
                try:
                    await self._call("POST", path)
                    return
                except PodmanStatusError as exc:
                    if exc.status == 404:
                        raise
                    infra_error = await self._infra_start_error(container)
                    if infra_error is not None:
                        raise infra_error from None
                    if attempt == _START_ATTEMPTS or not any(
                        marker in exc.message for marker in _INFRA_RACE
                    ):
                        raise
                    # Members of a pod started at once each start its infra container
                    # first, and race: Podman 4.3 fails some of them ("cannot get
                    # namespace path unless container <infra> is running", "starting some
                    # containers: internal libpod error" with "container state improper" or
                    # "cannot start an already running container" in its log), though the
                    # infra then runs (50 pods x 4 containers at once). It is not the
                    # member's failure, and the infra is fine: start the member again.
                    _log.debug("starting %s again: %s", container, exc.message)
                    await anyio.sleep(0.05 * attempt)

    async def _infra_start_error(self, container: str) -> PodmanStatusError | None:
        """Why the pod's infra container cannot start, if that is why *container* did not.

        Podman (4.3 at least) reports a failure to start a pod member's infra (say, its
        host port is taken) as just "starting some containers: internal libpod error".
        Preparing the infra (``init``: its namespaces and network, ports included) gives the
        real reason without running it; an infra that runs is not the reason.
        """
        try:
            reply = await self._call("GET", f"/containers/{q(container)}/json")
            pod = (reply.json() or {}).get("Pod")
            if not pod:
                return None
            reply = await self._call("GET", f"/pods/{q(str(pod))}/json")
            infra = (reply.json() or {}).get("InfraContainerID")
            if not infra or infra == container:
                return None
            info = container_info(str(infra), await self._inspect(str(infra)))
            if info.state is RuntimeState.RUNNING:
                return None
            await self._call("POST", f"/containers/{q(str(infra))}/init")
        except PodmanStatusError as exc:
            return PodmanStatusError(exc.status, f"the pod's infra container: {exc.message}")
        return None

    async def stop_container(self, container: str, *, grace: float) -> int | None:
        # Not POST /stop: on 4.3 it takes 0.1-0.2 s even for a process that exits on the
        # signal at once. Send the stop signal, watch the state, kill at the deadline.
        with translate_errors(f"stop container {container!r}"):
            data = await self._inspect(container)
            info = container_info(container, data)
            if info.state is not RuntimeState.RUNNING:
                return info.exit_code
            await self.kill_container(container, signal=stop_signal(data))
            deadline = anyio.current_time() + max(grace, 0)
            exited = await self._exited_by(container, deadline)
            if exited is None:
                await self.kill_container(container, signal=9)
                exited = await self._exited_by(container, anyio.current_time() + self._timeout)
            if exited is None:
                raise BackendError(f"container {container!r} did not exit after SIGKILL")
            return exited.exit_code

    async def stop_signal(self, container: str) -> int:
        with translate_errors(f"inspect container {container!r}"):
            return stop_signal(await self._inspect(container))

    async def _exited_by(self, container: str, deadline: float) -> ContainerInfo | None:
        """Poll until the container is no longer running (its state) or *deadline* passes."""
        delay = 0.01
        while True:
            info = container_info(container, await self._inspect(container))
            if info.state is not RuntimeState.RUNNING:
                return info
            left = deadline - anyio.current_time()
            if left <= 0:
                return None
            await anyio.sleep(min(delay, left))
            delay = min(delay * 2, 0.2)

    async def kill_container(self, container: str, *, signal: int = 9) -> None:
        with translate_errors(f"kill container {container!r}"):
            reply = await self._call(
                "POST",
                f"/containers/{q(container)}/kill",
                params={"signal": int(signal)},
                ok=(409, 500),
            )
            if reply.status == 500:
                error = PodmanStatusError.from_body(reply.status, reply.body)
                if "not running" not in error.message and "improper" not in error.message:
                    raise error

    async def remove_container(self, container: str) -> None:
        self._termination_files.pop(container, None)
        with translate_errors(f"remove container {container!r}"):
            await self._call(
                "DELETE",
                f"/containers/{q(container)}",
                params={"force": "true", "timeout": 0},
                ok=(404,),
            )

    async def wait_container(self, container: str) -> int:
        self._transport()
        with translate_errors(f"wait for container {container!r}"):
            # Podman (4.3 at least) answers a wait on a never-started container at once
            # with 0, so poll until it has been started; then poll for a quick exit (see
            # _EXIT_POLLS) before settling into the blocking wait.
            polls = iter(_EXIT_POLLS)
            while True:
                info = container_info(container, await self._inspect(container))
                if info.state is RuntimeState.EXITED and info.exit_code is not None:
                    return info.exit_code
                if info.state is RuntimeState.CREATED:
                    await anyio.sleep(_CREATED_POLL)
                    continue
                delay = next(polls, None)
                if delay is None:
                    break
                await anyio.sleep(delay)
            while True:
                reply = await self._transport().call_waiting(
                    "POST",
                    f"/containers/{q(container)}/wait",
                    params={"condition": ["stopped", "exited"]},
                    read_timeout=_WAIT_SLICE,
                )
                if reply is not None:
                    code = int(reply.text.strip())
                    break
            # Podman answers a wait cut short by removal with the kill's exit code.
            reply = await self._call("GET", f"/containers/{q(container)}/exists", ok=(404,))
            if reply.status == 404:
                raise PodmanStatusError(
                    404, f"container {container!r} was removed while it was waited on"
                )
            return code

    def watch_exits(self) -> AbstractAsyncContextManager[ExitWatcher]:
        return self._watch_exits()

    @contextlib.asynccontextmanager
    async def _watch_exits(self) -> AsyncIterator[ExitWatcher]:
        # From Podman's event stream (and conmon's exit files for a local service), shared
        # by every watcher of this backend (._exits).
        self._transport()
        async with anyio.create_task_group() as tg:
            watcher = EventExitWatcher(self._exits, tg)
            self._exits.attach(watcher)
            try:
                yield watcher
            finally:
                self._exits.detach(watcher)
                tg.cancel_scope.cancel()
                watcher.close()

    async def _conmon_exit_dir(self, container: str) -> str | None:
        """Where the conmon of the running *container* writes exit files, if this process
        can read them there (a local service); ``None`` otherwise."""
        if not self.is_local:
            return None
        with translate_errors(f"inspect container {container!r}"):
            data = await self._inspect(container)
        state = data.get("State") or {}
        pid = state.get("ConmonPid")
        if not isinstance(pid, int):
            return None
        return await anyio.to_thread.run_sync(conmon_exit_dir, pid, str(data.get("Id") or ""))

    async def _inspect(self, container: str) -> dict[str, Any]:
        """``GET /containers/{id}/json``, retried over the moment of an exit.

        Inspecting a container just as its process exits can fail with HTTP 500 ("read
        /proc/PID/cgroup: no such process"); a moment later it succeeds.
        """
        for attempt in range(5):
            try:
                reply = await self._call("GET", f"/containers/{q(container)}/json")
            except PodmanStatusError as exc:
                if exc.status != 500 or "no such process" not in exc.message or attempt == 4:
                    raise
                await anyio.sleep(0.01 * (attempt + 1))
                continue
            data = reply.json()
            return data if isinstance(data, dict) else {}
        raise AssertionError("unreachable")

    async def inspect_container(self, container: str) -> ContainerInfo:
        with translate_errors(f"inspect container {container!r}"):
            return container_info(container, await self._inspect(container))

    async def exec(
        self,
        container: str,
        argv: tuple[str, ...],
        *,
        env: Mapping[str, str] | None = None,
        working_dir: str | None = None,
        user: str | None = None,
        stdin: bytes | None = None,
        output: Callable[[str, bytes], object] | None = None,
    ) -> ExecResult:
        body: dict[str, Any] = {
            "AttachStdout": True,
            "AttachStderr": True,
            "AttachStdin": stdin is not None,
            "Cmd": list(argv),
        }
        if env:
            body["Env"] = [f"{key}={value}" for key, value in env.items()]
        if working_dir:
            body["WorkingDir"] = working_dir
        if user:
            body["User"] = user
        what = f"exec {list(argv)!r} in container {container!r}"
        with translate_errors(what):
            reply = await self._call("POST", f"/containers/{q(container)}/exec", body=body)
            exec_id = str(reply.json()["Id"])
            try:
                stream = await self._transport().open_stream(
                    "POST", f"/exec/{exec_id}/start", body={"Detach": False, "Tty": False}
                )
            except PodmanStatusError as exc:
                lower = exc.message.lower()
                if any(marker in lower for marker in _NOT_FOUND_EXEC):
                    return ExecResult(127, b"", exc.message.encode())
                if "permission denied" in lower:
                    return ExecResult(126, b"", exc.message.encode())
                raise
            out, err = bytearray(), bytearray()
            decoder = FrameDecoder()
            try:
                if stdin is not None:
                    try:
                        await stream.send_input(stdin)
                    except OSError as exc:
                        raise BackendError(f"{what}: sending standard input: {exc}") from exc
                while data := await stream.read():
                    for kind, payload in decoder.feed(data):
                        if output is not None:
                            output(kind, payload)
                        else:
                            (err if kind == "stderr" else out).extend(payload)
            finally:
                stream.close()
            exit_code = await self._exec_exit_code(exec_id)
        return ExecResult(exit_code, bytes(out), bytes(err))

    async def _exec_exit_code(self, exec_id: str) -> int:
        with anyio.move_on_after(10):
            while True:
                reply = await self._call("GET", f"/exec/{exec_id}/json")
                data = reply.json()
                if not data.get("Running"):
                    return int(data.get("ExitCode", -1))
                await anyio.sleep(0.05)
        raise BackendError(f"exec session {exec_id} still runs after its output ended")

    # Logs and events

    def logs(
        self,
        container: str,
        *,
        follow: bool = False,
        tail: int | None = None,
        since: float | None = None,
        timestamps: bool = False,
    ) -> AbstractAsyncContextManager[AsyncIterator[LogRecord]]:
        return self._logs(container, follow, tail, since, timestamps)

    @contextlib.asynccontextmanager
    async def _logs(
        self,
        container: str,
        follow: bool,
        tail: int | None,
        since: float | None,
        timestamps: bool,
    ) -> AsyncIterator[AsyncIterator[LogRecord]]:
        params = {
            "stdout": "true",
            "stderr": "true",
            "follow": "true" if follow else "false",
            "timestamps": "true" if timestamps else "false",
        }
        if tail is not None:
            params["tail"] = str(max(tail, 0))
        if since is not None:
            params["since"] = format_time(since)
        with translate_errors(f"logs of container {container!r}"):
            stream = await self._transport().open_stream(
                "GET", f"/containers/{q(container)}/logs", params=params
            )
        try:
            yield LogIterator(stream, container, timestamps=timestamps, keep_timestamps=timestamps)
        finally:
            stream.close()

    # Files

    async def put_archive(self, container: str, path: str, tarball: bytes) -> None:
        with translate_errors(f"copy into {path!r} of container {container!r}"):
            await self._put_archive(container, params={"path": path}, body=tarball)

    async def get_archive(self, container: str, path: str) -> bytes:
        with translate_errors(f"copy {path!r} out of container {container!r}"):
            reply = await self._call(
                "GET", f"/containers/{q(container)}/archive", params={"path": path}
            )
        return reply.body

    async def is_directory(self, container: str, path: str) -> bool:
        # HEAD of the archive: its X-Docker-Container-Path-Stat header (base64 JSON) says
        # what the path is, without the archive itself
        with translate_errors(f"look at {path!r} of container {container!r}"):
            try:
                reply = await self._call(
                    "HEAD", f"/containers/{q(container)}/archive", params={"path": path}
                )
            except PodmanStatusError as exc:
                if exc.status != 404:
                    raise
                await self._inspect(container)  # no such container: not found
                return False
        for name, value in reply.headers.items():
            if name.lower() == "x-docker-container-path-stat":
                return bool(json.loads(base64.b64decode(value)).get("isDir"))
        return await super().is_directory(container, path)

    async def stats(self, container: str) -> ContainerStats | None:
        params = {"containers": container, "stream": "false"}
        with translate_errors(f"stats of container {container!r}"):
            try:
                reply = await self._call("GET", "/containers/stats", params=params)
            except PodmanStatusError as exc:
                # Podman 4.3 rootless on cgroup v1: 409 "container stats resource only
                # available for cgroup v2"; the container has no cgroup of its own to read
                if exc.status == 409 and "cgroup" in exc.message.lower():
                    return None
                raise
        return container_stats(reply.json())

    def events(
        self, labels: Mapping[str, str] | None = None
    ) -> AbstractAsyncContextManager[AsyncIterator[BackendEvent]]:
        return self._events(dict(labels or {}))

    @contextlib.asynccontextmanager
    async def _events(self, labels: dict[str, str]) -> AsyncIterator[AsyncIterator[BackendEvent]]:
        iterator = EventIterator(self._transport(), labels)
        try:
            await iterator.subscribe()
            yield iterator
        finally:
            iterator.close()

    async def past_events(
        self, labels: Mapping[str, str] | None = None, *, since: float | None = None
    ) -> list[BackendEvent]:
        return await EventIterator(self._transport(), dict(labels or {})).past(since)

    # Probing

    async def connect(self, pod: str, port: int) -> anyio.abc.ByteStream:
        self._transport()
        if self._local_socket is None and self._tunnel is None:
            raise BackendError(
                "connect needs a local Podman (a unix:// socket on this machine) or an ssh:// "
                f"one, not {self.url}"
            )
        with translate_errors(f"connect to port {port} of pod {pod!r}"):
            reply = await self._call("GET", f"/pods/{q(pod)}/json")
            if self._local_socket is not None and (
                ((reply.json() or {}).get("InfraConfig") or {}).get("HostNetwork")
            ):
                # The pod's network is this host's: no namespace to enter (which a
                # rootless service's user could not do for the host's).
                return await anyio.connect_tcp("127.0.0.1", port)
            infra = (reply.json() or {}).get("InfraContainerID")
            if not infra:
                raise BackendError(f"pod {pod!r} has no infra container")
            reply = await self._call("GET", f"/containers/{q(str(infra))}/json")
            pid = int(((reply.json() or {}).get("State") or {}).get("Pid") or 0)
        if pid <= 0:
            raise ConnectionRefusedError(
                f"connect to port {port} of pod {pod!r}: the pod is not running"
            )
        if self._tunnel is not None:
            return await self._tunnel.connect(pid, port)
        return await connect_in_netns(pid, port)

    # Ownership

    async def list_objects(self, labels: Mapping[str, str]) -> list[OwnedObject]:
        params = {"filters": label_filters(labels)} if labels else {}
        objects: list[OwnedObject] = []
        with translate_errors("list objects"):
            pods = await self._transport().list("/pods/json", params)
            containers = await self._transport().list("/containers/json", {**params, "all": "true"})
            volumes = await self._transport().list("/volumes/json", params)
        for pod in pods:
            pod_labels = dict(pod.get("Labels") or {})
            if matches(pod_labels, labels):
                objects.append(
                    OwnedObject(type="pod", id=pod["Id"], name=pod["Name"], labels=pod_labels)
                )
        for ctr in containers:
            ctr_labels = dict(ctr.get("Labels") or {})
            if ctr.get("IsInfra") or not matches(ctr_labels, labels):
                continue
            names = ctr.get("Names") or [ctr["Id"]]
            objects.append(
                OwnedObject(
                    type="container",
                    id=ctr["Id"],
                    name=names[0],
                    labels=ctr_labels,
                    pod=ctr.get("Pod") or None,
                )
            )
        for vol in volumes:
            vol_labels = dict(vol.get("Labels") or {})
            if matches(vol_labels, labels):
                objects.append(
                    OwnedObject(type="volume", id=vol["Name"], name=vol["Name"], labels=vol_labels)
                )
        return objects


backend_class = PodmanBackend
