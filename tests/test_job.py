"""A Job's backoffLimit and activeDeadlineSeconds, on the fake (virtual time): restarts
counted with ``restartPolicy: OnFailure``, failed pods with ``Never``; ``run_job`` and
``open_pod`` with a Job's bundle. The Podman run is in tests/test_podman_pod_fields.py."""

from __future__ import annotations

import pickle
from pathlib import Path

import anyio
import pytest

import asyncpod
from asyncpod import BackoffLimitExceededError, DeadlineExceededError, EventReason, Phase
from asyncpod._cli import main
from asyncpod._supervisor import job_retry_delay
from asyncpod.backends import FakeBackend, PodSpec
from asyncpod.kube import Bundle, load

pytestmark = pytest.mark.anyio


def job(
    policy: str,
    command: str,
    *,
    backoff: int | None = None,
    deadline: int | None = None,
    init: str | None = None,
) -> Bundle:
    spec = [f"backoffLimit: {backoff}"] if backoff is not None else []
    if deadline is not None:
        spec.append(f"activeDeadlineSeconds: {deadline}")
    init_block = (
        f"""
      initContainers:
      - name: prep
        image: busybox
        command: [{init}]"""
        if init
        else ""
    )
    text = f"""
apiVersion: batch/v1
kind: Job
metadata:
  name: pi
spec:
{"".join(f"  {line}{chr(10)}" for line in spec)}  template:
    spec:
      restartPolicy: {policy}
      terminationGracePeriodSeconds: 1{init_block}
      containers:
      - name: work
        image: busybox
        command: [{command}]
"""
    return load(text)


class _Counting(FakeBackend):
    """A FakeBackend that counts the pods it creates."""

    def __init__(self) -> None:
        super().__init__()
        self.pods = 0

    async def create_pod(self, spec: PodSpec) -> str:
        self.pods += 1
        return await super().create_pod(spec)


def test_the_bundle_keeps_the_jobs_limits() -> None:
    bundle = job("Never", "'true'", backoff=2, deadline=30)
    assert (bundle.backoff_limit, bundle.active_deadline_seconds) == (2, 30)
    assert "spec.activeDeadlineSeconds" not in bundle.ignored_fields
    assert job("Never", "'true'").backoff_limit == 6  # Kubernetes' default


def test_a_jobs_deadline_must_be_positive() -> None:
    with pytest.raises(asyncpod.SpecError, match=r"spec\.activeDeadlineSeconds"):
        job("Never", "'true'", deadline=0)


async def test_never_runs_a_new_pod_per_failure_up_to_the_limit() -> None:
    """backoffLimit 2 with Never: three pods fail (the first and two retries), then the
    job has failed: BackoffLimitExceeded, three failures counted; nothing left."""
    async with _Counting() as fake:
        with pytest.raises(BackoffLimitExceededError) as caught:
            await asyncpod.run_job(job("Never", "'false'", backoff=2), backend=fake)
        assert fake.pods == 3
        assert fake.objects() == []
    error = caught.value
    assert (error.reason, error.count, error.limit, error.pod) == (
        "BackoffLimitExceeded",
        3,
        2,
        "pi",
    )
    assert "BackoffLimitExceeded" in str(error) and "3 failures" in str(error)
    assert pickle.loads(pickle.dumps(error)).count == 3


async def test_never_with_a_failing_init_container_counts_each_pod() -> None:
    async with _Counting() as fake:
        with pytest.raises(BackoffLimitExceededError) as caught:
            await asyncpod.run_job(job("Never", "'true'", backoff=1, init="'false'"), backend=fake)
        assert (fake.pods, caught.value.count) == (2, 2)


async def test_backoff_limit_zero_never_retries() -> None:
    async with _Counting() as fake:
        with pytest.raises(BackoffLimitExceededError) as caught:
            await asyncpod.run_job(job("Never", "'false'", backoff=0), backend=fake)
        assert (fake.pods, caught.value.count) == (1, 1)


async def test_a_job_that_succeeds_runs_once() -> None:
    async with _Counting() as fake:
        final = await asyncpod.run_job(job("Never", "'true'", backoff=2), backend=fake)
        assert final.phase is Phase.SUCCEEDED
        assert fake.pods == 1
        assert fake.objects() == []


