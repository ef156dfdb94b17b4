"""Who a fake container's process is: its user, groups, capabilities and confinement, as
``id`` prints them and ``/proc/self/status`` shows them on Linux."""

from __future__ import annotations

from .._base import ContainerSecurity

__all__ = ["capabilities", "id_output", "proc_status", "user_ids"]

# include/uapi/linux/capability.h, CAP_CHOWN (0) to CAP_CHECKPOINT_RESTORE (40)
_CAPABILITIES = (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID",
    "SETUID", "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN",
    "NET_RAW", "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE",
    "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME",
    "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
    "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ",
    "PERFMON", "BPF", "CHECKPOINT_RESTORE",
)  # fmt: skip
_BITS = {name: 1 << bit for bit, name in enumerate(_CAPABILITIES)}
_ALL = (1 << len(_CAPABILITIES)) - 1
#: the capabilities Podman (containers.conf) gives a container by default
_DEFAULT = (
    "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "NET_BIND_SERVICE", "SETFCAP",
    "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT", "AUDIT_WRITE", "MKNOD", "NET_RAW",
)  # fmt: skip


def _mask(names: tuple[str, ...]) -> int:
    mask = 0
    for name in names:
        mask |= _ALL if name == "ALL" else _BITS.get(name, 0)
    return mask


def capabilities(security: ContainerSecurity | None) -> int:
    """The bounding set of the container's processes, as a bit mask."""
    if security is not None and security.privileged:
        return _ALL
    mask = _mask(_DEFAULT)
    if security is not None:
        mask = (mask & ~_mask(security.cap_drop)) | _mask(security.cap_add)
    return mask


def user_ids(
    security: ContainerSecurity | None, image_user: str
) -> tuple[int, int, tuple[int, ...]]:
    """The uid, gid and supplementary groups the container's processes run with (a
    non-numeric image user counts as root: the fake has no ``/etc/passwd`` to ask)."""
    user = security.user if security is not None and security.user else image_user
    uid_text, _, gid_text = (user or "0").partition(":")
    uid = int(uid_text) if uid_text.isdigit() else 0
    gid = int(gid_text) if gid_text.isdigit() else 0
    groups = security.groups if security is not None else ()
    return uid, gid, tuple(groups)


def id_output(uid: int, gid: int, groups: tuple[int, ...]) -> str:
    """What busybox ``id`` prints for a user without a name in ``/etc/passwd``."""
    text = f"uid={uid}({uid}) gid={gid}({gid})"
    if groups:
        text += " groups=" + ",".join(str(group) for group in groups)
    return text


def proc_status(security: ContainerSecurity | None, image_user: str) -> bytes:
    """The identity lines of ``/proc/self/status`` for the container's main process."""
    uid, gid, groups = user_ids(security, image_user)
    bounding = capabilities(security)
    effective = bounding if uid == 0 else 0
    seccomp = None if security is None else security.seccomp
    confined = not (security is not None and security.privileged) and seccomp != "unconfined"
    no_new = security is not None and security.no_new_privileges
    lines = [
        f"Uid:\t{uid}\t{uid}\t{uid}\t{uid}",
        f"Gid:\t{gid}\t{gid}\t{gid}\t{gid}",
        "Groups:\t" + " ".join(str(group) for group in groups),
        "CapInh:\t0000000000000000",
        f"CapPrm:\t{effective:016x}",
        f"CapEff:\t{effective:016x}",
        f"CapBnd:\t{bounding:016x}",
        "CapAmb:\t0000000000000000",
        f"NoNewPrivs:\t{int(no_new)}",
        f"Seccomp:\t{2 if confined else 0}",
    ]
    return "".join(f"{line}\n" for line in lines).encode()
