"""Run leases on each database: one holder at a time, expiry hands an operation over."""

from __future__ import annotations

import asyncio

import pytest

from crewchief.config import Settings
from crewchief.db import leases
from crewchief.errors import OperationBusy
from crewchief.runtime.leases import LeaseKeeper, dead_here, instance_id
from crewchief.runtime.services import Services

ELSEWHERE = "another-host:4242:0badc0de"


@pytest.fixture
async def services(backend_settings: Settings):
    svc = await Services.open(backend_settings)
    yield svc
    await svc.close()


async def _operation(services: Services, op: str, lease: tuple[str, float] | None) -> None:
    await services.recorder.create_operation(
        operation_id=op, request="r", workspace=None, lease=lease
    )


async def test_a_live_holder_keeps_its_operation(services: Services) -> None:
    await _operation(services, "op-held", (ELSEWHERE, 60))
    keeper = LeaseKeeper(services.store, 10)
    with pytest.raises(OperationBusy, match="another-host:4242"):
        await keeper.acquire("op-held")
    assert await keeper.orphans() == []


async def test_an_expired_lease_is_an_orphan_and_can_be_taken(services: Services) -> None:
    await _operation(services, "op-orphan", (ELSEWHERE, 0.05))
    await asyncio.sleep(0.2)
    keeper = LeaseKeeper(services.store, 10)
    assert await keeper.orphans() == ["op-orphan"]
    await keeper.acquire("op-orphan")
    assert keeper.holds("op-orphan")
    assert await keeper.orphans() == []
    other = LeaseKeeper(services.store, 10, holder=ELSEWHERE)
    with pytest.raises(OperationBusy, match=keeper.holder):
        await other.acquire("op-orphan")


async def test_a_run_stops_when_its_lease_is_lost(services: Services) -> None:
    keeper = LeaseKeeper(services.store, 0.3)
    lost: list[str] = []
    keeper.on_lost = lost.append
    await _operation(services, "op-taken", (keeper.holder, 0.3))
    await _operation(services, "op-cancelled", (keeper.holder, 0.3))
    await _operation(services, "op-kept", (keeper.holder, 0.3))
    for op in ("op-taken", "op-cancelled", "op-kept"):
        await keeper.acquire(op)
    # Another process took one over (as if this one had stalled past the expiry)...
    await leases.take_over(services.store, "op-taken", keeper.holder, ELSEWHERE, 60)
    # ...and another one was cancelled from elsewhere.
    await services.recorder.finish("op-cancelled", "cancelled", error="cancelled")
    keeper.start()
    try:
        async with asyncio.timeout(5):
            while len(lost) < 2:  # noqa: ASYNC110 - waiting for the keeper's own renewal loop
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # a few more renewals: the kept one stays held
    finally:
        await keeper.close()
    assert sorted(lost) == ["op-cancelled", "op-taken"]
    assert keeper.holds("op-kept")


def test_a_holder_is_dead_only_when_it_is_a_vanished_process_of_this_host() -> None:
    import subprocess
    import sys

    me = instance_id()
    host = me.split(":")[0]
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert dead_here(f"{host}:{child.pid}:x")
    assert not dead_here(me)  # this process
    assert not dead_here(f"{host}:1:x")  # init is alive
    assert not dead_here(f"another-host:{child.pid}:x")  # elsewhere: wait for the expiry
