"""The command line: the README's demo and the plan printer."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from asyncpod._cli import main

SEED = Path(__file__).parent.parent / "examples" / "javaweb-2.yaml"


def test_demo_on_the_fake_serves_the_war(capsys: pytest.CaptureFixture[str]) -> None:
    """The demo brings javaweb-2 up in order, serves the war and leaves nothing behind."""
    assert main(["demo", str(SEED)]) == 0
    out = capsys.readouterr().out
    events = re.findall(r"^\[\s*[\d.]+s\] (\S+)\s+(start|died)", out, re.M)
    assert events[:3] == [("war", "start"), ("war", "died"), ("tomcat", "start")]
    assert "stand-in war" in out
    assert "war        init     Terminated (Completed, exit code 0)" in out
    assert out.rstrip().endswith("objects left: 0")


def test_plan_prints_layers(capsys: pytest.CaptureFixture[str]) -> None:
    """plan prints the startup layers of a manifest."""
    assert main(["plan", str(SEED)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "1. war [init]",
        "2. tomcat [app] after war:completed",
    ]


def test_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A bad manifest gives exit code 1 and one line naming the field."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: v1\n"
        "kind: Pod\n"
        "metadata: {name: p}\n"
        "spec: {containers: [{name: A, image: x}]}\n"
    )
    assert main(["plan", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("asyncpod: error: spec.containers[0].name:")
    assert len(err.strip().splitlines()) == 1
