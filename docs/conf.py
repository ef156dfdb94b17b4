"""Sphinx configuration: MyST Markdown pages, an autodoc API reference, the furo theme.

Build with ``nox -s docs``: warnings are errors and every cross-reference must resolve.
The timeline figures are drawn at build time from real runs on the FakeBackend
(``_ext/timelines.py``) into ``_generated/``, which is not committed.
"""

from __future__ import annotations

import enum
import inspect
import logging
import re
import sys
import typing
from importlib.metadata import version as _version
from pathlib import Path
from typing import Any

import attrs
from sphinx.pycode import ModuleAnalyzer
from sphinx.util.typing import stringify_annotation

import asyncpod  # noqa: F401 - loads the private modules _merge_private_analysis reads
from asyncpod.backends import Backend

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))

project = "asyncpod"
author = "asyncpod developers"
copyright = "asyncpod developers"
release = _version("asyncpod")
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "_generated/*.md", "Thumbs.db", ".DS_Store"]

# MyST: ::: fences for directives, definition lists, anchors for headings down to ###.
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# Every reference must resolve. There is no network at build time (so no intersphinx):
# names from the standard library and from dependencies are plain text.
nitpicky = True
nitpick_ignore_regex = [
    (
        r"py:.*",
        r"(anyio|asyncio|attrs|cattrs|collections|contextlib|datetime|enum|fractions|os|pathlib|re|selectors"
        r"|socket|time|trio|types|typing)(\..*)?",
    ),
    (r"py:.*", r"(Any|Path|PathLike|TracebackType|BaseException|Exception|ValueError)"),
    (r"py:.*", r"(LookupError|AssertionError|UserWarning|PermissionError|OSError|KeyError)"),
    # Implementation types that show up in signatures but are not public API.
    (
        r"py:class",
        r"(asyncpod\.backends\._fake(\._\w+)?\.)?(ProgramFn|ConnectionHandler|ExecHandler|_\w+)",
    ),
]

autodoc_default_options = {"members": True}
autodoc_member_order = "bysource"
autodoc_typehints_format = "short"

html_theme = "furo"
html_title = f"asyncpod {release}"
html_static_path = ["_static"]


def _skip_member(app: Any, what: str, name: str, obj: Any, skip: bool, options: Any) -> bool | None:
    """Document the Backend contract once, on Backend: implementations only add members."""
    qualname = getattr(obj, "__qualname__", "")
    owner = qualname.rpartition(".")[0]
    if owner and owner != "Backend" and name in vars(Backend) and not obj.__doc__:
        return True
    return None


#: Classes only asyncpod builds: their constructors are no API of theirs.
_BUILT_BY_ASYNCPOD = {"asyncpod.RunningPod", "asyncpod.backends.FakeContext"}


def _signature(
    app: Any,
    what: str,
    name: str,
    obj: Any,
    options: Any,
    signature: str | None,
    return_annotation: str | None,
) -> tuple[str, str | None] | None:
    """attrs classes show their fields; enums and classes built only by asyncpod show none."""
    if what in ("class", "exception") and isinstance(obj, type) and attrs.has(obj):
        return _attrs_signature(obj), return_annotation
    if what == "class" and isinstance(obj, type) and issubclass(obj, enum.Enum):
        return "", return_annotation
    if what == "class" and name in _BUILT_BY_ASYNCPOD:
        return "", return_annotation
    wrapped = getattr(obj, "__wrapped__", None)
    if (
        what in ("function", "method")
        and return_annotation
        and return_annotation.startswith(("AsyncIterator[", "~collections.abc.AsyncIterator["))
        and inspect.isasyncgenfunction(wrapped)
        and not inspect.isasyncgenfunction(obj)
    ):
        # an @asynccontextmanager: used with ``async with``, never ``async for``
        item = return_annotation[return_annotation.index("[") :]
        return signature or "", f"~contextlib.AbstractAsyncContextManager{item}"
    return None


def _attrs_signature(cls: type) -> str:
    """``(*, name: str, ports: tuple[ContainerPort, ...] = (), ...)`` from attrs fields.

    attrs writes ``__init__`` itself, so its introspected signature shows converter
    parameters as ``Any`` and defaults as ``NOTHING``; the fields say it better.
    """
    hints = _field_types(cls)
    params = []
    for field in attrs.fields(cls):
        text = f"{field.alias}: {stringify_annotation(hints[field.name], 'smart')}"
        default = field.default
        if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
            made = None if default.takes_self else default.factory()
            text += f" = {made!r}" if made is not None and not made else " = <factory>"
        elif default is not attrs.NOTHING:
            text += f" = {_default_repr(default)}"
        params.append(text)
    keywords_only = params and all(field.kw_only for field in attrs.fields(cls))
    return f"({'*, ' if keywords_only else ''}{', '.join(params)})"


def _default_repr(value: object) -> str:
    if isinstance(value, enum.Enum):
        return f"{type(value).__name__}.{value.name}"
    return repr(value)


def _field_types(cls: type) -> dict[str, Any]:
    """The resolved field types of *cls*, from the private module that defines it."""
    for name, module in sorted(sys.modules.items()):
        private = name.startswith("asyncpod.") and "._" in f".{name}"
        if private and vars(module).get(cls.__name__) is cls:
            try:
                return typing.get_type_hints(cls, vars(module))
            except NameError:
                continue
    raise LookupError(f"cannot resolve the field types of {cls!r}")


#: the public modules whose names are defined in private modules and re-homed
_FACADES = ("asyncpod", "asyncpod.backends", "asyncpod.kube", "asyncpod.testing")


def _merge_private_analysis(app: Any) -> None:
    """Let autodoc read ``#:`` comments and source order of classes the facades re-homes.

    ``asyncpod/__init__.py`` sets ``__module__ = "asyncpod"`` on what it exports (and
    ``asyncpod.backends``, ``asyncpod.kube`` and ``asyncpod.testing`` likewise), so autodoc
    looks for attribute comments (``#: ...``) and member order in the public module. Hand
    it the analysis of the private modules beneath it as well.
    """
    import asyncpod.kube
    import asyncpod.testing  # noqa: F401 - load their private modules

    for facade_name in _FACADES:
        facade = ModuleAnalyzer.for_module(facade_name)
        facade.analyze()
        prefix = re.escape(facade_name)
        # Importing the facade imported them all.
        private = [name for name in sys.modules if re.fullmatch(rf"{prefix}\._\w+(\.\w+)*", name)]
        for name in sorted(private):
            analyzer = ModuleAnalyzer.for_module(name)
            analyzer.analyze()
            for key, lines in analyzer.attr_docs.items():
                facade.attr_docs.setdefault(key, lines)
            for key, order in analyzer.tagorder.items():
                facade.tagorder.setdefault(key, order)
            for key, annotation in analyzer.annotations.items():
                facade.annotations.setdefault(key, annotation)


def _draw_timelines(app: Any) -> None:
    from timelines import write_all

    # The runs log what a real pod logs; the build output is no place for it.
    logger = logging.getLogger("asyncpod")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        write_all(HERE / "_generated")
    finally:
        logger.setLevel(level)


def setup(app: Any) -> None:
    app.connect("builder-inited", _draw_timelines)
    app.connect("builder-inited", _merge_private_analysis)
    app.connect("autodoc-skip-member", _skip_member)
    app.connect("autodoc-process-signature", _signature)
