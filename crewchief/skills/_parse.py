"""Reading, validating and rendering one SKILL.md file.

Everything here is pure apart from :func:`read_skill_file`; failures raise
:class:`ValueError` with a reason the registry pairs with the file's path.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from crewchief.tools.files import TOOL_NAMES
from crewchief.tools.mcp_names import check_pattern, is_mcp_name

MAX_SKILL_BYTES = 64 * 1024
MAX_NAME = 64
MAX_DESCRIPTION = 1024
MAX_COMPATIBILITY = 500
MODELS: tuple[str, ...] = ("orchestrator", "delegate", "either")
CONTEXTS: tuple[str, ...] = ("workspace", "files", "dependencies")
PLACEHOLDERS: tuple[str, ...] = (
    "task_description",
    "request",
    "workspace",
    "files",
    "dependencies",
)

# The Agent Skills name rule: lowercase ASCII words joined by single hyphens.
_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_SPEC_KEYS = {"name", "description", "license", "compatibility", "metadata", "allowed-tools"}
_OWN_KEYS = {"model", "requires_context"}
_FRONTMATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)^---[ \t]*(?:\r?\n|\Z)", re.DOTALL | re.MULTILINE)
# One token of a template: an escaped brace, or something that looks like a placeholder.
_TOKEN = re.compile(r"\{\{|\}\}|\{([a-z][a-z0-9_]*)\}")
# Any indentation: fences nested in list items are common in skill steps.
_FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})")
_INLINE_CODE = re.compile(r"(`+)(?!`).*?(?<!`)\1(?!`)")
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_skill_file(path: Path) -> str:
    """The text of a SKILL.md, refusing files too large to be a prompt.

    Raises:
        ValueError: the file is larger than 64 kB or not UTF-8.
        OSError: the file cannot be read.
    """
    with path.open("rb") as fh:
        # Read one byte past the limit rather than trusting stat: the file may grow meanwhile.
        data = fh.read(MAX_SKILL_BYTES + 1)
    if len(data) > MAX_SKILL_BYTES:
        raise ValueError(f"file is larger than {MAX_SKILL_BYTES // 1024} kB")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"file is not UTF-8 text (byte {exc.start})") from None


def split_frontmatter(text: str) -> tuple[dict[str, Any], str, int]:
    """Split a SKILL.md into its frontmatter mapping, its body and the body's first line number."""
    match = _FRONTMATTER.match(text)
    if match is None:
        raise ValueError("no YAML frontmatter: the file must start with a '---' line and close it")
    try:
        fields = yaml.load(match.group(1), Loader=_Loader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" on line {mark.line + 2}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ValueError(f"invalid YAML frontmatter{where}: {problem}") from None
    if fields is None:
        fields = {}
    if not isinstance(fields, dict):
        raise ValueError("frontmatter must be a mapping of keys to values")
    body_line = text.count("\n", 0, match.end()) + 1
    return fields, text[match.end() :], body_line


def parse_fields(fields: Mapping[str, Any], folder: str) -> dict[str, Any]:
    """Validate frontmatter fields and return them normalized (SkillMeta keyword arguments).

    Every problem found is reported at once, joined by '; ', so one edit fixes them all.
    """
    errors: list[str] = []
    out: dict[str, Any] = {
        "name": _name(fields.get("name"), folder, errors),
        "description": _text(fields, "description", MAX_DESCRIPTION, errors, required=True),
        "license": _text(fields, "license", None, errors),
        "compatibility": _text(fields, "compatibility", MAX_COMPATIBILITY, errors),
        "metadata": _metadata(fields.get("metadata"), errors),
        "model": _model(fields.get("model"), errors),
        "allowed_tools": _tools(fields.get("allowed-tools"), errors),
        "requires_context": _contexts(fields.get("requires_context"), errors),
        "extra": {k: v for k, v in fields.items() if k not in _SPEC_KEYS | _OWN_KEYS},
    }
    if errors:
        raise ValueError("; ".join(errors))
    return out


def _name(value: Any, folder: str, errors: list[str]) -> str:
    if not isinstance(value, str) or not value:
        errors.append("'name' is required and must be a string")
        return ""
    if len(value) > MAX_NAME or not _NAME.fullmatch(value):
        errors.append(
            f"name {value!r} is invalid: 1-{MAX_NAME} lowercase letters, digits and single "
            "hyphens, not starting or ending with a hyphen"
        )
    elif value != folder:
        errors.append(f"name {value!r} does not match its folder {folder!r}")
    return value


def _text(
    fields: Mapping[str, Any],
    key: str,
    limit: int | None,
    errors: list[str],
    *,
    required: bool = False,
) -> str | None:
    value = fields.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        errors.append(f"{key!r} {'is required and ' if required else ''}must be non-empty text")
        return None
    if limit is not None and len(value) > limit:
        errors.append(f"{key!r} is {len(value)} characters; at most {limit} are allowed")
    return value.strip()


def _metadata(value: Any, errors: list[str]) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        errors.append("'metadata' must be a mapping")
        return {}
    return {str(k): v for k, v in value.items()}


def _model(value: Any, errors: list[str]) -> str:
    if value is None:
        return "either"
    if value not in MODELS:
        errors.append(f"model {value!r} is invalid; use one of: {', '.join(MODELS)}")
        return "either"
    return value


def _words(value: Any) -> list[str] | None:
    """Names from a space- or comma-delimited string or a YAML list; None if neither."""
    if isinstance(value, str):
        return value.replace(",", " ").split()
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [w for v in value for w in v.replace(",", " ").split()]
    return None


def _names(
    value: Any, valid: tuple[str, ...], key: str, what: str, errors: list[str]
) -> tuple[str, ...]:
    """The names ``value`` lists, in ``valid``'s order; unknown or malformed ones are errors."""
    names = _words(value)
    if names is None:
        errors.append(f"'{key}' must be a space-delimited string or a list of {what} names")
        return ()
    unknown = [n for n in names if n not in valid]
    if unknown:
        errors.append(
            f"{key} names unknown {what}(s) {', '.join(unknown)}; valid: {', '.join(valid)}"
        )
    return tuple(v for v in valid if v in names)


def _tools(value: Any, errors: list[str]) -> tuple[str, ...]:
    """File tools in their canonical order, then MCP tools (``mcp:NAME/tool``,
    ``mcp:NAME/*``) as listed; which servers exist is known only when a task runs."""
    if value is None:
        return TOOL_NAMES
    words = _words(value)
    mcp = list(dict.fromkeys(w for w in words or () if is_mcp_name(w)))
    files = [w for w in words or () if not is_mcp_name(w)] if words is not None else value
    bad = [reason for entry in mcp if (reason := check_pattern(entry))]
    if bad:
        errors.append("allowed-tools: " + "; ".join(bad))
    return _names(files, TOOL_NAMES, "allowed-tools", "tool", errors) + tuple(mcp)


def _contexts(value: Any, errors: list[str]) -> tuple[str, ...]:
    if value is None or value is False:
        return ()
    if value is True:
        return ("workspace",)
    return _names(value, CONTEXTS, "requires_context", "context", errors)


def _pieces(body: str, first_line: int) -> Iterator[tuple[int, str, bool]]:
    """Yield (line number, text, is_code) pieces that join back into ``body``.

    Fenced blocks and inline code spans are code: their braces are literal, so code
    samples and JSON examples survive rendering untouched.
    """
    fence: str | None = None
    for number, line in enumerate(body.splitlines(keepends=True), start=first_line):
        opener = _FENCE.match(line)
        if fence is not None:
            if opener and opener.group(1)[0] == fence[0] and len(opener.group(1)) >= len(fence):
                fence = None
            yield number, line, True
        elif opener:
            fence = opener.group(1)
            yield number, line, True
        else:
            start = 0
            for span in _INLINE_CODE.finditer(line):
                yield number, line[start : span.start()], False
                yield number, span.group(0), True
                start = span.end()
            yield number, line[start:], False


def check_placeholders(body: str, first_line: int = 1) -> None:
    """Refuse ``{lower_snake_word}`` outside code that is not a known placeholder (a typo)."""
    unknown = [
        f"{{{token.group(1)}}} on line {number}"
        for number, text, is_code in _pieces(body, first_line)
        if not is_code
        for token in _TOKEN.finditer(text)
        if token.group(1) and token.group(1) not in PLACEHOLDERS
    ]
    if unknown:
        known = ", ".join(f"{{{p}}}" for p in PLACEHOLDERS)
        raise ValueError(
            f"unknown placeholder {', '.join(unknown)}; known placeholders: {known} "
            "(write {{ and }} for literal braces)"
        )


def render(body: str, values: Mapping[str, str]) -> str:
    """Fill known placeholders and unescape ``{{``/``}}`` outside code; leave other braces."""

    def replace(token: re.Match[str]) -> str:
        name = token.group(1)
        if name is None:
            return token.group(0)[0]
        return values[name] if name in values else token.group(0)

    return "".join(
        text if is_code else _TOKEN.sub(replace, text) for _, text, is_code in _pieces(body, 1)
    )
