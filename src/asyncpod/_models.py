"""The pod description: frozen, validated attrs models named after the Kubernetes Pod spec.

Field names are the Kubernetes ones in snake_case (``init_containers``, ``volume_mounts``,
``mount_path``...). Every model validates itself when it is built and raises
:class:`~asyncpod.SpecError` naming the offending field with its Kubernetes path; the
:class:`Pod` adds the checks that span containers (unique names, volume references, ports,
the ``depends_on`` graph), so an invalid pod never reaches a backend. Every string must
be text UTF-8 can encode (no lone surrogates), and every integer fit the Go type
(int32, int64) of its Kubernetes field.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Iterator, Mapping
from typing import Any

import attrs

from . import _cluster
from ._base import DNS_SUBDOMAIN as _DNS_SUBDOMAIN
from ._base import INT64_MAX as _INT64_MAX
from ._base import SURROGATE, FrozenDict
from ._base import camel as _camel
from ._base import check_type as _check_type
from ._base import dns_label as _dns_label
from ._base import enum_value as _enum
from ._base import exactly_one as _exactly_one
from ._base import fail as _fail
from ._base import field as _field
from ._base import instance_of as _instance
from ._base import int32 as _int32
from ._base import int64 as _int64
from ._base import int_range as _int_range
from ._base import key_path as _key_path
from ._base import list_of as _list_of
from ._base import model_field as _model
from ._base import nonempty_string as _nonempty_string
from ._base import one_of as _one_of
from ._base import optional_of as _optional
from ._base import to_tuple as _to_tuple
from ._base import validator as _validator
from ._cycles import check_acyclic
from ._env import check_expansion
from ._exceptions import SpecError
from ._exceptions import UnsupportedFieldError as _UnsupportedFieldError
from ._network import GRPCAction, HostAlias, PodDNSConfig
from ._resources import (
    ContainerResizePolicy,
    ResourceRequirements,
    check_pod_resources,
    check_resize_policies,
    parse_amount,
)
from ._security import PodSecurityContext, SecurityContext
from ._sources import (
    ConfigMapVolumeSource,
    DownwardAPIVolumeSource,
    EnvFromSource,
    EnvVarSource,
    EphemeralVolumeSource,
    ImageVolumeSource,
    PersistentVolumeClaimVolumeSource,
    ProjectedVolumeSource,
    SecretVolumeSource,
)

#: asyncpod.kube reads it here
_SURROGATE = SURROGATE

__all__ = [
    "Condition",
    "Container",
    "ContainerPort",
    "Dependency",
    "EmptyDirVolumeSource",
    "EnvVar",
    "ExecAction",
    "FrozenDict",
    "HostPathVolumeSource",
    "HTTPGetAction",
    "HTTPHeader",
    "Lifecycle",
    "LifecycleHandler",
    "Pod",
    "Probe",
    "Protocol",
    "PullPolicy",
    "RestartPolicy",
    "SleepAction",
    "TCPSocketAction",
    "Volume",
    "VolumeMount",
]

# Value types


class RestartPolicy(str, enum.Enum):
    """When a container is restarted after it exits."""

    ALWAYS = "Always"
    ON_FAILURE = "OnFailure"
    NEVER = "Never"


class RestartRuleOperator(str, enum.Enum):
    """How a restart rule matches exit codes (``exitCodes.operator``)."""

    IN = "In"
    NOT_IN = "NotIn"


class PullPolicy(str, enum.Enum):
    """When an image is pulled (Kubernetes ``imagePullPolicy``)."""

    ALWAYS = "Always"
    IF_NOT_PRESENT = "IfNotPresent"
    NEVER = "Never"


class Protocol(str, enum.Enum):
    """A port's protocol."""

    TCP = "TCP"
    UDP = "UDP"
    SCTP = "SCTP"


class Condition(str, enum.Enum):
    """What a ``depends_on`` edge waits for."""

    #: the dependency is running (postStart done, startup probe passed)
    STARTED = "started"
    #: the dependency's readiness probe passed
    READY = "ready"
    #: the dependency exited with code 0
    COMPLETED = "completed"


# Validation helpers

_ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*\Z")
_IANA_SVC_NAME = re.compile(r"(?=.*[a-z])(?!.*--)[a-z0-9]([a-z0-9-]*[a-z0-9])?\Z")
# k8s.io/apimachinery/pkg/util/validation IsHTTPHeaderName
_HTTP_HEADER_NAME = re.compile(r"[-A-Za-z0-9]+\Z")
# what no HTTP request may carry from a manifest as it is: control characters (CR, LF...)
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# k8s.io/apimachinery/pkg/util/validation: the name part of a qualified name, and a label
# value (which may also be empty); both ASCII only and at most 63 characters.
_QUALIFIED_NAME_PART = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]\Z")
# The docker/OCI reference grammar (distribution/reference): [domain/]path[:tag][@digest].
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE_REF = re.compile(
    r"(?:(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
    r"(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?)/)?"
    rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
    r"(?::[\w][\w.-]{0,127})?"
    r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?\Z"
)


def _port(path: str, value: object) -> None:
    _int_range(path, value, 1, 65535)


def _host_port(path: str, value: object) -> None:
    _int_range(path, value, 0, 65535)


def _port_or_name(path: str, value: object) -> None:
    if isinstance(value, str):
        if len(value) > 15 or not _IANA_SVC_NAME.match(value):
            raise _fail(path, f"{value!r} is neither a port number nor a valid port name")
    else:
        _port(path, value)


def _to_protocol(value: Protocol | str) -> Protocol:
    return _enum("protocol", value, Protocol)  # type: ignore[no-any-return]


def _to_condition(value: Condition | str) -> Condition:
    return _enum("condition", value, Condition)  # type: ignore[no-any-return]


def _to_pull_policy(value: PullPolicy | str | None) -> PullPolicy | None:
    return None if value is None else _enum("imagePullPolicy", value, PullPolicy)


