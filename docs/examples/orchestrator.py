"""A small orchestrator: one backend, one task per pod, engine events, stop on demand.

Each pod runs in its own task, started with ``task_group.start()`` so that the caller gets
the :class:`~asyncpod.RunningPod` once the pod is Ready. Cancelling the task's scope tears
the pod down; the task group waits until that is done.
"""

from __future__ import annotations

import anyio
import anyio.abc
import attrs

import asyncpod
from asyncpod.backends import Backend, FakeBackend, Program

#: the seed's javaweb-2 manifest, verbatim (asyncpod's examples/javaweb-2.yaml)
MANIFEST = """\
apiVersion: v1
kind: Pod
metadata:
  name: javaweb-2
spec:
  initContainers:
  - image: app:v2
    name: war
    command: ["cp", "/app.war", "/app"]
    volumeMounts:
    - mountPath: /app
      name: app-volume
  containers:
  - image: tomcat:7.0
    name: tomcat
    command: ["sh","-c","/root/apache-tomcat-7.0.42-v2/bin/start.sh"]
    volumeMounts:
    - mountPath: /root/apache-tomcat-7.0/webapps
      name: app-volume
    ports:
    - containerPort: 8080
      hostPort: 8001
  volumes:
  - name: app-volume
    emptyDir: {}
"""


@attrs.frozen
class Handle:
    """What the orchestrator keeps of a running pod."""

    running: asyncpod.RunningPod
    scope: anyio.CancelScope
    gone: anyio.Event

    async def stop(self) -> None:
        """Tear the pod down and wait until every object of it is removed."""
        self.scope.cancel()
        await self.gone.wait()


async def run_pod(
    pod: asyncpod.Pod,
    backend: Backend,
    *,
    task_status: anyio.abc.TaskStatus[Handle] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Run *pod* until cancelled; hand back a Handle once it is Ready."""
    gone = anyio.Event()
    try:
        with anyio.CancelScope() as scope:
            async with asyncpod.open_pod(pod, backend=backend) as running:
                with anyio.fail_after(120):
                    await running.wait_ready()
                task_status.started(Handle(running, scope, gone))
                await running.wait()  # until the pod Succeeded or Failed, or cancelled
    finally:
        gone.set()


async def record_events(
    backend: Backend,
    pod_name: str,
    seen: list[str],
    *,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Record the containers' start and died events of the pods called *pod_name*."""
    async with backend.events({"io.asyncpod.pod": pod_name}) as events:
        task_status.started()  # subscribed: no event from now on is missed
        async for event in events:
            if event.type == "container" and event.action in ("start", "died"):
                name = event.name.removeprefix(f"{pod_name}-")
                code = f" ({event.exit_code})" if event.exit_code is not None else ""
                seen.append(f"{name} {event.action}{code}")


async def main() -> None:
    pod = asyncpod.kube.load_pod(MANIFEST)
    plan = asyncpod.StartupPlan.from_pod(pod)
    print("layers:", [[step.name for step in layer] for layer in plan.layers()])

    backend = FakeBackend(programs={"tomcat:7.0": Program(serve=[8080], delay=None)})
    backend.add_image("app:v2", {"/app.war": b"war"})
    seen: list[str] = []
    async with backend, anyio.create_task_group() as tg:
        await tg.start(record_events, backend, pod.name, seen)
        handle: Handle = await tg.start(run_pod, pod, backend)
        status = handle.running.status()
        print(f"{pod.name} is {status.phase.value}, ready={status.conditions.ready}")
        print("labels:", sorted(handle.running.labels))
        await handle.stop()
        print("objects left:", await backend.list_objects({"io.asyncpod.pod": pod.name}))
        tg.cancel_scope.cancel()  # stop recording
    print("events:", ", ".join(seen))


if __name__ == "__main__":
    anyio.run(main)
