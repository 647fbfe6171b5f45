"""The facade's reports over what was recorded: operations counted by route and status,
the gateway's request log, and the checks of the filters operations are listed by.
:class:`~crewchief.client.facade.Crewchief` inherits them."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from crewchief.client.validate import invalid, usage_time
from crewchief.db import gateway_log, repository
from crewchief.results import GatewayRequest, OperationStats

# What ``route`` may be when listing operations: ``undecided`` is not routed yet.
ROUTES = ("fast", "plan", "undecided")
MAX_FILTER_CHARS = 200


def period(since: Any, until: Any) -> tuple[datetime | None, datetime | None]:
    """``since`` and ``until`` as :meth:`~crewchief.client.facade.Crewchief.usage` takes
    them, as aware UTC datetimes.

    Raises:
        InvalidRequest: naming ``since`` or ``until``.
    """
    now = datetime.now(UTC)
    start = usage_time(since, "since", now=now)
    stop = usage_time(until, "until", end=True, now=now)
    if start is not None and stop is not None and stop <= start:
        raise invalid("until", f"expected a time after since ({start.isoformat()})")
    return start, stop


def _text(value: Any, field: str) -> str | None:
    if value is None:
        return None
    ok = isinstance(value, str) and value.strip() and "\x00" not in value
    if not ok or len(value) > MAX_FILTER_CHARS:
        raise invalid(
            field,
            f"expected a string of 1 to {MAX_FILTER_CHARS} characters without NUL, got {value!r}",
        )
    return value


def operation_filters(
    *, route: Any = None, key: Any = None, since: Any = None, until: Any = None, q: Any = None
) -> dict[str, Any]:
    """The checked filters of an operation listing (see ``Crewchief.list``).

    Raises:
        InvalidRequest: naming the field and what was expected.
    """
    if route is not None and route not in ROUTES:
        raise invalid("route", f"expected one of {', '.join(ROUTES)}, got {route!r}")
    start, stop = period(since, until)
    text = _text(q, "q")
    return {
        "route": route,
        "key": _text(key, "key"),
        "since": start,
        "until": stop,
        "q": text.strip() if text else None,
    }


class Reports:
    """Counts and logs for a dashboard, read from the store."""

    def _store(self) -> Any:
        raise NotImplementedError

    async def operation_stats(
        self,
        *,
        since: str | date | datetime | None = None,
        until: str | date | datetime | None = None,
        owner: Any = repository.ANY_OWNER,
    ) -> OperationStats:
        """How many operations were created in a period, by route (``fast``, ``plan``,
        ``undecided``) and by status; ``owner``'s (None: those without an API key) or
        every owner's.

        Args:
            since, until: As :meth:`~crewchief.client.facade.Crewchief.usage` takes them.

        Raises:
            InvalidRequest: ``since`` or ``until`` is invalid.
        """
        start, stop = period(since, until)
        return await repository.operation_stats(self._store(), since=start, until=stop, owner=owner)

    async def gateway_requests(
        self,
        *,
        limit: int = 50,
        before: tuple[datetime, str] | None = None,
        role: str | None = None,
        since: str | date | datetime | None = None,
        until: str | date | datetime | None = None,
        owner: Any = repository.ANY_OWNER,
    ) -> list[GatewayRequest]:
        """The gateway's answers, newest first: role, model, cache, latency, fallbacks,
        tokens, cost and the start of the question (not the messages). An answer appears
        a moment after it was given (the gateway keeps them in the background).

        Args:
            before: ``(created_at, id)`` of the previous page's last.
            role: Only answers for this gateway role.
            since, until: As :meth:`~crewchief.client.facade.Crewchief.usage` takes them.
            owner: Only this owner's (None: answers without an API key); every owner's by
                default.

        Raises:
            InvalidRequest: a field is invalid (the message names it).
        """
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise invalid("limit", f"expected a whole number from 1 to 1000, got {limit!r}")
        start, stop = period(since, until)
        return await gateway_log.list_requests(
            self._store(),
            owner=owner,
            role=_text(role, "role"),
            since=start,
            until=stop,
            before=before,
            limit=limit,
        )
