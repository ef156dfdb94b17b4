"""Ending a helper process the backend started (a private service, an ssh tunnel)."""

from __future__ import annotations

import contextlib

import anyio
import anyio.abc

__all__ = ["end_process"]

#: how long a helper has to exit after SIGTERM before it is killed
TERMINATE_GRACE = 5.0


async def end_process(process: anyio.abc.Process) -> None:
    """SIGTERM *process*, SIGKILL it if it has not exited after :data:`TERMINATE_GRACE`
    seconds, and release it; shielded, so that a cancelled caller still ends it."""
    with anyio.CancelScope(shield=True):
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            with anyio.move_on_after(TERMINATE_GRACE):
                await process.wait()
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        await process.aclose()
