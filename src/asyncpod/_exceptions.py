"""asyncpod's error tree.

Every error asyncpod raises derives from :class:`~asyncpod.AsyncpodError`::

    AsyncpodError
    ├── SpecError (also ValueError)           the pod description is invalid
    │   ├── UnsupportedFieldError             a manifest uses fields asyncpod does not support
    │   └── DependencyCycleError              the startup graph has a cycle
    ├── BackendError                          a backend operation failed
    │   ├── BackendUnavailableError           no backend service could be reached
    │   ├── ObjectNotFoundError (also LookupError)   no such pod, container, volume or exec
    │   ├── ObjectExistsError                 a name is already taken
    │   ├── PortInUseError                    a host port is already bound
    │   └── ImageError                        an image is missing or could not be pulled
    └── PodError                              the pod could not be brought up or kept running
        ├── PodVanishedError                  the pod was removed behind asyncpod's back
        ├── DeadlineExceededError             the pod outlived its activeDeadlineSeconds
        ├── BackoffLimitExceededError         a Job's pod failed more than its backoffLimit
        ├── PodTimeoutError (also TimeoutError)   a wait ran out of time; says why
        ├── ContainerFailedError              a container exited where it must not have
        └── DependencyFailedError             a dependency can never be satisfied

Backends translate their own failures into this tree in one place each; the original
exception is kept as ``__cause__``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

__all__ = [
    "AsyncpodError",
    "BackendError",
    "BackendUnavailableError",
    "ContainerFailedError",
    "CreateContainerConfigError",
    "BackoffLimitExceededError",
    "DeadlineExceededError",
    "DependencyCycleError",
    "DependencyFailedError",
    "ImageError",
    "ObjectExistsError",
    "ObjectNotFoundError",
    "PodError",
    "PodTimeoutError",
    "PodVanishedError",
    "PortInUseError",
    "SpecError",
    "UnsupportedFieldError",
]


class AsyncpodError(Exception):
    """Root of every error raised by asyncpod."""


class SpecError(AsyncpodError, ValueError):
    """A pod, container or volume description is invalid.

    *path* names the offending field the way a Kubernetes manifest spells it, for example
    ``spec.containers[1].volumeMounts[0].name``; the message starts with it.
    """

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(_message(path, reason))

    def with_prefix(self, prefix: str) -> SpecError:
        """Return a copy of this error whose path starts with *prefix*."""
        return self.with_path(_join_path(prefix, self.path))

    def with_path(self, path: str) -> SpecError:
        """Return a copy of this error (of the same type) about *path* instead."""
        err = Exception.__new__(type(self))
        err.__dict__.update(self.__dict__)
        err.path = path
        Exception.__init__(err, _message(path, self.reason))
        return err

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.path, self.reason))


#: The longest message of a SpecError: one that quotes a huge value or lists thousands of
#: names keeps its start and end, and says how much it left out (the attributes keep all).
MAX_MESSAGE_LENGTH = 1000


def _message(path: str, reason: str) -> str:
    message = f"{path}: {reason}" if path else reason
    return bound(message, MAX_MESSAGE_LENGTH)


def bound(text: str, limit: int) -> str:
    """*text*, or its start and end with an ellipsis that counts the characters left out
    if it is longer than *limit*."""
    if len(text) <= limit:
        return text
    tail = limit // 5
    head = limit - tail - 40  # room for the note
    note = f" … ({len(text) - head - tail} characters left out) … "
    return text[:head] + note + text[len(text) - tail :]


def _join_path(prefix: str, path: str) -> str:
    if not prefix:
        return path
    if not path:
        return prefix
    if path.startswith("["):
        return prefix + path
    return f"{prefix}.{path}"


class UnsupportedFieldError(SpecError):
    """A manifest uses fields that asyncpod does not support.

    *paths* lists every one of them; ``load_pod(..., strict=False)`` drops them instead,
    with one warning that lists them.
    """

    def __init__(self, paths: Sequence[str], reasons: Mapping[str, str] | None = None) -> None:
        self.paths = tuple(paths)
        #: why some of the paths cannot be honoured, and what to use instead
        self.reasons: Mapping[str, str] = dict(reasons or {})
        listed = ", ".join(
            f"{path} ({self.reasons[path]})" if path in self.reasons else path
            for path in self.paths
        )
        super().__init__(
            "", f"unsupported field(s): {listed} (pass strict=False to drop them with a warning)"
        )

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.paths, self.reasons))


class DependencyCycleError(SpecError):
    """The containers' ``depends_on`` edges form a cycle; *cycle* lists it, first name last too."""

    def __init__(self, path: str, cycle: Sequence[str]) -> None:
        self.cycle = tuple(cycle)
        super().__init__(path, f"dependency cycle: {' -> '.join(self.cycle)}")

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.path, self.cycle))


class BackendError(AsyncpodError):
    """A backend operation failed. The backend's own exception is the ``__cause__``."""


class BackendUnavailableError(BackendError):
    """No backend service could be reached; the message says what was tried."""


class ObjectNotFoundError(BackendError, LookupError):
    """No pod, container, volume, image or exec session of that name or id exists."""


class ObjectExistsError(BackendError):
    """An object of that name already exists."""


