"""The supervisor: brings a pod up along its plan, keeps it running, and tears it down.

Everything Kubernetes-specific happens here, identically for every backend: start order,
probes, restarts with back-off, phases, ordered teardown. The backend only runs
containers. One concept a module:

- :mod:`._pod`: the facade, :func:`open_pod` and :class:`RunningPod`;
- :mod:`._job`: :func:`run_job`, a Job's pod run again after a failure, as a Job's is;
- :mod:`._core`: the supervisor of one run (bring-up, status, retirement, teardown);
- :mod:`._runner`: one container's lifecycle, driven through the state machine of
  :mod:`._state`;
- :mod:`._health`: the probes and hooks of a container's run;
- :mod:`._stopper`: stopping a group of containers for good, in order;
- :mod:`._spec`: what the backend is asked to create, every Kubernetes rule resolved;
- :mod:`._kubelet`: the kubelet's numbers (grace periods, back-off);
- :mod:`._faults`: whose failure a backend error is, the engine's or a container's.
"""

from __future__ import annotations

from ._job import job_retry_delay, run_job
from ._kubelet import BACKOFF_INITIAL, BACKOFF_MAX, BACKOFF_RESET, LOG_TAIL, MIN_GRACE
from ._pod import RunningPod, open_pod

__all__ = [
    "BACKOFF_INITIAL",
    "BACKOFF_MAX",
    "BACKOFF_RESET",
    "LOG_TAIL",
    "MIN_GRACE",
    "RunningPod",
    "open_pod",
    "job_retry_delay",
    "run_job",
]
