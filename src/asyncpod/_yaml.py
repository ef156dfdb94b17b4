"""Reading a manifest's text into plain data, as kubectl reads it, within bounds.

kubectl reads YAML with sigs.k8s.io/yaml, which decodes with Go's yaml.v2 and converts to
JSON. So here, unlike PyYAML's YAML 1.1:

- a plain scalar is ``null``, a boolean, an int or a float by yaml.v2's rules
  (``resolve.go``): ``y``/``yes``/``on``... are booleans; an integer is what Go's
  ``strconv.ParseInt(s, 0, 64)`` reads once ``_`` are removed (``0x1f``, ``0o17``,
  ``017``, ``0b101``), or ``ParseUint`` up to 2**64 - 1; a float matches
  ``[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?`` and is finite. Anything else,
  base-60 numbers (``2:13:20``) and timestamps (``2024-01-01``) included, is a string;
- ``\\'`` is an escaped ``'`` in a double-quoted string (libyaml refuses it).

A JSON document (one that starts with ``{``) is read as JSON. Either way the input is
bounded, so that no manifest makes asyncpod take seconds or hundreds of megabytes before
it can say what is wrong: at most :data:`MAX_MANIFEST_BYTES` of UTF-8, nested at most
:data:`MAX_DEPTH` deep, and at most :data:`MAX_NODES` values (scalars, lists and
mappings) once every YAML alias is expanded.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Hashable
from pathlib import Path
from typing import Any, Final, cast

import yaml
import yaml.composer
import yaml.constructor
import yaml.resolver
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ._exceptions import SpecError
from ._models import _SURROGATE

try:
    from yaml._yaml import CParser as _Parser
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml.parser import Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class _Parser(Reader, Scanner, Parser):  # type: ignore[no-redef]
        def __init__(self, stream: str) -> None:
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            Parser.__init__(self)


__all__ = ["MAX_DEPTH", "MAX_MANIFEST_BYTES", "MAX_NODES", "load_documents", "read_manifest"]

#: The largest manifest read, in bytes of UTF-8: 1.5 MiB, etcd's default request limit
#: (``--max-request-bytes``), so the largest Pod object a Kubernetes cluster can store.
MAX_MANIFEST_BYTES: Final = 3 * 512 * 1024
#: The deepest nesting of lists and mappings read (a Pod needs about 10).
MAX_DEPTH: Final = 100
#: The most values (scalars, lists, mappings) a document may hold, YAML aliases expanded.
MAX_NODES: Final = 50_000

_MIB = 1024 * 1024


def read_manifest(source: str | os.PathLike[str]) -> str:
    """The text of *source*: a path (``os.PathLike``, or a ``str`` without a newline that
    names an existing file) or the text itself; at most :data:`MAX_MANIFEST_BYTES`."""
    if isinstance(source, str):
        # os.path.isfile, unlike Path.is_file, is False for names too long or with NULs.
        if "\n" not in source and os.path.isfile(source):
            return _read_file(Path(source))
        return source  # load_documents bounds its size
    return _read_file(Path(source))


def _read_file(path: Path) -> str:
    # Never more than the limit: /dev/zero or a huge file is refused once it is exceeded.
    with path.open("rb") as stream:
        data = stream.read(MAX_MANIFEST_BYTES + 1)
    _check_size(len(data), str(path), at_least=True)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError("", f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc


def _check_size(size: int, what: str, *, at_least: bool = False) -> None:
    if size > MAX_MANIFEST_BYTES:
        found = f"more than {MAX_MANIFEST_BYTES}" if at_least else str(size)
        raise SpecError(
            "",
            f"{what} is too large: {found} bytes, of at most {MAX_MANIFEST_BYTES} "
            f"({MAX_MANIFEST_BYTES / _MIB:g} MiB, the largest object Kubernetes stores)",
        )


def load_documents(text: str) -> list[Any]:
    """The documents of *text* (YAML, or JSON if it starts with ``{``), as plain data.

    Raises :class:`~asyncpod.SpecError` for text that is not valid or exceeds a bound.
    """
    _check_size(len(text.encode("utf-8", "surrogatepass")), "the manifest")
    surrogate = _SURROGATE.search(text)
    if surrogate is not None:  # libyaml would fail to encode it; a file cannot hold it
        at = surrogate.start()
        line, column = text.count("\n", 0, at) + 1, at - text.rfind("\n", 0, at)
        raise SpecError(
            "",
            f"not Unicode text: a lone surrogate {surrogate.group()!r} at line {line}, column "
            f"{column}, which UTF-8 cannot encode",
        )
    if text.lstrip().startswith("{"):
        try:  # JSON has escapes (\/) and whitespace (tabs) YAML 1.1 does not
            document = _load_json(text)
        except json.JSONDecodeError:
            pass  # flow-style YAML
        else:
            return [document]
    try:
        return _load_yaml(text, None)
    except yaml.scanner.ScannerError as exc:
        # yaml.v2 reads \' in a double-quoted string as ', libyaml refuses it: read the
        # text again with each such \' replaced by a character it does not hold, which
        # the constructor turns back into ' in double-quoted strings and \' elsewhere.
        if "unknown escape character" not in str(exc.problem) or "\\'" not in text:
            raise _yaml_error(exc) from exc
        marker = _free_character(text)
        try:
            return _load_yaml(_ESCAPED_QUOTE.sub(rf"\1{marker}'", text), marker)
        except yaml.YAMLError as again:
            raise _yaml_error(again, marker) from again
    except yaml.YAMLError as exc:
        raise _yaml_error(exc) from exc


def _yaml_error(exc: yaml.YAMLError, marker: str | None = None) -> SpecError:
    message = str(exc) if marker is None else str(exc).replace(marker, "\\")
    return SpecError("", f"not a valid YAML or JSON document: {message}")


#: A backslash that escapes a following ' in a double-quoted string: an odd one in a run.
_ESCAPED_QUOTE = re.compile(r"(?<!\\)((?:\\\\)*)\\'")


def _free_character(text: str) -> str:
    """A private-use character neither in *text* nor named by an escape in it."""
    lowered = text.lower()
    for code in range(0xE000, 0xF900):
        if chr(code) not in text and f"{code:x}" not in lowered:
            return chr(code)
    raise SpecError("", "not a valid manifest: it uses every private-use character")


# JSON


def _load_json(text: str) -> Any:
    try:
        document = json.loads(
            text,
            object_pairs_hook=_unique_keys,
            parse_int=_json_int,
            parse_constant=_json_constant,
        )
    except RecursionError:
        raise _too_deep() from None
    _check_json_shape(document)
    return document


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refusing a key twice (``json`` would keep the last value)."""
    mapping: dict[str, Any] = {}
    for key, value in pairs:
        if key in mapping:
            raise SpecError(
                "", f"not a valid manifest: duplicate key {_short(key)} in a JSON object"
            )
        mapping[key] = value
    return mapping


def _json_int(text: str) -> int | float:
    # Go's encoding/json reads a number into an int64 field or a float64: beyond that it
    # is too large for any field; Python would refuse more than 4300 digits with a bare
    # ValueError, and take quadratic time before that.
    digits = text.lstrip("-").lstrip("0")
    if len(digits) > 20:
        raise SpecError("", f"not a valid manifest: the integer {_short(text)} is too large")
    return int(text)


def _json_constant(name: str) -> Any:
    raise SpecError("", f"not a valid JSON document: {name} is not a JSON number")


def _check_json_shape(document: Any) -> None:
    """Refuse a JSON document nested deeper than MAX_DEPTH or larger than MAX_NODES."""
    count = 0
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise _too_many()
        if isinstance(value, (dict, list)):
            if depth > MAX_DEPTH:
                raise _too_deep()
            items = value.values() if isinstance(value, dict) else value
            stack.extend((item, depth + 1) for item in items)
            count += len(value) if isinstance(value, dict) else 0  # the keys


def _too_deep() -> SpecError:
    return SpecError("", f"not a valid manifest: nested more than {MAX_DEPTH} levels deep")


def _too_many() -> SpecError:
    return SpecError(
        "",
        f"not a valid manifest: more than {MAX_NODES} values (YAML aliases expanded); "
        "a Pod holds far fewer",
    )


def _short(value: object, limit: int = 60) -> str:
    text = repr(value) if len(str(value)) <= limit else repr(str(value)[:limit]) + "…"
    return text


# YAML


def _load_yaml(text: str, marker: str | None) -> list[Any]:
    loader = _Loader(text, marker)
    try:
        documents = []
        while loader.check_data():  # type: ignore[no-untyped-call]
            documents.append(loader.get_data())
        return documents
    finally:
        loader.dispose()


_GO_SCALAR: Final = "tag:asyncpod.io,2025:go-plain-scalar"
_MERGE: Final = "tag:yaml.org,2002:merge"

#: yaml.v2's resolve table: the plain scalars with a fixed meaning.
_GO_CONSTANTS: Final[dict[str, Any]] = {
    **dict.fromkeys(("y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE"), True),
    **dict.fromkeys(("on", "On", "ON"), True),
    **dict.fromkeys(("n", "N", "no", "No", "NO", "false", "False", "FALSE"), False),
    **dict.fromkeys(("off", "Off", "OFF"), False),
    **dict.fromkeys(("", "~", "null", "Null", "NULL"), None),
    **dict.fromkeys((".nan", ".NaN", ".NAN"), math.nan),
    **dict.fromkeys((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), math.inf),
    **dict.fromkeys(("-.inf", "-.Inf", "-.INF"), -math.inf),
}
_GO_INT = re.compile(
    r"(?P<sign>[-+]?)(?:0[xX](?P<hex>[0-9a-fA-F]+)|0[oO](?P<oct>[0-7]+)|0[bB](?P<bin>[01]+)"
    r"|0(?P<oct0>[0-7]+)|(?P<dec>0|[1-9][0-9]*))\Z"
)
_BASES: Final = {"hex": 16, "oct": 8, "bin": 2, "oct0": 8, "dec": 10}
_GO_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?\Z")
_INT64_MIN, _UINT64_MAX = -(2**63), 2**64 - 1


def resolve_plain(value: str) -> Any:
    """The value of the plain (unquoted, untagged) YAML scalar *value*, as yaml.v2 reads it."""
    if value in _GO_CONSTANTS:
        return _GO_CONSTANTS[value]
    first = value[0]
    if first == ".":
        return _go_float(value, value)
    if first not in "+-0123456789":
        return value
    plain = value.replace("_", "")
    match = _GO_INT.match(plain)
    if match is not None:
        group = str(match.lastgroup)
        base = _BASES[group]
        digits = match.group(group).lstrip("0") or "0"
        if len(digits) <= 64:  # no more than 2**64 even in binary; no huge int() calls
            number = int(digits, base) * (-1 if match.group("sign") == "-" else 1)
            if _INT64_MIN <= number <= _UINT64_MAX and not (number > 2**63 - 1 and match["sign"]):
                return number
    return _go_float(plain, value)


def _go_float(plain: str, value: str) -> Any:
    """*plain* as a float if yaml.v2 would read one (finite: Go's ParseFloat fails on
    overflow, and the value is then a string), else *value*."""
    if _GO_FLOAT.match(plain):
        number = float(plain)
        if math.isfinite(number):
            return number
    return value


class _Resolver(yaml.resolver.BaseResolver):
    """Every plain scalar gets one tag, constructed by :func:`resolve_plain`."""

    def resolve(self, kind: type[Node], value: Any, implicit: tuple[bool, bool]) -> str:
        if kind is ScalarNode and implicit[0]:
            return _MERGE if value == "<<" else _GO_SCALAR
        tag: str = super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]
        return tag


