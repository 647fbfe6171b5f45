"""The semantic cache's guard: two requests share an answer only when they agree on the
words that change it, whatever their embeddings say."""

from __future__ import annotations

import pytest

from crewchief.gateway._critical_terms import agree, conflict, terms_of

REFUSED = [
    # numbers, versions, units
    ("Keep the last 3 log files", "Keep the last 7 log files", "numbers"),
    ("Upgrade a project from Python 3.10", "Upgrade a project from Python 3.11", "numbers"),
    ("Retry every ten seconds", "Retry every 10 minutes", "names"),
    ("Pad the id to four digits", "Pad the id to 4 characters", "names"),
    # names, identifiers, quoted text
    ("Explain what Celery does in my app", "Explain what Dramatiq does in my app", "names"),
    ("Rename the invoice_total column", "Rename the invoice_tax column", "names"),
    ("Write tests for getUserName", "Write tests for getUserId", "names"),
    ("Read settings from app/config.toml", "Read settings from app/config.json", "names"),
    ("Grep the logs for 'timeout'", "Grep the logs for 'deadline'", "quoted"),
    ("Delete the staging namespace", "Delete the billing namespace", "names"),
    ("What does git log --oneline show?", "What does git log --graph show?", "names"),
    # vocabulary: languages, tools, platforms, types
    ("Read a YAML file in Go", "Read a YAML file in Ruby", "names"),
    ("Lint my code with ruff", "Lint my code with pylint", "names"),
    ("Count the items of a tuple", "Count the items of a dict", "names"),
    # negation, direction, opposite actions, quantity
    ("Show files that match the pattern", "Show files that don't match the pattern", "words"),
    ("Run the job without a cache", "Run the job with a cache", "words"),
    ("Show the rows before the cutoff date", "Show the rows after the cutoff date", "words"),
    ("Encrypt a file with a password", "Decrypt a file with a password", "words"),
    ("Increase the worker pool size", "Decrease the worker pool size", "words"),
    ("Export the users as CSV", "Import the users as CSV", "words"),
    ("Take the oldest entry from the queue", "Take the newest entry from the queue", "words"),
    ("Order results by price, ascending", "Order results by price, descending", "words"),
    ("Restart a pod", "Restart every pod", "words"),
    ("Why does the cache return stale data?", "How does the cache return stale data?", "words"),
    ("Mount the share at boot", "Unmount the share at boot", "opposite"),
    ("Make the match case sensitive", "Make the match case insensitive", "opposite"),
    ("Map a dict to a list of pairs", "Map a list of pairs to a dict", "directions"),
    # one content word swapped for another
    ("Explain the builder pattern", "Explain the adapter pattern", "swapped"),
    ("Measure the latency of an endpoint", "Measure the throughput of an endpoint", "swapped"),
]

AGREED = [
    ("How do I reverse a string in Ruby?", "ruby: reverse a string"),
    ("Can you explain what a semaphore is?", "What is a semaphore?"),
    ("How do I delete a file in Node.js?", "node js: remove a file"),
    ("How to kill a process listening on port 3000", "terminate the process that listens on port 3000"),
    ("Write a regular expression that matches an email", "regex to match an e-mail"),
    ("Keep the last three log files", "keep the 3 latest log files"),
    ("How do I read a JSON file in Python?", "How can I load a JSON file using py?"),
    ("Merge two dictionaries in Python", "python: combine two dicts"),
    ("Set the 'Accept' header in fetch", "fetch: how to set the 'Accept' header"),
    ("How to undo the last commit in git", "git: revert my most recent commit"),
    ("Write a docstring for parse_args", "Please write a docstring for the parse_args function"),
]  # fmt: skip


@pytest.mark.parametrize(("a", "b", "why"), REFUSED)
def test_requests_that_differ_in_a_critical_term_never_match(a: str, b: str, why: str) -> None:
    reason = conflict(terms_of(a), terms_of(b))
    assert reason is not None and why in reason, reason
    assert conflict(terms_of(b), terms_of(a)) is not None  # either way round


@pytest.mark.parametrize(("a", "b"), AGREED)
def test_rephrasings_agree(a: str, b: str) -> None:
    assert conflict(terms_of(a), terms_of(b)) is None
    assert agree(b, a)


def test_a_request_in_another_language_cannot_be_checked() -> None:
    german = terms_of("Wie lösche ich einen Branch in git?")
    assert not german.english
    assert "not English" in (conflict(german, german) or "")
    assert terms_of("How do I delete a branch in git?").english


def test_the_terms_say_what_was_found() -> None:
    terms = terms_of('Don\'t add the "v2" tag to the build_id column in Postgres 16')
    assert {"not", "add"} <= terms.sides
    assert "postgresql" in terms.anchors and "build_id" in terms.codes
    assert terms.numbers == {"16", "2"} and terms.phrases == ("v2",)
