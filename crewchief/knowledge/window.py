"""Context-window management: a conversation fitted into a share of its model's window.

One component for the gateway (OpenAI-format message dicts) and the task executors' tool
loops (LangChain messages); a :class:`Dialect` says how to read and write each kind.

Tokens are counted with the model's tiktoken encoding (``o200k_base`` for models tiktoken
does not know). When a conversation fits within ``share`` of the window, less the tokens
kept for the answer, it goes as it is. Otherwise:

- messages are grouped in units that are never split: an assistant turn that calls tools
  goes with the tool results that answer it (a tool result without its call makes
  providers refuse the request);
- the leading system messages, the first user turn and the last ``keep_last`` units are
  kept whole; the units between them are replaced by one message summarizing them,
  written by the ``fast`` model within a bound (or, when no summary can be had, a note
  saying how many messages were left out);
- if that is still too long, the kept tail gives its oldest units to the summary, down to
  the last unit; then the longest texts of the kept messages other than system messages
  are cut in the middle.

System messages are never changed: when they alone do not fit, :class:`WindowError`.
What was done is returned as a :class:`Trimmed`, for the response's metadata or the
operation's events.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import cache
from typing import Any, Generic, Protocol, TypeVar

from crewchief import prompts
from crewchief.config import Settings
from crewchief.models.tokens import DEFAULT_ENCODING, get_encoding

log = logging.getLogger(__name__)

M = TypeVar("M")
PER_MESSAGE = 4  # the role and separators each message costs on top of its text
SUMMARY_TOKENS = 512  # the most a summary may take (and at most a quarter of the budget)
SUMMARY_PREFIX = "[Summary of {count} earlier messages, written to fit the context window]\n"
LEFT_OUT = "[{count} earlier messages were left out to fit the context window]"
CUT = "\n[... {count} tokens cut to fit the context window ...]\n"

# (transcript of the messages to summarize, most tokens) -> the summary
Summarizer = Callable[[str, int], Awaitable[str]]
SUMMARY_TEMPERATURE = 0.2  # the fast model's, for a summary: faithful rather than inventive
# Context windows as the providers publish them (tokens, prompt and answer together); the
# first matching prefix of the model name wins.
WINDOWS: tuple[tuple[str, int], ...] = (
    ("gpt-5", 400_000),
    ("gpt-4.1", 1_047_576),
    ("gpt-4o", 128_000),
    ("o3", 200_000),
    ("o4", 200_000),
    ("gemini-2.5", 1_048_576),
    ("gemini-2.0", 1_048_576),
    ("claude", 200_000),
    ("deepseek", 128_000),
)


class WindowError(ValueError):
    """The system messages alone are longer than the budget."""


def window_for(model: str, default: int) -> int:
    """The context window of a model name (or ``provider:name``, ``google/name``), in
    tokens; ``default`` for one not listed in :data:`WINDOWS`."""
    name = model.rsplit(":", 1)[-1].rsplit("/", 1)[-1].lower()
    return next((size for prefix, size in WINDOWS if name.startswith(prefix)), default)


def model_window(settings: Settings, spec: str) -> int:
    """The window of a configured model spec: a local model's share of its llama-server's
    context (the slots share it), else :func:`window_for` with the gateway's default."""
    if spec.startswith("local:"):
        return settings.local.context_size // settings.local.parallel
    return window_for(spec, settings.gateway.context_tokens)


@cache
def encoding_for(model: str) -> str:
    """The tiktoken encoding of ``model`` (a name or a ``provider:name`` spec)."""
    import tiktoken.model

    name = model.rsplit(":", 1)[-1].rsplit("/", 1)[-1]
    try:
        return tiktoken.model.encoding_name_for_model(name)
    except KeyError:
        return DEFAULT_ENCODING


