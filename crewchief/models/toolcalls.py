"""Tool-call repair for models that do not call tools properly.

Small models (and some servers) write a tool call as JSON text, often inside a
code fence or ``<tool_call>`` tags, call tools that were never offered, or call
the same tool with the same arguments again after getting its result. This
module turns such replies into what the caller needs:

* JSON tool calls written as text become real ``tool_calls`` (only for tools
  that were offered; the JSON is removed from the text).
* Calls to tools that were not offered are refused (dropped, with a note).
* A call identical to an earlier one in the conversation, or repeated within
  the reply, is dropped, so a loop cannot spin on it.
* Arguments that arrive as a JSON string are parsed; literal newlines inside
  JSON strings (common when a model writes a file's content) are tolerated.

Every change is described in a note the caller can record.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage

_FENCE = re.compile(r"```[a-zA-Z0-9_-]*\s*\n?(.*?)```", re.S)
_TAGGED = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.S)
_NAME_KEYS = ("name", "tool", "tool_name", "function")
_ARG_KEYS = ("arguments", "args", "parameters", "input", "tool_input")


@dataclass(slots=True)
class Repair:
    """The repaired reply and what was done to it."""

    message: AIMessage
    notes: list[str] = field(default_factory=list)
    repaired_calls: int = 0
    # Calls to tools that were not offered, as (name, args): the caller records the refusal.
    refused: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


def tool_names(tools: Iterable[dict[str, Any]]) -> set[str]:
    """Names of OpenAI-format tool specs."""
    return {t["function"]["name"] if "function" in t else t["name"] for t in tools}


def _loads(text: str) -> Any:
    return json.loads(text, strict=False)


_ESCAPES = frozenset('\\"/bfnrtu')


def _escape_stray_backslashes(text: str) -> str:
    """Double every backslash that does not start a valid JSON escape."""
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\":
            nxt = text[i + 1 : i + 2]
            if nxt and nxt in _ESCAPES:
                out.append(text[i : i + 2])
                i += 2
                continue
            out.append("\\\\")
        else:
            out.append(char)
        i += 1
    return "".join(out)


def _decode_all(text: str) -> list[tuple[int, int, Any]]:
    """Top-level JSON values in ``text`` as (start, end, value), left to right.

    Where nothing decodes, a second pass doubles backslashes that start no
    valid JSON escape: models writing code into a JSON string (``"\\w"``
    in a regex) often forget to escape them.
    """
    found = _decode_strict(text)
    if not found and "\\" in text:
        found = _decode_strict(_escape_stray_backslashes(text))
    return found


def _decode_strict(text: str) -> list[tuple[int, int, Any]]:
    decoder = json.JSONDecoder(strict=False)
    found: list[tuple[int, int, Any]] = []
    pos = 0
    while True:
        match = re.compile(r"[\[{]").search(text, pos)
        if match is None:
            return found
        try:
            value, end = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError:
            pos = match.start() + 1
            continue
        found.append((match.start(), end, value))
        pos = end


def _looks_like_schema(args: dict[str, Any]) -> bool:
    """Small models sometimes echo a tool's definition; its parameters are not arguments."""
    return "properties" in args and args.get("type") == "object"


def _as_call(value: Any) -> tuple[str, dict[str, Any], bool] | None:
    """``(name, args, explicit)`` when ``value`` looks like one tool call, else ``None``.

    ``explicit`` says the object is unmistakably a call attempt (wrapped in
    ``function``/``tool_call`` or carrying an arguments key), as opposed to
    any JSON that happens to have a ``name``.
    """
    if not isinstance(value, dict):
        return None
    for wrapper in ("tool_call", "function_call", "function"):
        inner = value.get(wrapper)
        if isinstance(inner, dict) and any(k in inner for k in _NAME_KEYS):
            found = _as_call(inner)
            return (found[0], found[1], True) if found else None
    name = next((value[k] for k in _NAME_KEYS if isinstance(value.get(k), str)), None)
    if name is None:
        return None
    arg_key = next((k for k in _ARG_KEYS if k in value), None)
    args: Any = value[arg_key] if arg_key else {}
    if isinstance(args, str):
        try:
            args = _loads(args) if args.strip() else {}
        except json.JSONDecodeError:
            return None
    if not isinstance(args, dict) or _looks_like_schema(args):
        return None
    return name, args, arg_key is not None


