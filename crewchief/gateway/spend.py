"""What the gateway's calls may use and spend: the caller's plan, quotas and budgets.

Before a request is worked on, its plan filters the route's models and lowers its
reasoning effort, and its daily request quota is taken. Before each attempt at a model,
the attempt's largest cost (the prompt's tokens and the bounded output) is reserved on
every budget of the caller; the ledger row of the attempt settles it (the answer's real
cost, or what a cut stream had used). A budget whose owner chose it answers with the
downgrade model instead of a refusal, and ``x_crewchief.budget`` says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from crewchief.effort import normalize_effort
from crewchief.errors import BudgetExceeded
from crewchief.gateway.context import message_tokens
from crewchief.gateway.errors import GatewayError
from crewchief.gateway.targets import Route, Target
from crewchief.gateway.targets import target as target_of
from crewchief.models.credentials import PLATFORM
from crewchief.models.tokens import count_tokens

if TYPE_CHECKING:
    from crewchief.config import Settings
    from crewchief.gateway.request import ChatRequest
    from crewchief.gateway.trace import Trace
    from crewchief.models.pricing import PriceTable
    from crewchief.runtime.budgets import Budgets, Hold, PayerLimits


@dataclass
class Spend:
    """One request's dealings with its caller's plan and budgets."""

    plan: PayerLimits
    request: ChatRequest | None = None
    prompt_tokens: int | None = None  # counted at the first reservation
    bound: int = 0  # the output tokens an attempt may produce
    hold: Hold | None = None  # the reservation of the attempt under way
    downgraded_from: str | None = None
    notices: list[dict[str, Any]] = field(default_factory=list)

    def metadata(self) -> dict[str, Any] | None:
        if self.downgraded_from is None and not self.notices:
            return None
        return {"downgraded_from": self.downgraded_from, "notices": self.notices}


def budget_error(exc: BudgetExceeded) -> GatewayError:
    """402 ``budget_exceeded`` (or 429 ``quota_exceeded`` with ``Retry-After``), in
    OpenAI's shape with the limit, the spend and the reset next to the message."""
    if exc.unit == "usd":
        return GatewayError(402, str(exc), code="budget_exceeded", extra=exc.facts())
    return GatewayError(
        429, str(exc), code="quota_exceeded", extra=exc.facts(),
        headers={"Retry-After": str(exc.retry_after())},
    )  # fmt: skip


async def admit(budgets: Budgets, request: ChatRequest | None, trace: Trace) -> None:
    """The caller's plan applied to the request before any work: only the models it
    allows, the effort lowered to its highest, and one request off today's quota.

    Raises:
        GatewayError: 403 ``model_not_allowed`` (no model of the route is in the plan),
            429 ``quota_exceeded``.
    """
    found = await budgets.limits(trace.owner, trace.api_key_id)
    if found.plan is None and not found.limits:
        return
    trace.spend = Spend(found, request)
    allowed = [t for t in trace.route.targets if found.allows(t.spec)]
    if not allowed:
        assert found.plan is not None
        raise GatewayError(
            403,
            f"plan {found.plan_name!r} allows none of the models of this route"
            f" ({', '.join(t.spec for t in trace.route.targets)}); it allows"
            f" {', '.join(found.plan.models)}",
            code="model_not_allowed",
            param="model",
        )
    if len(allowed) < len(trace.route.targets):
        trace.route = Route(allowed, f"{trace.route.reason}; only the plan's models")
    if request is not None:
        _lower_effort(request, found)
    try:
        await budgets.take(trace.owner, trace.api_key_id, "requests")
    except BudgetExceeded as exc:
        raise budget_error(exc) from None


def _lower_effort(request: ChatRequest, found: PayerLimits) -> None:
    if request.effort:
        request.effort = found.effort(normalize_effort(request.effort))
    asked = request.body.get("reasoning_effort")
    if isinstance(asked, str) and asked:
        request.body["reasoning_effort"] = found.effort(normalize_effort(asked))


