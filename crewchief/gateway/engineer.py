"""The prompt engineer: rewrites a request's latest human message for its role with the
``fast`` model, before the request goes to the role's model.

Only the latest human message is rewritten, and only when it is the request's last
message: tool results, assistant turns and system prompts (an agent's own) are never
touched, and a request whose last message is a tool result is an agent's loop, not a
human asking. Short messages and already structured ones (lists, headings, code, JSON)
are sent as they are. Rewrites are cached by role, strategy version and the message's
hash. The fast model writes at temperature 0.3 and at most three times the original's
tokens (at least 128, at most ``gateway.rewrite_max_tokens``; longer messages are sent as
they are). A rewrite that fails, takes longer than ``gateway.rewrite_timeout_seconds`` or
reaches its bound is dropped: the original goes, and the response says why.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

from crewchief.gateway.cache import ResponseCache
from crewchief.models.tokens import count_tokens
from crewchief.models.types import CallInfo, FastReply

MIN_CHARS = 40  # shorter messages ("thanks", "go on", "yes") say all they need to
_STRUCTURED = re.compile(r"(?m)^\s*(?:[-*+]\s|\d+[.)]\s|#{1,6}\s|```)")
TEMPERATURE = 0.3  # a little freedom to rephrase, not enough to wander off the request
GROWTH = 3  # a rewrite may be at most this many times as long as the original
MIN_BOUND = 128  # ... or this many tokens, for short originals
PROFILE_NOTE = (
    "The user's profile follows. Let it shape how the request is put (their languages,"
    " frameworks, level), but never add a requirement the request does not make."
)


class Rewriter(Protocol):
    """Calls the fast model: (system prompt, message, who is calling, sampling) -> reply."""

    def __call__(
        self, system: str, text: str, info: CallInfo, *, temperature: float, max_tokens: int
    ) -> Awaitable[FastReply]: ...


@dataclass(frozen=True, slots=True)
class Strategies:
    version: str
    common: str
    roles: dict[str, dict[str, str]]

    def prompt(self, role: str, about: str | None = None) -> str:
        """The rewrite's system prompt for ``role`` (with the user's profile, when given)."""
        strategy = self.roles.get(role) or self.roles.get("general") or {}
        parts = [self.common.strip(), f"The assistant will act as: {role}."]
        for label, key in (("Spell out", "focus"), ("Techniques", "techniques")):
            if strategy.get(key):
                parts.append(f"{label}: {strategy[key]}.")
        if strategy.get("example"):
            parts.append(f"Example (original -> rewritten): {strategy['example']}")
        if about:
            parts.append(f"{PROFILE_NOTE}\n{about}")
        return "\n".join(parts)


def _read(text: str) -> dict[str, Any]:
    import yaml

    data = yaml.safe_load(text) or {}
    if not isinstance(data, dict):
        raise ValueError("a strategies file is a mapping with 'version', 'common' and 'roles'")
    return data


@cache
def _shipped() -> dict[str, Any]:
    return _read(resources.files("crewchief.gateway").joinpath("strategies.yaml").read_text())


def load_strategies(path: str | Path | None = None) -> Strategies:
    """The shipped strategies, with a user file's roles and text over them."""
    data = dict(_shipped())
    roles = {k: dict(v) for k, v in data["roles"].items()}
    if path is not None:
        mine = _read(Path(path).expanduser().read_text())
        for role, strategy in (mine.get("roles") or {}).items():
            roles[role] = {**roles.get(role, {}), **strategy}
        data["common"] = mine.get("common", data["common"])
        data["version"] = f"{data['version']}+{mine.get('version', 'user')}"
    return Strategies(str(data["version"]), str(data["common"]), roles)


@dataclass
class Rewrite:
    """What the engineer did to a request (``x_crewchief.rewrite``)."""

    applied: bool = False
    reason: str = ""
    original_tokens: int = 0
    optimized_tokens: int = 0
    ms: float = 0.0
    cached: bool = False

    def metadata(self) -> dict[str, Any]:
        return {
            "applied": self.applied,
            "reason": self.reason,
            "original_tokens": self.original_tokens,
            "optimized_tokens": self.optimized_tokens,
            "engineer_ms": round(self.ms, 2),
            "cached": self.cached,
        }


