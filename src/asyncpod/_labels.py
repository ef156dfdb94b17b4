"""Every label and annotation key asyncpod writes or reads, in one place.

asyncpod marks each object it creates with labels, so that what a run left behind can be
found later (:mod:`asyncpod._owned`, ``asyncpod gc``/``down``/``ps``). Backends never need
to know these keys: what they use (a container's name in its pod, say) comes to them
through the spec.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "LABEL_CLAIM",
    "LABEL_CONFORMANCE",
    "LABEL_CONTAINER",
    "LABEL_DETACHED",
    "LABEL_GRACE",
    "LABEL_MARKER",
    "LABEL_OWNER_HOST",
    "LABEL_OWNER_PID",
    "LABEL_OWNER_START",
    "LABEL_POD",
    "LABEL_PREFIX",
    "LABEL_RUN",
    "LABEL_STOP_RANK",
]

#: every key below starts with it
LABEL_PREFIX: Final = "io.asyncpod."

#: the pod's name, on every object of a run
LABEL_POD: Final = "io.asyncpod.pod"
#: the run's id (:attr:`RunningPod.run_id`), on every object of a run
LABEL_RUN: Final = "io.asyncpod.run"
#: on containers: the container's name in the pod
LABEL_CONTAINER: Final = "io.asyncpod.container"
#: "true" on every object of a pod opened with ``detach=True``: it is meant to outlive its
#: owner, which it does once the marker volume (below) exists
LABEL_DETACHED: Final = "io.asyncpod.detached"
#: "detached" on the volume created when a detached pod is left running: the proof that it
#: was, not a run whose owner died half-way through bring-up (labels cannot be changed)
LABEL_MARKER: Final = "io.asyncpod.marker"
#: on containers: teardown layer (:meth:`StartupPlan.stop_ranks`), lowest stops first
LABEL_STOP_RANK: Final = "io.asyncpod.stop-rank"
#: on containers: the pod's termination grace period, in seconds
LABEL_GRACE: Final = "io.asyncpod.grace-period"

#: the owning process: its pid, host name and start time (clock ticks since boot)
LABEL_OWNER_PID: Final = "io.asyncpod.owner-pid"
LABEL_OWNER_HOST: Final = "io.asyncpod.owner-host"
LABEL_OWNER_START: Final = "io.asyncpod.owner-start"

#: on the volume of a PersistentVolumeClaim: the claim's name. Such a volume carries no
#: run's labels: it outlives every run, and only ``remove_claim`` removes it
LABEL_CLAIM: Final = "io.asyncpod.claim"

#: on objects the conformance suite creates
LABEL_CONFORMANCE: Final = "io.asyncpod.conformance"
