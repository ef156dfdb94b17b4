"""The seed's javaweb-2 pod, verbatim, on the in-memory backend.

The init container ``war`` copies a war file into the shared ``emptyDir`` volume and exits;
then ``tomcat`` starts and serves it on port 8080 of the pod's own localhost.
"""

from __future__ import annotations

import anyio

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


async def tomcat(ctx: FakeContext) -> int:
    """Stands in for the ``tomcat:7.0`` image: serves the webapps directory on :8080."""
    ctx.log("Tomcat (stand-in) serving /root/apache-tomcat-7.0/webapps on :8080")
    await ctx.serve_files(8080, "/root/apache-tomcat-7.0/webapps")
    return 0


def fake_engine() -> FakeBackend:
    """An in-memory engine with the two images of the seed."""
    engine = FakeBackend(programs={"tomcat:7.0": tomcat})
    engine.add_image("app:v2", {"/app.war": b"PK\x03\x04 the javaweb-2 war"})
    engine.add_image("tomcat:7.0")
    return engine


async def http_get(running: asyncpod.RunningPod, port: int, path: str) -> bytes:
    """GET *path* from *port* on the pod's localhost, as asyncpod's HTTP probes do."""
    async with await running.backend.connect(running.id, port) as stream:
        await stream.send(f"GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n".encode())
        response = b""
        try:
            while True:
                response += await stream.receive()
        except anyio.EndOfStream:
            pass
    return response.partition(b"\r\n\r\n")[2]


def show(status: asyncpod.PodStatus) -> None:
    ready, initialized = status.conditions.ready, status.conditions.initialized
    print(f"phase {status.phase.value}, initialized={initialized}, ready={ready}")
    for container in status.containers:
        state = container.state
        if isinstance(state, asyncpod.Terminated):
            what = f"terminated ({state.reason}, exit code {state.exit_code})"
        elif isinstance(state, asyncpod.Waiting):
            what = f"waiting ({state.reason})"
        else:
            what = "running"
        print(f"  {container.name:<7} {container.kind.value:<5} {what}, ready={container.ready}")


async def main() -> None:
    pod = asyncpod.kube.load_pod(MANIFEST)
    print("startup plan:")
    for line in asyncpod.StartupPlan.from_pod(pod).describe():
        print(f"  {line}")
    async with fake_engine() as engine:
        async with asyncpod.open_pod(pod, backend=engine) as running:
            show(running.status())
            war = await http_get(running, 8080, "/app.war")
            print(f"GET http://localhost:8080/app.war in the pod: {war!r}")
        print(f"after the block: {len(engine.objects())} objects left")


if __name__ == "__main__":
    anyio.run(main)
