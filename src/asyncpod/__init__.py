"""asyncpod: Kubernetes Pod semantics on one machine, as an anyio library.

Describe a pod with :class:`Pod`, :class:`Container` and :class:`Volume` (or load a
Kubernetes manifest with :func:`asyncpod.kube.load_pod`), then run it::

    async with asyncpod.open_pod(pod, backend=backend) as running:
        await running.wait_ready()

It runs on asyncio and trio, on Podman (:class:`asyncpod.backends.PodmanBackend`) or in
memory (:class:`asyncpod.backends.FakeBackend`).
"""

from __future__ import annotations

from . import backends as backends
from . import kube as kube
from ._claims import list_claims as list_claims
from ._claims import remove_claim as remove_claim
from ._diagnosis import Diagnosis as Diagnosis
from ._events import EventReason as EventReason
from ._events import PodEvent as PodEvent
from ._exceptions import AsyncpodError as AsyncpodError
from ._exceptions import BackendError as BackendError
from ._exceptions import BackendUnavailableError as BackendUnavailableError
from ._exceptions import BackoffLimitExceededError as BackoffLimitExceededError
from ._exceptions import ContainerFailedError as ContainerFailedError
from ._exceptions import CreateContainerConfigError as CreateContainerConfigError
from ._exceptions import DeadlineExceededError as DeadlineExceededError
from ._exceptions import DependencyCycleError as DependencyCycleError
from ._exceptions import DependencyFailedError as DependencyFailedError
from ._exceptions import ImageError as ImageError
from ._exceptions import ObjectExistsError as ObjectExistsError
from ._exceptions import ObjectNotFoundError as ObjectNotFoundError
from ._exceptions import PodError as PodError
from ._exceptions import PodTimeoutError as PodTimeoutError
from ._exceptions import PodVanishedError as PodVanishedError
from ._exceptions import PortInUseError as PortInUseError
from ._exceptions import SpecError as SpecError
from ._exceptions import UnsupportedFieldError as UnsupportedFieldError
from ._models import Condition as Condition
from ._models import Container as Container
from ._models import ContainerPort as ContainerPort
from ._models import ContainerRestartRule as ContainerRestartRule
from ._models import ContainerRestartRuleOnExitCodes as ContainerRestartRuleOnExitCodes
from ._models import Dependency as Dependency
from ._models import EmptyDirVolumeSource as EmptyDirVolumeSource
from ._models import EnvVar as EnvVar
from ._models import ExecAction as ExecAction
from ._models import FrozenDict as FrozenDict
from ._models import HostPathVolumeSource as HostPathVolumeSource
from ._models import HTTPGetAction as HTTPGetAction
from ._models import HTTPHeader as HTTPHeader
from ._models import Lifecycle as Lifecycle
from ._models import LifecycleHandler as LifecycleHandler
from ._models import Pod as Pod
from ._models import Probe as Probe
from ._models import Protocol as Protocol
from ._models import PullPolicy as PullPolicy
from ._models import RestartPolicy as RestartPolicy
from ._models import RestartRuleOperator as RestartRuleOperator
from ._models import SleepAction as SleepAction
from ._models import TCPSocketAction as TCPSocketAction
from ._models import Volume as Volume
from ._models import VolumeMount as VolumeMount
from ._network import GRPCAction as GRPCAction
from ._network import HostAlias as HostAlias
from ._network import PodDNSConfig as PodDNSConfig
from ._network import PodDNSConfigOption as PodDNSConfigOption
from ._objects import ConfigMap as ConfigMap
from ._objects import Secret as Secret
from ._owned import OwnedPod as OwnedPod
from ._owned import remove_orphans as remove_orphans
from ._owner import OwnerState as OwnerState
from ._plan import Edge as Edge
from ._plan import PlanStep as PlanStep
from ._plan import StartupPlan as StartupPlan
from ._plan import StepKind as StepKind
from ._resources import ContainerResizePolicy as ContainerResizePolicy
from ._resources import ResourceRequirements as ResourceRequirements
from ._security import AppArmorProfile as AppArmorProfile
from ._security import Capabilities as Capabilities
from ._security import PodSecurityContext as PodSecurityContext
from ._security import SeccompProfile as SeccompProfile
from ._security import SecurityContext as SecurityContext
from ._security import SELinuxOptions as SELinuxOptions
from ._security import Sysctl as Sysctl
from ._sources import ConfigMapEnvSource as ConfigMapEnvSource
from ._sources import ConfigMapKeySelector as ConfigMapKeySelector
from ._sources import ConfigMapProjection as ConfigMapProjection
from ._sources import ConfigMapVolumeSource as ConfigMapVolumeSource
from ._sources import DownwardAPIProjection as DownwardAPIProjection
from ._sources import DownwardAPIVolumeFile as DownwardAPIVolumeFile
from ._sources import DownwardAPIVolumeSource as DownwardAPIVolumeSource
from ._sources import EnvFromSource as EnvFromSource
from ._sources import EnvVarSource as EnvVarSource
from ._sources import EphemeralVolumeSource as EphemeralVolumeSource
from ._sources import ImageVolumeSource as ImageVolumeSource
from ._sources import KeyToPath as KeyToPath
from ._sources import ObjectFieldSelector as ObjectFieldSelector
from ._sources import PersistentVolumeClaimSpec as PersistentVolumeClaimSpec
from ._sources import PersistentVolumeClaimTemplate as PersistentVolumeClaimTemplate
from ._sources import PersistentVolumeClaimVolumeSource as PersistentVolumeClaimVolumeSource
from ._sources import ProjectedVolumeSource as ProjectedVolumeSource
from ._sources import ResourceFieldSelector as ResourceFieldSelector
from ._sources import SecretEnvSource as SecretEnvSource
from ._sources import SecretKeySelector as SecretKeySelector
from ._sources import SecretProjection as SecretProjection
from ._sources import SecretVolumeSource as SecretVolumeSource
from ._sources import VolumeProjection as VolumeProjection
from ._sources import VolumeResourceRequirements as VolumeResourceRequirements
from ._status import ContainerState as ContainerState
from ._status import ContainerStatus as ContainerStatus
from ._status import Phase as Phase
from ._status import PodConditions as PodConditions
from ._status import PodStatus as PodStatus
from ._status import PublishedPort as PublishedPort
from ._status import Running as Running
from ._status import Terminated as Terminated
from ._status import Waiting as Waiting
from ._supervisor import RunningPod as RunningPod
from ._supervisor import open_pod as open_pod
from ._supervisor import run_job as run_job

