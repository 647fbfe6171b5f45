"""``crewchief classify`` and ``crewchief calibrate``, run as the real console script."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from crewchief.config import load_settings
from crewchief.simplicity import SimplicityDetector
from crewchief.simplicity.calibrate import for_precision

SCRIPT = Path(sys.executable).with_name("crewchief")

SIMPLE = "What is the difference between a mutex and a semaphore?"
SIMPLE_2 = "Write a regex that matches a hex colour like #1a2b3c."
WORK = "Refactor the billing module to use the new invoice service and update the tests."
WORK_2 = "Add rate limiting to every public endpoint of our API."
LABELLED = [(SIMPLE, "fast"), (WORK, "plan"), (SIMPLE_2, "simple"), (WORK_2, "complex")]
# A hang guard, not a speed target: each subprocess here normally ends in a few seconds.
HANG_GUARD_S = 60


def crewchief(
    home: Path, *args: str, input: str | None = None, stdin: Any = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREWCHIEF_")}
    env.update(
        CREWCHIEF_HOME=str(home),
        CREWCHIEF_MODEL="fake:default",
        CREWCHIEF_ALLOW_MODEL_REQUESTS="0",
    )
    return subprocess.run(
        [str(SCRIPT), *args],
        input=input,
        stdin=stdin if input is None else None,
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd or home,
        timeout=HANG_GUARD_S,
    )


def jsonl(*items: object) -> str:
    return "".join((i if isinstance(i, str) else json.dumps(i)) + "\n" for i in items)


def rows(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines()]


def test_classify_stdin_writes_one_json_line_per_request(tmp_path: Path) -> None:
    result = crewchief(tmp_path, "classify", input=jsonl({"text": SIMPLE}, {"text": WORK}))
    assert result.returncode == 0, result.stderr
    out = rows(result.stdout)
    assert len(out) == 2
    for row in out:
        assert set(row) == {"score", "route", "tier", "reasons"}
        assert 0.0 <= row["score"] <= 1.0
        assert row["reasons"] and all(isinstance(r, str) for r in row["reasons"])
    assert (out[0]["route"], out[0]["tier"]) == ("fast", "fast")
    assert out[1]["route"] == "plan" and out[1]["tier"] in ("balanced", "deep")
    assert "accuracy" not in result.stderr  # no labels, no metrics


def test_classify_reads_a_file_argument(tmp_path: Path) -> None:
    f = tmp_path / "requests.jsonl"
    f.write_text(jsonl({"text": WORK}, "", {"text": "¿Qué es una clave foránea?"}), "utf-8")
    result = crewchief(tmp_path, "classify", str(f))
    assert result.returncode == 0, result.stderr
    assert [r["route"] for r in rows(result.stdout)] == ["plan", "fast"]
    assert "¿Qué" not in result.stdout  # the text is not echoed back


def test_classify_with_labels_reports_metrics(tmp_path: Path) -> None:
    metrics_file = tmp_path / "metrics.json"
    items = [{"text": t, "label": label} for t, label in LABELLED]
    result = crewchief(
        tmp_path, "classify", "--metrics-json", str(metrics_file), input=jsonl(*items)
    )
    assert result.returncode == 0, result.stderr
    assert len(rows(result.stdout)) == 4
    err = result.stderr
    assert "4 of 4 lines labelled · threshold 0.7" in err
    assert "accuracy  100.0%" in err
    assert "precision" in err and "recall" in err
    assert "fast        100.0%  100.0%   50.0%" in err
    assert "plan        100.0%  100.0%   50.0%" in err
    assert "confusion (rows: label, columns: predicted)" in err
    data = json.loads(metrics_file.read_text())
    assert data["threshold"] == 0.7
    assert data["examples"] == 4
    assert data["accuracy"] == 1.0
    assert data["routes"]["fast"] == {"precision": 1.0, "recall": 1.0, "share": 0.5}
    assert data["confusion"] == {"fast": {"fast": 2, "plan": 0}, "plan": {"fast": 0, "plan": 2}}


def test_classify_bad_lines_are_reported_in_place(tmp_path: Path) -> None:
    text = jsonl(
        {"text": SIMPLE},
        '{"text": "unterminated',
        "",
        {"label": "fast"},
        {"text": WORK, "label": "urgent"},
        {"text": WORK},
    )
    result = crewchief(tmp_path, "classify", input=text)
    assert result.returncode == 1
    out = rows(result.stdout)
    assert len(out) == 5
    assert out[0]["route"] == "fast"
    assert out[4]["route"] == "plan"
    errors = [row["error"] for row in out[1:4]]
    assert [e["line"] for e in errors] == [2, 4, 5]
    assert set(out[1]) == {"error"}
    assert "not valid JSON" in errors[0]["message"]
    assert errors[1]["message"].startswith("text:")
    assert errors[2]["message"].startswith("label:") and "'urgent'" in errors[2]["message"]
    assert "error: line 2: not valid JSON" in result.stderr
    assert "3 of 5 lines could not be classified" in result.stderr


def test_classify_threshold_zero_routes_everything_fast(tmp_path: Path) -> None:
    result = crewchief(
        tmp_path, "classify", "--threshold", "0", input=jsonl({"text": WORK}, {"text": WORK_2})
    )
    assert result.returncode == 0, result.stderr
    assert [(r["route"], r["tier"]) for r in rows(result.stdout)] == [("fast", "fast")] * 2


def test_classify_rejects_an_out_of_range_threshold(tmp_path: Path) -> None:
    result = crewchief(tmp_path, "classify", "--threshold", "1.5", input=jsonl({"text": WORK}))
    assert result.returncode == 2
    assert "threshold: expected a number in [0, 1]" in result.stderr
    assert result.stdout == ""


def test_classify_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    result = crewchief(tmp_path, "classify", str(missing))
    assert result.returncode == 2
    assert result.stderr.startswith("error: classify:")
    assert str(missing) in result.stderr
    assert result.stdout == ""


def test_classify_without_input_on_a_terminal_is_a_usage_error(tmp_path: Path) -> None:
    main_fd, terminal = pty.openpty()
    try:
        result = crewchief(tmp_path, "classify", stdin=terminal)
    finally:
        os.close(terminal)
        os.close(main_fd)
    assert result.returncode == 2
    assert "give a FILE or pipe JSON lines on stdin" in result.stderr


def test_classify_does_not_load_langchain_or_langgraph(tmp_path: Path) -> None:
    f = tmp_path / "r.jsonl"
    f.write_text(jsonl({"text": SIMPLE}), "utf-8")
    code = (
        "import sys\n"
        "from crewchief.cli import main\n"
        f"code = main(['classify', {str(f)!r}])\n"
        "print('RESULT', code, 'langchain_core' in sys.modules, 'langgraph' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREWCHIEF_")}
    env.update(CREWCHIEF_HOME=str(tmp_path), CREWCHIEF_ALLOW_MODEL_REQUESTS="0")
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=HANG_GUARD_S,
    )
    assert result.returncode == 0, result.stderr
    assert '"route": "fast"' in result.stdout
    assert result.stdout.splitlines()[-1] == "RESULT 0 False False"


def _labelled_file(tmp_path: Path) -> Path:
    f = tmp_path / "labelled.jsonl"
    f.write_text(jsonl(*({"text": t, "label": label} for t, label in LABELLED)), "utf-8")
    return f


def _chosen(stdout: str) -> float:
    chosen = [line for line in stdout.splitlines() if line.endswith("← chosen")]
    assert len(chosen) == 1, stdout
    return float(chosen[0].split()[0])


def test_calibrate_for_precision_prints_the_sweep_and_choice(tmp_path: Path) -> None:
    f = _labelled_file(tmp_path)
    result = crewchief(tmp_path, "calibrate", str(f), "--precision", "0.95")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"calibrating on 4 requests from {f} · target: fast precision ≥ 95.0%" in out
    assert out.splitlines()[1].split() == [
        "threshold", "fast", "share", "fast", "prec.", "fast", "recall", "accuracy"
    ]  # fmt: skip
    assert "(current)" in out  # the configured 0.7 is shown for comparison
    detector = SimplicityDetector()
    expected = for_precision(
        [detector.score(t) for t, _ in LABELLED], ["fast", "plan", "fast", "plan"], 0.95
    )
    assert _chosen(out) == pytest.approx(expected.threshold, abs=1e-4)
    assert f"threshold {expected.threshold:g}: 50.0% of requests take the fast path" in out


def test_calibrate_fast_share_writes_the_config(tmp_path: Path) -> None:
    f = _labelled_file(tmp_path)
    config = tmp_path / "crewchief.toml"
    config.write_text('max_plan_tasks = 5\n\n[tiers.deep]\neffort = "high"\n', "utf-8")
    result = crewchief(
        tmp_path / "home",
        "--config",
        str(config),
        "calibrate",
        str(f),
        "--fast-share",
        "0.3",
        "--write",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    chosen = _chosen(result.stdout)
    assert f"wrote simplicity_threshold = {chosen:g} to {config}" in result.stdout
    # At most 30% of 4 requests: only one may go fast.
    assert "25.0% of requests take the fast path" in result.stdout
    settings = load_settings(config, env={})
    assert settings.simplicity_threshold == pytest.approx(chosen)
    assert settings.max_plan_tasks == 5
    assert config.read_text().endswith('[tiers.deep]\neffort = "high"\n')


def test_calibrate_precision_needs_labels(tmp_path: Path) -> None:
    f = tmp_path / "unlabelled.jsonl"
    f.write_text(jsonl({"text": SIMPLE}, {"text": WORK}), "utf-8")
    result = crewchief(tmp_path, "calibrate", str(f), "--precision", "0.9")
    assert result.returncode == 2
    assert "error: calibrate: --precision needs a label on every line of FILE" in result.stderr
    assert result.stdout == ""


def test_calibrate_without_file_uses_recorded_operations(tmp_path: Path) -> None:
    for request in ("What is a monad?", "Refactor the login module"):
        run = crewchief(tmp_path, "run", request, "--json", stdin=subprocess.DEVNULL)
        assert run.returncode == 0, run.stderr
        assert json.loads(run.stdout)["status"] == "completed"
    result = crewchief(tmp_path, "calibrate", "--fast-share", "0.5")
    assert result.returncode == 0, result.stderr
    assert "calibrating on 2 requests from the last 2 recorded operations" in result.stdout
    assert "50.0% of requests take the fast path" in result.stdout
