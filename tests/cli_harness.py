"""Run the command line in this process against stand-ins, for the tests that need a real
process (signals, pipes) but no Podman: ``python cli_harness.py MODE ARG... -- CLI-ARG...``.

- ``fake N``: ps, down, gc, logs and events find a FakeBackend holding N pods (instead of
  Podman);
- ``no-service``: Podman discovery finds no socket and starts ``podman`` from PATH (the
  test puts a stand-in there), as on a machine whose Podman service is not running.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from asyncpod import _cli
from asyncpod._cli import _backends
from asyncpod._owner import owner_labels
from asyncpod.backends import Backend, FakeBackend, PodSpec
from asyncpod.backends._podman import _service as podman_module


def fake_pods(count: int) -> None:
    @asynccontextmanager
    async def backend(url: str | None) -> AsyncIterator[Backend]:
        async with FakeBackend() as fake:
            for i in range(count):
                labels = {"io.asyncpod.pod": f"p{i}", "io.asyncpod.run": f"r{i}"}
                await fake.create_pod(
                    PodSpec(name=f"p{i}", hostname="p", labels={**labels, **owner_labels()})
                )
            yield fake

    _backends.podman = backend


def no_service() -> None:
    podman_module.candidate_urls = lambda url: (
        ["unix:///nonexistent/asyncpod-harness.sock"],
        False,
    )


if __name__ == "__main__":
    split = sys.argv.index("--")
    mode, *options = sys.argv[1:split]
    if mode == "fake":
        fake_pods(int(options[0]))
    else:
        assert mode == "no-service", mode
        no_service()
    sys.exit(_cli.main(sys.argv[split + 1 :]))
