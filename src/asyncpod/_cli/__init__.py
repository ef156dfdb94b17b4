"""asyncpod's command line: ``asyncpod`` and ``python -m asyncpod``.

It parses (:mod:`._parser`), loads the manifest and builds the backend (:mod:`._backends`),
runs one command under the signal policy (:mod:`._signals`), and turns what went wrong
into one line and an exit code (:mod:`._errors`). The commands only format what the
library returns: ``up`` (:mod:`._up`), ``ps`` (:mod:`._ps`), ``down``, ``logs``, ``gc`` and
``volumes`` (:mod:`._manage`), ``cp`` (:mod:`._cp`), ``describe`` and ``events``
(:mod:`._describe`), ``restart``, ``kill`` and ``stats`` (:mod:`._control`), ``plan`` and
``demo`` (:mod:`._examples`).
"""

from __future__ import annotations

import logging
import os
import select
import signal
import sys
from collections.abc import Sequence

import anyio

from .. import __version__
from .._exceptions import AsyncpodError
from . import _backends
from ._control import kill, restart, stats
from ._cp import cp
from ._describe import describe, events
from ._errors import CliError, Interrupted, exit_code, report
from ._examples import demo, plan
from ._manage import down, exec_, gc, logs, volumes
from ._parser import build_parser
from ._ps import ps
from ._signals import Command, run
from ._up import up

__all__ = ["main"]

_COMMANDS: dict[str, Command] = {
    "up": up,
    "down": down,
    "ps": ps,
    "logs": logs,
    "exec": exec_,
    "gc": gc,
    "volumes": volumes,
    "cp": cp,
    "describe": describe,
    "events": events,
    "restart": restart,
    "kill": kill,
    "stats": stats,
    "demo": demo,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``asyncpod`` and ``python -m asyncpod``; returns the exit code."""
    args = build_parser(__version__).parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    try:
        try:
            if getattr(args, "file", None) is not None:
                args.bundle = _backends.load(args.file, lax=args.lax)
                args.pod = args.bundle.pod
            if args.command == "up":
                args.config_maps = _backends.config_maps(args.configmap)
                args.secrets = _backends.secrets(args.secret)
            if args.command == "plan":
                code = plan(args)
            else:
                code = anyio.run(run, _COMMANDS[args.command], args)
            sys.stdout.flush()  # now, to see a closed pipe here
            return code
        except BrokenPipeError:
            if not _stdout_closed():
                raise
            return _stdout_gone()
    except Interrupted as exc:
        return 128 + exc.signum
    except KeyboardInterrupt:
        return 128 + signal.SIGINT
    except (AsyncpodError, CliError, OSError) as exc:
        if args.debug:
            raise
        report(exc)
        return exit_code(exc)


def _stdout_closed() -> bool:
    """Whether standard output is a pipe whose reader is gone."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, ValueError, OSError):  # replaced (tests) or closed
        return False
    try:
        poll = select.poll()
    except AttributeError:  # pragma: no cover - no poll() on this system
        return True
    poll.register(fd, select.POLLOUT)
    return any(event & select.POLLERR for _, event in poll.poll(0))


def _stdout_gone() -> int:
    """End quietly once the reader of standard output went away (``asyncpod ps | head -1``):
    no traceback, and exit code 141 (128 + SIGPIPE), as a process killed by SIGPIPE gives.
    What is still buffered goes to /dev/null, so that Python's flush at exit cannot fail."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)
    return 128 + signal.SIGPIPE