class _Loader(_Parser, yaml.composer.Composer, yaml.constructor.SafeConstructor, _Resolver):
    """libyaml's parser with a composer that bounds depth and size, yaml.v2's scalars,
    and mappings that refuse a key twice (PyYAML would keep the last value, silently;
    kubectl's strict field validation refuses it too)."""

    def __init__(self, text: str, marker: str | None) -> None:
        _Parser.__init__(self, text)
        yaml.composer.Composer.__init__(self)
        yaml.constructor.SafeConstructor.__init__(self)
        _Resolver.__init__(self)
        self._marker = marker
        self._depth = 0
        self._count = 0
        self._sizes: dict[int, int] = {}  # id(anchored node) -> its values, aliases expanded

    # The composer: libyaml's (CParser) recurses in C without a bound; PyYAML's, used
    # here on libyaml's events, counts.

    check_node = yaml.composer.Composer.check_node
    get_node = yaml.composer.Composer.get_node
    get_single_node = yaml.composer.Composer.get_single_node

    def compose_document(self) -> Node | None:
        self._count = 0
        self._sizes.clear()
        return yaml.composer.Composer.compose_document(self)

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self.check_event(yaml.AliasEvent):
            event = cast(yaml.AliasEvent, self.peek_event())
            node = self.anchors.get(event.anchor)
            if isinstance(node, ScalarNode):
                self._add(1)
            elif node is not None:
                if id(node) not in self._sizes:  # still being composed: it holds itself
                    raise yaml.composer.ComposerError(
                        None,
                        None,
                        f"anchor {_short(event.anchor)} contains itself",
                        cast(Any, event.start_mark),
                    )
                self._add(self._sizes[id(node)])
            return yaml.composer.Composer.compose_node(self, parent, index)
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _too_deep()
        before = self._count
        self._add(1)
        try:
            node = yaml.composer.Composer.compose_node(self, parent, index)
        finally:
            self._depth -= 1
        if isinstance(node, (MappingNode, SequenceNode)):
            self._sizes[id(node)] = self._count - before
        return node

    def _add(self, count: int) -> None:
        self._count += count
        if self._count > MAX_NODES:
            raise _too_many()

    # The constructor

    def construct_scalar(self, node: Node) -> Any:
        value: Any = super().construct_scalar(node)  # type: ignore[arg-type]
        if self._marker is not None and self._marker in value:
            if cast(ScalarNode, node).style == '"':
                return value.replace(self._marker + "'", "'")
            return value.replace(self._marker, "\\")
        return value

    def construct_go_scalar(self, node: Node) -> Any:
        return resolve_plain(self.construct_scalar(node))

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == _MERGE:
                continue
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, Hashable):
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {_short(key)}", key_node.start_mark
                    )
                seen.add(key)
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping

    def construct_timestamp(self, node: Node) -> str:
        # yaml.v2 leaves a timestamp a string when it decodes into interface{}, as here
        return str(self.construct_scalar(node))

    def construct_bounded_int(self, node: Node) -> Any:
        # an explicit !!int: read as yaml.v2 reads a plain scalar, a string if not an int
        value = self.construct_scalar(node)
        number = resolve_plain(value) if isinstance(value, str) and value else value
        if not isinstance(number, int) or isinstance(number, bool):
            raise yaml.constructor.ConstructorError(
                None, None, f"{_short(value)} is not an integer", node.start_mark
            )
        return number


for _tag, _construct in (
    (_GO_SCALAR, _Loader.construct_go_scalar),
    ("tag:yaml.org,2002:timestamp", _Loader.construct_timestamp),
    ("tag:yaml.org,2002:int", _Loader.construct_bounded_int),
):
    _Loader.add_constructor(_tag, _construct)  # type: ignore[type-var]