def summary_instructions(most: int) -> str:
    """The system prompt of a summary of at most ``most`` tokens (a :data:`Summarizer`'s)."""
    return prompts.CONTEXT_SUMMARY.format(words=max(10, most * 2 // 3))


def count(text: str, encoding: str = DEFAULT_ENCODING) -> int:
    return len(get_encoding(encoding).encode(text, disallowed_special=()))


def cut_middle(text: str, keep: int, encoding: str = DEFAULT_ENCODING) -> str:
    """``text`` with its middle cut so that about ``keep`` tokens remain, and a marker."""
    tokens = get_encoding(encoding).encode(text, disallowed_special=())
    if len(tokens) <= keep:
        return text
    marker = CUT.format(count=len(tokens) - keep)
    keep = max(0, keep - count(marker, encoding))
    head, tail = keep - keep // 2, keep // 2
    enc = get_encoding(encoding)
    return enc.decode(tokens[:head]) + marker + (enc.decode(tokens[-tail:]) if tail else "")


@dataclass(frozen=True, slots=True)
class Turn:
    """One message as the fitter sees it."""

    role: str  # system | user | assistant | tool
    tokens: int
    calls: tuple[str, ...] = ()  # the tool call ids an assistant message makes
    answers: str | None = None  # the tool call id a tool message answers


class Dialect(Protocol[M]):
    """How to read and write one kind of message."""

    def turn(self, message: M, encoding: str) -> Turn: ...

    def most_tokens(self, message: M) -> int:
        """An upper bound of the message's tokens, without tokenizing (a token is at least
        one byte of its text)."""
        ...

    def text(self, message: M) -> str: ...

    def with_text(self, message: M, text: str) -> M: ...

    def note(self, text: str) -> M: ...


@dataclass
class Trimmed:
    """What fitting did to a conversation."""

    limit: int  # the budget, in tokens
    tokens_before: int  # -1: not counted (the conversation surely fit)
    tokens_after: int
    summarized: int = 0  # messages replaced by the summary (or the note)
    summary: str = "none"  # none | written | note (no summary could be had: why in reason)
    summary_tokens: int = 0
    cut: list[int] = field(default_factory=list)  # positions (in the input) of cut messages
    reason: str = ""

    @property
    def changed(self) -> bool:
        return bool(self.summarized or self.cut)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Fitted(Generic[M]):
    messages: list[M]
    trimmed: Trimmed


def units(turns: Sequence[Turn]) -> list[list[int]]:
    """The positions of ``turns`` grouped in units that are never split: an assistant
    message that calls tools with the tool messages right after it that answer it."""
    out: list[list[int]] = []
    i = 0
    while i < len(turns):
        unit, i = [i], i + 1
        pending = set(turns[unit[0]].calls) if turns[unit[0]].role == "assistant" else set()
        while pending and i < len(turns) and turns[i].role == "tool":
            if turns[i].answers not in pending:
                break
            pending.discard(turns[i].answers)
            unit.append(i)
            i += 1
        out.append(unit)
    return out


async def fit(
    messages: Sequence[M],
    dialect: Dialect[M],
    *,
    window: int,
    share: float = 0.8,
    reserve: int = 0,
    keep_last: int = 6,
    model: str = "",
    summarize: Summarizer | None = None,
) -> Fitted[M]:
    """``messages`` fitted into ``share`` of ``window`` tokens less ``reserve`` (for the
    answer); see the module's description.

    Raises:
        WindowError: the system messages alone exceed the budget.
    """
    limit = max(1, int(window * share) - reserve)
    if sum(dialect.most_tokens(m) for m in messages) <= limit:
        # Surely fits: the gateway's usual request is answered without tokenizing it.
        return Fitted(list(messages), Trimmed(limit, -1, -1))
    encoding = encoding_for(model) if model else DEFAULT_ENCODING
    turns = [dialect.turn(m, encoding) for m in messages]
    before = sum(t.tokens for t in turns)
    trimmed = Trimmed(limit, before, before)
    if before <= limit:
        return Fitted(list(messages), trimmed)
    groups = units(turns)
    head = 0
    while head < len(groups) and turns[groups[head][0]].role == "system":
        head += 1
    system = sum(turns[i].tokens for g in groups[:head] for i in g)
    if system > limit:
        raise WindowError(
            f"the system messages take {system:,} tokens, more than the {limit:,} the"
            f" context window allows ({share:.0%} of {window:,}, less {reserve:,} for the answer)"
        )
    first = head + 1 if head < len(groups) and turns[groups[head][0]].role == "user" else head
    body = groups[first:]
    size = {id(g): sum(turns[i].tokens for i in g) for g in groups}
    fixed = sum(size[id(g)] for g in groups[:first])
    allowance = min(SUMMARY_TOKENS, max(16, (limit - fixed) // 4))
    tail_n = min(keep_last, len(body))
    while True:
        middle, tail = body[: len(body) - tail_n], body[len(body) - tail_n :]
        need = fixed + (allowance if middle else 0) + sum(size[id(g)] for g in tail)
        if need <= limit or tail_n <= 1:
            break
        tail_n -= 1
    kept = [i for g in groups[:first] for i in g]
    out: list[M] = [messages[i] for i in kept]
    positions = list(kept)
    if middle:
        left = [i for g in middle for i in g]
        note = await _summary(
            messages, turns, left, dialect, summarize, allowance, encoding, trimmed
        )
        out.append(note)
        positions.append(-1)
    tail_kept = [i for g in tail for i in g]
    out += [messages[i] for i in tail_kept]
    positions += tail_kept
    systems = [i for g in groups[:head] for i in g]
    total = _cut_to_fit(out, positions, turns, dialect, limit, len(systems), encoding, trimmed)
    if total > limit:
        out, total = _last_resort(
            messages, turns, systems, groups[-1], dialect, limit, encoding, trimmed
        )
    trimmed.tokens_after = total
    return Fitted(out, trimmed)


def _last_resort(
    messages: Sequence[M],
    turns: list[Turn],
    systems: list[int],
    last: list[int],
    dialect: Dialect[M],
    limit: int,
    encoding: str,
    trimmed: Trimmed,
) -> tuple[list[M], int]:
    """The system messages and the latest unit alone (cut if need be), with a note of what
    was left out when it fits; and their tokens.

    Raises:
        WindowError: even that does not fit.
    """
    last = [i for i in last if i not in systems]
    left = len(messages) - len(systems) - len(last)
    trimmed.summarized, trimmed.summary, trimmed.summary_tokens = left, "note", 0
    trimmed.reason = "only the system messages and the latest turn fit"
    for with_note in (True, False):
        trimmed.cut = []
        note = [dialect.note(LEFT_OUT.format(count=left))] if with_note and left else []
        out = [messages[i] for i in systems] + note + [messages[i] for i in last]
        positions = systems + [-1] * len(note) + last
        total = _cut_to_fit(out, positions, turns, dialect, limit, len(systems), encoding, trimmed)
        if total <= limit:
            return out, total
    raise WindowError(
        f"the system messages and the latest turn take {total:,} tokens at the least, more"
        f" than the {limit:,} the context window allows"
    )


async def _summary(
    messages: Sequence[M],
    turns: list[Turn],
    left: list[int],
    dialect: Dialect[M],
    summarize: Summarizer | None,
    allowance: int,
    encoding: str,
    trimmed: Trimmed,
) -> M:
    trimmed.summarized = len(left)
    fallback = dialect.note(LEFT_OUT.format(count=len(left)))
    if summarize is None:
        trimmed.summary, trimmed.reason = "note", "no summarizer here"
        return fallback
    transcript = "\n".join(f"{turns[i].role}: {dialect.text(messages[i])}" for i in left)
    prefix = SUMMARY_PREFIX.format(count=len(left))
    room = allowance - count(prefix, encoding) - PER_MESSAGE
    try:
        text = (await summarize(transcript, max(8, room))).strip()
    except Exception as exc:  # noqa: BLE001 - a note instead of a summary
        trimmed.summary, trimmed.reason = "note", f"the summary failed: {type(exc).__name__}: {exc}"
        return fallback
    if not text:
        trimmed.summary, trimmed.reason = "note", "the summary came back empty"
        return fallback
    if count(text, encoding) > room:
        text = cut_middle(text, room, encoding)
    message = dialect.note(prefix + text)
    trimmed.summary = "written"
    trimmed.summary_tokens = dialect.turn(message, encoding).tokens
    return message


def _cut_to_fit(
    out: list[M],
    positions: list[int],
    turns: list[Turn],
    dialect: Dialect[M],
    limit: int,
    system_count: int,
    encoding: str,
    trimmed: Trimmed,
) -> int:
    """Cut the longest non-system texts of ``out`` in the middle, in place, until it fits
    ``limit``; its tokens then (``positions``: each message's place in the input, -1 for
    the summary or note, whose size is counted here)."""
    sizes = [
        turns[pos].tokens if pos >= 0 else dialect.turn(m, encoding).tokens
        for m, pos in zip(out, positions, strict=True)
    ]
    over = sum(sizes) - limit
    candidates = sorted(range(system_count, len(out)), key=lambda k: -sizes[k])
    for k in candidates:
        if over <= 0:
            break
        text = dialect.text(out[k])
        own = count(text, encoding) if text else 0
        if own <= 16:
            continue
        keep = max(16, own - over - count(CUT.format(count=own), encoding))
        shorter = dialect.with_text(out[k], cut_middle(text, keep, encoding))
        new_size = dialect.turn(shorter, encoding).tokens
        if new_size >= sizes[k]:
            continue
        over -= sizes[k] - new_size
        out[k], sizes[k] = shorter, new_size
        if positions[k] >= 0:
            trimmed.cut.append(positions[k])
    trimmed.cut.sort()
    return sum(sizes)


# -- dialects ---------------------------------------------------------------------------


class OpenAIDialect:
    """OpenAI chat-completion message dicts (the gateway's)."""

    def turn(self, message: dict[str, Any], encoding: str) -> Turn:
        text = self.text(message)
        calls = message.get("tool_calls") or []
        if calls:
            text += json.dumps(calls, separators=(",", ":"))
        ids = tuple(str(c.get("id")) for c in calls if isinstance(c, dict))
        answers = message.get("tool_call_id")
        role = str(message.get("role"))
        role = "system" if role == "developer" else role
        tokens = (count(text, encoding) if text else 0) + PER_MESSAGE
        return Turn(role, tokens, ids, str(answers) if answers is not None else None)

    def most_tokens(self, message: dict[str, Any]) -> int:
        size = len(self.text(message).encode())
        if message.get("tool_calls"):
            size += len(json.dumps(message["tool_calls"], separators=(",", ":")).encode())
        return size + PER_MESSAGE

    def text(self, message: dict[str, Any]) -> str:
        content = message.get("content")
        if isinstance(content, list):  # parts: the text ones
            return " ".join(
                p.get("text", "")
                for p in content
                if isinstance(p, dict) and p.get("type") == "text"
            )
        return content if isinstance(content, str) else ""

    def with_text(self, message: dict[str, Any], text: str) -> dict[str, Any]:
        content = message.get("content")
        if isinstance(content, list):  # keep the other parts, the text in one part
            others = [p for p in content if not (isinstance(p, dict) and p.get("type") == "text")]
            return dict(message, content=[{"type": "text", "text": text}, *others])
        return dict(message, content=text)

    def note(self, text: str) -> dict[str, Any]:
        return {"role": "user", "content": text}


class LangChainDialect:
    """LangChain messages (the task executors' tool loops)."""

    def turn(self, message: Any, encoding: str) -> Turn:
        from langchain_core.messages import AIMessage, SystemMessage, ToolMessage

        text = self.text(message)
        ids: tuple[str, ...] = ()
        if isinstance(message, AIMessage) and message.tool_calls:
            text += json.dumps(
                [{"name": c["name"], "args": c["args"]} for c in message.tool_calls],
                separators=(",", ":"),
                default=str,
            )
            ids = tuple(str(c.get("id")) for c in message.tool_calls)
        if isinstance(message, SystemMessage):
            role = "system"
        elif isinstance(message, ToolMessage):
            return Turn("tool", count(text, encoding) + PER_MESSAGE, (), message.tool_call_id)
        elif isinstance(message, AIMessage):
            role = "assistant"
        else:
            role = "user"
        return Turn(role, (count(text, encoding) if text else 0) + PER_MESSAGE, ids)

    def most_tokens(self, message: Any) -> int:
        size = len(self.text(message).encode())
        for call in getattr(message, "tool_calls", None) or ():
            size += len(json.dumps([call["name"], call["args"]], default=str).encode())
        return size + PER_MESSAGE

    def text(self, message: Any) -> str:
        return message.text if hasattr(message, "text") else str(message.content)

    def with_text(self, message: Any, text: str) -> Any:
        return message.model_copy(update={"content": text})

    def note(self, text: str) -> Any:
        from langchain_core.messages import HumanMessage

        return HumanMessage(text)


OPENAI = OpenAIDialect()
LANGCHAIN = LangChainDialect()
