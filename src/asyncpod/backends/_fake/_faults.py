"""Fault injection: backend operations made to fail or hang on demand."""

from __future__ import annotations

import attrs

from .._base import Backend


@attrs.define
class _Fault:
    operation: str
    target: str | None
    error: BaseException | None
    hang: bool
    times: int | None


_OPERATIONS = frozenset(
    name for name, value in vars(Backend).items() if getattr(value, "__isabstractmethod__", False)
) | {"ensure_image", "watch_exits"}
