"""The gateway's calls: the request goes to its route's models in order, each retried on
retryable errors, and every attempt lands in the model-call ledger.

Failing over happens only before anything was streamed to the client: once a stream
has begun, an upstream failure ends it with an explicit error chunk.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from crewchief.config import Settings
from crewchief.effort import normalize_effort
from crewchief.errors import CredentialsUnavailable
from crewchief.gateway import spend
from crewchief.gateway.cache import (
    MemoryCache,
    RedisCache,
    ResponseCache,
    cache_key,
    cacheable,
)
from crewchief.gateway.circuit import Breakers
from crewchief.gateway.context import ConversationStore, add_history, message_tokens
from crewchief.gateway.engineer import Engineer
from crewchief.gateway.errors import GatewayError
from crewchief.gateway.request import ChatRequest
from crewchief.gateway.roles import RoleChoice
from crewchief.gateway.routing import RouteBook
from crewchief.gateway.semantic import NearMiss, SemanticCache, lookup_of
from crewchief.gateway.stream import OpenStream, ReplayedStream
from crewchief.gateway.targets import LOCAL_URL, Route, Target, route, with_credentials
from crewchief.gateway.targets import target as target_of
from crewchief.gateway.trace import Trace, first_message, stated_cost, usage_of
from crewchief.gateway.upstream import Upstream, UpstreamError, backoff, sleep
from crewchief.knowledge.memory import ConversationMemory
from crewchief.knowledge.window import OPENAI, WindowError, fit, model_window
from crewchief.models.credentials import OwnerCredentials
from crewchief.models.pricing import prices_for
from crewchief.models.types import CallInfo, CallRecord, Usage

if TYPE_CHECKING:
    from crewchief.db.feedback import ResponseRecord
    from crewchief.knowledge.profile import About
    from crewchief.runtime.budgets import Budgets
    from crewchief.runtime.credentials import CredentialBook

Record = Callable[[CallRecord], Awaitable[None]]
# (transcript, most tokens, who the call is recorded for) -> a summary by the fast model
Summarize = Callable[[str, int, CallInfo], Awaitable[str]]
T = TypeVar("T")


class Profiles(Protocol):
    """Where owners' profiles come from (:class:`crewchief.runtime.profiles.ProfileBook`)."""

    async def about(self, owner: str | None) -> About | None: ...


class Responses(Protocol):
    """Where answers are kept to be rated (:class:`crewchief.db.feedback.ResponseLog`)."""

    def keep(self, record: ResponseRecord) -> None: ...


