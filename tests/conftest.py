"""Shared fixtures: every async test runs on asyncio and on trio."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import AsyncIterator, Generator, Iterator
from typing import Any

import pytest

from asyncpod.backends import FakeBackend
from asyncpod.backends._podman._service import candidate_urls
from asyncpod.testing import virtual_time
from podman_images import ensure_test_image

pytest_plugins = ["pytester"]


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    """Fake-backend tests run on a virtual clock: sleeps and timeouts cost no real time."""
    return virtual_time(request.param)


@pytest.fixture
async def fake() -> AsyncIterator[FakeBackend]:
    """An open FakeBackend; it must hold no objects when the test ends."""
    async with FakeBackend() as backend:
        yield backend
        assert backend.objects() == []


# Podman: session fixtures, synchronous, through podman-py directly. A test that asks for
# them is skipped when no Podman service answers -- unless ASYNCPOD_REQUIRE_PODMAN=1 (CI),
# which makes that a failure.


def _ssh_identity() -> dict[str, str]:
    """podman-py's ssh:// key: ``CONTAINER_SSHKEY``, as Podman and PodmanBackend take it."""
    key = os.environ.get("CONTAINER_SSHKEY")
    return {"identity": key} if key else {}


def _ping(url: str) -> bool:
    from podman import PodmanClient

    try:
        with PodmanClient(base_url=url, **_ssh_identity()) as client:
            response = client.api.get("/_ping", timeout=(3, 3))
            return bool(response.status_code == 200)
    except Exception:  # any failure means "not this one"
        return False


def _podman_required() -> bool:
    return os.environ.get("ASYNCPOD_REQUIRE_PODMAN") == "1"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--alone",
        choices=("run", "skip", "only"),
        default="run",
        help="the tests marked alone (they list every object of the Podman service): run them "
        "with the others (default), deselect them (for a parallel run), or run only them",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``--alone``: keep or drop the tests marked ``alone``."""
    alone = config.getoption("alone")
    if alone != "run":
        keep = [i for i in items if (i.get_closest_marker("alone") is None) == (alone == "skip")]
        dropped = [i for i in items if i not in keep]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = keep


def pytest_itemcollected(item: pytest.Item) -> None:
    """Under pytest-xdist (``--dist loadgroup``) the asyncio and trio runs of one Podman
    test go to the same worker, one after the other: they name their pods alike. (Marked
    as each test is collected: xdist reads the groups in its own collection hook, which
    may run before this conftest's.)"""
    if item.get_closest_marker("podman") is None or item.get_closest_marker("xdist_group"):
        return
    callspec = getattr(item, "callspec", None)
    ids = callspec.id.split("-") if callspec is not None else []
    rest = "-".join(i for i in ids if i not in ("asyncio", "trio"))
    # no "]" in the name: xdist takes what follows a node id's last "]" as its group
    group = f"{item.path.name}::{getattr(item, 'originalname', item.name)}:{rest}"
    item.add_marker(pytest.mark.xdist_group(group))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """With ASYNCPOD_REQUIRE_PODMAN=1 (CI) a Podman test that skips fails: every Podman leg
    must run all of them (a skip there hides a Podman the leg does not test)."""
    report = yield
    if (
        report.skipped
        and _podman_required()
        and item.get_closest_marker("podman") is not None
        and not hasattr(report, "wasxfail")
    ):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped with ASYNCPOD_REQUIRE_PODMAN=1 (CI): {reason}"
    return report


@pytest.fixture(scope="session")
def podman_url() -> str:
    urls = [os.environ["ASYNCPOD_PODMAN_URL"]] if os.environ.get("ASYNCPOD_PODMAN_URL") else []
    urls += candidate_urls(None)[0]
    for url in urls:
        if _ping(url):
            return url
    message = f"no Podman service answers (tried {', '.join(urls)})"
    if _podman_required():
        pytest.fail(f"{message}, and ASYNCPOD_REQUIRE_PODMAN=1", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def podman_client(podman_url: str) -> Iterator[Any]:
    from podman import PodmanClient

    with PodmanClient(base_url=podman_url, **_ssh_identity()) as client:
        yield client


@pytest.fixture(scope="session")
def image(podman_client: Any) -> str:
    return ensure_test_image(podman_client)


@pytest.fixture(scope="session")
def spawnable_podman(podman_client: Any) -> str:
    """The ``podman`` on PATH, which a backend without a URL spawns: skips a test when its
    version is not the service's, as it would then test another Podman than the one under test
    (``.ci/podman5-setup`` writes a matching ``podman`` for its root, in PODMAN5_BIN_DIR)."""
    binary = shutil.which("podman")
    if binary is None:
        pytest.skip("no podman on PATH")
    reply = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    found = re.search(r"\d+\.\d+\.\d+", reply.stdout)
    ours = found.group() if found else "?"
    theirs = str(podman_client.version().get("Version") or "?")
    if ours != theirs:
        pytest.skip(
            f"the podman on PATH ({binary}, {ours}) is not the service under test ({theirs}): "
            "a private service would test another Podman"
        )
    return binary