def _to_optional_restart_policy(value: RestartPolicy | str | None) -> RestartPolicy | None:
    return None if value is None else _enum("restartPolicy", value, RestartPolicy)


def _to_rule_operator(value: RestartRuleOperator | str) -> RestartRuleOperator:
    return _enum("operator", value, RestartRuleOperator)  # type: ignore[no-any-return]


def _to_pod_restart_policy(value: RestartPolicy | str) -> RestartPolicy:
    return _enum("spec.restartPolicy", value, RestartPolicy)  # type: ignore[no-any-return]


def _to_frozen_dict(value: Any) -> Any:
    if isinstance(value, FrozenDict):
        return value
    if isinstance(value, Mapping):
        return FrozenDict(value)
    return value


def _qualified_name_problem(key: str) -> str | None:
    """What makes *key* not a Kubernetes qualified name, or ``None``.

    The rule of ``IsQualifiedName`` (k8s.io/apimachinery/pkg/util/validation): an optional
    prefix, a DNS-1123 subdomain of at most 253 characters, and a ``/``; then a name part
    of 1 to 63 characters matching ``([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]``.
    """
    prefix, slash, name = key.rpartition("/")
    if slash:
        if "/" in prefix:
            return "has more than one '/'"
        if not prefix:
            return "has an empty prefix before '/'"
        if len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix):
            return (
                f"has an invalid prefix {prefix!r} (a DNS subdomain of at most 253 characters: "
                "lower-case letters, digits, '-' and '.')"
            )
    if not name:
        return "has an empty name part"
    if len(name) > 63 or not _QUALIFIED_NAME_PART.match(name):
        return (
            f"has an invalid name part {name!r} (at most 63 characters: letters, digits, '-', "
            "'_' and '.', starting and ending with a letter or digit)"
        )
    return None


def _string_map(path: str, value: object) -> None:
    if not isinstance(value, FrozenDict):
        raise _fail(path, f"must be a mapping of strings, not {type(value).__name__}")


def _labels(path: str, value: object) -> None:
    """Kubernetes' ``ValidateLabels``: qualified-name keys, label values."""
    _string_map(path, value)
    assert isinstance(value, FrozenDict)
    items: list[tuple[object, object]] = list(value._data.items())  # keys may be any type
    for key, item in items:
        where = _key_path(path, key)
        _check_type(where, key, str, "a string key")
        assert isinstance(key, str)
        problem = _qualified_name_problem(key)
        if problem is not None:
            raise _fail(where, f"is not a valid label key ([prefix/]name): it {problem}")
        _check_type(where, item, str, "a string")
        assert isinstance(item, str)
        if item and (len(item) > 63 or not _QUALIFIED_NAME_PART.match(item)):
            raise _fail(
                where,
                f"{item!r} is not a valid label value (empty, or at most 63 characters: "
                "letters, digits, '-', '_' and '.', starting and ending with a letter or digit)",
            )


#: ``TotalAnnotationSizeLimitB`` of k8s.io/apimachinery/pkg/api/validation: 256 KiB.
_ANNOTATIONS_MAX_BYTES = 256 * 1024


def _annotations(path: str, value: object) -> None:
    """Kubernetes' ``ValidateAnnotations``: keys are qualified names once lower-cased (a
    prefix may have capitals), values any strings; keys and values hold at most 256 KiB
    of UTF-8 in all."""
    _string_map(path, value)
    assert isinstance(value, FrozenDict)
    items: list[tuple[object, object]] = list(value._data.items())  # keys may be any type
    size = 0
    for key, item in items:
        where = _key_path(path, key)
        _check_type(where, key, str, "a string key")
        assert isinstance(key, str)
        problem = _qualified_name_problem(key.lower())
        if problem is not None:
            raise _fail(where, f"is not a valid annotation key ([prefix/]name): it {problem}")
        _check_type(where, item, str, "a string")
        assert isinstance(item, str)
        size += len((key + item).encode("utf-8"))  # bytes, as Go counts them
    if size > _ANNOTATIONS_MAX_BYTES:
        raise _fail(
            path,
            f"must hold at most {_ANNOTATIONS_MAX_BYTES} bytes of keys and values in all "
            f"(256 KiB), not {size}",
        )


# Handlers


@attrs.frozen(kw_only=True)
class ExecAction:
    """Run *command* inside the container (no shell); exit code 0 is success."""

    command: tuple[str, ...] = attrs.field(converter=_to_tuple, validator=_list_of(str, "strings"))

    def __attrs_post_init__(self) -> None:
        if not self.command:
            raise _fail("command", "must name a program to run")


@attrs.frozen(kw_only=True)
class HTTPHeader:
    """One header of an HTTP probe or hook."""

    name: str = _field(_nonempty_string)
    value: str = _field(_instance(str, "a string"), default="")

    def __attrs_post_init__(self) -> None:
        if not _HTTP_HEADER_NAME.match(self.name):
            raise _fail(
                "name", f"{self.name!r} is not a valid HTTP header name (letters, digits and '-')"
            )
        _no_control("value", self.value)


def _no_control(path: str, value: str) -> None:
    found = _CONTROL.search(value)
    if found is not None:
        raise _fail(
            path,
            f"{value!r} holds the control character {found.group()!r} at index {found.start()}",
        )


@attrs.frozen(kw_only=True)
class HTTPGetAction:
    """An HTTP GET to the pod's network namespace; 200 <= status < 400 is success."""

    port: int | str = _field(_port_or_name)
    path: str = _field(_instance(str, "a string"), default="/")
    host: str | None = _field(_optional(_nonempty_string), default=None)
    scheme: str = _field(_instance(str, "a string"), default="HTTP")
    http_headers: tuple[HTTPHeader, ...] = attrs.field(
        converter=_to_tuple, validator=_list_of(HTTPHeader, "HTTP headers"), factory=tuple
    )

    def __attrs_post_init__(self) -> None:
        if self.scheme not in ("HTTP", "HTTPS"):
            raise _fail("scheme", f"must be 'HTTP' or 'HTTPS', not {self.scheme!r}")
        if not self.path.startswith("/"):
            raise _fail("path", f"must start with '/', not {self.path!r}")
        if self.host is not None:
            _no_control("host", self.host)
            if " " in self.host or "\t" in self.host:
                raise _fail("host", f"must not contain white space, not {self.host!r}")


