"""A Job run as the Job controller runs it, on one machine: its pod to completion, again
after a failure up to its ``backoffLimit``, within its ``activeDeadlineSeconds``."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

import anyio

from .._bundle import Bundle
from .._events import PodEvent
from .._exceptions import BackoffLimitExceededError, ContainerFailedError, DeadlineExceededError
from .._objects import ConfigMap, Secret
from .._status import Phase, PodStatus
from ..backends._base import Backend
from ._pod import open_pod

__all__ = ["job_retry_delay", "run_job"]

logger = logging.getLogger("asyncpod")

_DEFAULT_BACKOFF_LIMIT = 6  # Kubernetes' default backoffLimit


def job_retry_delay(failures: int) -> float:
    """Seconds the Job controller waits before it runs a new pod after *failures* failed
    ones: 10 s, doubled after each failure, at most 6 minutes."""
    return float(min(10 * 2 ** min(failures - 1, 16), 360))


async def run_job(
    bundle: Bundle,
    *,
    config_maps: Iterable[ConfigMap] = (),
    secrets: Iterable[Secret] = (),
    backend: Backend | None = None,
    kill_event: anyio.Event | None = None,
    on_event: Callable[[PodEvent], object] | None = None,
) -> PodStatus:
    """Run the Job (or CronJob) of *bundle* to completion; return its pod's final status.

    As the Job controller does for ``completions: 1``: with ``restartPolicy: OnFailure``
    the pod's containers restart in place, and once their restarts reach the
    ``backoffLimit`` the pod is stopped; with ``Never`` each failed pod (a container or
    an init container exited non-zero) counts one failure, and a new pod is run until
    the failures exceed the ``backoffLimit``. Either way the run ends with
    :class:`~asyncpod.BackoffLimitExceededError` (``reason`` ``BackoffLimitExceeded``,
    the failures counted in ``count``). A new pod runs after the controller's back-off
    (10 s, doubled after each failure, at most 6 minutes). The Job's
    ``activeDeadlineSeconds`` bounds the
    whole run, retries included: :class:`~asyncpod.DeadlineExceededError` once it runs
    out.

    The other arguments are :func:`~asyncpod.open_pod`'s; each pod is torn down before the
    next one runs and before this returns.
    """
    if bundle.kind not in ("Job", "CronJob"):
        raise ValueError(f"run_job runs a Job or a CronJob, not a {bundle.kind}")
    limit = _DEFAULT_BACKOFF_LIMIT if bundle.backoff_limit is None else bundle.backoff_limit
    name = bundle.pod.name
    maps, secret_objects = tuple(config_maps), tuple(secrets)
    deadline = bundle.active_deadline_seconds
    failures = 0
    with anyio.move_on_after(deadline if deadline is not None else float("inf")) as scope:

        def job_deadline_passed() -> bool:
            """Whether the Job's deadline ran out (not a pod's own, shorter one)."""
            return deadline is not None and anyio.current_time() >= scope.deadline

        while True:
            final: PodStatus | None = None
            try:
                async with open_pod(
                    bundle,
                    config_maps=maps,
                    secrets=secret_objects,
                    backend=backend,
                    kill_event=kill_event,
                    on_event=on_event,
                ) as running:
                    final = await running.wait()
            except ContainerFailedError as exc:  # an init container failed: the pod did
                logger.info("job %s: its pod failed: %s", name, exc)
            except DeadlineExceededError:
                if job_deadline_passed():
                    break  # the Job's (which bounds its pod's)
                logger.info("job %s: its pod failed: activeDeadlineSeconds ran out", name)
            if final is not None:
                if final.phase is Phase.SUCCEEDED:
                    return final
                if final.reason == "BackoffLimitExceeded":
                    restarts = sum(c.restart_count for c in final.containers)
                    raise BackoffLimitExceededError(name, restarts, limit)
                if final.reason == "DeadlineExceeded" and job_deadline_passed():
                    break
            failures += 1
            if failures > limit:
                raise BackoffLimitExceededError(name, failures, limit)
            delay = job_retry_delay(failures)
            logger.info(
                "job %s: pod failed (%d of at most %d retries), running it again in %g s",
                name,
                failures,
                limit,
                delay,
            )
            await anyio.sleep(delay)
    assert deadline is not None  # only the Job's deadline ends the loop without a return
    raise DeadlineExceededError(name, deadline)
