"""What :class:`~crewchief.client.facade.Crewchief`'s feedback methods do: check the
arguments, then rate, list, summarize or export through :mod:`crewchief.db.feedback`,
:mod:`crewchief.db.feedback_summary` and :mod:`crewchief.db.preferences`.

``owner`` is the facade's usual scope: :data:`~crewchief.db.repository.ANY_OWNER` (every
owner's targets; the rater has no owner) or one owner (None: calls without an API key),
who is then also the rater.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from crewchief.client.redact import Redactor, load_redactor, redact_pair
from crewchief.client.validate import (
    feedback_target,
    invalid,
    validate_feedback_query,
    validate_rating,
)
from crewchief.config import Settings
from crewchief.db import feedback as db_feedback
from crewchief.db.feedback import ResponseLog
from crewchief.db.feedback_summary import feedback_summary
from crewchief.db.preferences import preference_pairs
from crewchief.db.repository import ANY_OWNER
from crewchief.db.writer import Writer
from crewchief.results import FeedbackRecord, FeedbackSaved, FeedbackSummary

FORMATS = ("dpo",)


async def rate(
    store: Writer,
    responses: ResponseLog | None,
    *,
    owner: Any,
    api_key_id: str | None,
    target: dict[str, Any],
    rating: dict[str, Any],
) -> FeedbackSaved:
    """Check and store one rating (see ``Crewchief.feedback``)."""
    checked_target = feedback_target(**target)
    checked = validate_rating(**rating)
    if checked_target.kind == "response" and responses is not None:
        await responses.settle()  # an answer given a moment ago may still be being kept
    rater = None if owner is ANY_OWNER else owner
    return await db_feedback.rate(
        store, checked_target, checked, scope=owner, owner=rater, api_key_id=api_key_id
    )


async def listing(
    store: Writer, *, owner: Any, kind: Any, since: Any, until: Any, limit: Any
) -> list[FeedbackRecord]:
    query = validate_feedback_query(kind=kind, since=since, until=until)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
        raise invalid("limit", f"expected a whole number from 1 to 1000, got {limit!r}")
    query.pop("by")
    return await db_feedback.list_feedback(store, owner=owner, limit=limit, **query)


async def summary(store: Writer, *, owner: Any, by: Any, since: Any, until: Any) -> FeedbackSummary:
    query = validate_feedback_query(by=by, since=since, until=until)
    query.pop("kind")
    return await feedback_summary(store, owner=owner, **query)


def redactor(settings: Settings, redact: Callable[[str], str] | str | None) -> Redactor | None:
    """The redactor asked for: a callable as is, a spec (``default``, ``off``,
    ``module:function``), or None for the ``feedback_redact`` setting's."""
    if callable(redact):
        return redact
    if redact is None:
        return load_redactor(settings.feedback_redact)
    if not isinstance(redact, str):
        raise invalid("redact", f"expected a callable or a spec, got {type(redact).__name__}")
    return load_redactor(redact)


async def export(
    store: Writer,
    settings: Settings,
    responses: ResponseLog | None,
    *,
    owner: Any,
    since: Any,
    until: Any,
    redact: Callable[[str], str] | str | None,
    format: str = "dpo",
) -> list[dict[str, Any]]:
    """Preference pairs (docs/feedback.md), each string redacted."""
    if format not in FORMATS:
        raise invalid("format", f"expected one of {', '.join(FORMATS)}, got {format!r}")
    query = validate_feedback_query(since=since, until=until)
    scrub = redactor(settings, redact)
    if responses is not None:
        await responses.settle()  # the answers just given count
    pairs = await preference_pairs(store, owner=owner, since=query["since"], until=query["until"])
    return [redact_pair(pair, scrub) for pair in pairs]


async def forget(store: Writer, responses: ResponseLog | None, owner: str | None) -> dict[str, int]:
    """Delete ``owner``'s gateway answers and the ratings of them and by them."""
    if responses is not None:
        await responses.settle()  # an answer being kept is deleted too
    return await db_feedback.forget(store, owner)
