"""Feedback in the library: ``Crewchief.feedback``, ``feedback_summary`` and
``export_preferences``, with runs of the scripted fake model."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from crewchief.client.facade import Crewchief
from crewchief.client.redact import default_redactor
from crewchief.config import Settings
from crewchief.errors import InvalidRequest, OperationNotFound, TaskNotFound
from tests.conftest import plan_reply, write_script

HANG_GUARD_S = 20
INSTRUCTION = "Count only the public functions"


def rerun_script(tmp_path: Path) -> str:
    """One task, answered v1, then v2 when the rerun's instructions are in its prompt."""
    return write_script(
        tmp_path,
        [
            {"node": "plan", "reply": plan_reply("Count the functions")},
            {"node": "execute_task", "match": INSTRUCTION, "reply": "12 public functions"},
            {"node": "execute_task", "reply": "40 functions"},
            {"node": "synthesize", "replies": ["There are 40.", "There are 12 public ones."]},
            {"node": "fast_path", "reply": "Mail ann@example.com or call +44 20 7946 0958"},
        ],
    )


def chief(settings: Settings, spec: str) -> Crewchief:
    return Crewchief(settings, models={"orchestrator": spec, "delegate": spec})


async def wait(handle) -> object:
    return await asyncio.wait_for(handle.wait(), timeout=HANG_GUARD_S)


async def test_a_rerun_yields_a_pair_and_ratings_can_flip_it(
    backend_settings: Settings, tmp_path: Path
) -> None:
    async with chief(backend_settings, rerun_script(tmp_path)) as cc:
        first = await cc.run("How many functions are there?", route="plan")
        assert first.status == "completed" and first.tasks[0].result == "40 functions"
        assert await cc.export_preferences() == []  # nothing to compare yet
        rerun = await wait(await cc.rerun_task(first.id, 1, instructions=INSTRUCTION))
        assert rerun.status == "completed" and rerun.tasks[0].result == "12 public functions"

        [pair] = await cc.export_preferences()
        assert pair["source"] == "task_rerun"
        assert (pair["chosen"], pair["rejected"]) == ("12 public functions", "40 functions")
        [message] = pair["prompt"]
        assert message["role"] == "user"
        assert "How many functions are there?" in message["content"]
        assert "Count the functions" in message["content"]
        assert INSTRUCTION in message["content"]  # the kept version's prompt
        assert pair["meta"] == {
            "operation_id": first.id, "task": 1, "chosen_version": 2, "rejected_version": 1,
            "decided_by": "rerun", "prompt_changed": True,
        }  # fmt: skip

        # The owner liked the first version better: the pair turns round.
        await cc.feedback(operation_id=first.id, task=1, version=1, stars=5)
        await cc.feedback(operation_id=first.id, task=1, thumb="down")  # the current: v2
        [pair] = await cc.export_preferences()
        assert (pair["chosen"], pair["rejected"]) == ("40 functions", "12 public functions")
        assert pair["meta"]["decided_by"] == "rating"
        assert (pair["meta"]["chosen_version"], pair["meta"]["rejected_version"]) == (1, 2)


async def test_corrections_round_trip_to_redacted_jsonl(
    backend_settings: Settings, tmp_path: Path
) -> None:
    async with chief(backend_settings, rerun_script(tmp_path)) as cc:
        fast = await cc.run("Who do I contact?", route="fast")
        planned = await cc.run("How many functions are there?", route="plan")
        await cc.feedback(
            operation_id=fast.id, thumb="down",
            correction="Write to support@example.com, key sk-abcdefghijklmnopqrstuvwxyz",
        )  # fmt: skip
        await cc.feedback(operation_id=planned.id, task=1, stars=2, correction="41 functions")
        await cc.feedback(operation_id=planned.id, stars=4)  # no correction: no pair

        pairs = await cc.export_preferences()  # the feedback_redact setting: default
        lines = "".join(json.dumps(p) + "\n" for p in pairs).splitlines()
        parsed = [json.loads(line) for line in lines]
        assert [p["source"] for p in parsed] == ["correction", "correction"]
        for p in parsed:
            assert set(p) == {"prompt", "chosen", "rejected", "source", "meta"}
            assert isinstance(p["prompt"], list) and p["prompt"][0]["role"] == "user"
        by_target = {p["meta"]["target"]: p for p in parsed}
        op_pair = by_target["operation"]
        assert op_pair["prompt"] == [{"role": "user", "content": "Who do I contact?"}]
        assert op_pair["chosen"] == "Write to [email], key [secret]"
        assert op_pair["rejected"] == "Mail [email] or call [phone]"
        assert op_pair["meta"]["operation_id"] == fast.id
        task_pair = by_target["task"]
        assert (task_pair["chosen"], task_pair["rejected"]) == ("41 functions", "40 functions")
        assert task_pair["meta"]["task_version"] == 1

        plain = await cc.export_preferences(redact="off")
        assert "support@example.com" in plain[0]["chosen"]
        shouted = await cc.export_preferences(redact=str.upper)
        assert shouted[0]["prompt"][0]["content"] == "WHO DO I CONTACT?"
        with pytest.raises(InvalidRequest, match="redact: cannot load 'no_such_module:f'"):
            await cc.export_preferences(redact="no_such_module:f")


async def test_ratings_are_checked_and_replaced(backend_settings: Settings, tmp_path: Path) -> None:
    async with chief(backend_settings, rerun_script(tmp_path)) as cc:
        op = (await cc.run("Who do I contact?", route="fast")).id
        first = await cc.feedback(operation_id=op, thumb="up", comment="spot on")
        assert (first.replaced, first.score, first.route, first.owner) == (False, 1.0, "fast", None)
        again = await cc.feedback(operation_id=op, stars=2)
        assert (again.replaced, again.id, again.score, again.comment) == (
            True,
            first.id,
            0.25,
            None,
        )
        assert [r.stars for r in await cc.list_feedback()] == [2]
        report = await cc.feedback_summary(by="route", since="1h")
        assert [(r.group, r.count, r.mean_score) for r in report.rows] == [("fast", 1, 0.25)]
        assert report.simplicity.by_path.fast.count == 1 and report.simplicity.n == 1
        for bad, field in (
            ({}, "thumb"),
            ({"thumb": "up", "stars": 3}, "thumb"),
            ({"stars": 6}, "stars"),
            ({"thumb": "up", "correction": "   "}, "correction"),
            ({"thumb": "up", "comment": "x" * 2001}, "comment"),
        ):
            with pytest.raises(InvalidRequest, match=f"^{field}: "):
                await cc.feedback(operation_id=op, **bad)
        with pytest.raises(OperationNotFound):
            await cc.feedback(operation_id=op, thumb="up", owner="bob")  # not bob's
        with pytest.raises(TaskNotFound):
            await cc.feedback(operation_id=op, task=3, thumb="up")
        with pytest.raises(InvalidRequest, match="^by: unknown grouping 'week'"):
            await cc.feedback_summary(by="week")


def test_the_default_redactor_masks_contacts_and_secrets_only() -> None:
    text = (
        "ann.lee@example.co.uk, +1 415 555 0123, (415) 555-0123, sk-proj-abcdefghijklmnop1234,"
        " ghp_abcdefghijklmnopqrstuvwxyz0123 and Bearer abcdefghijklmnopqrstu;"
        " kept: 2026-03-01, v1.2.3, 10.0.0.12, port 8000, line 1234"
    )
    assert default_redactor(text) == (
        "[email], [phone], [phone], [secret], [secret] and Bearer [secret];"
        " kept: 2026-03-01, v1.2.3, 10.0.0.12, port 8000, line 1234"
    )
