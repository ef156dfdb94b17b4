"""FakeBackend: an in-memory container engine for tests, yours included.

A fake container runs a *program*: an async Python callable taking a :class:`FakeContext`,
or a declarative :class:`Program`. Programs are chosen per container name or per image.
Without one, a container runs its command with a few built-in tools (``cp``, ``cat``,
``echo``, ``sleep``, ``touch``, ``rm``, ``mkdir``, ``test``, ``ls``, ``true``, ``false``,
``httpd``), alone or from ``sh -c`` scripts; a command it cannot run is refused at create
time (give the container a program), and a container without a command runs its image's
own process, which the fake models as a server that runs until it is stopped.

Files are real enough to observe: each container has its own filesystem seeded from its
image (:meth:`FakeBackend.add_image`), and volumes are shared between the containers that
mount them, read-only mounts included. Probes reach programs through :meth:`FakeContext.serve`.

Time is anyio's: run tests under a virtual clock (:func:`asyncpod.testing.virtual_time`
backends) and delays, probe periods and back-off cost nothing.

Fault injection: :meth:`FakeBackend.inject` makes any operation fail or hang,
:meth:`FakeBackend.crash` makes a running container exit, and
:meth:`FakeBackend.set_exec_result` flips what an exec (an exec probe) returns.
"""

from __future__ import annotations

from ._backend import FakeBackend
from ._container import FakeContainer
from ._program import ExecHandler, FakeContext, Program, ProgramFn

__all__ = ["ExecHandler", "FakeBackend", "FakeContainer", "FakeContext", "Program", "ProgramFn"]

backend_class = FakeBackend
