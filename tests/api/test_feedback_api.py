"""Feedback over REST: rating operations and tasks, replacing a rating, refusals, the
satisfaction summary with its simplicity block, and the DPO export."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from tests.conftest import plan_reply, write_script

SIMPLE = "what is 2+2?"
COMPLEX = (
    "Refactor the authentication module across all services, migrate the database schema,"
    " and add integration tests for every endpoint"
)
TERMINAL = ("completed", "failed", "cancelled", "rejected")


async def run_op(api: Any, request: str, route: str, owner: str = "alice") -> dict[str, Any]:
    """Start an operation and wait for its end (a hang guard fails the test)."""
    r = await api.client.post(
        "/v1/operations", json={"request": request, "route": route}, headers=api.auth(owner)
    )
    assert r.status_code == 202, r.text
    op = r.json()["id"]
    deadline = time.monotonic() + 20
    while True:
        body = (await api.client.get(f"/v1/operations/{op}", headers=api.auth(owner))).json()
        if body["status"] in TERMINAL:
            assert body["status"] == "completed", body["error"]
            return body
        assert time.monotonic() < deadline, f"still {body['status']}"
        await asyncio.sleep(0.02)


async def rate(api: Any, path: str, owner: str = "alice", **body: Any) -> Any:
    return await api.client.post(f"/v1/{path}/feedback", json=body, headers=api.auth(owner))


async def test_rating_an_operation_then_replacing_it(api_factory) -> None:
    async with api_factory() as api:
        op = await run_op(api, SIMPLE, "fast")
        r = await rate(api, f"operations/{op['id']}", thumb="down", correction="4", comment="hm")
        assert r.status_code == 201, r.text
        first = r.json()
        assert first["replaced"] is False and first["id"].startswith("fb_")
        assert (first["target"], first["operation_id"], first["thumb"], first["stars"]) == (
            "operation", op["id"], "down", None,
        )  # fmt: skip
        assert (first["score"], first["correction"], first["comment"]) == (0.0, "4", "hm")
        assert (first["route"], first["model"], first["owner"]) == ("fast", "fake:default", "alice")
        assert first["simplicity_score"] == op["simplicity"]["score"] > 0.9
        assert first["tier"] is None  # keys without a tier

        r = await rate(api, f"operations/{op['id']}", stars=4)
        assert r.status_code == 200, r.text
        second = r.json()
        assert second["replaced"] is True and second["id"] == first["id"]
        assert (second["stars"], second["thumb"], second["score"]) == (4, None, 0.75)
        assert second["correction"] is None  # a rating replaces the whole of the last one
        listed = (await api.client.get("/v1/feedback", headers=api.auth())).json()
        assert [(f["id"], f["stars"]) for f in listed] == [(first["id"], 4)]


async def test_rating_a_task_version(api_factory, tmp_path) -> None:
    script = write_script(
        tmp_path,
        [
            {"node": "plan", "reply": plan_reply("Collect the metrics")},
            {"node": "execute_task", "reply": "metrics"},
        ],
    )
    async with api_factory(models=script) as api:
        op = await run_op(api, COMPLEX, "plan")
        r = await rate(api, f"operations/{op['id']}/tasks/1", thumb="up")
        assert r.status_code == 201, r.text
        task = r.json()
        assert (task["target"], task["task"], task["task_version"]) == ("task", 1, 1)
        assert (task["route"], task["model"], task["skill"]) == ("plan", script, None)
        r = await rate(api, f"operations/{op['id']}/tasks/1", thumb="up", version=2)
        assert r.status_code == 404 and r.json()["error"]["code"] == "task_not_found"


async def test_bad_ratings_are_refused_naming_the_field(api_factory) -> None:
    async with api_factory() as api:
        op = (await run_op(api, SIMPLE, "fast"))["id"]
        for body, path in (
            ({}, "body.thumb"),
            ({"thumb": "up", "stars": 3}, "body.thumb"),
            ({"stars": 7}, "body.stars"),
            ({"thumb": "sideways"}, "body.thumb"),
            ({"thumb": "up", "correction": ""}, "body.correction"),
            ({"thumb": "up", "correction": "x" * 20_001}, "body.correction"),
            ({"thumb": "up", "version": 2}, "body.version"),
        ):
            r = await rate(api, f"operations/{op}", **body)
            assert r.status_code == 422, (body, r.text)
            error = r.json()["error"]
            assert error["code"] == "invalid_request"
            assert error["message"].startswith(path + ":"), (body, error)
        for query, path in (("by=week", "query.by"), ("since=yesterday", "query.since")):
            r = await api.client.get(f"/v1/feedback/summary?{query}", headers=api.auth())
            assert r.status_code == 422 and r.json()["error"]["message"].startswith(path), r.text
        assert (await api.client.get("/v1/feedback", headers=api.auth())).json() == []


async def test_another_owners_targets_are_not_found(api_factory) -> None:
    async with api_factory() as api:
        op = (await run_op(api, SIMPLE, "fast"))["id"]
        r = await rate(api, f"operations/{op}", owner="bob", thumb="up")
        assert r.status_code == 404 and r.json()["error"]["code"] == "operation_not_found"
        r = await rate(api, f"operations/{op}/tasks/1", owner="bob", thumb="up")
        assert r.status_code == 404 and r.json()["error"]["code"] == "operation_not_found"
        r = await rate(api, "responses/resp_000000000000000000000000", thumb="up")
        assert r.status_code == 404 and r.json()["error"]["code"] == "response_not_found"
        assert (await rate(api, f"operations/{op}", thumb="up")).status_code == 201
        assert (await api.client.get("/v1/feedback", headers=api.auth("bob"))).json() == []
        summary = (await api.client.get("/v1/feedback/summary", headers=api.auth("bob"))).json()
        assert summary["totals"]["count"] == 0


async def test_summary_numbers_and_the_simplicity_block(api_factory) -> None:
    async with api_factory() as api:
        # alice: fast-path answers rated worse than planned ones; bob: the other way round.
        for owner, fast, planned in (
            ("alice", ["down", "down"], ["up"]),
            ("bob", ["up"], ["down"]),
        ):
            for thumb in fast:
                op = (await run_op(api, SIMPLE, "fast", owner))["id"]
                assert (await rate(api, f"operations/{op}", owner, thumb=thumb)).status_code == 201
            for thumb in planned:
                op = (await run_op(api, COMPLEX, "plan", owner))["id"]
                assert (await rate(api, f"operations/{op}", owner, thumb=thumb)).status_code == 201
        op = (await run_op(api, COMPLEX, "plan"))["id"]
        await rate(api, f"operations/{op}", stars=3, correction="do less")

        r = await api.client.get("/v1/feedback/summary?by=route&since=1h", headers=api.auth())
        assert r.status_code == 200, r.text
        alice = r.json()
        # scores 0, 0, 1, 0.5: mean 0.375; positive only the thumbs up
        assert alice["totals"] == {
            "count": 4, "mean_score": 0.375, "positive_share": 0.25, "corrections": 1,
        }  # fmt: skip
        rows = {row["group"]: row for row in alice["rows"]}
        assert rows["fast"] == {
            "group": "fast", "count": 2, "mean_score": 0.0, "positive_share": 0.0,
            "corrections": 0,
        }  # fmt: skip
        assert (rows["plan"]["count"], rows["plan"]["mean_score"]) == (2, 0.75)
        simplicity = alice["simplicity"]
        assert simplicity["n"] == 4 and simplicity["correlation"] < -0.5  # fast rated worse
        assert simplicity["by_path"]["fast"]["mean_score"] == 0.0
        assert simplicity["by_path"]["planned"]["mean_score"] == 0.75

        bob = (await api.client.get("/v1/feedback/summary", headers=api.auth("bob"))).json()
        assert bob["rows"] == [] and bob["totals"]["count"] == 2
        assert bob["simplicity"]["correlation"] is None  # 2 ratings: too few to tell
        assert bob["simplicity"]["by_path"]["fast"]["mean_score"] == 1.0
        by_kind = (await api.client.get("/v1/feedback/summary?by=kind", headers=api.auth())).json()
        assert [(row["group"], row["count"]) for row in by_kind["rows"]] == [("operation", 4)]


async def test_export_is_jsonl_of_the_owners_pairs(api_factory, tmp_path) -> None:
    script = write_script(tmp_path, [{"node": "fast_path", "reply": "Call 415-555-0123"}])
    async with api_factory(models=script) as api:
        op = (await run_op(api, "who do I call?", "fast"))["id"]
        await rate(api, f"operations/{op}", thumb="down", correction="Mail bob@example.org")
        r = await api.client.get("/v1/feedback/export?format=dpo", headers=api.auth())
        assert r.status_code == 200 and r.headers["content-type"] == "application/x-ndjson"
        [line] = r.text.splitlines()
        pair = json.loads(line)
        assert pair == {
            "prompt": [{"role": "user", "content": "who do I call?"}],
            "chosen": "Mail [email]",
            "rejected": "Call [phone]",
            "source": "correction",
            "meta": {"target": "operation", "feedback_id": pair["meta"]["feedback_id"],
                     "operation_id": op},
        }  # fmt: skip
        assert (await api.client.get("/v1/feedback/export", headers=api.auth("bob"))).text == ""
        r = await api.client.get("/v1/feedback/export?format=csv", headers=api.auth())
        assert r.status_code == 422 and "query.format" in r.json()["error"]["message"]


async def test_forgetting_an_owner_deletes_the_ratings_they_gave(api_factory) -> None:
    async with api_factory() as api:
        mine = (await run_op(api, SIMPLE, "fast"))["id"]
        theirs = (await run_op(api, SIMPLE, "fast", "bob"))["id"]
        await rate(api, f"operations/{mine}", thumb="up")
        await rate(api, f"operations/{theirs}", "bob", thumb="up")
        r = await api.client.delete("/v1/memory", headers=api.auth())
        assert r.status_code == 200, r.text
        assert r.json()["deleted"]["feedback"] == 1
        assert (await api.client.get("/v1/feedback", headers=api.auth())).json() == []
        assert len((await api.client.get("/v1/feedback", headers=api.auth("bob"))).json()) == 1
