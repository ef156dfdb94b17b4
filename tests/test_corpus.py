"""Real manifests: every Pod and pod template of the corpus in tests/data/corpus.

The corpus is public Kubernetes documentation and examples (see its README for the
sources and licences). Each Pod or workload document is loaded on its own, strict and
lax; the counts of accepted ones are floors that only go up as asyncpod models more of
Kubernetes. Run this file as a script for the table of the fields that block the rest::

    PYTHONPATH=src python tests/test_corpus.py
"""

from __future__ import annotations

import collections
import re
import sys
import time
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

import asyncpod.kube
from asyncpod import SpecError, UnsupportedFieldError
from asyncpod._yaml import load_documents
from kube_schema import ManifestError, check_object

CORPUS = Path(__file__).parent / "data" / "corpus"
RUNNABLE = {
    "Pod",
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "ReplicationController",
    "Job",
    "CronJob",
}

#: floors: raise them when asyncpod reads more (what is left is mostly cloud volumes)
STRICT_FLOOR = 322
LAX_FLOOR = 364
#: seconds one document may take to load, strict and lax (a shared 2-core machine)
TIME_BUDGET = 2.0


def corpus_files() -> list[Path]:
    return sorted(path for path in CORPUS.rglob("*") if path.suffix in (".yaml", ".yml", ".json"))


def runnable_documents() -> Iterator[tuple[str, str]]:
    """(id, text) of each Pod or workload document of the corpus, one document each."""
    for path in corpus_files():
        text = path.read_text(encoding="utf-8")
        try:  # as kubectl reads YAML (a \' escape in a double-quoted string, say)
            documents = [d for d in load_documents(text) if d]
        except SpecError:  # what asyncpod refuses as a whole file (a duplicate key)
            documents = [d for d in yaml.safe_load_all(text) if d]
        items: list[Any] = []
        for document in documents:
            if document.get("kind") == "List":
                items.extend(document.get("items") or ())
            else:
                items.append(document)
        for index, document in enumerate(items):
            if isinstance(document, Mapping) and document.get("kind") in RUNNABLE:
                name = f"{path.relative_to(CORPUS)}#{index}"
                yield name, yaml.safe_dump(document, sort_keys=False)


DOCUMENTS = dict(runnable_documents())


def _generic(path: str) -> str:
    """``spec.template.spec.containers[0].resources`` -> ``containers[].resources``."""
    path = re.sub(r"\[[^]]*\]", "[]", path)
    path = re.sub(r"^(spec\.jobTemplate\.)?(spec\.template\.)?", "", path)
    return re.sub(r"^spec\.", "", path)


def survey() -> tuple[int, int, collections.Counter[str], dict[str, str]]:
    """(strict accepted, lax accepted, blocking fields, other errors by document)."""
    strict = lax = 0
    blocking: collections.Counter[str] = collections.Counter()
    errors: dict[str, str] = {}
    for name, text in DOCUMENTS.items():
        try:
            asyncpod.kube.load(text)
            strict += 1
        except UnsupportedFieldError as error:
            blocking.update({_generic(path) for path in error.paths})
        except SpecError as error:
            errors[name] = str(error)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                asyncpod.kube.load(text, strict=False)
                lax += 1
            except SpecError as error:
                errors.setdefault(name, f"lax: {error}")
    return strict, lax, blocking, errors


def test_corpus_is_there() -> None:
    assert len(DOCUMENTS) >= 380


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_each_document_loads_or_is_a_spec_error_in_time(name: str) -> None:
    """No crash, no hang: a Bundle or a SpecError, within the time budget."""
    text = DOCUMENTS[name]
    for strict in (True, False):
        started = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                bundle = asyncpod.kube.load(text, strict=strict)
            except SpecError:
                bundle = None
        assert time.perf_counter() - started < TIME_BUDGET
        if bundle is not None:
            _check_round_trip(text, bundle)


