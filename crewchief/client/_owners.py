"""The facade's calls about owners rather than runs: ratings and preference pairs,
profiles, provider credentials, budgets. :class:`~crewchief.client.facade.Crewchief`
inherits them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, SecretStr, ValidationError

from crewchief.client import _budgets, _feedback
from crewchief.client.validate import InvalidRequest, invalid
from crewchief.db import repository
from crewchief.db.budgets import BudgetRow
from crewchief.errors import OperationNotFound

if TYPE_CHECKING:
    from crewchief.config import Settings
    from crewchief.db.credentials import CredentialRow
    from crewchief.db.feedback import ResponseLog
    from crewchief.knowledge.profile import Profile
    from crewchief.results import FeedbackRecord, FeedbackSaved, FeedbackSummary
    from crewchief.runtime.credentials import CredentialBook
    from crewchief.runtime.profiles import ProfileBook
    from crewchief.runtime.services import Services


def _refused(exc: ValidationError) -> InvalidRequest:
    """A validation error as a refusal naming each field."""
    details = [
        {"path": ".".join(str(p) for p in e["loc"]) or "profile", "message": e["msg"]}
        for e in exc.errors()
    ]
    return InvalidRequest(f"{details[0]['path']}: {details[0]['message']}", details)


class OwnerData:
    """What crewchief keeps per owner, read and changed through the open services."""

    settings: Settings
    _responses: ResponseLog | None

    @property
    def services(self) -> Services:  # the facade's, once open
        raise NotImplementedError

    def _store(self) -> Any:
        raise NotImplementedError

    # -- feedback --------------------------------------------------------------------------

    def responses(self) -> ResponseLog | None:
        """Where the gateway keeps its answers, to be rated by ``x_crewchief.id`` (None when
        this instance persists nothing)."""
        if self._responses is None and self.services.store is not None:
            from crewchief.db.feedback import ResponseLog

            self._responses = ResponseLog(self.services.store)
        return self._responses

    async def feedback(
        self,
        *,
        operation_id: str | None = None,
        task: int | None = None,
        version: int | None = None,
        response_id: str | None = None,
        thumb: str | None = None,
        stars: int | None = None,
        correction: str | None = None,
        comment: str | None = None,
        owner: Any = repository.ANY_OWNER,
        api_key_id: str | None = None,
    ) -> FeedbackSaved:
        """Rate an operation, one of its tasks (``version``: the current one by default), or
        a gateway response (its ``x_crewchief.id``): ``thumb`` ``up``/``down`` or ``stars``
        1-5, with an optional ``correction`` (what the answer should have been) and
        ``comment``. One rating per owner and target: a second one replaces the first
        (``replaced`` says so).

        Args:
            owner: Only this owner's targets, rated as this owner (the REST API's key
                owner); every owner's by default, rated without an owner.

        Raises:
            InvalidRequest: a bad argument (named). OperationNotFound, TaskNotFound,
                ResponseNotFound: unknown, or another owner's. OperationStateError: the
                operation or task has not ended.
        """
        target = {"operation_id": operation_id, "task": task, "version": version,
                  "response_id": response_id}  # fmt: skip
        rating = {"thumb": thumb, "stars": stars, "correction": correction, "comment": comment}
        return await _feedback.rate(
            self._store(), self._responses, owner=owner, api_key_id=api_key_id,
            target=target, rating=rating,
        )  # fmt: skip

    async def list_feedback(
        self,
        *,
        kind: str | None = None,
        since: str | date | datetime | None = None,
        until: str | date | datetime | None = None,
        limit: int = 100,
        owner: Any = repository.ANY_OWNER,
    ) -> list[FeedbackRecord]:
        """Ratings, the last given first: of ``kind`` (operation, task, response), given or
        changed in ``[since, until)`` (as :meth:`usage` takes them), ``owner``'s or all."""
        return await _feedback.listing(
            self._store(), owner=owner, kind=kind, since=since, until=until, limit=limit
        )

    async def feedback_summary(
        self,
        *,
        by: str | None = None,
        since: str | date | datetime | None = None,
        until: str | date | datetime | None = None,
        owner: Any = repository.ANY_OWNER,
    ) -> FeedbackSummary:
        """Satisfaction per ``role``, ``model``, ``skill``, ``route``, ``tier`` or ``kind``
        (count, mean score, share positive, corrections), the totals, and how ratings relate
        to the simplicity score (Pearson's r; fast path against planned)."""
        return await _feedback.summary(self._store(), owner=owner, by=by, since=since, until=until)

    async def export_preferences(
        self,
        *,
        since: str | date | datetime | None = None,
        until: str | date | datetime | None = None,
        redact: Callable[[str], str] | str | None = None,
        owner: Any = repository.ANY_OWNER,
    ) -> list[dict[str, Any]]:
        """Preference pairs for DPO, ``{prompt, chosen, rejected, source, meta}``, from
        corrections, task reruns and regenerated gateway answers (docs/feedback.md).

        Args:
            redact: A callable ``(text) -> text`` applied to every text of a pair, or a spec
                (``default``, ``off``, ``module:function``); None: the ``feedback_redact``
                setting's.
        """
        return await _feedback.export(
            self._store(), self.settings, self._responses, owner=owner, since=since,
            until=until, redact=redact,
        )  # fmt: skip

    # -- profiles --------------------------------------------------------------------------

    def profiles(self) -> ProfileBook:
        """Owners' profiles in the app database (what the gateway adds to prompts)."""
        book = self.services.history.profiles
        if book is None:
            raise OperationNotFound("this instance does not persist operations or profiles")
        return book

    async def profile(self, owner: str | None) -> Profile:
        """``owner``'s profile (empty when none is stored), its learned preferences
        refreshed first."""
        return await self.profiles().get(owner)

    async def set_profile(
        self, owner: str | None, stated: Mapping[str, Any] | BaseModel, *, merge: bool = False
    ) -> Profile:
        """Replace ``owner``'s stated preferences, or with ``merge`` change only the fields
        given (``None`` clears one); the profile after.

        Raises:
            InvalidRequest: a field is invalid (nothing is stored); the message names it.
        """
        from crewchief.knowledge.profile import ProfilePatch, StatedProfile

        given = stated.model_dump(exclude_unset=True) if isinstance(stated, BaseModel) else stated
        if not isinstance(given, Mapping):
            raise invalid("profile", f"expected an object of fields, got {type(given).__name__}")
        shape = ProfilePatch if merge else StatedProfile
        try:
            checked = shape.model_validate(dict(given))
        except ValidationError as exc:
            raise _refused(exc) from None
        book = self.profiles()
        if isinstance(checked, ProfilePatch):
            return await book.patch(owner, checked)
        return await book.replace(owner, checked)

    async def delete_profile(self, owner: str | None) -> int:
        """Delete ``owner``'s profile, stated and learned; 1 if there was one, else 0."""
        return await self.profiles().delete(owner)

    # -- credentials -----------------------------------------------------------------------

    def credential_book(self) -> CredentialBook:
        """Owners' provider credentials in the app database (their calls go out with them)."""
        book = self.services.credentials
        if book is None:
            raise OperationNotFound("this instance does not persist credentials")
        return book

    async def set_credential(
        self, owner: str | None, provider: str, api_key: str | SecretStr, *,
        base_url: str | None = None,
    ) -> CredentialRow:  # fmt: skip
        """Store (or replace) ``owner``'s API key for ``provider`` (a name of type openai or
        google), encrypted; with ``base_url`` their requests go to that OpenAI-compatible
        server. Their calls to that provider's models use it from then on. The row, which
        never holds the key.

        Raises:
            InvalidRequest: naming the field (``provider``, ``api_key``, ``base_url``).
            CredentialsUnavailable: no ``secret_keys`` is configured.
        """
        return await self.credential_book().put(owner, provider, api_key, base_url)

    async def credentials(self, owner: str | None) -> list[CredentialRow]:
        """``owner``'s stored credentials: provider, base URL, fingerprint, dates (no key)."""
        return await self.credential_book().list(owner)

    async def delete_credential(self, owner: str | None, provider: str) -> int:
        """Delete ``owner``'s credential for ``provider``; 1 if there was one, else 0."""
        return await self.credential_book().delete(owner, provider)

    # -- budgets and plans ---------------------------------------------------------------

    async def budgets(self, *, owner: str | None = None, key: str | None = None) -> dict[str, Any]:
        """The plan, limits and counters (spent, held by calls under way, left, reset) of a
        key and its owner (``owner`` None: calls made without a key)."""
        return await _budgets.report(self.services.store, self.services.budgets, owner, key)

    async def set_budget(
        self,
        scope: str,
        subject: str,
        *,
        daily_usd: float | None = None,
        monthly_usd: float | None = None,
        enforcement: str = "hard",
        on_exceed: str = "refuse",
        by_owner: bool = False,
    ) -> dict[str, Any]:
        """Limit a key (``scope`` "key", ``subject`` its id) or an owner ("owner", the
        owner's name; "" for calls made without a key), per UTC day and month.

        Args:
            enforcement: ``hard`` (no call may pass the limit) or ``soft`` (warn only).
            on_exceed: ``refuse`` (402 budget_exceeded) or ``downgrade`` (answer with
                ``budgets.downgrade_model``).
            by_owner: Set by the owner (through the API): the operator's limits stay.

        Raises:
            InvalidRequest: a field is invalid (the message names it).
        """
        row = BudgetRow(
            scope, subject, daily_usd, monthly_usd, enforcement, on_exceed,
            "owner" if by_owner else "operator",
        )  # fmt: skip
        saved = await _budgets.set_limits(
            self._store(), self.services.budgets, row, by_owner=by_owner
        )
        return saved.public()

    async def clear_budget(self, scope: str, subject: str, *, by_owner: bool = False) -> bool:
        """Remove a key's or owner's limits (see :meth:`set_budget`); whether there were any."""
        return await _budgets.clear_limits(
            self._store(), self.services.budgets, scope, subject, by_owner=by_owner
        )

    @property
    def budget_guard(self) -> Any:
        """The budgets every model call of this instance reserves on (the gateway's too)."""
        return self.services.budgets