def _text(message: dict[str, Any]) -> str | None:
    content = message.get("content")
    return content if isinstance(content, str) else None


def skip_reason(messages: list[dict[str, Any]]) -> str | None:
    """Why the request's latest message is not rewritten, or None when it may be."""
    last = messages[-1]
    if last.get("role") != "user":
        return f"the last message is a {last.get('role')} message, not a human's"
    text = _text(last)
    if text is None:
        return "the message has parts (images, files): sent as it is"
    if len(text.strip()) < MIN_CHARS:
        return "short enough to say what it means"
    if _STRUCTURED.search(text) or text.lstrip().startswith(("{", "[")):
        return "already structured"
    return None


class Engineer:
    """Rewrites requests for their role.

    Args:
        rewriter: Calls the ``fast`` model with a system prompt and the message.
        strategies: The role strategies.
        timeout: Seconds a rewrite may take before the original goes instead.
        cache: Where rewrites are kept (None: no reuse).
        max_tokens: The most tokens of a rewrite; a longer message is sent as written.
    """

    def __init__(
        self,
        rewriter: Rewriter,
        strategies: Strategies,
        timeout: float,
        cache: ResponseCache | None = None,
        max_tokens: int = 1024,
    ):
        self.rewriter = rewriter
        self.strategies = strategies
        self.timeout = timeout
        self.cache = cache
        self.max_tokens = max_tokens

    def _key(self, role: str, text: str, about: str | None) -> str:
        material = f"{role}\0{self.strategies.version}\0{text}"
        if about:  # a rewrite made for a profile is that profile's
            material += f"\0{about}"
        return "rewrite:" + hashlib.sha256(material.encode()).hexdigest()

    async def rewrite(
        self,
        role: str,
        messages: list[dict[str, Any]],
        info: CallInfo,
        *,
        about: str | None = None,
    ) -> tuple[list[dict[str, Any]], Rewrite]:
        """The messages with the latest human message rewritten for ``role``, and what was
        done; ``info`` is who the fast model's call is recorded for, ``about`` the user's
        profile block (context for the rewrite)."""
        started = time.perf_counter()
        done = Rewrite()
        if (reason := skip_reason(messages)) is not None:
            done.reason = reason
            return messages, done
        original = _text(messages[-1]) or ""
        done.original_tokens = count_tokens(original)
        if done.original_tokens > self.max_tokens:
            done.reason = f"longer than a rewrite may be ({self.max_tokens} tokens): sent as it is"
            return messages, done
        bound = min(self.max_tokens, max(MIN_BOUND, GROWTH * done.original_tokens))
        key = self._key(role, original, about)
        hit = await self.cache.get(key) if self.cache is not None else None
        try:
            if hit is not None:
                better, done.cached = str(hit["text"]), True
            else:
                async with asyncio.timeout(self.timeout):
                    prompt = self.strategies.prompt(role, about)
                    reply = await self.rewriter(
                        prompt, original, info, temperature=TEMPERATURE, max_tokens=bound
                    )
                better = "" if reply.truncated else reply.text.strip()
                if reply.truncated:
                    done.reason = f"the rewrite reached its bound ({bound} tokens): sent as it was"
        except TimeoutError:
            done.reason = f"the rewrite took longer than {self.timeout:g} s: sent as it was"
        except Exception as exc:  # noqa: BLE001 - the original goes instead
            done.reason = f"the rewrite failed ({type(exc).__name__}: {exc}): sent as it was"
        else:
            if not better:
                done.reason = done.reason or "the rewrite came back empty: sent as it was"
            else:
                if self.cache is not None and hit is None:
                    await self.cache.put(key, {"text": better})
                done.applied, done.reason = True, f"rewritten for the {role} role"
                done.optimized_tokens = count_tokens(better)
                messages = [*messages[:-1], dict(messages[-1], content=better)]
        done.ms = (time.perf_counter() - started) * 1000
        return messages, done
