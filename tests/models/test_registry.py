"""The alias layer: fallbacks, usage records, time bounds, provider mapping, the request guard."""

from __future__ import annotations

import asyncio

import pytest
from langchain_core.messages import HumanMessage

from crewchief.config import AliasConfig, ProviderConfig, load_settings
from crewchief.errors import ModelCallError, ModelConfigError, ModelRequestsBlocked
from crewchief.models import CallInfo, FakeChatModel, FakeScript, ModelRegistry, normalize_effort
from crewchief.models.providers import build_chat_model
from tests.conftest import make_settings


@pytest.mark.parametrize(
    ("word", "level"),
    [
        ("minimal", "low"),
        ("quick", "low"),
        ("low", "low"),
        ("high", "high"),
        ("thorough", "high"),
        ("deep", "high"),
        ("medium", "medium"),
        (None, "medium"),
        ("whatever", "medium"),
    ],
)
def test_effort_normalization(word: str | None, level: str) -> None:
    assert normalize_effort(word) == level


async def test_falls_back_in_order_and_records_every_attempt(tmp_path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"rules": [{"reply": {"error": "503 overloaded"}}]}')
    settings = make_settings(tmp_path)
    registry = ModelRegistry(
        settings, {"orchestrator": AliasConfig(model=f"fake:{broken}", fallbacks=["fake:default"])}
    )
    records = []

    async def on_usage(record):
        records.append(record)

    reply = await registry.call(
        "orchestrator",
        [HumanMessage("hi")],
        effort="deep",
        info=CallInfo("fast_path", "op"),
        on_usage=on_usage,
    )
    assert reply.model == "fake:default"
    assert [(r.model, r.effort, r.error) for r in records] == [
        (f"fake:{broken}", "high", "RuntimeError: 503 overloaded"),
        ("fake:default", "high", None),
    ]
    assert records[1].usage.input > 0


async def test_all_candidates_failing_names_each_error(tmp_path) -> None:
    model = FakeChatModel(script=FakeScript(rules=[{"reply": {"error": "bad key"}}]))
    registry = ModelRegistry(make_settings(tmp_path), {"delegate": model})
    with pytest.raises(
        ModelCallError,
        match="every model for alias 'delegate' failed: fake:default: RuntimeError: bad key",
    ):
        await registry.call(
            "delegate", [HumanMessage("x")], effort=None, info=CallInfo("execute_task")
        )


# A hang guard, not a speed target: the call below times out after its 0.2 s model_timeout.
# Should that bound not work, the test fails here instead of waiting out the 10 s reply.
TIMEOUT_HANG_GUARD_S = 5


async def test_calls_are_bounded_in_time(tmp_path) -> None:
    model = FakeChatModel(script=FakeScript(rules=[{"reply": {"text": "late", "delay": 10}}]))
    settings = make_settings(tmp_path, model_timeout=0.2)
    registry = ModelRegistry(settings, {"fast": model})
    with pytest.raises(ModelCallError, match=r"timed out after 0.2s"):
        await asyncio.wait_for(
            registry.call("fast", [HumanMessage("x")], effort=None, info=CallInfo("n")),
            TIMEOUT_HANG_GUARD_S,
        )


async def test_token_deltas_reach_the_callback(tmp_path) -> None:
    registry = ModelRegistry(make_settings(tmp_path))
    pieces = []

    async def on_delta(info, text):
        pieces.append(text)

    reply = await registry.call(
        "fast",
        [HumanMessage("What is up?")],
        effort=None,
        info=CallInfo("fast_path"),
        on_delta=on_delta,
    )
    assert "".join(pieces) == reply.text == "Answer to: What is up?"


def test_real_providers_are_blocked_in_tests(tmp_path) -> None:
    settings = make_settings(tmp_path)
    with pytest.raises(ModelRequestsBlocked, match="CREWCHIEF_ALLOW_MODEL_REQUESTS=0"):
        build_chat_model("openai:gpt-5", "high", settings)


def test_unknown_provider_and_bad_spec(tmp_path) -> None:
    settings = load_settings(env={"CREWCHIEF_ORCHESTRATOR_MODEL": "acme:m1"}, home=str(tmp_path))
    with pytest.raises(ModelConfigError, match="models.orchestrator: unknown provider 'acme'"):
        ModelRegistry(settings).check()


def test_provider_adapters_map_effort(monkeypatch, tmp_path) -> None:
    """Building (not calling) each adapter shows where the effort knob lands."""
    monkeypatch.setenv("CREWCHIEF_ALLOW_MODEL_REQUESTS", "1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "demo-project")
    settings = load_settings(
        env={},
        home=str(tmp_path),
        providers={
            "vllm": ProviderConfig(type="openai", base_url="http://127.0.0.1:9/v1"),
        },
    )
    gpt5 = build_chat_model("openai:gpt-5", "high", settings)
    assert gpt5.reasoning_effort == "high"
    assert build_chat_model("openai:gpt-4.1-mini", "high", settings).reasoning_effort is None
    local = build_chat_model("vllm:qwen2.5-coder", "low", settings)
    assert str(local.openai_api_base) == "http://127.0.0.1:9/v1"
    assert build_chat_model("ollama:qwen3:8b", "low", settings).reasoning is False
    assert build_chat_model("ollama:gpt-oss:20b", "high", settings).reasoning == "high"
    gemini = build_chat_model("google:gemini-2.5-flash", "low", settings)
    assert gemini.thinking_budget == 512
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(ModelConfigError, match=r"needs an API key in \$OPENAI_API_KEY"):
        build_chat_model("openai:gpt-5", "high", settings)


def test_structured_output_is_requested_in_each_providers_own_way() -> None:
    from langchain_ollama import ChatOllama
    from langchain_openai import ChatOpenAI

    from crewchief.models._calls import request_options as _request_options
    from crewchief.nodes._plan_parsing import PLAN_SCHEMA

    openai = ChatOpenAI(model="m", api_key="k", base_url="http://127.0.0.1:9/v1")
    _, kwargs = _request_options(openai, None, PLAN_SCHEMA)
    fmt = kwargs["extra_body"]["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["schema"] is PLAN_SCHEMA
    # Sent as a plain request field, so the reply streams like any other.
    payload = openai._get_request_payload([HumanMessage("plan")], **kwargs)
    assert "response_format" not in payload and payload["extra_body"]["response_format"] == fmt

    ollama = ChatOllama(model="qwen2.5-coder:1.5b")
    _, kwargs = _request_options(ollama, None, PLAN_SCHEMA)
    assert ollama._chat_params([HumanMessage("plan")], **kwargs)["format"] == PLAN_SCHEMA

    fake = FakeChatModel()
    runnable, kwargs = _request_options(fake, [], PLAN_SCHEMA)
    assert runnable is fake and kwargs == {}


def test_every_built_model_has_an_output_bound(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("CREWCHIEF_ALLOW_MODEL_REQUESTS", "1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    settings = make_settings(tmp_path, max_output_tokens=777)
    assert build_chat_model("openai:gpt-4.1-mini", "medium", settings).max_tokens == 777
    local = build_chat_model("local:qwen2.5-coder-0.5b", "medium", settings)
    assert (local.max_tokens, local.temperature, local.local) == (777, 0.2, settings.local)
    capped = AliasConfig(model="openai:gpt-4.1-mini", max_tokens=50)
    assert build_chat_model(capped.model, "medium", settings, capped).max_tokens == 50
