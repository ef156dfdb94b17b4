"""The probes and lifecycle hooks of a container's run, as the kubelet runs them.

postStart, then the startup probe, then the readiness and liveness probes
(:func:`after_start`, the activity of a started container); the kill of a container that
failed one; the preStop hook. The checks themselves are in :mod:`asyncpod._probes`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import anyio

from .._events import EventReason
from .._exceptions import AsyncpodError
from .._models import Condition, LifecycleHandler, Probe
from .._probes import ProbeResult, check_exec, check_grpc, check_http, check_tcp
from ._kubelet import MIN_GRACE

if TYPE_CHECKING:
    from ._runner import Runner

__all__ = ["after_start", "pre_stop"]

logger = logging.getLogger("asyncpod")


async def after_start(runner: Runner) -> None:
    """postStart, then startup probe, then readiness and liveness probes."""
    container = runner.container
    post_start = container.lifecycle.post_start if container.lifecycle is not None else None
    if post_start is not None and not await _run_hook(runner, post_start):
        logger.warning("postStart hook of %s/%s failed", runner.sup.pod.name, runner.name)
        runner.emit(EventReason.FAILED_POST_START_HOOK, "postStart hook failed")
        await _kill(runner, None, "failed its postStart hook")
        return
    startup = container.startup_probe
    if startup is not None and not await _probe_until_threshold(runner, startup):
        await _kill(runner, startup, "failed its startup probe")
        return
    runner.mark_started()
    async with anyio.create_task_group() as tg:
        if container.readiness_probe is not None:
            tg.start_soon(_readiness_loop, runner, container.readiness_probe)
        if container.liveness_probe is not None:
            tg.start_soon(_liveness_loop, runner, container.liveness_probe)


async def _probe(runner: Runner, probe: Probe) -> bool:
    sup = runner.sup
    backend = sup.backend
    assert runner.cid is not None
    assert sup.pod_id is not None
    result = ProbeResult(False, f"probe timed out after {probe.timeout_seconds}s")
    if probe.grpc is not None:  # as the kubelet's gRPC probe words it
        result = ProbeResult(
            False, f"timeout: health rpc did not complete within {probe.timeout_seconds}s"
        )
    with anyio.move_on_after(probe.timeout_seconds):
        if probe.exec is not None:
            result = await check_exec(backend, runner.cid, probe.exec)
        elif probe.http_get is not None:
            result = await check_http(backend, sup.pod_id, runner.container, probe.http_get)
        elif probe.tcp_socket is not None:
            result = await check_tcp(backend, sup.pod_id, runner.container, probe.tcp_socket)
        elif probe.grpc is not None:
            result = await check_grpc(backend, sup.pod_id, probe.grpc)
    if not result:
        kind = _probe_kind(runner, probe)
        logger.info("%s probe of %s/%s failed: %s", kind, sup.pod.name, runner.name, result.reason)
        # As the kubelet words it: "Readiness probe failed: HTTP probe failed with ..."
        runner.emit(EventReason.UNHEALTHY, f"{kind.capitalize()} probe failed: {result.reason}")
    return result.passed


def _probe_kind(runner: Runner, probe: Probe) -> str:
    container = runner.container
    if probe is container.startup_probe:
        return "startup"
    return "readiness" if probe is container.readiness_probe else "liveness"


async def _probe_until_threshold(runner: Runner, probe: Probe) -> bool:
    """Probe every period until one success (True) or *failure_threshold* failures."""
    await anyio.sleep(probe.initial_delay_seconds)
    failures = 0
    while True:
        if await _probe(runner, probe):
            return True
        failures += 1
        if failures >= probe.failure_threshold:
            return False
        await anyio.sleep(probe.period_seconds)


async def _readiness_loop(runner: Runner, probe: Probe) -> None:
    await anyio.sleep(probe.initial_delay_seconds)
    successes = failures = 0
    while True:
        if await _probe(runner, probe):
            successes, failures = successes + 1, 0
            if successes >= probe.success_threshold:
                runner.set_ready(True)
        else:
            successes, failures = 0, failures + 1
            # Until it has been ready once, one failure is enough to say it is not.
            if failures >= probe.failure_threshold or not runner.satisfies(Condition.READY):
                if runner.ready:
                    logger.info("container %s/%s is not ready", runner.sup.pod.name, runner.name)
                runner.set_ready(False)
        await anyio.sleep(probe.period_seconds)


async def _liveness_loop(runner: Runner, probe: Probe) -> None:
    if not await _probe_until_failed(runner, probe):
        return
    logger.warning("liveness probe of %s/%s failed: restarting", runner.sup.pod.name, runner.name)
    await _kill(runner, probe, "failed its liveness probe")


async def _probe_until_failed(runner: Runner, probe: Probe) -> bool:
    await anyio.sleep(probe.initial_delay_seconds)
    failures = 0
    while True:
        if await _probe(runner, probe):
            failures = 0
        else:
            failures += 1
            if failures >= probe.failure_threshold:
                return True
        await anyio.sleep(probe.period_seconds)


async def _kill(runner: Runner, probe: Probe | None, why: str) -> None:
    """Stop the container (it failed a probe or a hook); its exit may restart it.

    As the kubelet does: preStop first (a failed liveness or startup probe is a
    "management event"), then the stop signal, all within the probe's grace period (or
    the pod's), never less than 2 s for the stop itself.
    """
    sup = runner.sup
    grace: float = sup.pod.termination_grace_period_seconds
    if probe is not None and probe.termination_grace_period_seconds is not None:
        grace = probe.termination_grace_period_seconds
    assert runner.cid is not None
    runner.emit(EventReason.KILLING, f"Container {runner.name} {why}, will be stopped")
    runner.set_ready(False)
    runner.notify()
    deadline = sup.now() + grace
    lifecycle = runner.container.lifecycle
    handler = lifecycle.pre_stop if lifecycle else None
    if handler is not None and probe is not None and grace > 0:
        await pre_stop(runner, handler, deadline)
    # On a failure the exit watcher sees whatever state the container is in.
    await runner.stop_container(max(deadline - sup.now(), MIN_GRACE))


async def _run_hook(runner: Runner, handler: LifecycleHandler) -> bool:
    sup = runner.sup
    assert runner.cid is not None
    assert sup.pod_id is not None
    if handler.exec is not None:
        return (await check_exec(sup.backend, runner.cid, handler.exec)).passed
    if handler.http_get is not None:
        result = await check_http(sup.backend, sup.pod_id, runner.container, handler.http_get)
        return result.passed
    if handler.sleep is not None:
        await anyio.sleep(handler.sleep.seconds)
    return True


async def pre_stop(runner: Runner, handler: LifecycleHandler, deadline: float) -> None:
    """Run the preStop hook until it ends or *deadline* (+2 s, as the kubelet grants)."""
    failure = "preStop hook failed"
    with anyio.move_on_after(max(deadline - runner.sup.now(), 0) + MIN_GRACE) as scope:
        try:
            if await _run_hook(runner, handler):
                return
        except AsyncpodError as exc:
            failure = f"preStop hook failed: {exc}"
    if scope.cancelled_caught:
        failure = "preStop hook did not finish within the grace period"
    logger.warning("%s/%s: %s", runner.sup.pod.name, runner.name, failure)
    runner.emit(EventReason.FAILED_PRE_STOP_HOOK, failure)
