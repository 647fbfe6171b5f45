"""Operations held to their payer's budgets, call by call: a run that starts with room
still stops at the first call that would pass the limit, the planner's meta-tools are
held too, a downgrading budget runs the call on the cheaper model, and crossing 80 % of a
budget is an event of the operation.

The scripted fake model is priced through ``[prices]`` (its full spec): input free,
output $1000 per million tokens, calls bounded to 100 output tokens, so a call reserves
$0.10 and costs what its scripted usage says.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from crewchief import Crewchief
from crewchief.errors import BudgetExceeded
from tests.conftest import make_settings, plan_reply, write_script

PRICE = {"input": 0.0, "output": 1000.0}


def settings_for(tmp_path: Path, specs: dict[str, str], priced: list[str], **extra: Any) -> Any:
    home = tmp_path / "home"
    settings = make_settings(
        home, max_output_tokens=100, prices={spec: PRICE for spec in priced}, **extra
    )
    models = {a: c.model_copy(update={"model": specs.get(a, "fake:default")})
              for a, c in settings.models.items()}  # fmt: skip
    return settings.model_copy(update={"models": models})


def close(a: float, b: float) -> bool:
    # Not pytest.approx: it looks numpy up, which a background thread may be importing.
    return abs(a - b) < 1e-9


async def test_a_run_stops_at_the_first_call_past_its_budget(tmp_path: Path) -> None:
    fast = write_script(
        tmp_path,
        [{"node": "fast_path", "reply": {"text": "hi", "usage": {"input": 5, "output": 5}}}],
    )
    settings = settings_for(tmp_path, {"orchestrator": fast, "fast": fast}, [fast])
    async with Crewchief(settings) as chief:
        await chief.set_budget("owner", "alice", daily_usd=0.05)
        # Nothing is spent yet, so the operation starts; its one call would reserve $0.10.
        done = await chief.run("say hi", route="fast", owner="alice")
        assert done.status == "failed" and "budget exceeded" in (done.error or "")
        assert "$0.05" in done.error
        # Once spent, a new operation is refused before it starts.
        await chief.set_budget("owner", "alice", daily_usd=0.2)
        assert (await chief.run("say hi", route="fast", owner="alice")).status == "completed"
        await chief.set_budget("owner", "alice", daily_usd=0.005)
        with pytest.raises(BudgetExceeded) as refused:
            await chief.start("say hi again", route="fast", owner="alice")
        assert close(refused.value.facts()["spent_usd"], 0.005)
        # Another owner is not limited by Alice's budget.
        assert (await chief.run("say hi", route="fast", owner="bob")).status == "completed"


async def test_the_planners_meta_tools_are_held_to_the_budget(tmp_path: Path) -> None:
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "config.py").write_text("TIMEOUT = 30\n")
    read = {"name": "read_project_file", "args": {"path": "config.py", "question": "Timeout?"}}
    planner = write_script(
        tmp_path,
        [{"node": "plan", "alias": "orchestrator", "replies": [{"tool_calls": [read]},
                                                                plan_reply("Edit config.py")]}],
    )  # fmt: skip
    delegate = write_script(tmp_path, [{"node": "plan", "reply": "TIMEOUT is 30."}])
    settings = settings_for(tmp_path, {"orchestrator": planner, "delegate": delegate}, [delegate])
    async with Crewchief(settings) as chief:
        await chief.set_budget("owner", "alice", daily_usd=0.05)
        done = await chief.run(
            "Make the timeout configurable", route="plan", owner="alice", workspace=tmp_path / "ws"
        )
        assert done.status == "failed" and "budget exceeded" in (done.error or "")
        usage = await chief.usage(owner="alice", group_by="alias")
        assert usage.totals.cost_usd == 0.0  # the planner is unpriced; the delegate never ran


async def test_a_downgrading_budget_runs_the_call_on_the_cheaper_model(tmp_path: Path) -> None:
    fast = write_script(tmp_path, [{"node": "fast_path", "reply": "dear answer"}])
    cheap = write_script(tmp_path, [{"node": "fast_path", "reply": "cheap answer"}])
    settings = settings_for(
        tmp_path, {"fast": fast, "orchestrator": fast}, [fast], budgets={"downgrade_model": cheap}
    )
    async with Crewchief(settings) as chief:
        await chief.set_budget("owner", "alice", daily_usd=0.0, on_exceed="downgrade")
        result = await chief.run("say hi", route="fast", owner="alice")
        assert result.status == "completed" and result.answer == "cheap answer"
        op = await chief.get(result.id, events=True)
        (event,) = [e for e in op.events if e.type == "budget.downgraded"]
        assert event.payload["from"] == fast and event.payload["to"] == cheap


async def test_crossing_eighty_percent_is_an_event_of_the_operation(tmp_path: Path) -> None:
    fast = write_script(tmp_path, [{"node": "fast_path",
                                    "reply": {"text": "hi", "usage": {"input": 5, "output": 90}}}])  # fmt: skip
    settings = settings_for(tmp_path, {"fast": fast, "orchestrator": fast}, [fast])
    async with Crewchief(settings) as chief:
        await chief.set_budget("owner", "alice", daily_usd=0.1)
        result = await chief.run("say hi", route="fast", owner="alice")
        assert result.status == "completed"
        op = await chief.get(result.id, events=True)
        (warning,) = [e for e in op.events if e.type == "budget.warning"]
        assert warning.payload["kind"] == "warning" and warning.payload["limit_usd"] == 0.1
        assert close(warning.payload["spent_usd"], 0.09)
        report = await chief.budgets(owner="alice")
        (day,) = [c for c in report["counters"] if c["period"] == "day"]
        assert close(day["spent_usd"], 0.09) and day["held_usd"] == 0
