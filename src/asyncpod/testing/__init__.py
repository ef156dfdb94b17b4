"""Testing helpers: the backend conformance suite and virtual time.

- :func:`check_backend` runs the conformance suite every backend passes (FakeBackend and
  PodmanBackend alike). It comes in two parts: :data:`CONTRACT_CHECKS`, the backend
  contract (all a backend's author must pass), and :data:`SCENARIO_CHECKS`, the
  supervisor's scenarios on that backend; :data:`CONFORMANCE_CHECKS` holds both, by
  name, for test runners that report them one by one through :func:`run_check`.
- :func:`virtual_time` gives ``anyio_backend`` fixture values that run asyncio or trio on
  a virtual clock, so that probe periods, back-off and grace periods cost no real time
  with the :class:`~asyncpod.backends.FakeBackend`.

The pytest plugin, loaded by pytest whenever asyncpod is installed, lives in the module
``pytest_asyncpod``: fixtures ``asyncpod_backend``, ``asyncpod_pod`` and ``run_pod``.
"""

from __future__ import annotations

from ._clock import VirtualTimeEventLoop as VirtualTimeEventLoop
from ._clock import virtual_time as virtual_time
from ._conformance import CONFORMANCE_CHECKS as CONFORMANCE_CHECKS
from ._conformance import CONTRACT_CHECKS as CONTRACT_CHECKS
from ._conformance import SCENARIO_CHECKS as SCENARIO_CHECKS
from ._conformance import BackendFixture as BackendFixture
from ._conformance import check_backend as check_backend
from ._conformance import run_check as run_check

# Not exported (it is asyncpod.backends.Backend): BackendFixture's annotations name it, and
# once re-homed below typing.get_type_hints evaluates them in this module's namespace.
from ..backends import Backend as Backend  # isort: skip

__all__ = [
    "BackendFixture",
    "check_backend",
    "CONFORMANCE_CHECKS",
    "CONTRACT_CHECKS",
    "run_check",
    "SCENARIO_CHECKS",
    "virtual_time",
    "VirtualTimeEventLoop",
]

# Show public objects as asyncpod.testing.X, not asyncpod.testing._conformance.X.
for _name in __all__:
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "").startswith(f"{__name__}._"):
        try:
            _obj.__module__ = __name__
        except (AttributeError, TypeError):  # pragma: no cover
            pass
del _name, _obj