@attrs.frozen(kw_only=True)
class TCPSocketAction:
    """Open a TCP connection to *port* in the pod's network namespace."""

    port: int | str = _field(_port_or_name)
    host: str | None = _field(_optional(_nonempty_string), default=None)


@attrs.frozen(kw_only=True)
class SleepAction:
    """Sleep for *seconds* (run by asyncpod, not in the container)."""

    seconds: int = _field(_int64(0))


_HANDLERS = ("exec", "http_get", "tcp_socket", "grpc")


def _zero_is_unset(default: int | None) -> Any:
    """A converter: 0 means "not set" (Kubernetes defaults a zero probe timing)."""

    def convert(value: Any) -> Any:
        return default if type(value) is int and value == 0 else value

    return convert


@attrs.frozen(kw_only=True)
class Probe:
    """A startup, readiness or liveness probe (Kubernetes defaults and minimums).

    The timings and thresholds are int32 in Kubernetes, *termination_grace_period_seconds*
    int64: larger values are refused.
    """

    exec: ExecAction | None = _model(ExecAction, "an exec action")
    http_get: HTTPGetAction | None = _model(HTTPGetAction, "an httpGet action")
    tcp_socket: TCPSocketAction | None = _model(TCPSocketAction, "a tcpSocket action")
    grpc: GRPCAction | None = _model(GRPCAction, "a grpc action")
    initial_delay_seconds: int = _field(_int32(0), default=0)
    period_seconds: int = _field(_int32(1), default=10, converter=_zero_is_unset(10))
    timeout_seconds: int = _field(_int32(1), default=1, converter=_zero_is_unset(1))
    success_threshold: int = _field(_int32(1), default=1, converter=_zero_is_unset(1))
    failure_threshold: int = _field(_int32(1), default=3, converter=_zero_is_unset(3))
    termination_grace_period_seconds: int | None = _field(_optional(_int64(1)), default=None)

    def __attrs_post_init__(self) -> None:
        _exactly_one("", self, _HANDLERS, "handler")


@attrs.frozen(kw_only=True)
class LifecycleHandler:
    """A postStart or preStop hook."""

    exec: ExecAction | None = _model(ExecAction, "an exec action")
    http_get: HTTPGetAction | None = _model(HTTPGetAction, "an httpGet action")
    sleep: SleepAction | None = _model(SleepAction, "a sleep action")

    def __attrs_post_init__(self) -> None:
        _exactly_one("", self, ("exec", "http_get", "sleep"), "handler")


@attrs.frozen(kw_only=True)
class Lifecycle:
    """Hooks run after a container starts and before it is stopped."""

    post_start: LifecycleHandler | None = _model(LifecycleHandler, "a lifecycle handler")
    pre_stop: LifecycleHandler | None = _model(LifecycleHandler, "a lifecycle handler")


# Containers


def _env_name(path: str, value: object) -> None:
    _check_type(path, value, str, "a string")
    assert isinstance(value, str)
    if not _ENV_NAME.match(value):
        raise _fail(
            path,
            f"{value!r} is not a valid environment variable name (letters, digits, '_', '-' "
            "and '.', not starting with a digit)",
        )


def _exit_codes(path: str, value: object) -> None:
    if not isinstance(value, tuple):
        raise _fail(path, f"must be a list of exit codes, not {type(value).__name__}")
    if not 1 <= len(value) <= 255:
        raise _fail(path, f"must hold between 1 and 255 exit codes, not {len(value)}")
    seen: set[int] = set()
    for index, code in enumerate(value):
        _int_range(f"{path}[{index}]", code, 0, 255)
        if code in seen:
            raise _fail(f"{path}[{index}]", f"duplicate exit code {code}")
        seen.add(code)


@attrs.frozen(kw_only=True)
class ContainerRestartRuleOnExitCodes:
    """The exit codes a restart rule matches: those *in* *values*, or those not in them."""

    operator: RestartRuleOperator = attrs.field(converter=_to_rule_operator)
    values: tuple[int, ...] = attrs.field(converter=_to_tuple, validator=_validator(_exit_codes))

    def matches(self, exit_code: int) -> bool:
        """Whether *exit_code* is one this rule is about."""
        return (exit_code in self.values) is (self.operator is RestartRuleOperator.IN)


_RESTART_ALL_REASON = (
    "the RestartAllContainers action (Kubernetes 1.34, alpha) restarts every container of "
    "the pod in place, which asyncpod does not do"
)


def _restart_action(path: str, value: object) -> None:
    if value == "RestartAllContainers":
        raise _UnsupportedFieldError([path], {path: _RESTART_ALL_REASON})
    if value != "Restart":
        raise _fail(path, f"must be 'Restart', not {value!r}")


@attrs.frozen(kw_only=True)
class ContainerRestartRule:
    """A KEP-5307 restart rule: restart the container when it exits with matching codes.

    Rules are tried in order; the first match restarts the container, whatever its
    ``restart_policy`` says; without a match the policy decides.
    """

    #: the only action Kubernetes defines for a container's own exit
    action: str = _field(_restart_action, default="Restart")
    exit_codes: ContainerRestartRuleOnExitCodes = _model(
        ContainerRestartRuleOnExitCodes, "exit codes", optional=False
    )


