"""Security contexts: a container's ``securityContext`` and the pod's.

Every field is optional and ``None`` means "not set" (the runtime's default), as in
Kubernetes; validation follows ``pkg/apis/core/validation``. Windows options are refused:
asyncpod runs Linux containers.
"""

from __future__ import annotations

import re

import attrs

from ._base import (
    check_type,
    fail,
    field,
    instance_of,
    int64,
    list_of,
    model_field,
    nonempty_string,
    one_of,
    optional_bool,
    optional_of,
    to_tuple,
)

__all__ = [
    "AppArmorProfile",
    "Capabilities",
    "PodSecurityContext",
    "SeccompProfile",
    "SecurityContext",
    "SELinuxOptions",
    "Sysctl",
]

_PROFILE_TYPES = ("RuntimeDefault", "Unconfined", "Localhost")


def _check_profile(profile: SeccompProfile | AppArmorProfile) -> None:
    if profile.type == "Localhost":
        if profile.localhost_profile is None:
            raise fail("localhostProfile", "is required when type is 'Localhost'")
    elif profile.localhost_profile is not None:
        raise fail("localhostProfile", "can only be set when type is 'Localhost'")


@attrs.frozen(kw_only=True)
class SeccompProfile:
    """The seccomp profile: the runtime's default, none, or a file of the node's."""

    type: str = field(one_of(*_PROFILE_TYPES))
    localhost_profile: str | None = field(optional_of(nonempty_string), default=None)

    def __attrs_post_init__(self) -> None:
        _check_profile(self)


@attrs.frozen(kw_only=True)
class AppArmorProfile:
    """The AppArmor profile: the runtime's default, none, or one loaded on the node."""

    type: str = field(one_of(*_PROFILE_TYPES))
    localhost_profile: str | None = field(optional_of(nonempty_string), default=None)

    def __attrs_post_init__(self) -> None:
        _check_profile(self)


@attrs.frozen(kw_only=True)
class Capabilities:
    """Linux capabilities to add to and drop from the runtime's default set."""

    add: tuple[str, ...] = attrs.field(
        converter=to_tuple, validator=list_of(str, "capability names"), factory=tuple
    )
    drop: tuple[str, ...] = attrs.field(
        converter=to_tuple, validator=list_of(str, "capability names"), factory=tuple
    )


@attrs.frozen(kw_only=True)
class SELinuxOptions:
    """The SELinux label of the container's processes."""

    user: str | None = field(optional_of(instance_of(str, "a string")), default=None)
    role: str | None = field(optional_of(instance_of(str, "a string")), default=None)
    type: str | None = field(optional_of(instance_of(str, "a string")), default=None)
    level: str | None = field(optional_of(instance_of(str, "a string")), default=None)


_ID = optional_of(int64(0))


@attrs.frozen(kw_only=True)
class SecurityContext:
    """A container's ``securityContext``: user, privileges, capabilities, profiles."""

    run_as_user: int | None = field(_ID, default=None)
    run_as_group: int | None = field(_ID, default=None)
    run_as_non_root: bool | None = optional_bool()
    privileged: bool | None = optional_bool()
    allow_privilege_escalation: bool | None = optional_bool()
    capabilities: Capabilities | None = model_field(Capabilities, "capabilities")
    read_only_root_filesystem: bool | None = optional_bool()
    seccomp_profile: SeccompProfile | None = model_field(SeccompProfile, "a seccomp profile")
    app_armor_profile: AppArmorProfile | None = model_field(AppArmorProfile, "an AppArmor profile")
    proc_mount: str | None = field(optional_of(one_of("Default", "Unmasked")), default=None)
    se_linux_options: SELinuxOptions | None = model_field(SELinuxOptions, "SELinux options")

    def __attrs_post_init__(self) -> None:
        if self.allow_privilege_escalation is False:
            if self.privileged:
                raise fail(
                    "allowPrivilegeEscalation",
                    "cannot set allowPrivilegeEscalation to false and privileged to true",
                )
            if self.capabilities is not None and "CAP_SYS_ADMIN" in {
                name if name.startswith("CAP_") else f"CAP_{name}" for name in self.capabilities.add
            }:
                raise fail(
                    "allowPrivilegeEscalation",
                    "cannot set allowPrivilegeEscalation to false and capabilities.add "
                    "CAP_SYS_ADMIN",
                )


# IsValidSysctlName (pkg/apis/core/validation): dot- or slash-separated segments
_SYSCTL = re.compile(r"([a-z0-9]([-_a-z0-9]*[a-z0-9])?[./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?\Z")


def _sysctl_name(path: str, value: object) -> None:
    check_type(path, value, str, "a string")
    assert isinstance(value, str)
    if len(value) > 253 or not _SYSCTL.match(value):
        raise fail(path, f"{value!r} is not a valid sysctl name (such as 'net.ipv4.ip_forward')")


@attrs.frozen(kw_only=True)
class Sysctl:
    """A namespaced kernel parameter set for the pod."""

    name: str = field(_sysctl_name)
    value: str = field(instance_of(str, "a string"))


def _groups(path: str, value: object) -> None:
    if not isinstance(value, tuple):
        raise fail(path, f"must be a list of group IDs, not {type(value).__name__}")
    for index, group in enumerate(value):
        int64(0)(f"{path}[{index}]", group)


@attrs.frozen(kw_only=True)
class PodSecurityContext:
    """The pod's ``securityContext``: defaults for its containers, and pod-wide settings
    (``fs_group``, ``supplemental_groups``, ``sysctls``)."""

    run_as_user: int | None = field(_ID, default=None)
    run_as_group: int | None = field(_ID, default=None)
    run_as_non_root: bool | None = optional_bool()
    supplemental_groups: tuple[int, ...] = attrs.field(converter=to_tuple, factory=tuple)
    supplemental_groups_policy: str | None = field(
        optional_of(one_of("Merge", "Strict")), default=None
    )
    fs_group: int | None = field(_ID, default=None)
    fs_group_change_policy: str | None = field(
        optional_of(one_of("OnRootMismatch", "Always")), default=None
    )
    sysctls: tuple[Sysctl, ...] = attrs.field(
        converter=to_tuple, validator=list_of(Sysctl, "sysctls"), factory=tuple
    )
    seccomp_profile: SeccompProfile | None = model_field(SeccompProfile, "a seccomp profile")
    app_armor_profile: AppArmorProfile | None = model_field(AppArmorProfile, "an AppArmor profile")
    se_linux_options: SELinuxOptions | None = model_field(SELinuxOptions, "SELinux options")

    def __attrs_post_init__(self) -> None:
        _groups("supplementalGroups", self.supplemental_groups)
        seen: set[str] = set()
        for index, sysctl in enumerate(self.sysctls):
            if sysctl.name in seen:
                raise fail(f"sysctls[{index}].name", f"duplicate sysctl {sysctl.name!r}")
            seen.add(sysctl.name)
