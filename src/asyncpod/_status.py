"""Status snapshots: pod phase, conditions and per-container state, as the kubelet reports them."""

from __future__ import annotations

import enum
from collections.abc import Collection, Sequence

import attrs

from ._plan import StepKind

__all__ = [
    "ContainerState",
    "ContainerStatus",
    "Phase",
    "PublishedPort",
    "PodConditions",
    "PodStatus",
    "Running",
    "Terminated",
    "Waiting",
    "compute_phase",
]


class Phase(str, enum.Enum):
    """The pod phase (``status.phase``)."""

    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


@attrs.frozen
class Waiting:
    """Not running yet, or waiting to run again; *reason* says why."""

    #: "PodInitializing", "ContainerCreating", "CrashLoopBackOff", ...
    reason: str
    message: str = ""


@attrs.frozen
class Running:
    """Running since *started_at* (seconds, ``anyio.current_time()`` clock)."""

    started_at: float


@attrs.frozen
class Terminated:
    """Exited with *exit_code*; *reason* is "Completed" (0) or "Error"."""

    exit_code: int
    reason: str
    started_at: float | None
    finished_at: float
    #: the termination message: what the container wrote to its
    #: ``terminationMessagePath``, or the tail of its log (``FallbackToLogsOnError``)
    message: str = ""


#: what a container is doing: waiting, running or terminated
ContainerState = Waiting | Running | Terminated


@attrs.frozen(kw_only=True)
class ContainerStatus:
    """One container's status (``status.containerStatuses[]`` and friends)."""

    name: str
    kind: StepKind
    image: str
    state: ContainerState
    #: the previous termination, if the container was restarted
    last_state: Terminated | None = None
    ready: bool = False
    started: bool = False
    restart_count: int = 0
    container_id: str | None = None

    @property
    def exit_code(self) -> int | None:
        """The exit code of the current termination, or ``None``."""
        return self.state.exit_code if isinstance(self.state, Terminated) else None


@attrs.frozen(kw_only=True)
class PodConditions:
    """The pod conditions the kubelet sets."""

    #: every regular init container completed and every sidecar started
    initialized: bool
    #: every app container and every sidecar ready
    containers_ready: bool
    #: the pod serves: ContainersReady (asyncpod has no readiness gates)
    ready: bool


@attrs.frozen(kw_only=True)
class PublishedPort:
    """A container port published on the host: *host_port* is the real one (the port
    the engine picked for a ``hostPort: 0``)."""

    container: str
    container_port: int
    host_port: int
    #: the host address it is published on; "" for every address
    host_ip: str = ""
    #: "TCP", "UDP" or "SCTP"
    protocol: str = "TCP"


@attrs.frozen(kw_only=True)
class PodStatus:
    """A snapshot of a running pod."""

    name: str
    phase: Phase
    conditions: PodConditions
    containers: tuple[ContainerStatus, ...]
    #: why the pod failed, in Kubernetes' words, when it says: ``"DeadlineExceeded"``
    reason: str | None = None
    #: the ports the pod publishes on the host, as published
    ports: tuple[PublishedPort, ...] = ()
    #: the pod's IP address (``status.podIP``): the host's for a ``hostNetwork`` pod;
    #: ``""`` while (or if) the backend cannot tell it
    pod_ip: str = ""

    def container(self, name: str) -> ContainerStatus:
        """The status of container *name*."""
        for status in self.containers:
            if status.name == name:
                return status
        raise KeyError(name)

    @property
    def init_containers(self) -> tuple[ContainerStatus, ...]:
        """Statuses of init containers and sidecars, in spec order."""
        return tuple(s for s in self.containers if s.kind is not StepKind.APP)

    @property
    def app_containers(self) -> tuple[ContainerStatus, ...]:
        """Statuses of app containers, in spec order."""
        return tuple(s for s in self.containers if s.kind is StepKind.APP)


def compute_phase(
    containers: Sequence[ContainerStatus],
    *,
    restart_policy: str,
    failed: bool,
    initialized: bool,
    restarting: Collection[str] = (),
    all_final: bool = False,
) -> Phase:
    """The pod phase by the kubelet's rules (``getPhase``); terminated sidecars are ignored.

    *failed* says the pod has failed whatever its containers do: a regular init container
    failed for good, or the pod vanished. *restarting* names app containers that exited
    but will run again (their own restart policy or rules, KEP-5307): they count as
    running. With *all_final*, no app container
    will run again (their own policies said so): the exit codes decide, whatever the pod's
    restart policy.
    """
    if failed:
        return Phase.FAILED
    if not initialized:
        return Phase.PENDING
    running = waiting = stopped = succeeded = 0
    for status in containers:
        if status.kind is not StepKind.APP:
            continue
        state = status.state
        if isinstance(state, Running) or status.name in restarting:
            running += 1
        elif isinstance(state, Terminated):
            stopped += 1
            succeeded += state.exit_code == 0
        elif status.last_state is not None:  # waiting to restart
            stopped += 1
            succeeded += status.last_state.exit_code == 0
        else:
            waiting += 1
    if waiting:
        return Phase.PENDING
    if running:
        return Phase.RUNNING
    if all_final:
        return Phase.SUCCEEDED if stopped == succeeded else Phase.FAILED
    if restart_policy == "Always":
        return Phase.RUNNING
    if stopped == succeeded:
        return Phase.SUCCEEDED
    if restart_policy == "Never":
        return Phase.FAILED
    return Phase.RUNNING  # OnFailure: restarting
