"""The ``asyncpod`` command line: ``demo`` and ``plan`` for now."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import anyio

from ._exceptions import AsyncpodError
from ._models import Pod
from ._plan import StartupPlan

__all__ = ["main"]

SEED = Path("examples/javaweb-2.yaml")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``asyncpod`` and ``python -m asyncpod``."""
    parser = argparse.ArgumentParser(prog="asyncpod", description=__doc__)
    parser.add_argument("--debug", action="store_true", help="log everything, show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the seed's javaweb-2 pod and show how it comes up")
    demo.add_argument("file", nargs="?", type=Path, default=SEED, help="a Pod manifest")
    demo.add_argument("--backend", choices=["fake", "podman"], default="fake")
    plan = sub.add_parser("plan", help="print a manifest's startup plan (no side effects)")
    plan.add_argument("file", type=Path, help="a Pod manifest")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    try:
        if args.command == "plan":
            pod = _load(args.file)
            for line in StartupPlan.from_pod(pod).describe():
                print(line)
            return 0
        return anyio.run(_demo, _load(args.file), args.backend)
    except (AsyncpodError, OSError) as exc:
        if args.debug:
            raise
        print(f"asyncpod: error: {exc}", file=sys.stderr)
        return 1


def _load(path: Path) -> Pod:
    from .kube import load_pod

    return load_pod(path)


async def _demo(pod: Pod, backend_name: str) -> int:
    from ._demo import run_demo

    return await run_demo(pod, backend_name)
