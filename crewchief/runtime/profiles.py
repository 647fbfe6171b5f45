"""Owners' profiles as the service uses them: read, changed, deleted, learned, rendered.

Rows live in the app database (:mod:`crewchief.db.profiles`); what they mean is
:mod:`crewchief.knowledge.profile`. Learned preferences are refreshed from what the memory
keeps of the owner (their remembered operations and gateway requests): on every read of
the profile, in the background after each of their operations ends, and in the background
when a prompt needs a profile last learned more than ``REFRESH_SECONDS`` ago. The block
that prompts get is kept ``ABOUT_TTL`` seconds per owner in this process (a change made
here is seen at once; one made by another process within that time).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from crewchief.db import profiles as rows
from crewchief.db.writer import Writer
from crewchief.knowledge._learn import learn
from crewchief.knowledge.profile import (
    About,
    LearnedProfile,
    Profile,
    ProfilePatch,
    StatedProfile,
)

log = logging.getLogger(__name__)

ABOUT_TTL = 5.0
REFRESH_SECONDS = 600.0
# owner -> (the texts of their remembered requests, one workspace per remembered operation)
Sources = Callable[[str | None], Awaitable[tuple[list[str], list[str]]]]


def _profile(owner: str | None, row: rows.ProfileRow | None) -> Profile:
    if row is None:
        return Profile(owner=owner)
    return Profile(
        owner=owner,
        stated=StatedProfile.model_validate(row.stated),
        learned=LearnedProfile.model_validate(row.learned),
        learned_at=row.learned_at,
        updated_at=row.updated_at,
    )


class ProfileBook:
    """The profiles of one app database.

    Args:
        store: The app database.
        sources: What the memory keeps of an owner, to learn from (None: nothing learned).
        enabled: Learn preferences and render profiles for prompts (``knowledge.profiles``);
            reading, changing and deleting work either way.
    """

    def __init__(self, store: Writer, sources: Sources | None, *, enabled: bool = True):
        self.store = store
        self.sources = sources
        self.enabled = enabled
        self._about: dict[str, tuple[float, About | None]] = {}
        self._refreshed: dict[str, float] = {}
        self._pending: dict[str, asyncio.Task[None]] = {}

    async def get(self, owner: str | None, *, refresh: bool = True) -> Profile:
        """The owner's profile (an empty one when none is stored), its learned preferences
        refreshed first unless ``refresh`` is false (a refresh that fails is logged, and the
        stored ones are returned)."""
        if refresh:
            try:
                await self.refresh(owner)
            except Exception:  # noqa: BLE001 - the stored profile is still the profile
                log.exception("could not refresh the learned preferences of a profile")
        return _profile(owner, await rows.get(self.store, owner))

    async def replace(self, owner: str | None, stated: StatedProfile) -> Profile:
        """Replace the stated preferences; the profile after."""
        row = await rows.update_stated(self.store, owner, lambda _: stated.model_dump())
        self._forget_about(owner)
        return _profile(owner, row)

    async def patch(self, owner: str | None, patch: ProfilePatch) -> Profile:
        """Merge ``patch`` into the stated preferences; the profile after."""

        def change(current: dict) -> dict:
            return patch.apply(StatedProfile.model_validate(current)).model_dump()

        row = await rows.update_stated(self.store, owner, change)
        self._forget_about(owner)
        return _profile(owner, row)

    async def delete(self, owner: str | None) -> int:
        """Delete the owner's profile (stated and learned); 1 if there was one, else 0."""
        await self._settle_owner(owner)
        deleted = await rows.delete(self.store, owner)
        self._forget_about(owner)
        return deleted

    async def refresh(self, owner: str | None) -> None:
        """Learn the owner's preferences again from what the memory keeps, and store them."""
        if not self.enabled or self.sources is None:
            return
        requests, workspaces = await self.sources(owner)
        learned = await asyncio.to_thread(learn, requests, workspaces)
        await rows.put_learned(self.store, owner, learned)
        self._refreshed[rows.owner_key(owner)] = time.monotonic()
        self._forget_about(owner)

    def refresh_later(self, owner: str | None) -> None:
        """:meth:`refresh` in the background (once at a time per owner; failures logged)."""
        key = rows.owner_key(owner)
        if not self.enabled or self.sources is None or key in self._pending:
            return

        async def run() -> None:
            try:
                await self.refresh(owner)
            except Exception:  # noqa: BLE001 - best effort: the stored profile stays
                log.exception("could not refresh the learned preferences of a profile")
            finally:
                self._pending.pop(key, None)

        self._pending[key] = asyncio.get_running_loop().create_task(run())

    async def about(self, owner: str | None) -> About | None:
        """The block prompts get for the owner (None: nothing to say), from a short cache."""
        if not self.enabled:
            return None
        key, now = rows.owner_key(owner), time.monotonic()
        cached = self._about.get(key)
        if cached is not None and now - cached[0] < ABOUT_TTL:
            return cached[1]
        row = await rows.get(self.store, owner)
        block = _profile(owner, row).about()
        if len(self._about) >= 10_000:
            self._about.clear()
        self._about[key] = (now, block)
        if self._stale(key, row, now):
            self.refresh_later(owner)
        return block

    def _stale(self, key: str, row: rows.ProfileRow | None, now: float) -> bool:
        if now - self._refreshed.get(key, -REFRESH_SECONDS) < REFRESH_SECONDS:
            return False
        self._refreshed[key] = now  # asked for once per period, whatever the refresh finds
        learned_at = row.learned_at if row is not None else None
        return learned_at is None or (
            (datetime.now(UTC) - learned_at).total_seconds() >= REFRESH_SECONDS
        )

    def _forget_about(self, owner: str | None) -> None:
        self._about.pop(rows.owner_key(owner), None)

    async def _settle_owner(self, owner: str | None) -> None:
        task = self._pending.get(rows.owner_key(owner))
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)

    async def settle(self) -> None:
        """Wait for the refreshes under way (at shutdown, and in tests)."""
        while self._pending:
            await asyncio.gather(*list(self._pending.values()), return_exceptions=True)
