"""Kubernetes ``$(VAR)`` expansion for env values, command and args."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING

from ._exceptions import SpecError

if TYPE_CHECKING:  # _models imports this module
    from ._models import Container, EnvVar

__all__ = ["check_expansion", "expand", "resolve_env"]

#: The longest argument or environment string (``NAME=value``) Linux's execve takes, in
#: bytes (MAX_ARG_STRLEN, 32 pages, its NUL included).
MAX_STRING_BYTES = 32 * 4096 - 1
#: The most bytes of arguments and environment a container's process may start with:
#: ARG_MAX as Linux sets it for the default 8 MiB stack (a quarter of it).
MAX_TOTAL_BYTES = 2 * 1024 * 1024


def _tokens(text: str) -> Iterator[tuple[str, str | None]]:
    """*text* in pieces: ``(literal, None)``, or ``(reference, name)`` for ``$(name)``.

    The one place that knows the syntax: ``$$`` is an escaped ``$``; a ``$`` followed by
    anything else, or an unterminated ``$(``, stays literal; ``$()`` refers to nothing.
    """
    i, n, start = 0, len(text), 0
    while True:
        i = text.find("$", i)
        if i < 0 or i + 1 >= n:
            break
        nxt = text[i + 1]
        if nxt == "$":
            yield text[start:i] + "$", None
            i = start = i + 2
        elif nxt == "(":
            end = text.find(")", i + 2)
            if end < 0:
                break
            if start < i:
                yield text[start:i], None
            name = text[i + 2 : end]
            yield text[i : end + 1], name or None
            i = start = end + 1
        else:
            i += 2
    if start < n:
        yield text[start:], None


def expand(text: str, lookup: Callable[[str], str | None]) -> str:
    """Expand ``$(NAME)`` references in *text* as Kubernetes does.

    A reference to an unknown name is left as it is; ``$$`` is an escaped ``$``; a ``$``
    followed by anything else, or an unterminated ``$(``, stays literal.
    """
    out: list[str] = []
    for piece, name in _tokens(text):
        value = lookup(name) if name is not None else None
        out.append(piece if value is None else value)
    return "".join(out)


def resolve_env(env: Iterable[EnvVar]) -> dict[str, str]:
    """Resolve *env* in order: each value may refer to variables defined before it."""
    resolved: dict[str, str] = {}
    for var in env:
        resolved[var.name] = expand(var.value, resolved.get)
    return resolved


def expand_all(items: Iterable[str], env: Mapping[str, str]) -> tuple[str, ...]:
    """Expand each of *items* (a command or its args) against the resolved *env*."""
    return tuple(expand(item, env.get) for item in items)


def _expanded_size(text: str, sizes: Mapping[str, int]) -> int:
    """The size in bytes of *text* expanded, given the sizes of the variables: computed,
    not built, so that references that nest cost nothing to measure."""
    size = 0
    for piece, name in _tokens(text):
        known = sizes.get(name) if name is not None else None
        size += len(piece.encode("utf-8")) if known is None else known
    return size


def check_expansion(path: str, container: Container) -> None:
    """Refuse a container whose env, command or args, once expanded, no process could
    start with: a string over :data:`MAX_STRING_BYTES`, or more than
    :data:`MAX_TOTAL_BYTES` in all. *path* is the container's manifest path."""
    sizes: dict[str, int] = {}
    for index, var in enumerate(container.env):
        size = _expanded_size(var.value, sizes)
        _check_string(f"{path}.env[{index}].value", len(var.name.encode("utf-8")) + 1 + size)
        sizes[var.name] = size
    total = sum(len(name.encode("utf-8")) + 2 + size for name, size in sizes.items())
    for field, items in (("command", container.command), ("args", container.args)):
        for index, item in enumerate(items):
            size = _expanded_size(item, sizes)
            _check_string(f"{path}.{field}[{index}]", size)
            total += size + 1
    if total > MAX_TOTAL_BYTES:
        raise SpecError(
            path,
            f"its command, args and env expand to {total} bytes, more than the "
            f"{MAX_TOTAL_BYTES} (2 MiB) a process may start with (Linux's ARG_MAX)",
        )


def _check_string(path: str, size: int) -> None:
    if size > MAX_STRING_BYTES:
        raise SpecError(
            path,
            f"expands to {size} bytes, more than the {MAX_STRING_BYTES} Linux takes in one "
            "argument or environment string (MAX_ARG_STRLEN)",
        )
