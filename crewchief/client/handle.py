"""A started operation as the library hands it back: id, live events, result, cancel."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from crewchief.events import Event, Subscription
from crewchief.results import OperationResult

if TYPE_CHECKING:
    from crewchief.client.facade import Crewchief


class OperationHandle:
    """A running operation: its id, its live events, its result, and a way to stop it."""

    def __init__(
        self, chief: Crewchief, operation_id: str, task: asyncio.Future, sub: Subscription
    ):
        self.id = operation_id
        self._chief = chief
        self._task = task
        self._sub = sub
        # Set by Crewchief.rerun_task: {"task", "version", "dependents"}.
        self.rerun: dict[str, Any] | None = None

    def detach(self) -> None:
        """Stop collecting live events for this handle (the run goes on)."""
        self._sub.close()

    async def events(self) -> AsyncIterator[Event]:
        """Events from the start of this run until (and including) the terminal one,
        token deltas (``model.delta``) included, wherever the run executes."""
        self._sub.watch()
        try:
            async for event in self._sub:
                yield event
                if event.terminal:
                    return
        finally:
            self._sub.close()

    async def wait(self) -> OperationResult:
        """Wait for the run to end (completed, failed or cancelled) and return it."""
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(self._task)
        self._sub.close()
        return await self._chief.get(self.id)

    async def cancel(self) -> OperationResult:
        """Stop the run promptly, wherever it runs; the operation ends ``cancelled``."""
        await self._chief.cancel(self.id)
        return await self.wait()

    @property
    def done(self) -> bool:
        return self._task.done()
