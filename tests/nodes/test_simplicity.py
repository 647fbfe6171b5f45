"""The first simplicity heuristic: routes obvious cases and explains itself."""

import pytest

from crewchief.nodes._simplicity import score_request


@pytest.mark.parametrize(
    "text",
    [
        "What is a monad?",
        "Explain the GIL",
        "hi",
        "¿Qué es una mónada?",
        "Write a regex for emails",
    ],
)
def test_simple_requests_score_high(text: str) -> None:
    assert score_request(text).score >= 0.7


@pytest.mark.parametrize(
    "text",
    [
        "Refactor the users module and add tests for every endpoint",
        "fix it",
        "Implement pagination across all endpoints, then update the docs",
        "Ship the auth feature",
    ],
)
def test_work_requests_score_low(text: str) -> None:
    assert score_request(text).score < 0.7


def test_reasons_name_the_signals() -> None:
    result = score_request("Refactor the billing module")
    assert "asks for changes: refactor" in result.reasons
    assert any(r.startswith("mentions scope: module") for r in result.reasons)
    assert 0 <= result.score <= 1
