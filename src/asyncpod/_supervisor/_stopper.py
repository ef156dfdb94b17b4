"""Stopping a group of containers for good, in teardown order (a teardown, a retirement)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import anyio

from .._pool import Pool

if TYPE_CHECKING:
    from ._runner import Runner

__all__ = ["Stopper"]


class Stopper:
    """Stops *runners* in teardown order, and with *remove* removes them.

    Every running container's preStop hook starts at once; a container's stop signal is
    sent once its hook is done and every container of the group it must stop after (its
    ``stop_after``) has stopped. Independent containers stop in parallel, as jobs of one
    pool; only the hooks get tasks of their own. The bookkeeping of the order is the
    stopper's own: a retirement and a later teardown each keep theirs.
    """

    def __init__(
        self,
        runners: Sequence[Runner],
        stop_before: Mapping[str, Sequence[Runner]],
        *,
        remove: bool,
        deadline: float,
    ) -> None:
        self.runners = runners
        #: who must stop before whom (the supervisor's map, for every container)
        self.stop_before = stop_before
        self.remove = remove
        #: when the grace period of these stops runs out
        self.deadline = deadline
        #: set by :meth:`hurry`: stop everything now, in no order, without hooks
        self.killing = False
        #: per container: how many containers of the group it still waits for
        self._blockers: dict[str, int] = {}
        #: containers whose successors wait for their stop
        self._owing: set[str] = set()
        #: containers whose preStop hook is under way, and their cancel scopes
        self._hooks: dict[str, anyio.CancelScope] = {}
        self._submitted: set[str] = set()
        self._pending = len(runners)
        self._done = anyio.Event()
        self._pool: Pool | None = None

    async def run(self) -> None:
        if not self.runners:
            return
        # A container that has stopped already (exited for good, or retired) owes its
        # successors nothing; the others let them go on once stopped.
        owing = self._owing
        owing.update(r.name for r in self.runners if not r.final)
        blockers = self._blockers
        for runner in self.runners:
            blockers[runner.name] = sum(1 for name in runner.step.stop_after if name in owing)
        async with anyio.create_task_group() as tg:
            self._pool = Pool(tg)
            for runner in self.runners:
                if not self.killing and runner.has_pre_stop():
                    scope = self._hooks[runner.name] = anyio.CancelScope()
                    tg.start_soon(self._pre_stop, runner, scope)
                else:
                    self._ready(runner)
            await self._done.wait()
            tg.cancel_scope.cancel()

    def hurry(self) -> None:
        """Killing: stop every container now, whatever the order (hooks are cancelled)."""
        self.killing = True
        for scope in self._hooks.values():
            scope.cancel()
        if self._pool is not None:
            for runner in self.runners:
                self._ready(runner)

    def _ready(self, runner: Runner) -> None:
        name = runner.name
        if name in self._submitted or name in self._hooks:
            return
        if self._blockers[name] == 0 or self.killing:
            self._submitted.add(name)
            assert self._pool is not None
            self._pool.submit(self._stop, runner)

    async def _pre_stop(self, runner: Runner, scope: anyio.CancelScope) -> None:
        with scope:
            await runner.pre_stop(self.deadline)
        del self._hooks[runner.name]
        self._ready(runner)

    async def _stop(self, runner: Runner) -> None:
        await runner.stop(self.deadline)
        if runner.name in self._owing:
            self._owing.discard(runner.name)
            blockers = self._blockers
            for successor in self.stop_before.get(runner.name, ()):
                if successor.name in blockers:
                    blockers[successor.name] -= 1
                    self._ready(successor)
        if self.remove:
            await runner.remove()
        self._pending -= 1
        if self._pending == 0:
            self._done.set()
