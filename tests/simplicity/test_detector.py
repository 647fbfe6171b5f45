"""The simplicity detector: score, route, tier, forced routes, reasons and clear-cut requests."""

from __future__ import annotations

from dataclasses import fields

import pytest

from crewchief.simplicity import (
    DEFAULT_DEEP_BELOW,
    DEFAULT_THRESHOLD,
    Decision,
    SimplicityDetector,
    decide,
)
from crewchief.simplicity import train as training
from crewchief.simplicity._model import shipped_model
from crewchief.simplicity.data import DATA_DIR, load_examples
from crewchief.simplicity.metrics import Metrics

SIMPLE = "What is the difference between a process and a thread in an operating system?"
COMPLEX = "Refactor the payment module to use the repository pattern and update its tests."

FAST = [
    "What is the difference between a process and a thread in an operating system?",
    "Explain how HTTPS certificate pinning works.",
    "Define idempotency in the context of REST APIs.",
    "Convert 72 degrees Fahrenheit to Celsius.",
    "How many bytes are in a mebibyte?",
    "Write a regex that matches US ZIP codes with an optional +4 suffix.",
    "Write a haiku about garbage collection.",
    "Give me a Python function that reverses a linked list.",
    "Write a Python function that checks whether a string is a palindrome.",
    "Write a bash one-liner that counts the lines in all .py files.",
    "hello there!",
    "cheers, that did the trick",
    "what are you able to help with?",
    "Why does git say 'detached HEAD' and should I worry?",
    "Summarize the CAP theorem in two sentences for a product manager.",
    "Translate 'the build is broken' into Japanese.",
    "When should I prefer a B-tree index over a hash index in Postgres?",
    "What's the worst-case time complexity of heapsort?",
    "Compare TCP and UDP for a real-time multiplayer game.",
    "What does the -r flag do in grep?",
    "Is it safe to store JWTs in localStorage?",
    "Explain the difference between git fetch and git pull.",
    "I get this when I start the server:\n\nTraceback (most recent call last):\n"
    '  File "server.py", line 3, in <module>\n    import flask\n'
    "ModuleNotFoundError: No module named 'flask'\n\nWhat does this error mean?",
    "Here is my compose file:\n\n```yaml\nservices:\n  web:\n    image: nginx:1.25\n"
    '    ports:\n      - "80:80"\n```\n\nWhy does port 80 say it is already in use?',
    "¿Qué es una clave foránea?",
    "Quelle est la différence entre une clé primaire et une clé étrangère ?",
    "Explique-moi la différence entre une liste et un tuple en Python.",
    "Was ist der Unterschied zwischen git merge und git rebase?",
]

PLAN = [
    "Implement OAuth login with Google and GitHub for our web app.",
    "Refactor the payment module to use the repository pattern and update its tests.",
    "Migrate our database from MySQL to PostgreSQL.",
    "just fix it",
    "ship the billing feature",
    "Could you refactor the signup flow?",
    "Can you add rate limiting to our API endpoints?",
    "Add pagination to all the list endpoints in the API.",
    "Build a CLI that syncs our S3 buckets, with tests and docs.",
    "Audit the codebase for SQL injection vulnerabilities and fix what you find.",
    "Fix the failing tests in src/orders/ and then update the changelog.",
    "Upgrade the project from Django 3.2 to 5.0.",
    "Add a dark mode toggle to the settings page and persist the choice.",
    "Rename the User model to Account everywhere in the repo.",
    "Set up a CI pipeline that runs lint, tests and deploys to staging.",
    "Split the monolith's billing code into its own service.",
    "Add input validation to every form on the signup and checkout pages.",
    "Investigate why the nightly export job fails and fix it.",
    "Refactoriza el módulo de pagos y añade pruebas.",
    "¿Podrías migrar los tests a pytest?",
    "Migre notre application vers Python 3.12 et corrige les tests.",
    "Pourriez-vous ajouter la pagination à l'API ?",
    "Implementiere die Suche im Dashboard und schreibe Tests dafür.",
    "Könnten Sie bitte den alten Cache entfernen?",
]


def test_decision_has_score_route_tier_reasons() -> None:
    d = decide(SIMPLE)
    assert isinstance(d, Decision)
    assert [f.name for f in fields(Decision)] == ["score", "route", "tier", "reasons", "forced"]
    assert set(d.as_dict()) == {"score", "route", "tier", "reasons", "forced"}
    assert d.forced is False


@pytest.mark.parametrize("text", [SIMPLE, COMPLEX, "Könnten Sie bitte den alten Cache entfernen?"])
def test_a_decision_without_reasons_decides_the_same(text: str) -> None:
    detector = SimplicityDetector()
    full, bare = detector.decide(text), detector.decide(text, explained=False)
    assert full.reasons and bare.reasons == []
    assert (bare.score, bare.route, bare.tier) == (full.score, full.route, full.tier)


@pytest.mark.parametrize("text", [SIMPLE, COMPLEX, "hmm", "x" * 5000, "🙂"])
def test_score_is_a_probability(text: str) -> None:
    detector = SimplicityDetector()
    score = detector.score(text)
    assert 0.0 <= score <= 1.0
    assert detector.decide(text).score == score


