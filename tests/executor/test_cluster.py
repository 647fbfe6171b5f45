"""Two API instances and two workers as real processes: any instance serves any operation.

Started on instance A, followed on instance B; cancelled from B; a plan decided through B
while the run is on a worker; a task re-run through A.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import free_port, sse_events, stop_processes, wait_ready
from tests.conftest import plan_reply, write_script
from tests.executor.test_executors import HANG_GUARD_S, Workers, scaled_settings

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


class Cluster:
    """Two ``crewchief serve --no-auth`` instances and two workers on one database and Redis."""

    def __init__(self, tmp_path: Path, workers: Workers):
        self.workers = workers
        self.servers: list[subprocess.Popen] = []
        self.urls: list[str] = []
        self.tmp_path = tmp_path

    def start_server(self) -> str:
        port = free_port()
        log = open(self.tmp_path / f"server-{len(self.servers)}.log", "w")  # noqa: SIM115
        process = subprocess.Popen(
            [sys.executable, "-m", "crewchief.cli", "serve", "--no-auth", "--port", str(port)],
            env=self.workers.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        self.servers.append(process)
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, process, self.tmp_path / f"server-{len(self.servers) - 1}.log")
        self.urls.append(url)
        return url

    def stop(self) -> None:
        stop_processes(self.servers)
        self.workers.stop_all()


@pytest.fixture
def cluster(
    tmp_path: Path, postgres_url: str, redis_url: str, redis_prefix: str
) -> Iterator[tuple[str, str]]:
    spec = write_script(
        tmp_path,
        [
            {
                "node": "plan",
                "match": "really slow",
                "reply": plan_reply("Quick part", "Very slow part", ("Join", [1, 2])),
            },
            {"node": "plan", "reply": plan_reply("Quick part", "Slow part", ("Join", [1, 2]))},
            {"node": "execute_task", "match": "Task:\nQuick part", "reply": "quick done"},
            {
                "node": "execute_task",
                "match": "Task:\nVery slow part",
                "reply": {"text": "slow done", "delay": 120},
            },
            {
                "node": "execute_task",
                "match": "Task:\nSlow part",
                "reply": {"text": "slow done", "delay": 1},
            },
            {"node": "execute_task", "match": "Task:\nJoin", "reply": "joined"},
            {"node": "synthesize", "reply": "all parts joined"},
        ],
    )
    settings = scaled_settings(tmp_path / "home", postgres_url, redis_url, redis_prefix)
    workers = Workers(settings, spec, tmp_path)
    group = Cluster(tmp_path, workers)
    try:
        workers.start()
        workers.start()
        a, b = group.start_server(), group.start_server()
        yield a, b
    finally:
        group.stop()


def _post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    r = httpx.post(url, json=body, timeout=HANG_GUARD_S)
    assert r.status_code in (200, 202), r.text
    return r.json()


def _until(url: str, *statuses: str) -> dict[str, Any]:
    deadline = time.monotonic() + HANG_GUARD_S
    while True:
        op = httpx.get(url, timeout=10).json()
        if op["status"] in statuses:
            return op
        assert time.monotonic() < deadline, op
        time.sleep(0.1)


def _stream(url: str) -> list[dict[str, Any]]:
    deadline, parts = time.monotonic() + HANG_GUARD_S, []
    with httpx.stream("GET", url, timeout=HANG_GUARD_S) as r:
        assert r.status_code == 200
        for text in r.iter_text():
            parts.append(text)
            assert time.monotonic() < deadline, "".join(parts)
    return sse_events("".join(parts))


def test_started_on_one_instance_followed_on_the_other(cluster: tuple[str, str]) -> None:
    a, b = cluster
    op = _post(f"{a}/v1/operations", {"request": "Join the parts", "route": "plan"})["id"]
    events = _stream(f"{b}/v1/operations/{op}/events")
    ids = [int(e["id"]) for e in events if "id" in e]
    assert ids == list(range(1, len(ids) + 1))
    assert events[-1]["event"] == "operation.completed"
    assert json.dumps(events[-1]["data"]["operation_id"]) == json.dumps(op)


def test_cancelled_from_the_other_instance(cluster: tuple[str, str]) -> None:
    a, b = cluster
    op = _post(f"{a}/v1/operations", {"request": "Join the parts, really slow", "route": "plan"})
    _until(f"{b}/v1/operations/{op['id']}", "running")
    deadline = time.monotonic() + HANG_GUARD_S
    while not any(
        t["status"] == "in_progress" and t["sequence"] == 2
        for t in httpx.get(f"{b}/v1/operations/{op['id']}", timeout=10).json()["tasks"]
    ):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    cancelled = _post(f"{b}/v1/operations/{op['id']}/cancel", {})
    assert cancelled["status"] == "cancelled"
    assert _until(f"{a}/v1/operations/{op['id']}", "cancelled")["status"] == "cancelled"


def test_a_plan_decided_through_the_other_instance_and_a_rerun(cluster: tuple[str, str]) -> None:
    a, b = cluster
    body = {"request": "Join the parts", "route": "plan", "approve_plan": True}
    op = _post(f"{a}/v1/operations", body)["id"]
    _until(f"{b}/v1/operations/{op}", "awaiting_approval")
    _post(f"{b}/v1/operations/{op}/plan", {"action": "accept"})
    done = _until(f"{a}/v1/operations/{op}", "completed", "failed")
    assert done["status"] == "completed", done["error"]
    _post(f"{a}/v1/operations/{op}/tasks/1/rerun", {})
    deadline = time.monotonic() + HANG_GUARD_S
    while True:  # the operation was completed before: wait for the re-run's end
        again = httpx.get(f"{b}/v1/operations/{op}", timeout=10).json()
        versions = {t["sequence"]: t["version"] for t in again["tasks"]}
        if again["status"] in ("completed", "failed") and versions[3] == 2:
            break
        assert time.monotonic() < deadline, again
        time.sleep(0.1)
    assert again["status"] == "completed", again["error"]
    assert versions == {1: 2, 2: 1, 3: 2}