@attrs.frozen(kw_only=True)
class EnvVar:
    """One environment variable; ``$(NAME)`` in *value* refers to an earlier one."""

    name: str = _field(_env_name)
    value: str = _field(_instance(str, "a string"), default="")
    #: the value from a ConfigMap, a Secret, a field of the pod or a container's resource
    value_from: EnvVarSource | None = _model(EnvVarSource, "an env var source")

    def __attrs_post_init__(self) -> None:
        if self.value_from is not None and self.value:
            raise _fail("valueFrom", "may not be specified when `value` is not empty")


def _to_env(value: Any) -> Any:
    if isinstance(value, Mapping):
        return tuple(EnvVar(name=k, value=v) for k, v in value.items())
    return _to_tuple(value)


@attrs.frozen(kw_only=True)
class ContainerPort:
    """A port the container listens on; *host_port* publishes it on the host."""

    container_port: int = _field(_port)
    #: publish *container_port* on this host port; 0 publishes it on a free port the engine
    #: picks (:meth:`RunningPod.host_port <asyncpod.RunningPod.host_port>` says which),
    #: where Kubernetes reads 0 as "not published"
    host_port: int | None = _field(_optional(_host_port), default=None)
    host_ip: str | None = _field(_optional(_nonempty_string), default=None)
    protocol: Protocol = attrs.field(converter=_to_protocol, default=Protocol.TCP)
    name: str | None = _field(_optional(_port_or_name), default=None)

    def __attrs_post_init__(self) -> None:
        if isinstance(self.name, int):
            raise _fail("name", "must be a port name, not a number")


@attrs.frozen(kw_only=True)
class VolumeMount:
    """Mount the pod volume *name* at *mount_path*."""

    name: str = _field(_dns_label)
    mount_path: str = _field(_nonempty_string)
    read_only: bool = _field(_instance(bool, "true or false"), default=False)
    sub_path: str | None = _field(_optional(_nonempty_string), default=None)
    mount_propagation: str | None = _field(
        _optional(_one_of("None", "HostToContainer", "Bidirectional")), default=None
    )
    recursive_read_only: str | None = _field(
        _optional(_one_of("Disabled", "IfPossible", "Enabled")), default=None
    )
    #: like *sub_path*, with ``$(VAR)`` references to the container's environment expanded
    sub_path_expr: str | None = _field(_optional(_nonempty_string), default=None)

    def __attrs_post_init__(self) -> None:
        _check_mount_options(self)
        if not self.mount_path.startswith("/"):
            raise _fail("mountPath", f"must be an absolute path, not {self.mount_path!r}")
        if ":" in self.mount_path:
            raise _fail("mountPath", f"must not contain ':', got {self.mount_path!r}")
        if "\x00" in self.mount_path:
            raise _fail("mountPath", f"must not contain a NUL character, not {self.mount_path!r}")
        if self.sub_path is not None and (
            self.sub_path.startswith("/") or ".." in self.sub_path.split("/")
        ):
            raise _fail("subPath", f"must be a relative path without '..', not {self.sub_path!r}")


@attrs.frozen(kw_only=True)
class Dependency:
    """An app container waits for container *name* to reach *condition* (beyond Kubernetes)."""

    name: str = _field(_dns_label)
    condition: Condition = attrs.field(converter=_to_condition, default=Condition.STARTED)


def _to_dependencies(value: Any) -> Any:
    if isinstance(value, Mapping):
        return tuple(Dependency(name=k, condition=v) for k, v in value.items())
    value = _to_tuple(value)
    if isinstance(value, tuple):
        return tuple(Dependency(name=v) if isinstance(v, str) else v for v in value)
    return value


def _image(path: str, value: object) -> None:
    _nonempty_string(path, value)
    assert isinstance(value, str)
    if len(value) > 255 + 128 + 100 or not _IMAGE_REF.match(value):
        raise _fail(
            path, f"{value!r} is not a valid image reference ([registry/]name[:tag][@digest])"
        )