class PortInUseError(BackendError):
    """A host port the pod publishes is already in use.

    Raised once, at bring-up, for the whole pod. *port* is the host port where known,
    *holder* who holds it (``"pid 1234 (nginx)"``) where the host can tell.
    """

    def __init__(self, message: str, *, port: int | None = None, holder: str | None = None):
        self.port = port
        self.holder = holder
        super().__init__(message)

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (str(self),), {"port": self.port, "holder": self.holder})


class ImageError(BackendError):
    """An image is missing (and may not be pulled) or could not be pulled.

    *image* names it.
    """

    def __init__(self, image: str, reason: str) -> None:
        self.image = image
        self.reason = reason
        super().__init__(f"image {image!r}: {reason}")

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.image, self.reason))


class PodError(AsyncpodError):
    """The pod could not be brought up, or failed while it ran."""


class PodVanishedError(PodError):
    """The pod (its infra container, and every container with it) was removed behind
    asyncpod's back while it ran: nothing of it can run again.

    *pod* names it; *pod_id* is the backend's id of what vanished.
    """

    def __init__(self, pod: str, pod_id: str) -> None:
        self.pod = pod
        self.pod_id = pod_id
        super().__init__(
            f"pod {pod!r} (id {pod_id}) vanished: it was removed behind asyncpod's back"
        )

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.pod, self.pod_id))


class DeadlineExceededError(PodError):
    """The pod *pod* ran longer than its ``activeDeadlineSeconds`` (*seconds*)."""

    def __init__(self, pod: str, seconds: int) -> None:
        self.pod = pod
        self.seconds = seconds
        super().__init__(
            f"pod {pod!r} was active longer than its activeDeadlineSeconds ({seconds} s)"
        )

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.pod, self.seconds))


class BackoffLimitExceededError(PodError):
    """A Job's pod *pod* failed *count* times, more than its ``backoffLimit`` (*limit*)
    allows: counted as container restarts with ``restartPolicy: OnFailure``, as failed
    pods with ``Never`` (the Job's condition reason ``BackoffLimitExceeded``)."""

    #: the Job's condition reason
    reason = "BackoffLimitExceeded"

    def __init__(self, pod: str, count: int, limit: int) -> None:
        self.pod = pod
        self.count = count
        self.limit = limit
        super().__init__(
            f"BackoffLimitExceeded: the job of pod {pod!r} has reached its backoff limit "
            f"({count} failures, backoffLimit {limit})"
        )

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.pod, self.count, self.limit))


class PodTimeoutError(PodError, TimeoutError):
    """A wait on a pod (:meth:`~asyncpod.RunningPod.wait_ready` and the other waits, given
    a *timeout*) ran out of time.

    *diagnosis* (a :class:`~asyncpod.Diagnosis`) says why: the pod's status, its last
    events and its containers' last log lines; the message includes it.
    """

    def __init__(self, message: str, diagnosis: object = None) -> None:
        self.diagnosis = diagnosis
        super().__init__(f"{message}\n{diagnosis}" if diagnosis is not None else message)

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (str(self), None))


class ContainerFailedError(PodError):
    """A container exited where the pod could not go on.

    *container* names it; *exit_code* is its exit code (``None`` if it never ran) and
    *logs* holds its last log lines.
    """

    def __init__(
        self,
        container: str,
        exit_code: int | None,
        reason: str,
        logs: Sequence[str] = (),
    ) -> None:
        self.container = container
        self.exit_code = exit_code
        self.reason = reason
        self.logs = tuple(logs)
        message = f"container {container!r} {reason}"
        if exit_code is not None:
            message += f" (exit code {exit_code})"
        if self.logs:
            message += "; last log lines:\n" + "\n".join(f"  | {line}" for line in self.logs)
        super().__init__(message)

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.container, self.exit_code, self.reason, self.logs))


class CreateContainerConfigError(ContainerFailedError):
    """A container's configuration cannot be honoured, so it is not created: the kubelet's
    ``CreateContainerConfigError`` (``runAsNonRoot`` with an image that runs as root, say).

    *container* names it; *reason* is the kubelet's message.
    """

    def __init__(self, container: str, reason: str) -> None:
        super().__init__(container, None, reason)
        self.args = (f"container {container!r}: {reason}",)

    def __str__(self) -> str:
        return str(self.args[0])

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.container, self.reason))


class DependencyFailedError(ContainerFailedError):
    """A container cannot start because a dependency's condition can never be met.

    *container* is the dependency that failed; *dependent* the container that waited for it.
    """

    def __init__(
        self,
        container: str,
        exit_code: int | None,
        reason: str,
        logs: Sequence[str] = (),
        *,
        dependent: str = "",
    ) -> None:
        self.dependent = dependent
        super().__init__(container, exit_code, reason, logs)

    def __reduce__(self) -> tuple[object, ...]:
        return (
            _rebuild_dependency_failed,
            (self.container, self.exit_code, self.reason, self.logs, self.dependent),
        )


def _rebuild_dependency_failed(
    container: str, exit_code: int | None, reason: str, logs: Sequence[str], dependent: str
) -> DependencyFailedError:
    return DependencyFailedError(container, exit_code, reason, logs, dependent=dependent)
