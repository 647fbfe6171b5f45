"""``python -m bench.scaled``: the scaled-mode benchmark runs end to end and cleans up after itself.

Only the shape of the report, the error counts and that work was measured are checked,
never the speed.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from bench import scaled
from bench._cluster import PG_ADMIN_URL, REDIS_URL
from tests.bench._run import run_harness

TINY = ["--seconds", "2", "--n", "5", "--warmup", "2", "--recoveries", "1", "--streams", "50"]
TINY += ["--cancels", "1"]
TINY += ["--fanout", "5000", "--settle", "1"]


def _unreachable() -> str | None:
    """Why PostgreSQL or Redis cannot be used (None when both answer)."""
    psycopg = pytest.importorskip("psycopg")
    redis = pytest.importorskip("redis")
    try:
        psycopg.connect(PG_ADMIN_URL, connect_timeout=5).close()
    except psycopg.OperationalError as exc:
        return f"PostgreSQL is not reachable at {PG_ADMIN_URL}: {exc}"
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        return f"Redis is not reachable at {REDIS_URL}: {exc}"
    finally:
        client.close()
    return None


@pytest.mark.slow  # starts servers, workers and a database
@pytest.mark.postgres
def test_tiny_run_reports_every_figure_and_cleans_up() -> None:
    reason = _unreachable()
    if reason:
        pytest.skip(reason)
    report, stderr = run_harness("bench.scaled", *TINY)

    assert set(report) <= {*scaled.ROWS, "all_targets_met"}, set(report) - set(scaled.ROWS)
    for key, m in report.items():
        assert set(m) == {"value", "target", "pass"}, key
    value = {key: m["value"] for key, m in report.items()}
    errors = [k for k in report if k.endswith("_errors")]
    assert len(errors) == 8  # latency ×2, throughput ×3, streams, cancel, recovery
    for key in errors:
        assert value[key] == 0, (key, stderr[-3000:])

    for label in scaled.THROUGHPUT_LABELS:
        assert value[f"throughput_{label}_ops_per_s"] > 0
        assert value[f"throughput_{label}_cpu_ms_per_op"] > 0
    for label in ("scaled_1w", "scaled_2w"):
        for component in ("api", "workers", "postgres", "redis"):
            assert value[f"throughput_{label}_cpu_{component}_ms_per_op"] >= 0
        assert value[f"throughput_{label}_cpu_workers_ms_per_op"] > 0
        assert value[f"throughput_{label}_cpu_postgres_ms_per_op"] > 0
        assert value[f"throughput_{label}_cpu_ratio"] > 0
    for key in ("latency_embedded", "latency_scaled"):
        assert value[f"{key}_operations"] == 5
        assert 0 < value[f"{key}_first_event_p50_ms"] <= value[f"{key}_terminal_p50_ms"]
    assert value["cost_operations_counted"] > 0
    assert value["cost_pg_transactions_per_op"] > 0
    assert value["cost_pg_rows_inserted_per_op"] > 0
    assert value["cost_redis_publishes_per_op"] > 0

    assert report["streams_connections_held"] == {"value": 50, "target": 50, "pass": True}
    assert value["streams_events"] >= 50 * 4  # stored events and token deltas of each stream
    assert value["streams_event_latency_p95_ms"] is not None
    assert value["streams_fanout_events"] == 5000
    assert value["streams_fanout_api_us_per_event"] is not None
    for name in ("api_1", "api_2", "worker_1", "worker_2"):
        assert value[f"streams_peak_rss_{name}_mb"] > 0

    assert value["recovery_runs"] == 1
    assert value["cancel_runs"] == 1 and 0 < value["cancel_stopped_max_ms"] < 60_000
    assert len(value["recovery_resumed_s"]) == 1
    assert 0 < value["recovery_resumed_median_s"] < value["recovery_completed_median_s"]
    overall = all(m["pass"] is not False for k, m in report.items() if k != "all_targets_met")
    assert report["all_targets_met"]["value"] is overall

    # Every process it started is gone, and so are its database and Redis keys.
    pids = {int(p) for p in re.findall(r" pid (\d+)", stderr)}
    assert len(pids) == 5  # the embedded server, 2 API instances, 2 workers
    for pid in pids:
        assert not _running(pid), f"pid {pid} still runs"
    (database,) = re.findall(r"database (crewchief_bench_\w+)", stderr)
    (prefix,) = re.findall(r"Redis prefix (\S+)", stderr)
    assert not _database_exists(database)
    assert not _redis_keys(prefix)


def _running(pid: int) -> bool:
    """Whether ``pid`` is (still) a crewchief process."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return b"crewchief.cli" in cmdline and state != "Z"


def _database_exists(name: str) -> bool:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, connect_timeout=5) as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    return row is not None


def _redis_keys(prefix: str) -> list[bytes]:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        return list(client.scan_iter(match=f"{prefix}:*"))
    finally:
        client.close()


def test_report_and_table_show_each_target(capsys: pytest.CaptureFixture[str]) -> None:
    values = {
        "latency_scaled_first_event_p50_ms": 31.0,
        "throughput_scaled_2w_cpu_ratio": 1.2,
        "throughput_scaled_2w_cpu_postgres_ms_per_op": 4.5,
        "streams_connections_held": 9,
        "recovery_resumed_s": [7.9, 8.1],
    }
    report = scaled.build_report(values, streams=10)
    assert report["latency_scaled_first_event_p50_ms"] == {
        "value": 31.0,
        "target": 25.0,
        "pass": False,
    }
    assert report["throughput_scaled_2w_cpu_ratio"]["pass"] is True
    assert report["throughput_scaled_2w_cpu_postgres_ms_per_op"]["pass"] is None
    assert report["streams_connections_held"]["pass"] is False  # 9 of 10 held at once
    assert report["all_targets_met"]["value"] is False

    args = argparse.Namespace(n=5, clients=2, seconds=1.0, streams=10, recoveries=2)
    scaled.print_table(report, args)
    out = capsys.readouterr().out
    assert "≤ 25 ms" in out and "≤ 1.5 ×" in out and "≥ 10" in out
    assert "31.00 ms" in out and "7.90 / 8.10 s" in out and "FAIL" in out
    assert out.rstrip().endswith("all targets met: NO")


def test_hold_leaves_time_to_attach_every_stream() -> None:
    assert scaled.hold_seconds(50) == 8.0  # the workers learn who streams what within ~6 s
    assert scaled.hold_seconds(3000) == 100.0