def _prompt_tokens(request: ChatRequest) -> int:
    messages = request.body.get("messages") or []
    tokens = sum(message_tokens(m) for m in messages if isinstance(m, dict))
    if request.body.get("tools"):
        tokens += count_tokens(json.dumps(request.body["tools"]))
    return tokens


def input_tokens(given: Any) -> int:
    """The tokens of an embeddings request's ``input``: a string or a list of strings (a
    list of token ids counts as its length)."""
    items = [given] if isinstance(given, str) else list(given)
    total = 0
    for item in items:
        if isinstance(item, str):
            total += count_tokens(item)
        elif isinstance(item, list):
            total += len(item)
        else:
            total += 1
    return total


def output_bound(request: ChatRequest, settings: Settings) -> int:
    """The output tokens the request allows: its own ``max_completion_tokens`` or
    ``max_tokens`` (times ``n``), else ``max_output_tokens`` (which the call then sends, so
    the bound holds)."""
    body = request.body
    asked = body.get("max_completion_tokens") or body.get("max_tokens")
    each = asked if isinstance(asked, int) and asked > 0 else settings.max_output_tokens
    n = body.get("n", 1)
    return each * (n if isinstance(n, int) and n > 0 else 1)


def bounded_body(body: dict[str, Any], target: Target, spend: Spend | None) -> None:
    """Send the output bound a reservation assumed when the client set none."""
    if spend is None or spend.request is None:
        return
    if body.get("max_completion_tokens") or body.get("max_tokens"):
        return
    n = body.get("n", 1)
    each = spend.bound // (n if isinstance(n, int) and n > 0 else 1)
    body["max_completion_tokens" if target.reasoning else "max_tokens"] = each


async def reserve(
    budgets: Budgets, prices: PriceTable, settings: Settings, trace: Trace, target: Target
) -> Target:
    """Reserve an attempt's largest cost; the target to call (the downgrade model when an
    exhausted budget chose it).

    Raises:
        GatewayError: 402 ``budget_exceeded``.
    """
    spend = trace.spend
    if spend is None or not spend.plan.limits:
        return target
    if target.paid_by != PLATFORM:
        return target  # the owner's own credentials: the provider bills the owner
    if spend.prompt_tokens is None:
        request = spend.request
        spend.prompt_tokens = _prompt_tokens(request) if request is not None else 0
        spend.bound = output_bound(request, settings) if request is not None else 0
    try:
        spend.hold = await budgets.reserve(
            trace.owner,
            trace.api_key_id,
            prices.estimate(target.spec, spend.prompt_tokens, spend.bound),
        )
        return target
    except BudgetExceeded as exc:
        if not exc.downgrade or spend.request is None:
            raise budget_error(exc) from None
        cheaper = target_of(settings, downgrade_spec(settings))
        if cheaper.spec == target.spec:
            raise budget_error(exc) from None
    try:
        spend.hold = await budgets.reserve(
            trace.owner,
            trace.api_key_id,
            prices.estimate(cheaper.spec, spend.prompt_tokens, spend.bound),
        )
    except BudgetExceeded as exc:
        raise budget_error(exc) from None
    spend.downgraded_from = spend.downgraded_from or target.spec
    return cheaper


def downgrade_spec(settings: Settings) -> str:
    return settings.budgets.downgrade_model or settings.models["delegate"].model


async def settle(trace: Trace, usd: float) -> None:
    """Settle the attempt's reservation with its real cost (0 for a failed attempt)."""
    spend = trace.spend
    if spend is None or spend.hold is None:
        return
    hold, spend.hold = spend.hold, None
    for notice in await hold.settle(usd):
        spend.notices.append(notice.payload())


def partial_usage(trace: Trace, request: ChatRequest, output_text: str) -> tuple[int, int]:
    """A cut stream's tokens: its prompt (as counted for its reservation) and the output
    it streamed so far (no usage chunk came)."""
    spend = trace.spend
    if spend is not None and spend.prompt_tokens is not None:
        prompt = spend.prompt_tokens
    else:
        prompt = _prompt_tokens(request)
    return prompt, count_tokens(output_text) if output_text else 0