async def test_on_failure_counts_restarts_in_one_pod() -> None:
    """backoffLimit 3 with OnFailure: the container restarts in place; at the third
    restart the pod is stopped and has failed, reason BackoffLimitExceeded."""
    events: list[asyncpod.PodEvent] = []
    async with _Counting() as fake:
        with pytest.raises(BackoffLimitExceededError) as caught:
            await asyncpod.run_job(
                job("OnFailure", "'false'", backoff=3), backend=fake, on_event=events.append
            )
        assert fake.pods == 1
        assert fake.objects() == []
    assert (caught.value.count, caught.value.limit) == (3, 3)
    reasons = [e.reason for e in events]
    assert reasons.count(EventReason.RESTARTING) == 3
    assert EventReason.BACKOFF_LIMIT_EXCEEDED in reasons
    # no run after the restart that reached the limit
    assert reasons.count(EventReason.STARTED) == 3


async def test_open_pod_with_a_jobs_bundle_enforces_on_failure_restarts(
    fake: FakeBackend,
) -> None:
    async with asyncpod.open_pod(job("OnFailure", "'false'", backoff=1), backend=fake) as running:
        final = await running.wait()
        assert (final.phase, final.reason) == (Phase.FAILED, "BackoffLimitExceeded")
        assert final.container("work").restart_count == 1


async def test_a_pod_that_is_not_a_jobs_restarts_on(fake: FakeBackend) -> None:
    """The same pod as a plain Pod: no backoffLimit, it goes on restarting."""
    pod = job("OnFailure", "'false'", backoff=1).pod
    async with asyncpod.open_pod(pod, backend=fake) as running:
        with anyio.move_on_after(300):
            while running.status().container("work").restart_count < 3:  # noqa: ASYNC110
                await anyio.sleep(1)
        status = running.status()
        assert status.container("work").restart_count >= 3
        assert status.reason is None and status.phase is Phase.RUNNING


async def test_the_jobs_deadline_bounds_every_retry() -> None:
    """activeDeadlineSeconds 120 with Never and pods that each fail after 40 s, run again
    after 10 s then 20 s of back-off: the third pod (from 110 s) is cut by the deadline,
    and the job fails with DeadlineExceeded, not the limit."""
    async with _Counting() as fake:
        with pytest.raises(DeadlineExceededError) as caught:
            await asyncpod.run_job(
                job("Never", "'sh', '-c', 'sleep 40; exit 1'", backoff=6, deadline=120),
                backend=fake,
            )
        assert fake.pods == 3
        assert fake.objects() == []
    assert caught.value.seconds == 120


async def test_run_job_refuses_what_is_not_a_job(fake: FakeBackend) -> None:
    deployment = load(
        """
apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
spec:
  selector: {matchLabels: {app: d}}
  template:
    metadata: {labels: {app: d}}
    spec:
      containers: [{name: c, image: busybox}]
"""
    )
    with pytest.raises(ValueError, match="Deployment"):
        await asyncpod.run_job(deployment, backend=fake)


_CLI_JOB = """
apiVersion: batch/v1
kind: Job
metadata: {name: pi}
spec:
  backoffLimit: 1
  template:
    spec:
      restartPolicy: Never
      terminationGracePeriodSeconds: 1
      containers:
      - {name: work, image: busybox, command: [sh, -c, 'echo oops >&2; exit 3']}
"""


def test_the_controllers_back_off_between_pods() -> None:
    assert [job_retry_delay(n) for n in (1, 2, 3, 6, 7, 60)] == [10, 20, 40, 320, 360, 360]


def test_up_runs_a_failed_jobs_pod_again_up_to_its_backoff_limit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    delays: list[int] = []

    def no_wait(failures: int) -> float:  # the CLI runs in real time: say it, don't wait
        delays.append(failures)
        return 0.0

    monkeypatch.setattr("asyncpod._cli._up.job_retry_delay", no_wait)
    path = tmp_path / "job.yaml"
    path.write_text(_CLI_JOB)
    assert main(["up", "--backend", "fake", str(path)]) == 1
    captured = capsys.readouterr()
    retried = [x for x in captured.out.splitlines() if "running it again" in x]
    assert retried == [
        "pod pi failed; running it again in 0 s (1 of at most 1 retries: the job's backoffLimit)"
    ]
    assert delays == [1]
    assert captured.err.splitlines()[:3] == [
        "asyncpod: error: BackoffLimitExceeded: the job of pod 'pi' has reached its backoff "
        "limit (2 failures, backoffLimit 1)",
        "pod pi failed: 'work' exited with 3",
        "  work | oops",
    ]