@attrs.frozen(kw_only=True)
class Container:
    """One container of a pod.

    *command* replaces the image's entrypoint and *args* its command, as in Kubernetes:
    with *command* and no *args*, the image's command is not used.
    """

    name: str = _field(_dns_label)
    image: str = _field(_image)
    command: tuple[str, ...] = attrs.field(
        converter=_to_tuple, validator=_list_of(str, "strings"), factory=tuple
    )
    args: tuple[str, ...] = attrs.field(
        converter=_to_tuple, validator=_list_of(str, "strings"), factory=tuple
    )
    working_dir: str | None = _field(_optional(_nonempty_string), default=None)
    env: tuple[EnvVar, ...] = attrs.field(
        converter=_to_env, validator=_list_of(EnvVar, "environment variables"), factory=tuple
    )
    ports: tuple[ContainerPort, ...] = attrs.field(
        converter=_to_tuple, validator=_list_of(ContainerPort, "container ports"), factory=tuple
    )
    volume_mounts: tuple[VolumeMount, ...] = attrs.field(
        converter=_to_tuple, validator=_list_of(VolumeMount, "volume mounts"), factory=tuple
    )
    image_pull_policy: PullPolicy | None = attrs.field(converter=_to_pull_policy, default=None)
    #: On an init container, ``Always`` makes it a native sidecar; elsewhere it overrides
    #: the pod's restart policy for this container.
    restart_policy: RestartPolicy | None = attrs.field(
        converter=_to_optional_restart_policy, default=None
    )
    #: KEP-5307: restart on these exit codes whatever ``restart_policy`` says (which must
    #: then be set); not on native sidecars, which always restart
    restart_policy_rules: tuple[ContainerRestartRule, ...] = attrs.field(
        converter=_to_tuple,
        validator=_list_of(ContainerRestartRule, "restart rules"),
        factory=tuple,
    )
    startup_probe: Probe | None = _model(Probe, "a probe")
    readiness_probe: Probe | None = _model(Probe, "a probe")
    liveness_probe: Probe | None = _model(Probe, "a probe")
    lifecycle: Lifecycle | None = _model(Lifecycle, "a lifecycle")
    env_from: tuple[EnvFromSource, ...] = attrs.field(
        converter=_to_tuple, validator=_list_of(EnvFromSource, "env sources"), factory=tuple
    )
    resources: ResourceRequirements | None = _model(ResourceRequirements, "resources")
    resize_policy: tuple[ContainerResizePolicy, ...] = attrs.field(
        converter=_to_tuple, validator=_validator(check_resize_policies), factory=tuple
    )
    security_context: SecurityContext | None = _model(SecurityContext, "a security context")
    stdin: bool = _field(_instance(bool, "true or false"), default=False)
    stdin_once: bool = _field(_instance(bool, "true or false"), default=False)
    tty: bool = _field(_instance(bool, "true or false"), default=False)
    termination_message_path: str | None = _field(_optional(_nonempty_string), default=None)
    termination_message_policy: str | None = _field(
        _optional(_one_of("File", "FallbackToLogsOnError")), default=None
    )
    #: Beyond Kubernetes: containers of this pod that must reach a condition before this
    #: one starts. A plain name means ``started``.
    depends_on: tuple[Dependency, ...] = attrs.field(
        converter=_to_dependencies, validator=_list_of(Dependency, "dependencies"), factory=tuple
    )

    def __attrs_post_init__(self) -> None:
        names: dict[str, int] = {}
        for index, port in enumerate(self.ports):
            if port.name is not None:
                if port.name in names:
                    raise _fail(f"ports[{index}].name", f"duplicate port name {port.name!r}")
                names[port.name] = index
        for probe_field in ("liveness_probe", "startup_probe"):
            probe = getattr(self, probe_field)
            if probe is not None and probe.success_threshold != 1:
                raise _fail(f"{_camel(probe_field)}.successThreshold", "must be 1")
        if self.readiness_probe is not None and (
            self.readiness_probe.termination_grace_period_seconds is not None
        ):
            raise _fail(
                "readinessProbe.terminationGracePeriodSeconds",
                "must not be set on a readiness probe",
            )
        for probe_field in ("startup_probe", "readiness_probe", "liveness_probe"):
            probe = getattr(self, probe_field)
            for kind in ("http_get", "tcp_socket"):
                action = getattr(probe, kind, None) if probe is not None else None
                if (
                    isinstance(action, (HTTPGetAction, TCPSocketAction))
                    and isinstance(action.port, str)
                    and action.port not in names
                ):
                    raise _fail(
                        f"{_camel(probe_field)}.{_camel(kind)}.port",
                        f"names no port of this container: {action.port!r}",
                    )
        if self.restart_policy_rules:
            if len(self.restart_policy_rules) > 20:
                raise _fail("restartPolicyRules", "must hold at most 20 rules")
            if self.restart_policy is None:
                raise _fail("restartPolicy", "must be set when restartPolicyRules are")
        seen: set[str] = set()
        for index, dep in enumerate(self.depends_on):
            if dep.name == self.name:
                raise _fail(f"dependsOn[{index}].name", "a container cannot depend on itself")
            if dep.name in seen:
                raise _fail(f"dependsOn[{index}].name", f"duplicate dependency {dep.name!r}")
            seen.add(dep.name)
        _check_container_options(self)

    @property
    def has_hooks_or_probes(self) -> bool:
        """Whether any probe or lifecycle hook is set."""
        return any(
            getattr(self, f) is not None
            for f in ("startup_probe", "readiness_probe", "liveness_probe", "lifecycle")
        )


def _check_items(path: str, value: object, kind: type, what: str) -> None:
    if not isinstance(value, tuple):
        raise _fail(path, f"must be a list of {what}, not {type(value).__name__}")
    for index, item in enumerate(value):
        _check_type(f"{path}[{index}]", item, kind, what[:-1] if what.endswith("s") else what)


# Volumes


def _quantity(path: str, value: object) -> None:
    _check_type(path, value, str, "a quantity string such as '64Mi'")
    assert isinstance(value, str)
    try:
        size = parse_quantity(value)
    except SpecError as exc:
        raise exc.with_prefix(path) from None
    if size < 0:
        raise _fail(path, f"{value!r} must not be negative")
    # Kubernetes reads a quantity's size as an int64 (Quantity.Value), and so do Podman
    # and the kernel's tmpfs: a larger one would not reach them intact.
    if size > _INT64_MAX:
        raise _fail(path, f"{value!r} is too large: at most {_INT64_MAX} bytes (an int64)")


#: A field's metadata key: the manifest's value goes to the model as it is (no strict
#: structuring by the field's type), for the model's converter to take more than that type.
RAW = "asyncpod.raw"


def _to_quantity(value: Any) -> Any:
    """A quantity given as a number (YAML ``1024`` or ``1e3``), as its string."""
    if type(value) is int or (type(value) is float and math.isfinite(value)):
        return repr(value)
    return value


@attrs.frozen(kw_only=True)
class EmptyDirVolumeSource:
    """A scratch volume created with the pod and deleted with it.

    ``medium="Memory"`` makes it a tmpfs; *size_limit* bounds it.
    """

    medium: str = _field(_instance(str, "a string"), default="")
    #: a quantity string; a number (YAML ``1024``) is taken as its string
    size_limit: str | None = _field(
        _optional(_quantity),
        default=None,
        converter=_to_quantity,
        metadata={RAW: True},  # the manifest's number reaches _to_quantity
    )

    def __attrs_post_init__(self) -> None:
        if self.medium not in ("", "Memory"):
            raise _fail("medium", f"must be '' or 'Memory', not {self.medium!r}")

    @property
    def size_bytes(self) -> int | None:
        """*size_limit* in bytes, or ``None``."""
        return None if self.size_limit is None else parse_quantity(self.size_limit)


_HOST_PATH_TYPES = (
    "",
    "DirectoryOrCreate",
    "Directory",
    "FileOrCreate",
    "File",
    "Socket",
    "CharDevice",
    "BlockDevice",
)


