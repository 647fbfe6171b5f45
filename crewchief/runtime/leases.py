"""This process's run leases: taken before a run starts, renewed while it goes on, given up after.

See :mod:`crewchief.db.leases` for what a lease guarantees. One background task
renews every lease this process holds in one statement every third of the lease
time; a lease it finds lost (another process took over after this one stalled, or
the operation was cancelled elsewhere) stops that run here.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from crewchief._aio import cancel_and_wait
from crewchief.db import leases
from crewchief.db.writer import Writer
from crewchief.errors import OperationBusy

log = logging.getLogger(__name__)


def instance_id() -> str:
    """This process among all of a deployment: host, pid, and a token (pids repeat in containers)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def dead_here(holder: str) -> bool:
    """Whether ``holder`` is a process of this machine that no longer exists.

    A lease of such a process can be taken at once instead of after it expires: the
    process that held it was killed (a server restarted after ``kill -9``).
    """
    host, _, rest = holder.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit() or int(pid_text) == os.getpid():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # it exists, under another user
    return False


class LeaseKeeper:
    """Takes, renews and gives up the leases of the runs in this process.

    Args:
        store: The app database.
        seconds: How long a lease holds without renewal (``lease_seconds``).
        holder: This process's name; default :func:`instance_id`.
    """

    def __init__(self, store: Writer, seconds: float, holder: str | None = None):
        self.store = store
        self.seconds = seconds
        self.holder = holder or instance_id()
        self._held: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self.on_lost: Callable[[str], None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._renew_forever(), name="crewchief-leases")

    async def close(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def acquire(self, operation_id: str) -> None:
        """Hold the operation's lease (renewing it if this process already does).

        Raises:
            OperationBusy: another live process holds it; the message names it.
        """
        held = await leases.acquire(self.store, operation_id, self.holder, self.seconds)
        if held is not None and dead_here(held.holder):
            if await leases.take_over(
                self.store, operation_id, held.holder, self.holder, self.seconds
            ):
                log.warning(
                    "operation %s: took its lease over from %s, a process that no longer exists",
                    operation_id,
                    held.holder,
                )
                held = None
        if held is not None:
            left = (held.expires_at - datetime.now(UTC)).total_seconds()
            raise OperationBusy(
                f"operation {operation_id} is running in another process ({held.holder}; its"
                f" lease is renewed while it runs and expires in {max(left, 0):.0f} s if that"
                " process dies)"
            )
        self._held.add(operation_id)

    def adopt(self, operation_id: str) -> None:
        """Count a lease taken in another write as held (the operation was created with it)."""
        self._held.add(operation_id)

    def forget(self, operation_id: str) -> None:
        """Stop renewing a lease the run's last write gave up (its end, or a plan review wait)."""
        self._held.discard(operation_id)

    async def release(self, operation_id: str) -> None:
        """Give the lease up: the run here stopped without ending (handed back)."""
        if operation_id in self._held:
            self._held.discard(operation_id)
            await leases.release(self.store, operation_id, self.holder)

    def holds(self, operation_id: str) -> bool:
        return operation_id in self._held

    async def orphans(self) -> list[str]:
        """Running operations whose process is gone: expired leases, dead holders on this host."""
        found = await leases.orphans(self.store, host=socket.gethostname())
        return [
            op
            for op, holder, expired in found
            if holder != self.holder and (expired or dead_here(holder))
        ]

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self.seconds / 3)
            ops = sorted(self._held)
            if not ops:
                continue
            try:
                still = await leases.renew(self.store, ops, self.holder, self.seconds)
            except Exception as exc:  # noqa: BLE001 - try again; the lease has time left
                log.warning("cannot renew run leases: %s", exc)
                continue
            for op in ops:
                if op not in still and op in self._held:
                    self._held.discard(op)
                    log.warning("lost the lease of operation %s: its run here stops", op)
                    if self.on_lost is not None:
                        self.on_lost(op)
