"""The command line's grammar: commands, arguments and the help text of every one."""

from __future__ import annotations

import argparse
import signal

from ._control import parse_signal
from ._errors import EXIT_CODES, LAX_OPTION

__all__ = ["DESCRIPTION", "build_parser"]

DESCRIPTION = "asyncpod: run Kubernetes Pod manifests on one machine, on Podman."

MANIFEST = (
    "a Pod manifest (YAML or JSON), '-' for standard input, "
    "or a bundled example: javaweb-2, log-sidecar"
)


def build_parser(version: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="asyncpod",
        description=DESCRIPTION,
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help="log everything, show tracebacks")
    parser.add_argument(
        "--version", action="version", version=f"asyncpod {version}", help="print the version"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            help=help,
            description=help[0].upper() + help[1:] + ".",
            epilog=EXIT_CODES,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    def url(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--url",
            help="the Podman service (unix://, tcp:// or ssh://; default: CONTAINER_HOST, "
            "then this user's socket)",
        )

    def manifest(p: argparse.ArgumentParser, default: str | None = None) -> None:
        if default is None:
            p.add_argument("file", metavar="FILE", help=MANIFEST)
        else:
            p.add_argument(
                "file",
                metavar="FILE",
                nargs="?",
                default=default,
                help=f"{MANIFEST} (default: {default})",
            )
        p.add_argument(
            LAX_OPTION,
            action="store_true",
            help="drop the manifest's fields asyncpod does not support, with a warning "
            "(default: refuse the manifest)",
        )

    up = command("up", "run a pod in the foreground until it ends or Ctrl-C")
    manifest(up)
    up.add_argument(
        "--backend",
        choices=["podman", "fake"],
        default="podman",
        help="podman (default), or fake: in memory, in this process, for a look without Podman",
    )
    url(up)
    up.add_argument(
        "--timeout",
        type=_seconds,
        metavar="SECONDS",
        help="fail unless the pod is ready within SECONDS (default: wait; 120 with --detach)",
    )
    up.add_argument(
        "-d",
        "--detach",
        action="store_true",
        help="return once the pod is ready and leave it running on Podman "
        "(stop it with 'asyncpod down NAME')",
    )
    up.add_argument(
        "-l", "--logs", action="store_true", help="follow every container's log, prefixed"
    )
    for option, kind in (("--configmap", "ConfigMap"), ("--secret", "Secret")):
        up.add_argument(
            option,
            action="append",
            default=[],
            metavar="NAME=PATH",
            help=f"a {kind} NAME for the pod, over the manifest's of that name: PATH a file "
            "(one key, the file's name) or a directory (one key per regular file); "
            "repeat it to add keys or objects",
        )

    down = command("down", "stop pods in reverse start order and remove their objects")
    down.add_argument("names", metavar="NAME", nargs="+", help="the pods' names")
    down.add_argument(
        "--grace",
        type=_seconds,
        metavar="SECONDS",
        help="the grace period for the whole stop (default: the pod's own)",
    )
    down.add_argument(
        "--force",
        action="store_true",
        help="also when a live process (an 'asyncpod up') runs the pod: stop it here",
    )
    url(down)

    ps = command("ps", "list the pods and containers asyncpod owns")
    ps.add_argument(
        "--json", action="store_true", help="print a JSON array of pods instead of a table"
    )
    url(ps)

    logs = command("logs", "print the logs of a pod's containers")
    logs.add_argument("name", metavar="NAME", help="the pod's name")
    logs.add_argument("container", metavar="CONTAINER", nargs="?", help="one container only")
    logs.add_argument("-f", "--follow", action="store_true", help="wait for new lines")
    logs.add_argument(
        "--tail", type=int, metavar="N", help="only the last N lines of each container's run"
    )
    logs.add_argument(
        "--since",
        type=_seconds,
        metavar="SECONDS",
        help="only the lines logged in the last SECONDS",
    )
    logs.add_argument(
        "--timestamps", action="store_true", help="prefix each line with the time it was logged"
    )
    logs.add_argument(
        "-p",
        "--previous",
        action="store_true",
        help="what the container logged before its current run (default: its current run)",
    )

    exec_ = command("exec", "run a command in a container of a running pod")
    exec_.add_argument("name", metavar="NAME", help="the pod's name")
    exec_.add_argument("container", metavar="CONTAINER", help="the container")
    exec_.add_argument("argv", metavar="COMMAND", nargs="+", help="the command (after '--')")
    exec_.add_argument(
        "-i", "--stdin", action="store_true", help="pass standard input to the command"
    )
    exec_.add_argument(
        "-e", "--env", action="append", default=[], metavar="NAME=VALUE", help="set a variable"
    )
    exec_.add_argument("-w", "--workdir", metavar="DIR", help="the working directory")
    exec_.add_argument("-u", "--user", metavar="USER", help="the user (name, uid or uid:gid)")
    url(exec_)
    url(logs)

    cp = command("cp", "copy files or directories into or out of a container")
    cp.add_argument(
        "source",
        metavar="SOURCE",
        help="a local path, or POD/CONTAINER:PATH (POD:PATH with -c, or for a pod of one "
        "container)",
    )
    cp.add_argument("target", metavar="DEST", help="the same, the other side")
    cp.add_argument(
        "-c", "--container", metavar="CONTAINER", help="the container, as kubectl cp takes it"
    )
    url(cp)

    describe = command("describe", "show a pod in detail: phase, IP, containers and recent events")
    describe.add_argument("name", metavar="NAME", help="the pod's name")
    describe.add_argument(
        "--events",
        type=int,
        default=15,
        metavar="N",
        help="show the last N events (default: 15; 0: none)",
    )
    describe.add_argument("--json", action="store_true", help="print JSON instead of text")
    url(describe)

    events = command("events", "print what happened to pods' objects, as the engine saw it")
    events.add_argument("name", metavar="NAME", nargs="?", help="only the pod of this name")
    events.add_argument(
        "-f", "--follow", action="store_true", help="wait for new events until Ctrl-C (exit 0)"
    )
    events.add_argument(
        "--since",
        type=_seconds,
        metavar="SECONDS",
        help="only the events of the last SECONDS (default: all the engine keeps)",
    )
    events.add_argument(
        "--json", action="store_true", help="print one JSON object per line instead of text"
    )
    url(events)

    restart = command("restart", "restart a container of a pod (see the docs for a supervised pod)")
    restart.add_argument("name", metavar="NAME", help="the pod's name")
    restart.add_argument("container", metavar="CONTAINER", help="the container")
    restart.add_argument(
        "--grace",
        type=_seconds,
        metavar="SECONDS",
        help="the grace period of the stop (default: the pod's own)",
    )
    url(restart)

    kill = command("kill", "send a signal to the main process of a container")
    kill.add_argument("name", metavar="NAME", help="the pod's name")
    kill.add_argument("container", metavar="CONTAINER", help="the container")
    kill.add_argument(
        "-s",
        "--signal",
        type=parse_signal,
        default=signal.SIGKILL,
        metavar="SIGNAL",
        help="a name (TERM, SIGTERM) or a number (15); default: KILL",
    )
    url(kill)

    stats = command("stats", "show the CPU and memory each container uses")
    stats.add_argument("name", metavar="NAME", nargs="?", help="only the pod of this name")
    stats.add_argument(
        "--interval",
        type=_seconds,
        default=1.0,
        metavar="SECONDS",
        help="measure the CPU used over SECONDS (default: 1)",
    )
    stats.add_argument("--json", action="store_true", help="print a JSON array instead of a table")
    url(stats)

    plan = command("plan", "print a manifest's startup plan (no side effects)")
    manifest(plan)

    gc = command("gc", "remove objects whose owner process on this host is gone")
    gc.add_argument("names", metavar="NAME", nargs="*", help="only these pods")
    gc.add_argument("-n", "--dry-run", action="store_true", help="only say what would go")
    gc.add_argument(
        "--grace",
        type=_seconds,
        metavar="SECONDS",
        help="the grace period for each pod's stop (default: the pod's own, at most an hour)",
    )
    url(gc)

    volumes = command(
        "volumes", "list the volumes of persistent volume claims, or remove them (with rm)"
    )
    url(volumes)
    volumes_sub = volumes.add_subparsers(
        dest="volumes_command", metavar="ACTION", help="ls (the default) or rm"
    )
    volumes_sub.add_parser("ls", help="list the claims whose volumes exist (the default)")
    volumes_rm = volumes_sub.add_parser("rm", help="remove claims' volumes and their data")
    volumes_rm.add_argument("claims", metavar="NAME", nargs="+", help="the claims' names")

    demo = command(
        "demo", "bring up a bundled example, show it working, tear it down (the README's)"
    )
    manifest(demo, default="javaweb-2")
    demo.add_argument(
        "--backend",
        choices=["auto", "podman", "fake"],
        default="auto",
        help="auto: Podman where it answers, else the in-memory fake (default)",
    )
    url(demo)
    return parser


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more: {text!r}")
    return value