def test_defaults() -> None:
    detector = SimplicityDetector()
    assert detector.threshold == DEFAULT_THRESHOLD == 0.7
    assert detector.deep_below == DEFAULT_DEEP_BELOW == 0.3


@pytest.mark.parametrize("text", [COMPLEX, "Write a unit test for this function"])
def test_route_follows_the_threshold(text: str) -> None:
    low = SimplicityDetector(threshold=0.0).decide(text)
    high = SimplicityDetector(threshold=1.0).decide(text)
    assert low.score == high.score < 1.0
    assert low.route == "fast" and low.tier == "fast"
    assert high.route == "plan"


def test_threshold_is_inclusive() -> None:
    score = SimplicityDetector().score(COMPLEX)
    assert SimplicityDetector(threshold=score).decide(COMPLEX).route == "fast"


def test_module_level_decide_takes_a_threshold() -> None:
    assert decide(COMPLEX).route == "plan"
    assert decide(COMPLEX, threshold=0.0).route == "fast"


@pytest.mark.parametrize(
    ("score", "route", "tier"),
    [
        (0.95, "fast", "fast"),
        (0.7, "fast", "fast"),
        (0.69, "plan", "balanced"),
        (0.3, "plan", "balanced"),
        (0.29, "plan", "deep"),
        (0.0, "plan", "deep"),
    ],
)
def test_tier_for_default_bounds(score: float, route: str, tier: str) -> None:
    assert SimplicityDetector().tier_for(score, route) == tier  # type: ignore[arg-type]


def test_tiers_from_decisions() -> None:
    fast = SimplicityDetector().decide(SIMPLE)
    deep = SimplicityDetector().decide(COMPLEX)
    assert (fast.route, fast.tier) == ("fast", "fast")
    assert deep.score < DEFAULT_DEEP_BELOW
    assert (deep.route, deep.tier) == ("plan", "deep")
    # The same request lands in "balanced" once deep_below sits under its score.
    s = deep.score
    balanced = SimplicityDetector(threshold=(s + 1) / 2, deep_below=s / 2).decide(COMPLEX)
    assert (balanced.route, balanced.tier) == ("plan", "balanced")


def test_forced_fast_is_recorded() -> None:
    unforced = decide(COMPLEX)
    forced = decide(COMPLEX, force="fast")
    assert forced.forced is True
    assert (forced.route, forced.tier) == ("fast", "fast")
    assert forced.score == unforced.score


@pytest.mark.parametrize(("text", "tier"), [(SIMPLE, "balanced"), (COMPLEX, "deep")])
def test_forced_plan_is_recorded_with_a_planning_tier(text: str, tier: str) -> None:
    d = decide(text, force="plan")
    assert d.forced is True
    assert d.route == "plan"
    assert d.tier == tier


def test_invalid_force_names_the_route() -> None:
    with pytest.raises(ValueError, match=r"route: expected 'fast' or 'plan', got 'slow'"):
        decide(SIMPLE, force="slow")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"threshold": 1.5}, "threshold"),
        ({"threshold": -0.1}, "threshold"),
        ({"deep_below": 2.0}, "deep_below"),
        ({"deep_below": -1.0}, "deep_below"),
    ],
)
def test_invalid_bounds_name_the_field(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(ValueError, match=rf"^{field}: expected a number in \[0, 1\]"):
        SimplicityDetector(**kwargs)


@pytest.mark.parametrize("text", [SIMPLE, COMPLEX, FAST[22], PLAN[5], "hi"])
def test_reasons_say_which_route_they_push_toward(text: str) -> None:
    d = decide(text)
    assert d.reasons
    for reason in d.reasons:
        assert isinstance(reason, str) and reason.strip()
        assert "→ fast" in reason or "→ plan" in reason, reason
    assert any(f"→ {d.route}" in r for r in d.reasons)


def test_polite_order_is_named_as_a_reason_for_plan() -> None:
    reasons = decide("Could you refactor the signup flow?").reasons
    assert any("polite form of an order" in r and r.endswith("(→ plan)") for r in reasons)


def test_pasted_context_is_named_as_a_reason() -> None:
    reasons = decide(FAST[22]).reasons
    assert any(r.startswith("pasted context") for r in reasons), reasons


@pytest.mark.parametrize("text", FAST)
def test_clear_cut_simple_requests_take_the_fast_path(text: str) -> None:
    d = decide(text)
    assert d.route == "fast", (d.score, d.reasons)
    assert d.tier == "fast"


@pytest.mark.parametrize("text", PLAN)
def test_clear_cut_work_requests_are_planned(text: str) -> None:
    d = decide(text)
    assert d.route == "plan", (d.score, d.reasons)
    assert d.tier in ("balanced", "deep")


def test_shipped_model_is_trained_on_the_current_training_file() -> None:
    examples = load_examples(DATA_DIR / "train.jsonl")
    meta = shipped_model().meta
    assert meta["data_sha256"] == training.data_digest(examples), (
        "model.json is stale: run python -m crewchief.simplicity.train"
    )
    assert meta["examples"] == len(examples)


def test_dev_accuracy_at_the_default_threshold() -> None:
    detector = SimplicityDetector()
    dev = load_examples(DATA_DIR / "dev.jsonl")
    m = Metrics.of((e.label or "", detector.decide(e.text).route) for e in dev)
    assert m.total == len(dev) > 100
    assert m.accuracy >= 0.95, m.report()
