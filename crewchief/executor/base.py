"""The executor protocol: what the facade asks of whatever runs operations."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

from crewchief.state import OperationInput


class Executor(Protocol):
    """Runs operation graphs; the facade records, validates and reads, the executor runs."""

    async def claim(self, operation_id: str) -> None:
        """Take the right to run the operation before its state is changed for a new run.

        Raises:
            OperationBusy: another process runs it.
        """
        ...

    async def unclaim(self, operation_id: str) -> None:
        """Give a claim up when no run follows it after all."""
        ...

    def with_record(
        self, operation_id: str, payload: OperationInput, options: dict[str, Any]
    ) -> Callable[[Any], None] | None:
        """What to do in the transaction that records a new operation, if anything.

        A job queue in the same database enqueues the run's job there: the operation and
        its job exist together or not at all, in one round trip. ``launch(created=True)``
        then only follows the run.
        """
        ...

    async def launch(
        self,
        operation_id: str,
        payload: OperationInput | Any | None,
        options: dict[str, Any],
        *,
        created: bool = False,
    ) -> asyncio.Future[None]:
        """Start (or continue) a run of the operation; the future resolves when it stops.

        ``payload`` is a new run's :class:`~crewchief.state.OperationInput`, a
        LangGraph ``Command`` (a plan decision), or None (go on from the last
        checkpoint). ``options`` are the operation's stored options (per-run models).
        ``created``: the operation was just created already holding this process's lease.

        Raises:
            OperationBusy: another process runs it.
        """
        ...

    def running(self, operation_id: str) -> bool:
        """Whether a run of the operation is going on here."""
        ...

    async def cancel(self, operation_id: str) -> bool:
        """Stop the operation's run here, if any; True when there was one (it ends cancelled)."""
        ...

    async def settle(self, operation_id: str) -> None:
        """Wait for the operation's run here, if any, to return (callers bound the wait)."""
        ...

    async def close(self) -> None:
        """Stop every run (each ends cancelled)."""
        ...