def _plain_path(path: str, value: str) -> None:
    """No NUL (no system call takes it) and no '..' (Kubernetes' validatePathNoBacksteps)."""
    if "\x00" in value:
        raise _fail(path, f"must not contain a NUL character, not {value!r}")
    if ".." in value.split("/"):
        raise _fail(path, f"must not contain '..', not {value!r}")


@attrs.frozen(kw_only=True)
class HostPathVolumeSource:
    """A directory or file of the host, bind-mounted."""

    path: str = _field(_nonempty_string)
    type: str = _field(_instance(str, "a string"), default="")

    def __attrs_post_init__(self) -> None:
        if not self.path.startswith("/"):
            raise _fail("path", f"must be an absolute path, not {self.path!r}")
        _plain_path("path", self.path)
        if self.type not in _HOST_PATH_TYPES:
            allowed = ", ".join(repr(t) for t in _HOST_PATH_TYPES)
            raise _fail("type", f"must be one of {allowed}, not {self.type!r}")


_VOLUME_SOURCES = (
    "empty_dir",
    "host_path",
    "persistent_volume_claim",
    "config_map",
    "secret",
    "projected",
    "downward_api",
    "image",
    "ephemeral",
)


@attrs.frozen(kw_only=True)
class Volume:
    """A volume of the pod, mounted once for the whole pod and shared by its containers."""

    name: str = _field(_dns_label)
    empty_dir: EmptyDirVolumeSource | None = _model(EmptyDirVolumeSource, "an emptyDir source")
    host_path: HostPathVolumeSource | None = _model(HostPathVolumeSource, "a hostPath source")
    persistent_volume_claim: PersistentVolumeClaimVolumeSource | None = _model(
        PersistentVolumeClaimVolumeSource, "a persistentVolumeClaim source"
    )
    config_map: ConfigMapVolumeSource | None = _model(ConfigMapVolumeSource, "a configMap source")
    secret: SecretVolumeSource | None = _model(SecretVolumeSource, "a secret source")
    projected: ProjectedVolumeSource | None = _model(ProjectedVolumeSource, "a projected source")
    downward_api: DownwardAPIVolumeSource | None = _model(
        DownwardAPIVolumeSource, "a downwardAPI source"
    )
    image: ImageVolumeSource | None = _model(ImageVolumeSource, "an image source")
    ephemeral: EphemeralVolumeSource | None = _model(EphemeralVolumeSource, "an ephemeral source")

    def __attrs_post_init__(self) -> None:
        if all(getattr(self, source) is None for source in _VOLUME_SOURCES):
            # Kubernetes defaults a volume without a source to an emptyDir
            object.__setattr__(self, "empty_dir", EmptyDirVolumeSource())
        _exactly_one("", self, _VOLUME_SOURCES, "volume source")


def parse_quantity(text: str) -> int:
    """Turn a Kubernetes quantity such as ``64Mi`` into a whole number of bytes.

    Exact (no floating point), and a fraction of a byte is rounded up, as Kubernetes'
    ``Quantity.Value`` does.
    """
    try:
        return math.ceil(parse_amount(text))
    except ValueError as exc:
        hint = "" if "too many" in str(exc) else " (for example '64Mi', '1Gi')"
        raise SpecError("", f"{exc}{hint}") from None


# The pod


def _freeze_cluster_fields(value: Any) -> Any:
    if not isinstance(value, Mapping):
        return value  # the validator reports it
    return _cluster.freeze(value, "cluster_fields")


def _pod_name(path: str, value: object) -> None:
    _check_type(path, value, str, "a string")
    assert isinstance(value, str)
    if len(value) > 63 or not _DNS_SUBDOMAIN.match(value):
        raise _fail(
            path,
            f"{value!r} is not a valid pod name (at most 63 characters: lower-case letters, "
            "digits, '-' and '.')",
        )


