"""``/metrics``, request ids and JSON log lines, as an operator sees them (embedded mode)."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from crewchief import logs
from tests.conftest import metric_samples, metric_total


async def _scrape(api) -> dict:
    r = await api.client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    return metric_samples(r.text)


async def _finished(api, op: str) -> dict:
    for _ in range(200):
        body = (await api.client.get(f"/v1/operations/{op}", headers=api.auth())).json()
        if body["status"] not in ("pending", "running"):
            return body
        await asyncio.sleep(0.02)
    raise AssertionError(f"operation {op} did not end")


async def test_metrics_count_operations_model_calls_and_requests(api) -> None:
    before = await _scrape(api)
    r = await api.client.post(
        "/v1/operations", json={"request": "What is a monad?", "route": "fast"}, headers=api.auth()
    )
    op = r.json()["id"]
    assert (await _finished(api, op))["status"] == "completed"
    await api.client.get("/v1/operations/op-that-does-not-exist", headers=api.auth())
    await api.client.request("BREW", "/healthz")  # a made-up method is not a new label value
    after = await _scrape(api)

    def moved(name: str, **labels: str) -> float:
        return metric_total(after, name, **labels) - metric_total(before, name, **labels)

    assert moved("crewchief_operations_finished_total", route="fast", status="completed") == 1
    assert moved("crewchief_operation_duration_seconds_count", route="fast") == 1
    # The fast tier: one call on the orchestrator alias at low effort.
    assert moved("crewchief_model_calls_total", alias="orchestrator", outcome="ok") == 1
    assert moved("crewchief_model_call_duration_seconds_count", alias="orchestrator") == 1
    assert moved("crewchief_run_duration_seconds_count", outcome="stopped") == 1
    assert moved("crewchief_http_requests_total", method="POST", route="/v1/operations") == 1
    # Requests are counted by route template, never by the raw path (ids would explode it).
    assert (
        moved(
            "crewchief_http_requests_total",
            method="GET",
            route="/v1/operations/{operation_id}",
            status="404",
        )
        == 1
    )
    assert not any("op-that-does-not-exist" in str(labels) for _, labels in after)
    assert moved("crewchief_http_requests_total", method="other", route="/healthz") == 1
    assert not any("BREW" in str(labels) for _, labels in after)
    # The cluster gauges come from the database: nothing is open now.
    assert ("crewchief_operations", frozenset()) not in after
    assert metric_total(after, "crewchief_operations", status="running") == 0
    assert metric_total(after, "crewchief_runs_active") == 0


async def test_open_operations_show_by_status_and_route(api_factory) -> None:
    async with api_factory(models="fake:default?delay=5") as api:
        r = await api.client.post(
            "/v1/operations", json={"request": "Slow one", "route": "fast"}, headers=api.auth()
        )
        op = r.json()["id"]
        seen = await _scrape(api)
        assert metric_total(seen, "crewchief_operations", status="running", route="fast") == 1
        assert metric_total(seen, "crewchief_runs_active") >= 1
        await api.client.post(f"/v1/operations/{op}/cancel", headers=api.auth())
        assert (await _finished(api, op))["status"] == "cancelled"
        after = await _scrape(api)
        assert metric_total(after, "crewchief_operations", status="running") == 0


async def test_metrics_can_be_turned_off(api_factory) -> None:
    async with api_factory(api={"metrics": False}) as api:
        assert (await api.client.get("/metrics")).status_code == 404


async def test_every_response_carries_a_request_id(api) -> None:
    mine = await api.client.get("/healthz", headers={"X-Request-ID": "trace-42"})
    assert mine.headers["x-request-id"] == "trace-42"
    fresh = await api.client.get("/healthz")
    other = await api.client.get("/healthz")
    assert len(fresh.headers["x-request-id"]) == 32
    assert fresh.headers["x-request-id"] != other.headers["x-request-id"]
    # A header that could forge log lines or flood them is replaced, not echoed.
    for bad in ("x" * 500, "two words"):
        r = await api.client.get("/healthz", headers={"X-Request-ID": bad})
        assert r.headers["x-request-id"] != bad and len(r.headers["x-request-id"]) == 32


@pytest.fixture
def captured_logs(capsys: pytest.CaptureFixture[str]):
    """``read()``: the lines written to stderr so far. The root logger is restored after."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    yield lambda: capsys.readouterr().err
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


def test_json_lines_carry_the_context_they_were_written_in(captured_logs) -> None:
    logs.configure("info", "json", worker="host:1:ab")
    log = logging.getLogger("crewchief.test")
    log.debug("below the level")
    tokens = [logs.request_id.set("req-1"), logs.operation_id.set("op-1"), logs.task_id.set(3)]
    try:
        log.info("task %d done", 3)
    finally:
        for var, token in zip(
            (logs.request_id, logs.operation_id, logs.task_id), tokens, strict=True
        ):
            var.reset(token)
    log.warning("outside any operation")
    lines = [json.loads(line) for line in captured_logs().splitlines()]
    assert len(lines) == 2
    first, second = lines
    assert first["message"] == "task 3 done" and first["level"] == "INFO"
    assert first["logger"] == "crewchief.test" and first["time"].endswith("Z")
    assert (first["request_id"], first["operation_id"], first["task_id"]) == ("req-1", "op-1", 3)
    assert first["worker"] == "host:1:ab"
    assert "operation_id" not in second and second["worker"] == "host:1:ab"


def test_text_lines_stay_readable(captured_logs) -> None:
    logs.configure("info", "text")
    token = logs.operation_id.set("op-9")
    try:
        logging.getLogger("crewchief.test").info("hello")
    finally:
        logs.operation_id.reset(token)
    line = captured_logs().strip()
    assert line.endswith("INFO crewchief.test: hello [op=op-9]")
    with pytest.raises(ValueError, match="log_format"):
        logs.configure("info", "xml")
