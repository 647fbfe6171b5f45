"""Redaction of preference pairs before they leave crewchief (``feedback export``).

A redactor is any callable ``(text) -> text``; it is applied to every string of a pair:
each prompt message's text, ``chosen`` and ``rejected``. Which one is used:
``feedback_redact`` in the settings (env ``CREWCHIEF_FEEDBACK_REDACT``), or the export's
``redact`` argument (CLI ``--redact``):

- ``default``: :func:`default_redactor`, which masks e-mail addresses (``[email]``),
  API-key-like secrets (``[secret]``) and phone numbers (``[phone]``);
- ``off``: the texts as stored;
- ``module:function``: a callable of your own, imported from the Python path.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from typing import Any

from crewchief.client.validate import invalid

Redactor = Callable[[str], str]
OFF = ("off", "none", "false", "no")

_SECRET = re.compile(
    r"\b(?:sk|pk|rk)-(?:[A-Za-z0-9]+-)*[A-Za-z0-9_]{16,}"  # OpenAI, Stripe, Anthropic-style
    r"|\bcc_[A-Za-z0-9_-]{20,}"  # crewchief's own keys
    r"|\bgh[pousr]_[A-Za-z0-9]{20,}|\bgithub_pat_[A-Za-z0-9_]{20,}"
    r"|\bAKIA[0-9A-Z]{16}\b|\bAIza[0-9A-Za-z_-]{35}"  # AWS access key ids, Google API keys
    r"|\bxox[abposr]-[A-Za-z0-9-]{10,}"  # Slack
    r"|\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"  # JWTs
    r"|(?<=Bearer )[A-Za-z0-9._~+/-]{16,}=*"
    r"|(?i:(?<=api_key=)|(?<=api-key: )|(?<=password=)|(?<=secret=)|(?<=token=))[^\s&\"']{8,}"
)
_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
# International (+44 20 7946 0958, +14155550123) or grouped (415-555-0123, (415) 555 0123).
_PHONE = re.compile(
    r"(?<![\w+/.-])(?:\+\d[\d\s().-]{6,}\d|\(?\d{2,4}\)?(?:[\s.-]\d{2,4}){2,4})(?![\w/.-])"
)


def _phone(match: re.Match[str]) -> str:
    digits = sum(c.isdigit() for c in match.group())
    return "[phone]" if 9 <= digits <= 15 else match.group()


def default_redactor(text: str) -> str:
    """``text`` with e-mail addresses, API-key-like secrets and phone numbers masked.

    A phone number has 9 to 15 digits and starts with ``+`` or comes in groups (dates,
    versions and IP addresses do not count)."""
    text = _SECRET.sub("[secret]", text)
    text = _EMAIL.sub("[email]", text)
    return _PHONE.sub(_phone, text)


def load_redactor(spec: str | None) -> Redactor | None:
    """The redactor ``spec`` names: ``default``, ``off`` (None) or ``module:function``.

    Raises:
        InvalidRequest: naming ``redact`` when the callable cannot be found.
    """
    name = (spec or "default").strip()
    if name.lower() in OFF:
        return None
    if name.lower() == "default":
        return default_redactor
    module, _, attr = name.partition(":")
    if not module or not attr:
        raise invalid("redact", f"expected default, off or module:function, got {spec!r}")
    try:
        found = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise invalid("redact", f"cannot load {name!r}: {exc}") from None
    if not callable(found):
        raise invalid("redact", f"{name!r} is not callable")
    return found


def _message(message: Any, redact: Redactor) -> Any:
    if not isinstance(message, dict):
        return message
    content = message.get("content")
    if isinstance(content, str):
        return {**message, "content": redact(content)}
    if isinstance(content, list):
        parts = [
            {**p, "text": redact(p["text"])}
            if isinstance(p, dict) and isinstance(p.get("text"), str)
            else p
            for p in content
        ]
        return {**message, "content": parts}
    return message


def redact_pair(pair: dict[str, Any], redact: Redactor | None) -> dict[str, Any]:
    """``pair`` with ``redact`` applied to its prompt's texts, ``chosen`` and ``rejected``."""
    if redact is None:
        return pair
    prompt = pair["prompt"]
    return {
        **pair,
        "prompt": [_message(m, redact) for m in prompt]
        if isinstance(prompt, list)
        else redact(prompt),
        "chosen": redact(pair["chosen"]),
        "rejected": redact(pair["rejected"]),
    }