@attrs.frozen(kw_only=True)
class Pod:
    """A group of containers sharing one network namespace, volumes and lifecycle.

    ``init_containers`` run one at a time, in order, each to completion, before the
    ``containers`` start; an init container with ``restart_policy="Always"`` is a native
    sidecar: started in order and kept running beside the app containers.

    *labels* and *annotations* are validated as Kubernetes validates ``metadata``: keys
    are qualified names (``[prefix/]name``), label values at most 63 characters of
    letters, digits, ``-``, ``_`` and ``.`` (or empty), annotations at most 256 KiB in all.
    """

    name: str = attrs.field()
    containers: tuple[Container, ...] = attrs.field(converter=_to_tuple)
    init_containers: tuple[Container, ...] = attrs.field(converter=_to_tuple, factory=tuple)
    volumes: tuple[Volume, ...] = attrs.field(converter=_to_tuple, factory=tuple)
    restart_policy: RestartPolicy = attrs.field(
        converter=_to_pod_restart_policy, default=RestartPolicy.ALWAYS
    )
    termination_grace_period_seconds: int = attrs.field(default=30)
    hostname: str | None = attrs.field(default=None)
    share_process_namespace: bool = attrs.field(default=False)
    labels: FrozenDict = attrs.field(converter=_to_frozen_dict, factory=FrozenDict)
    annotations: FrozenDict = attrs.field(converter=_to_frozen_dict, factory=FrozenDict)
    #: ``metadata.namespace``; ``None`` is Kubernetes' ``default``
    namespace: str | None = attrs.field(default=None)
    #: pod-level resources (Kubernetes 1.32+): cpu, memory and hugepages for the pod
    resources: ResourceRequirements | None = attrs.field(default=None)
    security_context: PodSecurityContext | None = attrs.field(default=None)
    host_network: bool = attrs.field(default=False)
    host_pid: bool = attrs.field(default=False)
    host_ipc: bool = attrs.field(default=False)
    host_users: bool | None = attrs.field(default=None)
    dns_policy: str | None = attrs.field(default=None)
    dns_config: PodDNSConfig | None = attrs.field(default=None)
    host_aliases: tuple[HostAlias, ...] = attrs.field(converter=_to_tuple, factory=tuple)
    subdomain: str | None = attrs.field(default=None)
    set_hostname_as_fqdn: bool | None = attrs.field(default=None)
    active_deadline_seconds: int | None = attrs.field(default=None)
    #: Cluster-only fields (scheduling, service accounts...: see :mod:`asyncpod.kube`) by
    #: manifest path, such as ``spec.nodeSelector``, as frozen JSON: kept so that
    #: ``dump_pod`` writes them back, and otherwise ignored.
    cluster_fields: FrozenDict = attrs.field(converter=_freeze_cluster_fields, factory=FrozenDict)

    def __attrs_post_init__(self) -> None:
        _validate_pod(self)

    @property
    def ignored_fields(self) -> tuple[str, ...]:
        """The manifest paths of the cluster-only fields asyncpod keeps but ignores: the
        namespace (one machine has none), :attr:`cluster_fields`, and the containers'
        ``resizePolicy`` (nothing is resized in place here)."""
        namespace = ("metadata.namespace",) if self.namespace is not None else ()
        resize = tuple(
            f"spec.{list_key}[{index}].resizePolicy"
            for list_key, containers in (
                ("initContainers", self.init_containers),
                ("containers", self.containers),
            )
            for index, container in enumerate(containers)
            if container.resize_policy
        )
        return (*namespace, *self.cluster_fields, *resize)

    def container(self, name: str) -> Container:
        """The container (init, sidecar or app) called *name*."""
        for container in self.all_containers:
            if container.name == name:
                return container
        raise KeyError(name)

    @property
    def all_containers(self) -> tuple[Container, ...]:
        """Init containers (sidecars included) first, then app containers, in spec order."""
        return self.init_containers + self.containers

    @property
    def sidecars(self) -> tuple[Container, ...]:
        """The native sidecars: init containers with ``restart_policy=Always``."""
        return tuple(c for c in self.init_containers if is_sidecar(c))


def is_sidecar(container: Container) -> bool:
    """Whether *container*, listed in ``init_containers``, is a native sidecar."""
    return container.restart_policy is RestartPolicy.ALWAYS


def _validate_pod(pod: Pod) -> None:
    _pod_name("metadata.name", pod.name)
    _labels("metadata.labels", pod.labels)
    _annotations("metadata.annotations", pod.annotations)
    _check_type("cluster_fields", pod.cluster_fields, FrozenDict, "a mapping")
    _int64(0)("spec.terminationGracePeriodSeconds", pod.termination_grace_period_seconds)
    if pod.hostname is not None:
        _dns_label("spec.hostname", pod.hostname)
    _check_type("spec.shareProcessNamespace", pod.share_process_namespace, bool, "true or false")
    _check_items("spec.containers", pod.containers, Container, "containers")
    _check_items("spec.initContainers", pod.init_containers, Container, "containers")
    _check_items("spec.volumes", pod.volumes, Volume, "volumes")
    _validate_pod_options(pod)
    if not pod.containers:
        raise _fail("spec.containers", "a pod needs at least one container")
    _cluster.check(pod.cluster_fields, len(pod.containers), len(pod.init_containers))

    volumes: dict[str, int] = {}
    for index, volume in enumerate(pod.volumes):
        if volume.name in volumes:
            raise _fail(f"spec.volumes[{index}].name", f"duplicate volume name {volume.name!r}")
        volumes[volume.name] = index

    names: dict[str, str] = {}
    host_ports: dict[tuple[str, int, str], str] = {}
    lists = (("initContainers", pod.init_containers), ("containers", pod.containers))
    for list_name, containers in lists:
        for index, container in enumerate(containers):
            path = f"spec.{list_name}[{index}]"
            if container.name in names:
                raise _fail(
                    f"{path}.name",
                    f"duplicate container name {container.name!r} (also {names[container.name]})",
                )
            names[container.name] = path
            check_expansion(path, container)
            if list_name == "initContainers":
                _validate_init_container(path, container)
            mounts: set[str] = set()
            for m, mount in enumerate(container.volume_mounts):
                if mount.name not in volumes:
                    raise _fail(
                        f"{path}.volumeMounts[{m}].name",
                        f"names no volume of the pod: {mount.name!r}",
                    )
                if mount.mount_path in mounts:
                    raise _fail(
                        f"{path}.volumeMounts[{m}].mountPath",
                        f"{mount.mount_path!r} is mounted twice",
                    )
                mounts.add(mount.mount_path)
            for p, port in enumerate(container.ports):
                port_path = f"{path}.ports[{p}]"
                if port.host_port:  # each 0 gets a port of its own
                    key = (port.host_ip or "", port.host_port, port.protocol.value)
                    if key in host_ports:
                        raise _fail(
                            f"{port_path}.hostPort",
                            f"host port {port.host_port}/{port.protocol.value} is already "
                            f"published by {host_ports[key]}",
                        )
                    host_ports[key] = port_path
            for hook, handler in _hooks(container):
                if handler.sleep is not None and (
                    handler.sleep.seconds > pod.termination_grace_period_seconds
                ):
                    raise _fail(
                        f"{path}.lifecycle.{hook}.sleep.seconds",
                        "must not exceed spec.terminationGracePeriodSeconds "
                        f"({pod.termination_grace_period_seconds})",
                    )

    # depends_on: only app containers declare it; targets must exist; 'ready' needs a probe.
    for index, container in enumerate(pod.containers):
        for d, dep in enumerate(container.depends_on):
            path = f"spec.containers[{index}].dependsOn[{d}]"
            if dep.name not in names:
                raise _fail(f"{path}.name", f"names no container of the pod: {dep.name!r}")
            target = pod.container(dep.name)
            if names[dep.name].startswith("spec.initContainers") and not is_sidecar(target):
                raise _fail(
                    f"{path}.name",
                    f"{dep.name!r} is an init container: every app container already starts "
                    "after all of them completed",
                )
            if dep.condition is Condition.READY and target.readiness_probe is None:
                raise _fail(
                    f"{path}.condition",
                    f"'ready' needs a readiness probe on {dep.name!r}, which has none",
                )
    for index, container in enumerate(pod.init_containers):
        if container.depends_on:
            raise _fail(
                f"spec.initContainers[{index}].dependsOn",
                "init containers run in list order and take no dependsOn",
            )

    check_acyclic(pod.containers)