def test_counts_reach_their_floors() -> None:
    strict, lax, blocking, errors = survey()
    table = "\n".join(f"{count:4} {field}" for field, count in blocking.most_common(25))
    assert strict >= STRICT_FLOOR, f"strict: {strict} of {len(DOCUMENTS)}\n{table}"
    assert lax >= LAX_FLOOR, f"lax: {lax} of {len(DOCUMENTS)}: {errors}"


def _leaves(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, Mapping) and value:
        for key, item in value.items():
            yield from _leaves(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list) and value:
        for index, item in enumerate(value):
            yield from _leaves(item, f"{path}[{index}]")
    else:
        yield path, value


#: Values a dump may leave out: Kubernetes' defaults (of fields asyncpod models or drops)
#: and values that say nothing.
_DEFAULTS: tuple[Any, ...] = (
    None,
    False,
    {},
    [],
    "",
    "ClusterFirst",
    "/dev/termination-log",
    "File",
    "TCP",
    "Always",
    "IfNotPresent",
    "HTTP",
    "Default",
    "/",
    30,
)
#: Kubernetes' defaults of numeric fields, by key
_KEY_DEFAULTS: dict[str, int] = {
    "timeoutSeconds": 1,
    "periodSeconds": 10,
    "successThreshold": 1,
    "failureThreshold": 3,
    "terminationGracePeriodSeconds": 30,
}
_OUTPUT_ONLY = re.compile(r"^(status|metadata\.(creationTimestamp|uid|resourceVersion))")


def _check_round_trip(text: str, bundle: asyncpod.kube.Bundle) -> None:
    """What was accepted is written back: every leaf of the original is in the dump,
    with its value, unless it is a default, says nothing, or the system sets it. The
    dump is a valid Kubernetes object, and reads back as the same pod."""
    original = yaml.safe_load(text)
    dumped_text = asyncpod.kube.dump(bundle)
    [dumped] = [d for d in yaml.safe_load_all(dumped_text) if d.get("kind") in RUNNABLE]
    written = dict(_leaves(dumped))
    for path, value in _leaves(original):
        if path in written or _OUTPUT_ONLY.match(path):
            continue
        if any(type(value) is type(d) and value == d for d in _DEFAULTS):
            continue
        if value == _KEY_DEFAULTS.get(path.rsplit(".", 1)[-1]):
            continue
        # the lax reader replaced, dropped or unset it, and said so in its warning
        if not _was_warned(text, path):
            pytest.fail(f"{path}: {value!r} was accepted but neither written back nor ignored")
    if dumped["apiVersion"] in ("v1", "apps/v1", "batch/v1") and _valid(original):
        check_object(f"V1{dumped['kind']}", dumped)  # what was valid stays valid
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert asyncpod.kube.load(dumped_text, strict=False).pod == bundle.pod


def _valid(document: Mapping[str, Any]) -> bool:
    try:
        check_object(f"V1{document['kind']}", document)
    except ManifestError:
        return False
    return True


def _was_warned(text: str, path: str) -> bool:
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        try:
            asyncpod.kube.load(text, strict=False)
        except SpecError:
            return False
    messages = " ".join(str(w.message) for w in record)
    parts = re.findall(r"[^.\[\]]+|\[\d+\]", path)
    prefixes = [
        "".join(p if p.startswith("[") else f".{p}" for p in parts[:n]).lstrip(".")
        for n in range(1, len(parts) + 1)
    ]
    return any(prefix in messages for prefix in prefixes if "." in prefix or "[" in prefix)


if __name__ == "__main__":
    strict, lax, blocking, errors = survey()
    lines = [f"{len(DOCUMENTS)} Pod and workload documents: strict {strict}, lax {lax}"]
    lines.append("Fields that block strict loading (documents):")
    lines.extend(f"{count:5}  {field}" for field, count in blocking.most_common())
    lines.append("Other errors:")
    lines.extend(f"  {name}: {error}" for name, error in errors.items())
    sys.stdout.write("\n".join(lines) + "\n")