def _calls_in(value: Any, offered: set[str], tagged: bool) -> list[tuple[str, dict[str, Any]]]:
    """The calls in a decoded JSON value: all of them, or none when any item is not one.

    A call to a tool that was not offered counts only when it is an explicit
    attempt (or inside ``<tool_call>`` tags), so ordinary JSON with a ``name``
    key stays text.
    """
    items = value if isinstance(value, list) else [value]
    calls = [_as_call(item) for item in items]
    if not calls or not all(calls):
        return []
    if not all(c[0] in offered or c[2] or tagged for c in calls if c is not None):
        return []
    return [(c[0], c[1]) for c in calls if c is not None]


def _text_calls(text: str, offered: set[str]) -> tuple[list[tuple[str, dict[str, Any]]], str]:
    """Tool calls written in ``text`` and the text with them removed."""
    spans: list[tuple[int, int]] = []
    calls: list[tuple[str, dict[str, Any]]] = []
    for pattern in (_TAGGED, _FENCE):
        for match in pattern.finditer(text):
            found_here = []
            for _start, _end, value in _decode_all(match.group(1)):
                found_here += _calls_in(value, offered, pattern is _TAGGED)
            if found_here:
                calls += found_here
                spans.append(match.span())
        if calls:
            break
    if not calls:
        for start, end, value in _decode_all(text):
            found = _calls_in(value, offered, False)
            if found:
                calls += found
                spans.append((start, end))
    rest = text
    for start, end in sorted(spans, reverse=True):
        rest = rest[:start] + rest[end:]
    return calls, rest.strip()


def _key(name: str, args: dict[str, Any]) -> str:
    return name + json.dumps(args, sort_keys=True, ensure_ascii=False)


def _earlier_calls(history: Sequence[BaseMessage]) -> set[str]:
    """Calls made earlier in the conversation that already got a result."""
    answered = {m.tool_call_id for m in history if isinstance(m, ToolMessage)}
    keys = set()
    for message in history:
        if isinstance(message, AIMessage):
            for call in message.tool_calls:
                if call.get("id") in answered:
                    keys.add(_key(call["name"], call.get("args") or {}))
    return keys


def repair_tool_calls(
    message: AIMessage, tools: Sequence[dict[str, Any]], history: Sequence[BaseMessage] = ()
) -> Repair:
    """Repair ``message``, a reply to a request that offered ``tools`` (OpenAI format)."""
    offered = tool_names(tools)
    notes: list[str] = []
    text = message.text if isinstance(message.content, list) else str(message.content or "")
    proposed = [(c["name"], c.get("args") or {}, c.get("id")) for c in message.tool_calls]
    for bad in message.invalid_tool_calls:
        try:
            args = _loads(bad.get("args") or "{}")
        except json.JSONDecodeError:
            notes.append(f"dropped a call to {bad.get('name')!r} whose arguments are not JSON")
            continue
        if isinstance(args, dict) and bad.get("name"):
            proposed.append((bad["name"], args, bad.get("id")))
            notes.append(f"repaired the arguments of a call to {bad['name']!r}")
    repaired = 0
    if not proposed and offered:
        found, rest = _text_calls(text, offered)
        if found:
            proposed = [(name, args, None) for name, args in found]
            repaired = sum(1 for name, _ in found if name in offered)
            text = rest
    seen = _earlier_calls(history)
    calls: list[dict[str, Any]] = []
    refused: list[tuple[str, dict[str, Any]]] = []
    for name, args, call_id in proposed:
        if name not in offered:
            refused.append((name, args))
            notes.append(
                f"refused a call to {name!r}: not an offered tool ({', '.join(sorted(offered))})"
                if offered
                else f"refused a call to {name!r}: no tools were offered"
            )
            continue
        key = _key(name, args)
        if key in seen:
            notes.append(f"dropped a repeated call to {name!r} with the same arguments")
            continue
        seen.add(key)
        calls.append(
            {
                "name": name,
                "args": args,
                "id": call_id or f"call_{uuid.uuid4().hex[:12]}",
                "type": "tool_call",
            }
        )
    if repaired:
        notes.insert(0, f"parsed {repaired} tool call(s) written as text")
    if not notes:
        return Repair(message)
    fixed = AIMessage(
        content=text,
        tool_calls=calls,
        usage_metadata=message.usage_metadata,
        response_metadata={**message.response_metadata, "crewchief_repairs": notes},
        id=message.id,
    )
    return Repair(fixed, notes, repaired, refused)
