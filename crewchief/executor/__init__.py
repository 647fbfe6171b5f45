"""Where operation runs execute: the seam between the facade and an engine.

:class:`~crewchief.executor.inprocess.InProcessExecutor` runs each operation as
an asyncio task in this process (embedded mode). A job-queue engine for scaled
mode implements the same :class:`Executor` protocol.
"""

from crewchief.executor.base import Executor

__all__ = ["Executor"]