class Gateway:
    """Answers chat completion requests for the REST app.

    Args:
        settings: Models, providers, timeouts.
        upstream: The HTTP client for every upstream.
        record: Writes one ledger row (the app's store).
        retries: Tries of the same model after its first, on retryable errors.
        breakers: The circuits of the models (default: a new set).
        cache: Where answers to deterministic requests are kept (None: no cache).
        conversations: Where conversations are kept (None: ``conversation_id`` is refused).
        engineer: Rewrites prompts for their role (None: never rewritten).
        routes: The routing tables (None: every role runs on its alias).
        local_url: Starts a ``local:`` model's server if need be; its base URL.
        summarize: Summarizes the middle of a request too long for its model's window
            (None: the middle is left out, with a note).
        memory: Earlier exchanges per owner (None: no memory).
        semantic: Answers found by meaning, after the exact cache (None: none).
        profiles: Owners' profiles, added to their requests (None: none).
        budgets: The callers' plans and budgets (None: nothing is limited).
        responses: Keeps every answer, to be rated by its ``x_crewchief.id`` (None: none).
        credentials: Owners' own provider keys, which their requests go out with (None:
            the platform's credentials for everyone).
    """

    def __init__(
        self,
        settings: Settings,
        upstream: Upstream,
        record: Record,
        retries: int = 1,
        breakers: Breakers | None = None,
        cache: ResponseCache | None = None,
        conversations: ConversationStore | None = None,
        engineer: Engineer | None = None,
        routes: RouteBook | None = None,
        local_url: Callable[[str], Awaitable[str]] | None = None,
        summarize: Summarize | None = None,
        memory: ConversationMemory | None = None,
        semantic: SemanticCache | None = None,
        profiles: Profiles | None = None,
        budgets: Budgets | None = None,
        responses: Responses | None = None,
        credentials: CredentialBook | None = None,
    ):
        self.settings = settings
        self.upstream = upstream
        self._record = record
        self.retries = retries
        self.breakers = breakers or Breakers()
        self.cache = cache
        self.conversations = conversations
        self.engineer = engineer
        self.routes = routes
        self.local_url = local_url
        self.summarize = summarize
        self.memory = memory
        self.semantic = semantic
        self.profiles = profiles
        self.budgets = budgets
        self.responses = responses
        self.credentials = credentials
        self.prices = prices_for(settings)

    async def trace(
        self,
        request: ChatRequest,
        role: RoleChoice,
        *,
        owner: str | None = None,
        api_key_id: str | None = None,
    ) -> Trace:
        """The request's route to its models, and what will be said about it."""
        table = await self.routes.current() if self.routes is not None else None
        chosen = route(self.settings, request.model, role.role, table, request.profile)
        chosen = with_credentials(chosen, await self.owner_credentials(owner))
        trace = Trace(
            role, chosen, owner, api_key_id, prompt=request.body["messages"], stream=request.stream
        )
        if self.budgets is not None:
            await spend.admit(self.budgets, request, trace)
        return trace

    async def owner_credentials(self, owner: str | None) -> OwnerCredentials | None:
        """The provider keys ``owner`` stored (from a short cache), which their attempts at
        those providers' models go out with.

        Raises:
            GatewayError: 503 ``credentials_unavailable`` when they cannot be decrypted
                here: the owner expects their key, so the platform's is not used instead.
        """
        if self.credentials is None:
            return None
        try:
            return await self.credentials.for_owner(owner)
        except CredentialsUnavailable as exc:
            raise GatewayError(503, str(exc), code="credentials_unavailable") from None

    async def add_context(self, request: ChatRequest, trace: Trace) -> None:
        """Put the conversation's history the client did not send into the request.

        Raises:
            GatewayError: 400 for a ``conversation_id`` where no store keeps them.
        """
        conversation = request.conversation_id
        if conversation is None:
            return
        if self.conversations is None:
            raise GatewayError(
                400, "conversations are not kept here", code="invalid_request",
                param="conversation_id",
            )  # fmt: skip
        settings = self.settings.gateway
        history = await self.conversations.recent(
            trace.owner, conversation, settings.history_messages
        )
        sent = request.body["messages"]
        window, reserve = self._window(request, trace)
        budget = window - reserve - sum(message_tokens(m) for m in sent)
        added = add_history(sent, history, budget)
        request.body = dict(request.body, messages=added.messages)
        trace.conversation, trace.to_store = conversation, added.new
        trace.context_added, trace.context_left_out = added.added, added.left_out

    def _window(self, request: ChatRequest, trace: Trace) -> tuple[int, int]:
        """The smallest context window of the route's models, and the tokens the answer
        may take (the request's ``max_tokens``, else ``max_output_tokens``)."""
        window = min(model_window(self.settings, t.spec) for t in trace.route.targets)
        reserve = request.body.get("max_completion_tokens") or request.body.get("max_tokens")
        return window, reserve if isinstance(reserve, int) else self.settings.max_output_tokens

    async def fit_window(self, request: ChatRequest, trace: Trace) -> None:
        """Shorten a request too long for the smallest window of its route's models (see
        :mod:`crewchief.knowledge.window`); ``x_crewchief.context_trimmed`` says how.

        Raises:
            GatewayError: 400 ``context_length_exceeded`` when not even the system
                messages and the latest turn fit.
        """
        settings = self.settings
        window, reserve = self._window(request, trace)
        summarize = None
        if self.summarize is not None:
            info = CallInfo(
                node="gateway",
                purpose=f"gateway:summary:{trace.role.role}",
                owner=trace.owner,
                api_key_id=trace.api_key_id,
                role=trace.role.role,
            )
            asked = self.summarize

            async def summarize(transcript: str, most: int) -> str:
                return await asked(transcript, most, info)

        try:
            fitted = await fit(
                request.body["messages"],
                OPENAI,
                window=window,
                share=settings.context_share,
                reserve=min(reserve, window // 2),
                keep_last=settings.context_keep_last,
                model=trace.route.targets[0].model,
                summarize=summarize,
            )
        except WindowError as exc:
            raise GatewayError(
                400,
                f"the request does not fit the context window of {trace.route.targets[0].spec}:"
                f" {exc}",
                code="context_length_exceeded",
                param="messages",
            ) from None
        if fitted.trimmed.changed:
            request.body = dict(request.body, messages=fitted.messages)
            trace.trimmed = fitted.trimmed.as_dict()

    async def engineer_prompt(self, request: ChatRequest, trace: Trace, *, wanted: bool) -> None:
        """Rewrite the request's latest human message for its role, when wanted and possible."""
        if self.engineer is None or not wanted:
            return
        info = CallInfo(
            node="gateway",
            purpose=f"gateway:rewrite:{trace.role.role}",
            owner=trace.owner,
            api_key_id=trace.api_key_id,
            role=trace.role.role,
        )
        messages, trace.rewrite = await self.engineer.rewrite(
            trace.role.role, request.body["messages"], info, about=trace.about
        )
        request.body = dict(request.body, messages=messages)

    async def personalize(self, request: ChatRequest, trace: Trace) -> None:
        """Add the owner's profile ("About this user") as one system message after the
        request's own, when there is one, unless ``x_crewchief.user_profile`` is false. It
        goes with every request of the owner (an agent's tool loop too, so an agent keeps
        seeing it), and the prompt engineer's rewrite gets it as context."""
        if self.profiles is None or request.options.get("user_profile") is False:
            return
        about = await self.profiles.about(trace.owner)
        if about is None:
            return
        messages = request.body["messages"]
        head = _system_head(messages)
        block = {"role": "system", "content": about.text}
        request.body = dict(request.body, messages=[*messages[:head], block, *messages[head:]])
        trace.about, trace.user_profile = about.text, about.metadata()

    async def recall(self, request: ChatRequest, trace: Trace) -> None:
        """Add the owner's earlier exchanges most like the latest human message (from other
        conversations) as one system message after the request's own; only when a human
        asks (an agent's tool loop is left as it is) and unless ``x_crewchief.memory`` is
        false."""
        messages = request.body["messages"]
        last = messages[-1]
        if last.get("role") != "user" or not isinstance(last.get("content"), str):
            return
        trace.question = last["content"]
        if self.memory is None or request.options.get("memory") is False:
            return
        recalled = await self.memory.recall(
            trace.owner, trace.question, exclude_conversation=trace.conversation
        )
        trace.memory_ms = recalled.ms
        if not recalled.hits:
            return
        head = _system_head(messages)
        block = {"role": "system", "content": recalled.message()}
        request.body = dict(request.body, messages=[*messages[:head], block, *messages[head:]])
        trace.memory = recalled.metadata()

    def _memorize(self, trace: Trace, answer: dict[str, Any] | None) -> None:
        if self.memory is None or trace.question is None or trace.cache in ("hit", "semantic"):
            return
        text = answer.get("content") if answer else None
        if isinstance(text, str) and text.strip():
            self.memory.remember_later(
                trace.owner,
                trace.question,
                text,
                conversation=trace.conversation,
                role=trace.role.role,
            )

    def _keep(self, trace: Trace, answer: dict[str, Any] | None) -> None:
        """Keep the answer (a cached one too) to be rated by its ``x_crewchief.id``."""
        if self.responses is not None and answer is not None:
            self.responses.keep(trace.response(answer))

    async def remember(self, trace: Trace, answer: dict[str, Any] | None) -> None:
        """Store the client's new messages and the answer in the conversation, and the
        exchange in the memory (in the background); keep the answer to be rated."""
        self._keep(trace, answer)
        self._memorize(trace, answer)
        if trace.conversation is None or self.conversations is None:
            return
        messages = list(trace.to_store)
        if answer is not None:
            messages.append((answer, message_tokens(answer)))
        await self.conversations.append(trace.owner, trace.conversation, messages)

    async def ledger(
        self,
        trace: Trace,
        target: Target,
        ms: float,
        error: str | None,
        partial: Usage | None = None,
    ) -> None:
        """One ledger row for an attempt at ``target``, priced: the answer's stated cost,
        else its tokens at the price table's; a successful attempt's cost goes to
        ``x_crewchief``."""
        info = CallInfo(
            node="gateway",
            purpose=f"gateway:{trace.role.role}",
            owner=trace.owner,
            api_key_id=trace.api_key_id,
            role=trace.role.role,
        )
        if error is None:
            usage, trace.credentials = trace.usage, target.paid_by
            cost = trace.cost = self.prices.cost(target.spec, usage, trace.stated_cost)
        elif partial is not None:  # a stream cut short: what it used until then
            usage, cost = partial, self.prices.cost(target.spec, partial)
        else:
            usage, cost = Usage(), self.prices.cost(target.spec, Usage())
        record = CallRecord(info, "gateway", target.spec, "none", usage, ms, error, cost)
        record.paid_by = target.paid_by
        await spend.settle(trace, cost.usd)
        await self._record(record)

    async def _failed(self, trace: Trace, target: Target, started: float, exc: Exception) -> None:
        trace.tried.append({"model": target.spec, "error": str(exc)})
        await self.ledger(trace, target, (time.perf_counter() - started) * 1000, str(exc))

    async def choose_tier(self, request: ChatRequest, trace: Trace) -> None:
        """For ``model: "auto"``: the simplicity detector's tier of the latest human message,
        whose reasoning effort goes to models that take one (unless the request sets it)."""
        if request.model != "auto":
            return
        from crewchief.simplicity import load_detector

        text = next(
            (m["content"] for m in reversed(request.body["messages"])
             if m.get("role") == "user" and isinstance(m.get("content"), str)),
            "",
        )  # fmt: skip
        detector = await load_detector(
            threshold=self.settings.simplicity_threshold,
            deep_below=self.settings.simplicity_deep_below,
        )
        made = detector.decide(text or " ", explained=False)
        request.effort = normalize_effort(self.settings.tiers[made.tier].effort)
        trace.tier = {"tier": made.tier, "effort": request.effort, "score": round(made.score, 3)}

    def _body(self, request: ChatRequest, trace: Trace, target: Target, stream: bool) -> bytes:
        body = dict(request.body, model=target.model)
        if request.effort and target.reasoning and "reasoning_effort" not in body:
            body["reasoning_effort"] = request.effort
        if stream:
            options = dict(body.get("stream_options") or {}, include_usage=True)
            body["stream_options"] = options  # the ledger needs the tokens
        spend.bounded_body(body, target, trace.spend)
        return json.dumps(body).encode()

    async def _try(self, trace: Trace, call: Callable[[Target], Awaitable[T]]) -> T:
        """``call`` on each model of the route in order until one answers.

        A model is retried (after :func:`backoff`) on retryable errors, skipped while its
        circuit is open, and given up on a final error. An upstream refusing the request
        itself (400, 413, 422) ends the request: every other model would refuse it too.

        Raises:
            GatewayError: every model failed or was skipped.
        """
        last: UpstreamError | None = None
        for target in trace.route.targets:
            spec, circuit = target.spec, target.circuit  # an owner's key has its own
            for attempt in range(self.retries + 1):
                if not self.breakers.allow(circuit):
                    if attempt == 0:
                        left = self.breakers.wait(circuit)
                        trace.tried.append(
                            {"model": spec, "error": f"circuit open ({left:.0f} s more)"}
                        )
                    break
                if attempt:
                    wait = backoff(attempt - 1, last) if last is not None else None
                    if wait is None:
                        self.breakers.release(circuit)
                        break
                    await sleep(wait)
                started = time.perf_counter()
                try:
                    if self.budgets is not None:
                        target = await spend.reserve(
                            self.budgets, self.prices, self.settings, trace, target
                        )
                    if target.base_url == LOCAL_URL:
                        target = await self._local(target)
                    result = await call(target)
                except UpstreamError as exc:
                    last = exc
                    await self._failed(trace, target, started, exc)
                    if exc.status in (400, 413, 422):
                        self.breakers.success(circuit)  # the model answered: the request is bad
                        raise GatewayError(
                            exc.status,
                            f"{spec} refused the request: {exc}",
                            code="upstream_rejected",
                        ) from None
                    self.breakers.failure(circuit)
                    continue
                except BaseException:
                    self.breakers.release(circuit)
                    await asyncio.shield(spend.settle(trace, 0.0))
                    raise
                self.breakers.success(circuit)
                trace.model = target.spec  # the downgrade model, when a budget chose it
                return result
        raise self._exhausted(trace, last)

    def _cache_key(self, request: ChatRequest, trace: Trace, fresh: bool) -> str | None:
        """The request's cache key when its answer may be cached (``trace.cache`` says so)."""
        if self.cache is None or not cacheable(request.body, request.options):
            return None
        trace.cache = "bypass" if fresh else "miss"
        first = trace.route.targets[0].spec
        return cache_key(trace.owner, trace.role.role, first, request.body)

    async def _cached(
        self, key: str | None, request: ChatRequest, trace: Trace, fresh: bool
    ) -> dict[str, Any] | None:
        """The cached answer for the request: the exact cache's under ``key``, else the
        semantic cache's (taking its model and tokens); None on a miss."""
        if key is None or self.cache is None:
            return None
        if self.semantic is not None:
            first = trace.route.targets[0].spec
            trace.lookup = lookup_of(request.body, trace.role.role, first)
        if fresh:
            return None
        hit = await self.cache.get(key)
        if hit is not None:
            trace.cache, trace.model = "hit", hit["model"]
            answer = hit["answer"]
        elif trace.lookup is not None and self.semantic is not None:
            found = await self.semantic.get(trace.owner, trace.lookup)
            if isinstance(found, NearMiss):
                trace.similarity, trace.refused = found.similarity, found.reason
                return None
            if found is None:
                return None
            trace.cache, trace.model, trace.similarity = "semantic", found.model, found.similarity
            answer = found.answer
        else:
            return None
        trace.usage = usage_of(answer)
        await self.remember(trace, first_message(answer))
        return answer

    async def store(self, key: str, answer: dict[str, Any], model: str, trace: Trace) -> None:
        """Keep a fresh answer in the exact cache, and in the semantic cache when the
        request takes part."""
        if self.cache is not None:
            await self.cache.put(key, {"answer": answer, "model": model})
        if self.semantic is not None and trace.lookup is not None:
            self.semantic.put_later(trace.owner, trace.lookup, answer, model)

    async def complete(
        self, request: ChatRequest, trace: Trace, *, fresh: bool = False
    ) -> dict[str, Any]:
        """A non-streaming answer, with ``x_crewchief``; from the cache when it may be
        (``fresh``: not from the cache, as ``Cache-Control: no-cache`` asks).

        Raises:
            GatewayError: see :meth:`_try`.
        """
        key = self._cache_key(request, trace, fresh)
        if (cached := await self._cached(key, request, trace, fresh)) is not None:
            return dict(cached, x_crewchief=trace.metadata())

        async def call(target: Target) -> dict[str, Any]:
            started = time.perf_counter()
            body = self._body(request, trace, target, stream=False)
            data = await self.upstream.post(target, "/chat/completions", body)
            if not isinstance(data.get("choices"), list):
                raise UpstreamError("the answer has no choices", status=200)
            trace.usage, trace.stated_cost = usage_of(data), stated_cost(data)
            await self.ledger(trace, target, (time.perf_counter() - started) * 1000, None)
            return data

        data = await self._try(trace, call)
        await self.remember(trace, first_message(data))
        if key is not None and trace.model is not None:
            await self.store(key, data, trace.model, trace)
        return dict(data, x_crewchief=trace.metadata())

    async def open_stream(
        self, request: ChatRequest, trace: Trace, *, fresh: bool = False
    ) -> OpenStream | ReplayedStream:
        """Open a streaming answer on the first model that accepts it, or replay a cached
        one as chunks (the cache as for :meth:`complete`; a whole single-choice stream is
        stored when it ends well).

        Raises:
            GatewayError: see :meth:`_try` (nothing was streamed yet).
        """
        key = self._cache_key(request, trace, fresh)
        if (cached := await self._cached(key, request, trace, fresh)) is not None:
            return ReplayedStream(cached, trace, request.include_usage)
        if request.body.get("n", 1) != 1:
            key = None  # the stream keeps only its first choice whole

        async def call(target: Target) -> OpenStream:
            started = time.perf_counter()
            body = self._body(request, trace, target, stream=True)
            context = self.upstream.stream(target, "/chat/completions", body)
            response = await context.__aenter__()
            closed = False

            async def close() -> None:  # by the stream's end and by the response's: once
                nonlocal closed
                if not closed:
                    closed = True
                    await context.__aexit__(None, None, None)

            return OpenStream(self, request, trace, target, response, close, started, key)

        return await self._try(trace, call)

    async def embeddings(
        self, body: dict[str, Any], *, owner: str | None, api_key_id: str | None
    ) -> dict[str, Any]:
        """``/v1/embeddings``, forwarded to ``gateway.embeddings_model`` (with its retries,
        circuit and a ledger row).

        Raises:
            GatewayError: no embeddings model is configured (404), a bad body (400), or
                the upstream failed.
        """
        spec = self.settings.gateway.embeddings_model
        if not spec:
            raise GatewayError(
                404,
                "no embeddings model is configured (gateway.embeddings_model, e.g."
                " 'openai:text-embedding-3-small')",
                code="model_not_found",
                param="model",
            )
        given = body.get("input")
        if not isinstance(given, str | list) or not given:
            raise GatewayError(
                400, "input must be a non-empty string or array", code="invalid_request",
                param="input",
            )  # fmt: skip
        chosen = Route([target_of(self.settings, spec)], "gateway.embeddings_model")
        chosen = with_credentials(chosen, await self.owner_credentials(owner))
        trace = Trace(RoleChoice("embeddings", "endpoint"), chosen, owner, api_key_id)
        if self.budgets is not None:
            await spend.admit(self.budgets, None, trace)
            if trace.spend is not None:
                trace.spend.prompt_tokens = spend.input_tokens(given)

        async def call(t: Target) -> dict[str, Any]:
            started = time.perf_counter()
            payload = json.dumps(dict(body, model=t.model)).encode()
            data = await self.upstream.post(t, "/embeddings", payload)
            if not isinstance(data.get("data"), list):
                raise UpstreamError("the answer has no data", status=200)
            trace.usage, trace.stated_cost = Usage(usage_of(data).input), stated_cost(data)
            await self.ledger(trace, t, (time.perf_counter() - started) * 1000, None)
            return data

        data = await self._try(trace, call)
        meta = trace.metadata()
        return dict(
            data,
            x_crewchief={
                "model": spec,
                "cost_usd": meta["cost_usd"],
                "cost_source": meta["cost_source"],
                "credentials": meta["credentials"],
                "total_ms": meta["total_ms"],
            },
        )

    async def _local(self, target: Target) -> Target:
        """A local model's target with its server's address (started, pulled or built first
        if need be, outside the call's time limit)."""
        if self.local_url is None:
            raise UpstreamError("local models are not served here", retryable=False)
        try:
            base_url = await self.local_url(target.spec)
        except Exception as exc:  # noqa: BLE001 - a model that cannot start is a failed attempt
            raise UpstreamError(f"the local model did not start: {exc}", retryable=False) from None
        return replace(target, base_url=base_url.rstrip("/"))

    def _exhausted(self, trace: Trace, last: UpstreamError | None) -> GatewayError:
        tried = "; ".join(f"{t['model']}: {t['error']}" for t in trace.tried) or "no model"
        waits = [self.breakers.wait(t.circuit) for t in trace.route.targets]
        if last is None and waits and min(waits) > 0:  # every circuit open: fail fast
            return GatewayError(
                503,
                f"every model is out of service for now: {tried}",
                code="circuit_open",
                headers={"Retry-After": str(max(1, round(min(waits))))},
            )
        headers = {}
        if last is not None and last.status == 429 and last.retry_after is not None:
            headers["Retry-After"] = str(max(1, round(last.retry_after)))
        status = 429 if last is not None and last.status == 429 else 502
        return GatewayError(
            status, f"every model failed: {tried}", code="upstream_error", headers=headers
        )


def _system_head(messages: list[dict[str, Any]]) -> int:
    """How many system (or developer) messages the request starts with."""
    head = 0
    while head < len(messages) and messages[head].get("role") in ("system", "developer"):
        head += 1
    return head


def response_cache(settings: Settings) -> ResponseCache | None:
    """The answers cache the settings ask for: in Redis when configured (shared by every API
    instance), else in this process; None when switched off."""
    gateway = settings.gateway
    if not gateway.cache:
        return None
    if settings.redis_url:
        return RedisCache(settings.redis_url, settings.redis_prefix, gateway.cache_ttl_seconds)
    return MemoryCache(gateway.cache_ttl_seconds, gateway.cache_max_entries)
