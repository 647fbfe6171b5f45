"""How events reach every process: Redis pub/sub, and database polling when it is not there.

Events are stored before they are published (:mod:`crewchief.db.recorder`), so
the database is always the truth and a bus only makes delivery prompt:

- :class:`RedisBus` delivers an event to this process's subscribers at once and
  publishes it on Redis for the others; events other processes publish arrive
  on the same subscriptions. Pub/sub may drop messages (a reconnect): followers
  notice the skipped seq and read the rest from the database.
- :class:`EventPoller` looks in the database, for the operations followed in
  this process, for events that reached it from no bus: written by another
  process while Redis is off (embedded mode: a CLI resume next to a server) or
  down. It polls every ``events_poll_seconds`` then, and only as a slow safety
  net while Redis is connected.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from crewchief import metrics
from crewchief._aio import cancel_and_wait
from crewchief.events import Event, EventBus, EventType

log = logging.getLogger(__name__)

# While Redis is connected, the poller still looks this often (a message lost on a reconnect).
SAFETY_POLL_SECONDS = 5.0
# How long an operation streamed here stays "watched" without a refresh: while it is,
# processes running it publish its token deltas (transient, so only when someone listens).
WATCH_SECONDS = 15.0
_RECONNECT_MAX_SECONDS = 5.0
_WATCHED_MAX = 20_000  # operations whose watch answer a process remembers


def wire(origin: bytes, event: Event) -> bytes:
    """An event as a Redis message: ``origin op json``. A receiver skips its own echoes, and
    operations nobody follows there, without decoding the JSON."""
    body = json.dumps(event.to_dict(), separators=(",", ":"), default=str).encode()
    return b"%s %s %s" % (origin, event.operation_id.encode(), body)


class RedisBus(EventBus):
    """The in-process bus, plus Redis pub/sub between processes.

    Args:
        url: ``redis://...``.
        prefix: Namespace of the channels and keys (``CREWCHIEF_REDIS_PREFIX``).
    """

    def __init__(self, url: str, prefix: str):
        super().__init__()
        self._url = url
        self._events = f"{prefix}:events"
        self._deltas = f"{prefix}:deltas"
        self._watch = f"{prefix}:watch:"
        self._watching = f"{prefix}:watching"  # "somebody watches op X now", to every runner
        self._watching_bytes = self._watching.encode()
        self._origin = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._origin_bytes = self._origin.encode()
        self._outbox: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._client: Any = None
        self._listening = False
        self._sending = True
        self._watched: dict[str, tuple[float, bool]] = {}
        self._checking: set[str] = set()
        self._announcing: set[asyncio.Task[None]] = set()
        self.on_reconnect: Callable[[], None] | None = None
        self.fallbacks = 0  # how many times streams fell back to polling
        self.received = 0  # events other processes published that reached this one
        self.malformed = 0

    @property
    def cross_process(self) -> bool:  # type: ignore[override]
        return self._listening and self._sending

    async def start(self) -> None:
        """Connect; without Redis the bus works in-process and keeps trying (nothing raises)."""
        import redis.asyncio as redis

        self._client = redis.from_url(self._url, socket_connect_timeout=2, socket_timeout=5)
        connected = asyncio.get_running_loop().create_future()
        self._tasks = [
            asyncio.create_task(self._listen(connected), name="crewchief-redis-listen"),
            asyncio.create_task(self._send(), name="crewchief-redis-send"),
            asyncio.create_task(self._keep_watching(), name="crewchief-redis-watch"),
        ]
        # A short wait so a process that starts with Redis up is live at once.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2):
                await asyncio.shield(connected)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # -- publishing --------------------------------------------------------------------------

    def publish(self, event: Event) -> None:
        """Deliver here at once; publish on Redis in order, in the background."""
        self._deliver(event)
        if event.seq is None:
            if not self._is_watched(event.operation_id):
                return
            channel = self._deltas
        else:
            channel = self._events
        self._outbox.put_nowait((channel, self._encode(event)))

    def _encode(self, event: Event) -> bytes:
        return wire(self._origin_bytes, event)

    async def _send(self) -> None:
        while True:
            batch = [await self._outbox.get()]
            while not self._outbox.empty():
                batch.append(self._outbox.get_nowait())
            try:
                async with self._client.pipeline(transaction=False) as pipe:
                    for channel, body in batch:
                        pipe.publish(channel, body)
                    await pipe.execute()
                if not self._sending:
                    log.info("event bus: publishing on Redis again")
                self._sending = True
                self._report()
            except Exception as exc:  # noqa: BLE001 - the events are stored; pollers catch up
                if self._sending:
                    self._degraded(f"cannot publish ({exc})")
                self._sending = False
                self._report()

    # -- receiving ---------------------------------------------------------------------------

    async def _listen(self, connected: asyncio.Future[None]) -> None:
        delay = 0.2
        while True:
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._events, self._deltas, self._watching)
                if not self._listening:
                    if connected.done():
                        log.info("event bus: Redis is back, streams are live again")
                    self._listening = True
                    self._sending = True  # the next publish says otherwise if it fails
                    self._report()
                    if self.on_reconnect is not None:
                        self.on_reconnect()  # what was missed meanwhile is in the database
                if not connected.done():
                    connected.set_result(None)
                delay = 0.2
                async for message in pubsub.listen():
                    if message.get("channel") == self._watching_bytes:
                        self._mark_watched(message.get("data"))
                    else:
                        self._receive(message.get("data"))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - reconnect, meanwhile the database
                if self._listening or not connected.done():
                    self._degraded(f"lost the subscription ({exc})")
                self._listening = False
                self._report()
                if not connected.done():
                    connected.set_result(None)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, _RECONNECT_MAX_SECONDS)

    def _receive(self, body: Any) -> None:
        try:
            origin, op, rest = body.split(b" ", 2)
            if origin == self._origin_bytes:
                return  # delivered here already, when it was published
            if op.decode() not in self._subs and None not in self._subs:
                self.received += 1
                return  # nobody here follows it
            data = json.loads(rest)
            event = Event(
                data["operation_id"],
                EventType(data["type"]),
                data["payload"],
                data["seq"],
                datetime.fromisoformat(data["created_at"]),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            self.malformed += 1
            if self.malformed % 1000 == 1:  # the first, then one line per thousand
                log.warning(
                    "event bus: ignoring malformed messages on Redis (%d so far): %s",
                    self.malformed,
                    exc,
                )
            return
        self.received += 1
        if event.operation_id in self._subs or None in self._subs:
            self._deliver(event)

    def _degraded(self, why: str) -> None:
        self.fallbacks += 1
        metrics.get().bus_fallbacks.inc()
        log.warning(
            "event bus: Redis unavailable (%s); streams fall back to polling the database", why
        )

    def _report(self) -> None:
        metrics.get().bus_degraded.set(0 if self._listening and self._sending else 1)

    # -- token deltas: published only for operations someone streams --------------------------

    def has_subscribers(self, operation_id: str) -> bool:
        return super().has_subscribers(operation_id) or self._is_watched(operation_id)

    def _is_watched(self, operation_id: str) -> bool:
        if operation_id in self._subs:
            return True
        loop = asyncio.get_running_loop()
        seen = self._watched.get(operation_id)
        if (seen is None or loop.time() - seen[0] > 1.0) and operation_id not in self._checking:
            self._checking.add(operation_id)
            loop.create_task(self._check_watch(operation_id))
        return bool(seen and seen[1])

    async def _check_watch(self, operation_id: str) -> None:
        try:
            watched = bool(await self._client.exists(self._watch + operation_id))
        except Exception:  # noqa: BLE001 - no deltas then; they are transient
            watched = False
        finally:
            self._checking.discard(operation_id)
        self._remember_watch(operation_id, watched)

    def _mark_watched(self, body: Any) -> None:
        with contextlib.suppress(AttributeError, UnicodeDecodeError):
            self._remember_watch(body.decode(), True)

    def _remember_watch(self, operation_id: str, watched: bool) -> None:
        now = asyncio.get_running_loop().time()
        self._watched[operation_id] = (now, watched)
        if len(self._watched) > _WATCHED_MAX:
            # Answers older than a few seconds are asked again anyway: drop those first.
            fresh = {op: v for op, v in self._watched.items() if now - v[0] < 5.0}
            self._watched = fresh if len(fresh) <= _WATCHED_MAX else {operation_id: (now, watched)}

    def _watch_now(self, operation_id: str) -> None:
        """Mark the operation watched at once, and tell every runner (their cached "no"
        would otherwise drop deltas for up to a second)."""
        if self._client is None:
            return
        task = asyncio.get_running_loop().create_task(self._announce(operation_id))
        self._announcing.add(task)
        task.add_done_callback(self._announcing.discard)

    async def _announce(self, operation_id: str) -> None:
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.set(self._watch + operation_id, b"1", ex=int(WATCH_SECONDS))
                pipe.publish(self._watching, operation_id.encode())
                await pipe.execute()
        except Exception:  # noqa: BLE001 - deltas are transient; events are not lost
            pass

    async def _keep_watching(self) -> None:
        """Mark the operations streamed here as watched, so their runners publish deltas."""
        while True:
            ops = self.watched()
            if ops and self._client is not None:
                try:
                    async with self._client.pipeline(transaction=False) as pipe:
                        for op in ops:
                            pipe.set(self._watch + op, b"1", ex=int(WATCH_SECONDS))
                        await pipe.execute()
                except Exception:  # noqa: BLE001 - deltas are transient; events are not lost
                    pass
            await asyncio.sleep(WATCH_SECONDS / 3)


class EventPoller:
    """Tells followers of an operation when the database holds events no bus brought here.

    Args:
        bus: This process's bus.
        heads: ``await heads(operation_ids)`` gives each one's highest stored seq.
        interval: Seconds between looks while no bus brings other processes' events.
    """

    def __init__(
        self,
        bus: EventBus,
        heads: Callable[[list[str]], Awaitable[dict[str, int]]],
        *,
        interval: float,
    ):
        self._bus = bus
        self._heads = heads
        self._interval = interval
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="crewchief-event-poller")

    def wake(self) -> None:
        """Look now (Redis came back: what it missed meanwhile is in the database)."""
        self._wake.set()

    async def close(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def _run(self) -> None:
        while True:
            wait = SAFETY_POLL_SECONDS if self._bus.cross_process else self._interval
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()
            self._wake.clear()
            await self.poll()

    async def poll(self) -> None:
        """One look: a notice to the followers of each operation with newer stored events."""
        ops = self._bus.followed()
        if not ops:
            return
        try:
            heads = await self._heads(ops)
        except Exception as exc:  # noqa: BLE001 - the next look may work
            log.warning("event poller: cannot read event heads: %s", exc)
            return
        for op, seq in heads.items():
            self._bus.notify(op, seq)
