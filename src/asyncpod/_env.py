"""Kubernetes ``$(VAR)`` expansion for env values, command and args."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from ._models import EnvVar

__all__ = ["expand", "resolve_env"]


def expand(text: str, lookup: Callable[[str], str | None]) -> str:
    """Expand ``$(NAME)`` references in *text* as Kubernetes does.

    A reference to an unknown name is left as it is; ``$$`` is an escaped ``$``; a ``$``
    followed by anything else, or an unterminated ``$(``, stays literal.
    """
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char != "$" or i + 1 >= n:
            out.append(char)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "(":
            end = text.find(")", i + 2)
            if end < 0:
                out.append(text[i:])
                break
            name = text[i + 2 : end]
            value = lookup(name) if name else None
            out.append(value if value is not None else text[i : end + 1])
            i = end + 1
        else:
            out.append("$" + nxt)
            i += 2
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
