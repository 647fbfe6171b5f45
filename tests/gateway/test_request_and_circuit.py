"""The gateway's request checks, role choice, model routes, circuit breaker and Retry-After."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from crewchief.gateway.circuit import Breakers
from crewchief.gateway.errors import GatewayError
from crewchief.gateway.google_auth import GoogleToken
from crewchief.gateway.request import parse_chat_request
from crewchief.gateway.roles import choose_role
from crewchief.gateway.targets import route
from crewchief.gateway.upstream import UpstreamError, backoff, retry_after
from tests.conftest import make_settings

USER = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ([], "body"),
        ({"messages": USER}, "model"),
        ({"model": "auto", "messages": []}, "messages"),
        ({"model": "auto", "messages": ["hi"]}, "messages.0"),
        ({"model": "auto", "messages": [{"role": "robot", "content": "x"}]}, "messages.0.role"),
        ({"model": "auto", "messages": [{"role": "user"}]}, "messages.0.content"),
        ({"model": "auto", "messages": USER, "stream": "yes"}, "stream"),
        ({"model": "auto", "messages": USER, "n": 0}, "n"),
        ({"model": "auto", "messages": USER, "profile": "home"}, "profile"),
        ({"model": "auto", "messages": USER, "x_crewchief": []}, "x_crewchief"),
    ],
)
def test_a_bad_request_names_the_field(body: object, param: str) -> None:
    with pytest.raises(GatewayError) as bad:
        parse_chat_request(body)
    assert bad.value.status == 400 and bad.value.param == param
    assert bad.value.body()["error"]["type"] == "invalid_request_error"


def test_own_fields_are_taken_out_and_the_rest_goes_upstream_as_sent() -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    chat = parse_chat_request(
        {
            "model": "auto",
            "messages": USER,
            "tools": tools,
            "seed": 7,
            "role": "review",
            "conversation_id": "c1",
            "x_crewchief": {"rewrite": False},
            "stream": True,
            "stream_options": {"include_usage": True},
        }
    )
    assert chat.role == "review" and chat.conversation_id == "c1" and chat.include_usage
    assert chat.body["tools"] == tools and chat.body["seed"] == 7
    assert not {"role", "conversation_id", "x_crewchief"} & set(chat.body)


def _choice(body: str | None, header: str | None, model: str) -> tuple[str, str]:
    made = choose_role(body, header, model)
    return made.role, made.source


def test_the_role_sources_in_order() -> None:
    assert _choice("Review", "testing", "crewchief/architect") == ("review", "body")
    assert _choice(None, "testing", "crewchief/architect") == ("testing", "header")
    assert _choice(None, None, "crewchief/architect") == ("architect", "model")
    assert _choice(None, None, "debugger") == ("debugger", "model")
    with pytest.raises(GatewayError) as bad:
        choose_role(None, "chef", "auto")
    assert bad.value.param == "X-Crewchief-Role"


def test_routes_follow_the_roles_alias_and_its_fallbacks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CREWCHIEF_ALLOW_MODEL_REQUESTS", "1")  # routes only: nothing is sent
    settings = make_settings(
        tmp_path,
        models={
            "orchestrator": {"model": "openai:big"},
            "delegate": {"model": "openai:small", "fallbacks": ["fake:default", "openai:spare"]},
            "fast": {"model": "fake:default"},
        },
    )
    architect = route(settings, "crewchief/architect", "architect")
    assert [t.spec for t in architect.targets] == ["openai:big"]
    # A concrete model first, then the role's chain, leaving out what cannot be forwarded.
    concrete = route(settings, "openai:other", "review")
    assert [t.spec for t in concrete.targets] == ["openai:other", "openai:small", "openai:spare"]
    with pytest.raises(GatewayError) as unknown:
        route(settings, "gpt-4o", "general")
    assert unknown.value.status == 404 and unknown.value.code == "model_not_found"
    with pytest.raises(GatewayError) as unsupported:
        route(settings, "fast", "general")
    assert unsupported.value.status == 400 and "fake" in unsupported.value.message


def test_gemini_models_go_to_vertex_ais_openai_compatible_endpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CREWCHIEF_ALLOW_MODEL_REQUESTS", "1")  # routes only: nothing is sent
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    monkeypatch.delenv("GOOGLE_CLOUD_LOCATION", raising=False)
    providers = {
        "google": {"type": "google", "project": "p1"},
        "eu": {"type": "google", "project": "p2", "location": "europe-west4"},
        "noproject": {"type": "google"},
    }
    settings = make_settings(tmp_path, providers=providers)
    (world,) = route(settings, "google:gemini-2.5-pro", "general").targets[:1]
    assert world.base_url == (
        "https://aiplatform.googleapis.com/v1/projects/p1/locations/global/endpoints/openapi"
    )
    assert world.model == "google/gemini-2.5-pro" and world.reasoning and world.token
    (eu,) = route(settings, "eu:gemini-2.0-flash", "general").targets[:1]
    assert eu.base_url.startswith("https://europe-west4-aiplatform.googleapis.com/v1/projects/p2/")
    assert not eu.reasoning  # gemini 2.0 does not think: no reasoning_effort
    with pytest.raises(GatewayError) as missing:
        route(settings, "noproject:gemini-2.5-flash", "general")
    assert missing.value.param == "model" and "GOOGLE_CLOUD_PROJECT" in missing.value.message


async def test_missing_google_credentials_fail_the_call_with_a_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "absent.json"))
    with pytest.raises(RuntimeError, match="Google credentials: .*absent.json"):
        await GoogleToken()()


def test_a_circuit_opens_after_failures_in_a_row_and_a_trial_closes_it() -> None:
    breakers = Breakers(threshold=2, cooldown=0.2)
    breakers.failure("m")
    breakers.success("m")  # in a row: a success starts the count again
    breakers.failure("m")
    assert breakers.allow("m") and breakers.state("m") == "closed"
    breakers.failure("m")
    assert breakers.state("m") == "open" and not breakers.allow("m")
    assert 0 < breakers.wait("m") <= 0.2
    time.sleep(0.25)
    assert breakers.state("m") == "half_open"
    assert breakers.allow("m")  # one trial
    assert not breakers.allow("m")  # and only one
    breakers.failure("m")  # the trial failed: open again, for a whole cooldown
    assert breakers.state("m") == "open" and breakers.wait("m") > 0.1
    time.sleep(0.25)
    assert breakers.allow("m")
    breakers.success("m")
    assert breakers.state("m") == "closed" and breakers.allow("m")


def test_retry_after_in_seconds_or_as_a_date_and_when_to_move_on() -> None:
    assert retry_after({"Retry-After": "2.5"}) == 2.5
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 5))
    assert 3 < (retry_after({"Retry-After": date}) or 0) <= 5
    assert retry_after({}) is None
    assert backoff(0, UpstreamError("busy", status=429, retry_after=1.0)) == 1.0
    assert backoff(0, UpstreamError("busy", status=429, retry_after=60.0)) is None  # next model
    assert backoff(0, UpstreamError("no", status=401, retryable=False)) is None
    assert 0.1 <= (backoff(1, UpstreamError("down", status=503)) or 0) <= 0.75


def test_history_fills_in_what_the_client_did_not_send_newest_first() -> None:
    from crewchief.db.conversations import StoredMessage, digest
    from crewchief.gateway.context import add_history, message_tokens

    def stored(role: str, text: str) -> StoredMessage:
        message = {"role": role, "content": text}
        return StoredMessage(message, digest(message), message_tokens(message))

    history = [stored("user", "first question"), stored("assistant", "first answer")]
    history += [stored("user", "second question"), stored("assistant", "second answer")]
    system = {"role": "system", "content": "You are terse."}
    ask = {"role": "user", "content": "third question"}
    added = add_history([system, history[3].message, ask], history, budget=10_000)
    # After the client's system prompt, in order, without what the client sent again.
    assert [m["content"] for m in added.messages] == [
        "You are terse.", "first question", "first answer", "second question",
        "second answer", "third question",
    ]  # fmt: skip
    assert (added.added, added.left_out) == (3, 0)
    # Only the client's new, non-system messages are stored afterwards.
    assert [m["content"] for m, _ in added.new] == ["third question"]
    # A short window keeps the newest history that fits and leaves no gap.
    room = history[2].tokens + history[3].tokens
    short = add_history([ask], history, budget=room)
    assert [m["content"] for m in short.messages] == [
        "second question",
        "second answer",
        "third question",
    ]
    assert (short.added, short.left_out) == (2, 2)
    assert add_history([ask], history, budget=0).added == 0


def test_a_long_conversation_id_is_refused() -> None:
    with pytest.raises(GatewayError) as bad:
        parse_chat_request({"model": "auto", "messages": USER, "conversation_id": "c" * 129})
    assert bad.value.param == "conversation_id"


def test_strategies_ship_for_every_role_and_a_users_file_goes_over_them(tmp_path: Path) -> None:
    from crewchief.gateway.engineer import load_strategies
    from crewchief.gateway.roles import ROLES

    shipped = load_strategies()
    assert set(ROLES) <= set(shipped.roles)
    assert "trade-offs" in shipped.prompt("architect")
    mine = tmp_path / "strategies.yaml"
    mine.write_text("version: 7\nroles:\n  review:\n    focus: security findings only\n")
    merged = load_strategies(mine)
    assert "security findings only" in merged.prompt("review")
    assert "severity" in merged.prompt("review")  # what the file left alone stays
    assert merged.version != shipped.version  # cached rewrites of the old ones are not reused


@pytest.mark.parametrize(
    ("last", "reason"),
    [
        ({"role": "assistant", "content": "x" * 60}, "assistant message"),
        ({"role": "user", "content": "thanks"}, "short"),
        ({"role": "user", "content": "## Plan\n" + "x" * 60}, "structured"),
        ({"role": "user", "content": '{"task": "' + "x" * 60 + '"}'}, "structured"),
        ({"role": "user", "content": [{"type": "text", "text": "x" * 60}]}, "parts"),
        ({"role": "user", "content": "Please explain how the scheduler picks the next job"}, None),
    ],
)
def test_which_messages_the_engineer_leaves_alone(last: dict, reason: str | None) -> None:
    from crewchief.gateway.engineer import skip_reason

    found = skip_reason([last])
    assert (found is None) if reason is None else (reason in (found or "")), found


async def test_auto_takes_the_simplicity_tiers_effort_to_reasoning_models(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from crewchief.gateway.roles import RoleChoice
    from crewchief.gateway.service import Gateway

    monkeypatch.setenv("CREWCHIEF_ALLOW_MODEL_REQUESTS", "1")  # routes only: nothing is sent
    settings = make_settings(
        tmp_path,
        models={"delegate": {"model": "openai:gpt-5-mini", "fallbacks": ["openai:gpt-4.1"]}},
    )

    async def record(_: object) -> None:
        return None

    gateway = Gateway(settings, upstream=None, record=record)  # type: ignore[arg-type]

    async def body_for(model: str, text: str, **extra: object) -> tuple[list[dict], object]:
        chat = parse_chat_request(
            {"model": model, "messages": [{"role": "user", "content": text}], **extra}
        )
        trace = await gateway.trace(chat, RoleChoice("general", "inferred"))
        await gateway.choose_tier(chat, trace)
        return [
            json.loads(gateway._body(chat, trace, t, stream=False)) for t in trace.route.targets
        ], trace

    simple, trace = await body_for("auto", "What is 2 + 2?")
    assert trace.tier["tier"] == "fast" and simple[0]["reasoning_effort"] == "low"
    assert "reasoning_effort" not in simple[1]  # gpt-4.1 takes none
    hard = (
        "Design a distributed rate limiter across regions with consistent quotas, analyse the"
        " failure modes, compare token bucket and sliding window, and plan the migration"
    )
    deep, trace = await body_for("auto", hard)
    assert trace.tier["tier"] in ("balanced", "deep")
    assert deep[0]["reasoning_effort"] in ("medium", "high")
    kept, _ = await body_for("auto", "What is 2 + 2?", reasoning_effort="high")
    assert kept[0]["reasoning_effort"] == "high"  # the request's own setting stays
    named, trace = await body_for("crewchief/general", "What is 2 + 2?")
    assert trace.tier is None and "reasoning_effort" not in named[0]


def test_history_never_starts_with_a_tool_result_whose_call_did_not_fit() -> None:
    from crewchief.db.conversations import StoredMessage
    from crewchief.gateway.context import add_history

    calls = [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    history = [
        StoredMessage({"role": "assistant", "content": None, "tool_calls": calls}, "d1", 500),
        StoredMessage({"role": "tool", "tool_call_id": "c1", "content": "out"}, "d2", 10),
        StoredMessage({"role": "assistant", "content": "ok"}, "d3", 10),
    ]
    added = add_history([{"role": "user", "content": "next"}], history, budget=100)
    # The call (500 tokens) does not fit: its result is not added alone.
    assert [m.get("content") for m in added.messages] == ["ok", "next"]
    assert added.added == 1 and added.left_out == 2
