"""One thread that runs blocking calls in order for asyncio code.

``loop.run_in_executor`` costs a ``concurrent.futures.Future`` (with its
condition variable) and a wrapping asyncio future per call. The database
writer and the checkpoint saver make a dozen such calls per operation, so
they use this leaner hand-off: a simple queue in, ``call_soon_threadsafe``
out.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from typing import Any


def resolve_future(future: asyncio.Future, ok: bool, value: Any) -> None:
    if future.cancelled():
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


class SerialThread:
    """A daemon thread running submitted functions one at a time, in order."""

    def __init__(self, name: str):
        self._name = name
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            future, loop, fn = item
            try:
                result = (True, fn())
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                result = (False, exc)
            if future is None:
                continue  # posted: ``fn`` reported its own result
            try:
                loop.call_soon_threadsafe(resolve_future, future, *result)
            except RuntimeError:
                pass  # the caller's loop is closed: nobody is waiting

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()

    async def call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn()`` on the thread and return its result (or raise its exception)."""
        if self._thread is None:
            self._start()
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.put((future, loop, fn))
        return await future

    def post(self, fn: Callable[[], Any]) -> None:
        """Run ``fn()`` on the thread without waiting for it; ``fn`` reports its own result."""
        if self._thread is None:
            self._start()
        self._queue.put((None, None, fn))

    async def stop(self) -> None:
        """Finish what was submitted, then end the thread."""
        if self._thread is None:
            return
        self._queue.put(None)
        await asyncio.to_thread(self._thread.join)
        self._thread = None
