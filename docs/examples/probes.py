"""javaweb-2 with a readiness probe: the pod is Ready once Tomcat serves the war.

Tomcat takes a while to boot. Without a probe the pod counts as Ready as soon as the
container runs; with one, asyncpod GETs ``/app.war`` on the pod's localhost every second
and marks ``tomcat`` ready on the first answer between 200 and 399.
"""

from __future__ import annotations

import anyio
import attrs

import asyncpod
from asyncpod.backends import FakeBackend, FakeContext

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


async def slow_tomcat(ctx: FakeContext) -> int:
    """Stands in for ``tomcat:7.0``: boots for 2.5 seconds, then serves webapps on :8080."""
    await anyio.sleep(2.5)
    await ctx.serve_files(8080, "/root/apache-tomcat-7.0/webapps")
    return 0


def with_readiness_probe(pod: asyncpod.Pod) -> asyncpod.Pod:
    probe = asyncpod.Probe(
        http_get=asyncpod.HTTPGetAction(port=8080, path="/app.war"),
        initial_delay_seconds=1,
        period_seconds=1,
    )
    tomcat = attrs.evolve(pod.container("tomcat"), readiness_probe=probe)
    return attrs.evolve(pod, containers=[tomcat])


async def main() -> None:
    pod = with_readiness_probe(asyncpod.kube.load_pod(MANIFEST))
    engine = FakeBackend(programs={"tomcat:7.0": slow_tomcat})
    engine.add_image("app:v2", {"/app.war": b"PK\x03\x04 the javaweb-2 war"})
    async with engine, asyncpod.open_pod(pod, backend=engine) as running:
        started = anyio.current_time()
        status = running.status()
        tomcat = status.container("tomcat")
        print(f"up: phase {status.phase.value}, ready={status.conditions.ready}")
        print(f"  tomcat started={tomcat.started} ready={tomcat.ready}")
        with anyio.fail_after(30):
            status = await running.wait_ready()
        waited = anyio.current_time() - started
        print(f"Ready {round(waited)} s later: phase {status.phase.value}")
        print(f"  tomcat ready={status.container('tomcat').ready}")


if __name__ == "__main__":
    anyio.run(main)
