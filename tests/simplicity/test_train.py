"""Training the detector's model on a small labelled subset, saving and loading it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crewchief.simplicity import SimplicityDetector
from crewchief.simplicity import train as training
from crewchief.simplicity._model import FORMAT, LinearModel
from crewchief.simplicity.data import DATA_DIR, Example, load_examples


@pytest.fixture(scope="module")
def subset() -> list[Example]:
    """30 fast and 30 plan examples from the training file."""
    examples = load_examples(DATA_DIR / "train.jsonl")
    fast = [e for e in examples if e.label == "fast"][:30]
    plan = [e for e in examples if e.label == "plan"][:30]
    return fast + plan


@pytest.fixture(scope="module")
def model(subset: list[Example]) -> LinearModel:
    return training.train(subset, source="subset")


@pytest.fixture
def subset_file(tmp_path: Path, subset: list[Example]) -> Path:
    path = tmp_path / "small.jsonl"
    path.write_text(
        "".join(json.dumps({"text": e.text, "label": e.label}) + "\n" for e in subset),
        encoding="utf-8",
    )
    return path


def test_meta_records_the_training_data(model: LinearModel, subset: list[Example]) -> None:
    assert model.meta["examples"] == 60
    assert model.meta["data_sha256"] == training.data_digest(subset)
    assert model.meta["trained_on"] == "subset"
    assert model.meta["features"] == len(model.weights) > 0


def test_calibration_slope_is_positive(model: LinearModel) -> None:
    slope, _ = model.calibration
    assert slope > 0


def test_model_routes_its_training_examples(model: LinearModel, subset: list[Example]) -> None:
    detector = SimplicityDetector(model=model)
    routes = [detector.decide(e.text).route for e in subset]
    right = sum(r == e.label for r, e in zip(routes, subset, strict=True))
    assert right / len(subset) >= 0.9
    assert set(routes) == {"fast", "plan"}


def test_training_is_deterministic(model: LinearModel, subset: list[Example]) -> None:
    again = training.train(subset, source="subset")
    assert again.weights == model.weights
    assert again.bias == model.bias
    assert again.calibration == model.calibration


def test_digest_changes_with_a_label(subset: list[Example]) -> None:
    flipped = [Example(text=subset[0].text, label="plan"), *subset[1:]]
    assert training.data_digest(flipped) != training.data_digest(subset)


def test_main_writes_a_loadable_model_and_prints_accuracy(
    tmp_path: Path, subset_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "model.json"
    code = training.main(
        ["--train", str(subset_file), "--dev", str(subset_file), "--out", str(out)]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert f"wrote {out}" in printed
    assert "trained on 60" in printed
    assert "accuracy" in printed
    assert "confusion" in printed
    loaded = LinearModel.load(out)
    assert loaded.meta["examples"] == 60
    assert loaded.meta["trained_on"] == str(subset_file)
    assert SimplicityDetector(model=loaded).decide("What is a monad?").score >= 0.0


def test_saved_model_round_trips(tmp_path: Path, model: LinearModel) -> None:
    path = tmp_path / "model.json"
    model.save(path)
    loaded = LinearModel.load(path)
    assert loaded.to_json() == model.to_json()
    assert LinearModel.from_json(json.loads(json.dumps(loaded.to_json()))).to_json() == (
        model.to_json()
    )
    original, reread = SimplicityDetector(model=model), SimplicityDetector(model=loaded)
    for text in ("What is a monad?", "Refactor the login module and update its tests"):
        assert reread.score(text) == pytest.approx(original.score(text), abs=1e-3)


@pytest.mark.parametrize("fmt", [FORMAT + 1, 0, None])
def test_wrong_format_is_rejected(tmp_path: Path, model: LinearModel, fmt: int | None) -> None:
    data = model.to_json()
    data["format"] = fmt
    path = tmp_path / "model.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ValueError, match=rf"model format {fmt!r}: expected {FORMAT}"):
        LinearModel.load(path)