__version__ = "0.1.0"

__all__ = [
    "AppArmorProfile",
    "AsyncpodError",
    "BackendError",
    "BackendUnavailableError",
    "BackoffLimitExceededError",
    "Capabilities",
    "Condition",
    "ConfigMap",
    "ConfigMapEnvSource",
    "ConfigMapKeySelector",
    "ConfigMapProjection",
    "ConfigMapVolumeSource",
    "Container",
    "ContainerFailedError",
    "ContainerPort",
    "ContainerResizePolicy",
    "ContainerRestartRule",
    "ContainerRestartRuleOnExitCodes",
    "ContainerState",
    "ContainerStatus",
    "CreateContainerConfigError",
    "DeadlineExceededError",
    "Dependency",
    "DependencyCycleError",
    "DependencyFailedError",
    "Diagnosis",
    "DownwardAPIProjection",
    "DownwardAPIVolumeFile",
    "DownwardAPIVolumeSource",
    "Edge",
    "EmptyDirVolumeSource",
    "EnvFromSource",
    "EnvVar",
    "EnvVarSource",
    "EphemeralVolumeSource",
    "EventReason",
    "ExecAction",
    "FrozenDict",
    "GRPCAction",
    "HostAlias",
    "HostPathVolumeSource",
    "HTTPGetAction",
    "HTTPHeader",
    "ImageError",
    "ImageVolumeSource",
    "KeyToPath",
    "Lifecycle",
    "LifecycleHandler",
    "list_claims",
    "ObjectExistsError",
    "ObjectFieldSelector",
    "ObjectNotFoundError",
    "open_pod",
    "OwnedPod",
    "OwnerState",
    "PersistentVolumeClaimSpec",
    "PersistentVolumeClaimTemplate",
    "PersistentVolumeClaimVolumeSource",
    "Phase",
    "PlanStep",
    "Pod",
    "PodConditions",
    "PodDNSConfig",
    "PodDNSConfigOption",
    "PodError",
    "PodEvent",
    "PodSecurityContext",
    "PodStatus",
    "PodTimeoutError",
    "PodVanishedError",
    "PortInUseError",
    "Probe",
    "ProjectedVolumeSource",
    "Protocol",
    "PublishedPort",
    "PullPolicy",
    "remove_claim",
    "remove_orphans",
    "ResourceFieldSelector",
    "ResourceRequirements",
    "RestartPolicy",
    "RestartRuleOperator",
    "run_job",
    "Running",
    "RunningPod",
    "SeccompProfile",
    "Secret",
    "SecretEnvSource",
    "SecretKeySelector",
    "SecretProjection",
    "SecretVolumeSource",
    "SecurityContext",
    "SELinuxOptions",
    "SleepAction",
    "SpecError",
    "StartupPlan",
    "StepKind",
    "Sysctl",
    "TCPSocketAction",
    "Terminated",
    "UnsupportedFieldError",
    "Volume",
    "VolumeMount",
    "VolumeProjection",
    "VolumeResourceRequirements",
    "Waiting",
]

# Show public objects as asyncpod.X, not asyncpod._models.X, in reprs and docs.
for _name in __all__:
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "").startswith("asyncpod._"):
        try:
            _obj.__module__ = "asyncpod"
        except (AttributeError, TypeError):  # pragma: no cover
            pass
del _name, _obj
