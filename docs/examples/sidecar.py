"""The log-sidecar example: an app writes log lines to a shared volume, a sidecar collects them.

The collector is a *native sidecar*: an init container with ``restartPolicy: Always``. It
starts before the app, runs beside it, and is stopped only after the app has stopped.
"""

from __future__ import annotations

import anyio

import asyncpod
from asyncpod.backends import FakeBackend, FakeContext

#: asyncpod's examples/log-sidecar.yaml
MANIFEST = """\
apiVersion: v1
kind: Pod
metadata:
  name: log-sidecar
  labels:
    app: log-sidecar
spec:
  initContainers:
  - name: log-collector
    image: localhost/asyncpod/busybox:latest
    restartPolicy: Always
    command: ["sh", "-c", "trap 'exit 0' TERM; tail -F /var/log/app/app.log & wait"]
    volumeMounts:
    - name: logs
      mountPath: /var/log/app
      readOnly: true
  containers:
  - name: app
    image: localhost/asyncpod/busybox:latest
    command:
    - sh
    - -c
    - |
      trap 'exit 0' TERM
      while true; do echo "$(date) hello" >> /var/log/app/app.log; sleep 1; done
    volumeMounts:
    - name: logs
      mountPath: /var/log/app
  volumes:
  - name: logs
    emptyDir: {}
"""
LOG = "/var/log/app/app.log"


async def app(ctx: FakeContext) -> int:
    """Stands in for the app's shell loop: appends a line to the log every second."""
    ctx.handle_term = True  # SIGTERM sets ctx.terminated; the program decides when to exit
    count = 0
    while not ctx.terminated.is_set():
        count += 1
        text = ctx.read_file(LOG) if ctx.exists(LOG) else b""
        ctx.write_file(LOG, text + f"hello {count}\n".encode())
        with anyio.move_on_after(1):
            await ctx.terminated.wait()
    return 0


async def collector(ctx: FakeContext) -> int:
    """Stands in for ``tail -F``: logs each new line of the app's log."""
    ctx.handle_term = True
    seen = 0
    await anyio.sleep(0.25)
    while not ctx.terminated.is_set():
        lines = ctx.read_file(LOG).decode().splitlines() if ctx.exists(LOG) else []
        for line in lines[seen:]:
            ctx.log(line)
        seen = len(lines)
        with anyio.move_on_after(0.5):
            await ctx.terminated.wait()
    return 0


async def main() -> None:
    pod = asyncpod.kube.load_pod(MANIFEST)
    plan = asyncpod.StartupPlan.from_pod(pod)
    print("startup plan:")
    for line in plan.describe():
        print(f"  {line}")
    print("stop order:", " then ".join(plan.stop_order()))
    engine = FakeBackend(programs={"app": app, "log-collector": collector})
    async with engine, asyncpod.open_pod(pod, backend=engine) as running:
        for status in running.status().containers:
            print(f"{status.name} ({status.kind.value}) started={status.started}")
        await anyio.sleep(3.5)
        print("what the sidecar collected:")
        async with running.logs("log-collector") as records:
            async for record in records:
                print(f"  {record.text}")


if __name__ == "__main__":
    anyio.run(main)
