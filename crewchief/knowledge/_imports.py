"""The knowledge layer's heavy third-party modules, imported under one lock.

numpy's modules import each other in a cycle. When two threads import numpy (or a package
that does: chromadb, wordllama, bm25s) for the first time at the same moment, Python's
per-module locks hand one thread the other's half-initialized module instead of waiting
(they would deadlock otherwise), and the import fails with "cannot import name ... from
partially initialized module". In a fresh process that happens the first time an operation
ends: recalling earlier operations and refreshing the owner's profile each load Chroma on a
thread of their own. Taking these imports one at a time removes the race; once a module is
loaded, the lock costs a dictionary lookup.
"""

from __future__ import annotations

import importlib
import threading
from types import ModuleType

_LOCK = threading.RLock()


def heavy(name: str) -> ModuleType:
    """``import name``, one heavy import at a time across the process's threads."""
    with _LOCK:
        return importlib.import_module(name)
