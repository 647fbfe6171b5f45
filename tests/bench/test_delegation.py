"""``python -m bench.delegation``: a recorded operation priced with and without delegation."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from bench import delegation
from crewchief import Crewchief, FakeChatModel, FakeScript
from crewchief.models.pricing import price_table
from tests.conftest import make_settings, plan_reply


def test_costs_split_by_alias_and_the_saving_follows() -> None:
    table = price_table()
    ledger = [
        {"node": "plan", "purpose": None, "alias": "orchestrator", "input": 1000, "output": 100},
        {
            "node": "execute_task",
            "purpose": None,
            "alias": "delegate",
            "input": 9000,
            "output": 900,
        },
    ]
    priced = delegation.price_operation(ledger, table.require("gpt-5"), table.require("gpt-5-mini"))
    orchestrator = (1000 * 1.25 + 100 * 10) / 1e6
    delegate = (9000 * 0.25 + 900 * 2) / 1e6
    everything = (10000 * 1.25 + 1000 * 10) / 1e6
    assert priced["delegated_usd"] == pytest.approx(orchestrator + delegate)
    assert priced["orchestrator_usd"] == pytest.approx(everything)
    assert priced["saving"] == pytest.approx(100 * (1 - (orchestrator + delegate) / everything))


def test_the_shipped_recording_prints_a_table(capsys: pytest.CaptureFixture) -> None:
    code = delegation.main([])
    out = capsys.readouterr().out
    assert "saving with delegation" in out and "total" in out
    code_json = delegation.main(["--json"])
    result = json.loads(capsys.readouterr().out)
    recording = json.loads(delegation.RECORDING.read_text())
    table = price_table()
    expected = delegation.price_operation(
        recording["ledger"], table.require("gpt-5"), table.require("gpt-5-mini")
    )
    assert result["saving"] == pytest.approx(expected["saving"])
    assert {r["alias"] for r in result["rows"]} == {"orchestrator", "delegate"}
    assert code == code_json == (0 if result["saving"] >= delegation.TARGET else 1)


async def test_an_operation_from_the_database_exports_and_prices(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    home = tmp_path / "home"
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "a.py").write_text("x = 1\n")
    script = FakeScript(
        rules=[
            {
                "node": "plan",
                "alias": "orchestrator",
                "replies": [
                    {"tool_calls": [{"name": "get_file_summary", "args": {"path": "a.py"}}]},
                    {**plan_reply("Edit a.py"), "usage": {"input": 500, "output": 100}},
                ],
            },
            {
                "node": "plan",
                "alias": "delegate",
                "reply": {"text": "a.py sets x", "usage": {"input": 3000, "output": 50}},
            },
            {
                "node": "execute_task",
                "reply": {"text": "done", "usage": {"input": 4000, "output": 400}},
            },
            {"node": "synthesize", "reply": {"text": "ok", "usage": {"input": 300, "output": 60}}},
        ]
    )
    model = FakeChatModel(script=script)
    settings = make_settings(home)
    async with Crewchief(settings, models={"orchestrator": model, "delegate": model}) as cc:
        result = await cc.run("Edit a.py", workspace=tmp_path / "ws", route="plan")
    monkeypatch.setenv("CREWCHIEF_HOME", str(home))
    monkeypatch.chdir(tmp_path)
    exported = tmp_path / "op.json"
    args = ["--operation", result.id, "--export", str(exported), "--json"]
    code = await asyncio.to_thread(delegation.main, args)
    printed = json.loads(capsys.readouterr().out)
    recorded = json.loads(exported.read_text())
    assert recorded["operation"] == result.id and recorded["tasks"] == 1
    purposes = {(r["node"], r["alias"], r["purpose"]) for r in recorded["ledger"]}
    assert ("plan", "delegate", "meta:get_file_summary") in purposes
    assert printed["orchestrator_usd"] > printed["delegated_usd"] > 0
    # The fake models are unpriced: the ledger charged 0, which says nothing of a saving.
    assert printed["ledger_usd"] == 0 and printed["ledger_saving"] is None
    assert printed["unpriced_calls"] == sum(r["calls"] for r in recorded["ledger"])
    assert code == (0 if printed["saving"] >= 60 else 1)


def test_live_replays_the_recording_and_the_ledger_charges_the_table_price(
    capsys: pytest.CaptureFixture,
) -> None:
    code = delegation.main(["--live", "--json"])
    result = json.loads(capsys.readouterr().out)
    recording = json.loads(delegation.RECORDING.read_text())
    # Each alias spent exactly its recorded tokens, in a run of its own.
    for alias in ("orchestrator", "delegate"):
        for field in ("input", "output"):
            live = sum(r[field] for r in result["rows"] if r["alias"] == alias)
            assert live == sum(r[field] for r in recording["ledger"] if r["alias"] == alias)
    calls = {r["node"]: r["calls"] for r in result["rows"]}
    assert calls == {"plan": 1, "execute_task": recording["tasks"], "synthesize": 1}
    # What crewchief charged, call by call, is the table's price of the delegated run.
    assert result["unpriced_calls"] == 0 and result["ledger_usd"] > 0
    assert result["ledger_usd"] == pytest.approx(result["delegated_usd"], rel=1e-6)
    assert result["ledger_saving"] == pytest.approx(result["saving"], abs=1e-3)
    assert code == (0 if result["saving"] >= delegation.TARGET else 1)
    delegation.main(["--live"])
    out = capsys.readouterr().out
    assert "the ledger's own cost" in out and "ledger $" in out
