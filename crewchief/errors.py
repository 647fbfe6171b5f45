"""Exceptions with stable codes. The API turns ``code`` into its JSON error body."""

from __future__ import annotations

import math
from typing import Any


class CrewchiefError(Exception):
    """Base class; ``code`` is stable and machine-readable."""

    code = "crewchief_error"


class ConfigError(CrewchiefError):
    code = "invalid_config"


class ModelConfigError(CrewchiefError):
    """A model spec names an unknown provider or cannot be built."""

    code = "invalid_model"


class ModelRequestsBlocked(CrewchiefError):
    """Raised when real model requests are disabled (``CREWCHIEF_ALLOW_MODEL_REQUESTS=0``)."""

    code = "model_requests_blocked"


class ModelCallError(CrewchiefError):
    """Every model bound to an alias (primary and fallbacks) failed."""

    code = "model_call_failed"


class PlanError(CrewchiefError):
    """The orchestrator did not produce a usable plan after all attempts."""

    code = "plan_invalid"


class InvalidRequest(CrewchiefError):
    """A field of a request is invalid; the message names it, ``details`` lists each one.

    ``details`` holds ``{"path", "message"}`` items, paths relative to the
    request body (``tasks.1.depends_on``).
    """

    code = "invalid_request"

    def __init__(self, message: str, details: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.details = details or []


class OperationNotFound(CrewchiefError):
    code = "operation_not_found"


class TaskNotFound(CrewchiefError):
    code = "task_not_found"


class ResponseNotFound(CrewchiefError):
    """No gateway response with this ``x_crewchief.id`` (or another owner's)."""

    code = "response_not_found"


class OperationStateError(CrewchiefError):
    """The operation is not in a state that allows the requested action."""

    code = "operation_state"


class OperationBusy(OperationStateError):
    """Another process runs the operation (it holds the operation's lease)."""

    code = "operation_busy"


class ScriptError(CrewchiefError):
    """A ``fake:`` model script is malformed or has no reply for a call."""

    code = "fake_script"


class LocalModelError(CrewchiefError):
    """Pulling, verifying, building or serving a local model failed."""

    code = "local_model"


class UnknownLocalModel(LocalModelError):
    code = "unknown_local_model"


class LocalModelMissing(LocalModelError):
    """The model file has not been pulled (and pulling on first use is off)."""

    code = "local_model_missing"


class ModelHashMismatch(LocalModelError):
    """Downloaded bytes do not match their pinned SHA-256; nothing was kept."""

    code = "model_hash_mismatch"


class DiskFull(LocalModelError):
    code = "disk_full"


class BudgetExceeded(CrewchiefError):
    """A hard budget (or a quota) has no room for the call or request.

    ``limit`` and ``spent`` are US dollars for a budget, counts for a quota; ``resets_at``
    is when the period ends (ISO 8601, UTC). ``downgrade`` says the budget's owner chose a
    cheaper model over a refusal.
    """

    code = "budget_exceeded"

    def __init__(
        self,
        message: str,
        *,
        scope: str,
        subject: str,
        period: str,
        limit: float,
        spent: float,
        resets_at: str,
        unit: str = "usd",
        downgrade: bool = False,
    ):
        super().__init__(message)
        self.scope, self.subject, self.period = scope, subject, period
        self.limit, self.spent, self.resets_at, self.unit = limit, spent, resets_at, unit
        self.downgrade = downgrade
        if unit != "usd":
            self.code = "quota_exceeded"

    def retry_after(self) -> int:
        """Whole seconds until the period resets (at least 1)."""
        from datetime import UTC, datetime

        reset = datetime.strptime(self.resets_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        return max(1, math.ceil((reset - datetime.now(UTC)).total_seconds()))

    def facts(self) -> dict[str, Any]:
        """What a client needs to act on it: which budget, its limit, the spend, the reset."""
        key = "usd" if self.unit == "usd" else "count"
        return {
            "scope": self.scope,
            "subject": self.subject,
            "period": self.period,
            f"limit_{key}": self.limit,
            f"spent_{key}": self.spent,
            "resets_at": self.resets_at,
        }


class NotAllowed(CrewchiefError):
    """The caller's plan does not allow this model or reasoning effort."""

    code = "not_allowed"


class CredentialsUnavailable(CrewchiefError):
    """Owners' credentials cannot be stored or used here: no ``secret_keys`` configured, or
    a stored credential that none of them decrypts. The operator's to fix; the message says
    how and never holds a secret."""

    code = "credentials_unavailable"