def _hooks(container: Container) -> Iterator[tuple[str, LifecycleHandler]]:
    if container.lifecycle is None:
        return
    if container.lifecycle.post_start is not None:
        yield "postStart", container.lifecycle.post_start
    if container.lifecycle.pre_stop is not None:
        yield "preStop", container.lifecycle.pre_stop


def _validate_init_container(path: str, container: Container) -> None:
    if is_sidecar(container):
        if container.restart_policy_rules:
            raise _fail(
                f"{path}.restartPolicyRules",
                "a native sidecar (restartPolicy: Always) always restarts: it takes no rules",
            )
        return
    for field in ("startup_probe", "readiness_probe", "liveness_probe", "lifecycle"):
        if getattr(container, field) is not None:
            raise _fail(
                f"{path}.{_camel(field)}",
                "only native sidecars (restartPolicy: Always) may have probes or lifecycle "
                "hooks among init containers",
            )


# The fields modelled for manifests (issue #11): checks that span a model's fields


def _check_mount_options(mount: VolumeMount) -> None:
    if mount.sub_path is not None and mount.sub_path_expr is not None:
        raise _fail("subPathExpr", "subPathExpr and subPath are mutually exclusive")
    if mount.sub_path_expr is not None and (
        mount.sub_path_expr.startswith("/") or ".." in mount.sub_path_expr.split("/")
    ):
        raise _fail(
            "subPathExpr", f"must be a relative path without '..', not {mount.sub_path_expr!r}"
        )
    if mount.recursive_read_only in ("IfPossible", "Enabled"):
        if not mount.read_only:
            raise _fail("recursiveReadOnly", "may only be specified when readOnly is true")
        if mount.recursive_read_only == "Enabled" and mount.mount_propagation not in (
            None,
            "None",
        ):
            raise _fail(
                "recursiveReadOnly", "may only be specified when mountPropagation is None or unset"
            )


def _check_container_options(container: Container) -> None:
    privileged = container.security_context is not None and container.security_context.privileged
    for index, mount in enumerate(container.volume_mounts):
        if mount.mount_propagation == "Bidirectional" and not privileged:
            raise _fail(
                f"volumeMounts[{index}].mountPropagation",
                "Bidirectional mount propagation is available only to privileged containers",
            )
    if container.stdin_once and not container.stdin:
        raise _fail("stdinOnce", "requires stdin to be true")


_DNS_POLICIES = ("ClusterFirst", "ClusterFirstWithHostNet", "Default", "None")


def _validate_pod_options(pod: Pod) -> None:
    if pod.namespace is not None:
        _dns_label("metadata.namespace", pod.namespace)
    if pod.resources is not None:
        _check_type("spec.resources", pod.resources, ResourceRequirements, "resources")
        check_pod_resources("spec.resources", pod.resources)
    if pod.security_context is not None:
        _check_type(
            "spec.securityContext", pod.security_context, PodSecurityContext, "a security context"
        )
    for name in ("host_network", "host_pid", "host_ipc"):
        _check_type(f"spec.{_camel(name)}", getattr(pod, name), bool, "true or false")
    for name in ("host_users", "set_hostname_as_fqdn"):
        if getattr(pod, name) is not None:
            _check_type(f"spec.{_camel(name)}", getattr(pod, name), bool, "true or false")
    if pod.dns_policy is not None:
        _one_of(*_DNS_POLICIES)("spec.dnsPolicy", pod.dns_policy)
    if pod.dns_config is not None:
        _check_type("spec.dnsConfig", pod.dns_config, PodDNSConfig, "a DNS config")
    if pod.dns_policy == "None" and (pod.dns_config is None or not pod.dns_config.nameservers):
        raise _fail(
            "spec.dnsConfig.nameservers",
            "must provide at least one DNS nameserver when dnsPolicy is None",
        )
    _check_items("spec.hostAliases", pod.host_aliases, HostAlias, "host aliases")
    if pod.subdomain is not None:
        _dns_label("spec.subdomain", pod.subdomain)
    if pod.active_deadline_seconds is not None:
        _int64(1)("spec.activeDeadlineSeconds", pod.active_deadline_seconds)
    if pod.host_users is False:
        for name in ("host_network", "host_pid", "host_ipc"):
            if getattr(pod, name):
                raise _fail(f"spec.{_camel(name)}", "must be false when hostUsers is false")
    lists = (("initContainers", pod.init_containers), ("containers", pod.containers))
    for list_name, containers in lists:
        for index, container in enumerate(containers):
            path = f"spec.{list_name}[{index}]"
            context = container.security_context
            if context is not None and context.proc_mount == "Unmasked" and pod.host_users:
                raise _fail(
                    f"{path}.securityContext.procMount",
                    "`hostUsers` must be false to use `Unmasked`",
                )
            if pod.host_network:
                for p, port in enumerate(container.ports):
                    if port.host_port is not None and port.host_port != port.container_port:
                        raise _fail(
                            f"{path}.ports[{p}].hostPort",
                            "must match containerPort when hostNetwork is true",
                        )
            if (
                list_name == "initContainers"
                and container.resize_policy
                and not is_sidecar(container)
            ):
                raise _fail(f"{path}.resizePolicy", "only native sidecars may have a resize policy")
