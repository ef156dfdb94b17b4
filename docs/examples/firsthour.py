"""A new user's first hour: their own manifest, a random host port, waits, a diagnosis.

The manifest publishes the web server's port on ``hostPort: 0``: any free port of the
host (fixed ports collide in parallel CI); :meth:`RunningPod.host_port` says which. Its
readiness probe asks for a page the server does not have: the pod never gets Ready, and
the timeout says why, from the error alone. The fix is one field.
"""

from __future__ import annotations

import attrs

import asyncpod
from asyncpod.backends import FakeBackend

#: the user's own manifest
WEB = """\
apiVersion: v1
kind: Pod
metadata:
  name: hello
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: web
    image: busybox:latest
    command: [sh, -c, "echo hello > /tmp/index.html; sleep 2; echo listening on 8080;
      httpd -f -p 8080 -h /tmp"]
    ports:
    - containerPort: 8080
      hostPort: 0
    readinessProbe:
      httpGet: {path: /healthz, port: 8080}
      periodSeconds: 1
"""


async def main() -> None:
    pod = asyncpod.kube.load_pod(WEB)
    async with FakeBackend() as engine:  # drop backend= to run it on Podman
        async with asyncpod.open_pod(pod, backend=engine) as running:
            port = running.host_port("web", 8080)
            print(f"hostPort 0 became a free host port: {port > 0}")  # see it: print(port)
            async with running.fail_after(10):
                match = await running.wait_for_log("web", r"listening on (\d+)")
            print(f"the server says: {match.group(0)}")
            try:
                async with running.fail_after(5):
                    await running.wait_ready()
            except asyncpod.PodTimeoutError as exc:
                print(exc)

        # The fix: probe a page the server has.
        probe = pod.container("web").readiness_probe
        assert probe is not None
        assert probe.http_get is not None
        fixed = attrs.evolve(probe, http_get=attrs.evolve(probe.http_get, path="/index.html"))
        pod = attrs.evolve(
            pod, containers=[attrs.evolve(pod.container("web"), readiness_probe=fixed)]
        )
        async with asyncpod.open_pod(pod, backend=engine) as running:
            async with running.fail_after(10):
                status = await running.wait_ready()
            print(f"fixed: phase {status.phase.value}, ready={status.conditions.ready}")
        final = running.status()
        print(f"after the block: phase {final.phase.value}, ready={final.conditions.ready}")


if __name__ == "__main__":
    import anyio

    anyio.run(main)
