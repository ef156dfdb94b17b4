"""Development sessions: ``nox -s tests lint typecheck bench docs``."""

from __future__ import annotations

import os

import nox

nox.needs_version = ">=2025.2.9"
nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True
nox.options.default_venv_backend = "uv|virtualenv"

PYPROJECT = nox.project.load_toml("pyproject.toml")


def _group(name: str) -> list[str]:
    return list(nox.project.dependency_groups(PYPROJECT, name))


@nox.session
def tests(session: nox.Session) -> None:
    """The whole suite on asyncio and trio: the fake, and Podman where it runs.

    In CI (``CI=true``) a missing Podman fails the Podman tests instead of skipping them.
    Tests run in parallel (pytest-xdist): ``ASYNCPOD_TEST_WORKERS`` workers, by default one
    more than the CPUs, at most 4 (the Podman tests mostly wait on Podman); pass ``-n 0`` to
    run them in this process. The tests marked ``alone`` run afterwards, one at a time.
    """
    session.install("-e", ".", *_group("tests"))
    env = {}
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        env["ASYNCPOD_REQUIRE_PODMAN"] = "1"
    workers = os.environ.get("ASYNCPOD_TEST_WORKERS") or str(min(4, (os.cpu_count() or 1) + 1))
    # loadgroup: the asyncio and trio runs of one Podman test share a worker (tests/conftest.py)
    xdist = ("--numprocesses", workers, "--dist", "loadgroup")
    session.run("pytest", *xdist, "--alone=skip", *session.posargs, env=env)
    # then the tests that list every object of the service, with no other test running
    # (exit code 5: the arguments selected none of them)
    session.run("pytest", "--alone=only", *session.posargs, env=env, success_codes=[0, 5])


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: lint and formatting checks."""
    session.install(*_group("lint"))
    session.run("ruff", "check", "src", "tests", "bench", "docs", "noxfile.py")
    # the Python files only: the docs' Markdown keeps its examples as written
    python = ("src", "tests", "bench", "docs/conf.py", "docs/_ext", "docs/examples", "noxfile.py")
    session.run("ruff", "format", "--check", *python)


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package and its tests."""
    session.install("-e", ".", *_group("typing"))
    session.run("mypy")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks (bench/): the fake (default), or Podman with ``nox -s bench -- podman``.

    Extra arguments go to the script: ``nox -s bench -- --sizes 1000``,
    ``nox -s bench -- podman --runs 5 --variants a b d``.
    """
    session.install("-e", ".[trio]")  # the fake benchmark runs on asyncio and trio
    args = list(session.posargs)
    if args[:1] == ["podman"]:
        session.install("podman-compose")
        session.run("python", "bench/bench_podman.py", *args[1:])
    else:
        session.run("python", "bench/bench_fake.py", *args)


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation into docs/_build/html: warnings are errors, references checked.

    Extra arguments go to sphinx-build, e.g. ``nox -s docs -- -b linkcheck``.
    """
    session.install("-e", ".", *_group("docs"))
    session.run(
        "sphinx-build",
        *("-W", "--keep-going", "-n", "-E", "-T", "-b", "html"),
        *session.posargs,
        "docs",
        "docs/_build/html",
    )
