"""The graph routes with the simplicity detector and records score, route, tier, reasons, forced."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from crewchief import Crewchief, FakeChatModel, FakeScript
from crewchief.config import Settings
from tests.conftest import make_settings


def _decided(result) -> dict:
    (event,) = [e for e in result.events if e.type == "route.decided"]
    return event.payload


async def test_every_operation_records_score_route_tier_reasons_and_forced(
    backend_settings: Settings,
) -> None:
    async with Crewchief(backend_settings) as cc:
        simple = await cc.run("What is the difference between a process and a thread?")
        work = await cc.run("Refactor the billing module and add tests for every endpoint")
        forced = await cc.run("What is a monad?", route="plan")
        stored = [await cc.get(r.id, events=True) for r in (simple, work, forced)]
    simple, work, forced = stored

    assert simple.route == "fast" and simple.simplicity.tier == "fast"
    assert simple.simplicity.score >= 0.7 and not simple.route_forced
    assert work.route == "plan" and work.simplicity.tier == "deep"
    assert work.simplicity.score < 0.3 and not work.route_forced
    assert any("→ plan" in r for r in work.simplicity.reasons)
    assert any("→ fast" in r for r in simple.simplicity.reasons)

    # Forcing keeps the detector's score and reasons, and says it was forced.
    assert forced.route == "plan" and forced.route_forced
    assert forced.simplicity.score >= 0.7 and forced.simplicity.tier == "balanced"
    assert forced.simplicity.reasons

    for op in stored:
        payload = _decided(op)
        assert payload == {
            "route": op.route,
            "score": op.simplicity.score,
            "tier": op.simplicity.tier,
            "reasons": op.simplicity.reasons,
            "forced": op.route_forced,
        }


async def test_forcing_the_fast_path_on_a_complex_request(settings: Settings) -> None:
    async with Crewchief(settings) as cc:
        result = await cc.run("Migrate every service from Flask to FastAPI", route="fast")
        stored = await cc.get(result.id, events=True)
    assert stored.route == "fast" and stored.route_forced
    assert stored.simplicity.tier == "fast" and stored.simplicity.score < 0.3
    assert stored.tasks == [] and stored.status == "completed"


async def test_tiers_choose_alias_and_effort(tmp_path: Path) -> None:
    tiers = {
        "fast": {"alias": "fast", "effort": "minimal"},
        "balanced": {"alias": "orchestrator", "effort": "medium"},
        "deep": {"effort": "thorough"},  # alias stays the default, orchestrator
    }
    settings = make_settings(tmp_path / "home", tiers=tiers)
    fast, orchestrator, delegate = FakeChatModel(), FakeChatModel(), FakeChatModel()
    models = {"fast": fast, "orchestrator": orchestrator, "delegate": delegate}
    async with Crewchief(settings, models=models) as cc:
        await cc.run("hi there")  # fast tier
        await cc.run("What is a monad?", route="plan")  # forced plan on a simple request: balanced
        await cc.run("Rewrite the payment service in Go, then migrate all the tests")  # deep

    assert [(c["node"], c["effort"]) for c in fast.calls] == [("fast_path", "low")]
    assert [(c["node"], c["effort"]) for c in orchestrator.calls if c["node"] == "plan"] == [
        ("plan", "medium"),
        ("plan", "high"),
    ]
    assert not [c for c in delegate.calls if c["node"] in ("plan", "fast_path")]


async def test_threshold_comes_from_settings(tmp_path: Path) -> None:
    request = "Add rate limiting to the public API"
    lenient = make_settings(tmp_path / "a", simplicity_threshold=0.0)
    strict = make_settings(tmp_path / "b", simplicity_threshold=1.0)
    async with Crewchief(lenient) as cc:
        assert (await cc.run(request)).route == "fast"
    async with Crewchief(strict) as cc:
        assert (await cc.run("What does HTTP 418 mean?")).route == "plan"


async def test_fast_path_fallback_plans_with_the_balanced_tier(settings: Settings) -> None:
    model = FakeChatModel(
        script=FakeScript(rules=[{"node": "fast_path", "reply": {"error": "provider is down"}}])
    )
    async with Crewchief(settings, models={"orchestrator": model, "delegate": model}) as cc:
        result = await cc.run("What is a monad?")
        stored = await cc.get(result.id)
    assert result.status == "completed"
    assert stored.route == "plan" and stored.simplicity.tier == "balanced"
    assert ("plan", "medium") in [(c["node"], c["effort"]) for c in model.calls]


@pytest.mark.parametrize(
    ("tiers", "message"),
    [
        ({"turbo": {}}, "unknown tier(s) ['turbo']"),
        ({"deep": {"alias": "planner"}}, "tiers.deep.alias"),
    ],
)
def test_bad_tier_config_is_named(tmp_path: Path, tiers: dict, message: str) -> None:
    from crewchief.errors import ConfigError

    with pytest.raises(ConfigError, match=re.escape(message)):
        make_settings(tmp_path, tiers=tiers)
