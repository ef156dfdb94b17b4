"""Fault injection: backend operations made to fail or hang on demand."""

from __future__ import annotations

import anyio
import attrs

from ..._exceptions import BackendError
from .._base import Backend

#: what :meth:`FakeBackend.inject` accepts: every operation of the contract
OPERATIONS = frozenset(
    name for name, value in vars(Backend).items() if getattr(value, "__isabstractmethod__", False)
) | {"ensure_image", "import_image", "watch_exits"}


@attrs.define
class _Fault:
    operation: str
    target: str | None
    error: BaseException | None
    hang: bool
    times: int | None


class Faults:
    """The faults injected into one backend, each hit by the calls it matches."""

    def __init__(self) -> None:
        self._faults: list[_Fault] = []

    def add(
        self,
        operation: str,
        target: str | None,
        error: BaseException | None,
        hang: bool,
        times: int | None,
    ) -> None:
        if operation not in OPERATIONS:
            raise ValueError(f"unknown operation {operation!r}; one of {sorted(OPERATIONS)}")
        if error is None and not hang:
            error = BackendError(f"injected failure of {operation}")
        self._faults.append(_Fault(operation, target, error, hang, times))

    def clear(self) -> None:
        self._faults.clear()

    async def hit(self, operation: str, targets: tuple[str, ...]) -> None:
        """Fail or hang as the faults matching *operation* on any of *targets* say."""
        for fault in list(self._faults):
            if fault.operation != operation:
                continue
            if fault.target is not None and fault.target not in targets:
                continue
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
            if fault.hang:
                await anyio.sleep_forever()
            if fault.error is not None:
                raise fault.error

    def __bool__(self) -> bool:
        return bool(self._faults)
