"""Signals read off a request: prose versus pasted context, orders, questions, files."""

from __future__ import annotations

import pytest

from crewchief.simplicity._signals import fold, is_work, prepare, signals

KEYERROR_TRACEBACK = """Traceback (most recent call last):
  File "/app/importer.py", line 41, in <module>
    rows = load(path)
  File "/app/importer.py", line 17, in load
    return rows[record["user_id"]]
KeyError: 'user_id'"""

VALUEERROR_TRACEBACK = """Traceback (most recent call last):
  File "/app/importer.py", line 41, in <module>
    rows = load(path)
  File "/app/importer.py", line 17, in load
    return [int(x) for x in fh]
ValueError: invalid literal for int() with base 10: 'abc'"""

NPM_LOG = """npm ERR! code ERESOLVE
npm ERR! ERESOLVE unable to resolve dependency tree
npm ERR! While resolving: shop-web@1.4.0
npm ERR! Found: react@18.2.0
npm ERR! Could not resolve dependency:"""


@pytest.mark.parametrize(
    "traceback", [KEYERROR_TRACEBACK, VALUEERROR_TRACEBACK], ids=["KeyError", "ValueError"]
)
def test_traceback_then_question_reads_as_a_question_about_context(traceback: str) -> None:
    text = f"I get this when I run the importer:\n\n{traceback}\n\nwhat does this mean?"
    p = prepare(text)
    s = signals(p)
    assert "pasted_context" in s
    assert "ask_is_question" in s
    assert "context_then_question" in s
    # Only the user's own words are prose; nothing from the traceback (not even its last line).
    assert p.words == [
        "i", "get", "this", "when", "i", "run", "the", "importer", "what", "does", "this", "mean"
    ]  # fmt: skip
    assert p.context_lines >= 6


def test_bare_traceback_then_question_keeps_only_the_question() -> None:
    p = prepare(f"{KEYERROR_TRACEBACK}\n\nwhat does this mean?")
    s = signals(p)
    assert p.words == ["what", "does", "this", "mean"]
    assert "pasted_context" in s and "context_then_question" in s
    assert "question_form" in s


def test_npm_error_log_is_context() -> None:
    p = prepare(f"Running the install on CI gives:\n{NPM_LOG}\nhow do I get past this?")
    s = signals(p)
    assert "pasted_context" in s
    assert p.context_lines == 5
    assert not {"npm", "err", "eresolve", "dependency", "react"} & set(p.words)
    assert "ask_is_question" in s


def test_inline_code_does_not_order_work() -> None:
    quoted = signals(prepare("Is `SELECT ... FOR UPDATE` enough to stop double bookings?"))
    bare = signals(prepare("Is SELECT ... FOR UPDATE enough to stop double bookings?"))
    assert "mentions_work" in bare  # "update" is a work verb when it is the user's word
    assert "mentions_work" not in quoted
    assert "question_form" in quoted


@pytest.mark.parametrize(
    "text",
    [
        'How do I say "Your PR is wrong, redo it." more kindly?',
        "Can you soften this message: “Your PR is wrong, redo it.”",
    ],
)
def test_quoted_text_does_not_fire_work_signals(text: str) -> None:
    p = prepare(text)
    s = signals(p)
    assert "redo" not in p.words
    for name in ("mentions_work", "order_first", "polite_order", "ask_is_order"):
        assert name not in s, name


@pytest.mark.parametrize(
    ("text", "opener", "verb"),
    [
        ("Could you refactor the login system?", "could you", "refactor"),
        ("¿Podrías refactorizar el módulo de login?", "podrias", "refactorizar"),
        ("Pourriez-vous migrer la base vers Postgres ?", "pourriez vous", "migrer"),
        ("Kannst du die Tests für den Parser schreiben?", "kannst du", "schreiben"),
    ],
    ids=["en", "es", "fr", "de"],
)
def test_polite_orders_are_orders(text: str, opener: str, verb: str) -> None:
    s = signals(prepare(text))
    assert "polite_order" in s
    assert s.fired["polite_order"] == f"'{opener}' + '{verb}'"


@pytest.mark.parametrize(
    ("text", "verb"),
    [
        ("El login falla, arréglalo", "arreglalo"),
        ("Optimízalo, por favor", "optimizalo"),
        ("Corrígelo antes del viernes", "corrigelo"),
        ("Actualízalas todas", "actualizalas"),
    ],
)
def test_spanish_enclitic_counts_as_work(text: str, verb: str) -> None:
    s = signals(prepare(text))
    assert verb in s.fired["mentions_work"].split(", ")


@pytest.mark.parametrize("word", ["explícamelo", "hola", "dímelo"])
def test_enclitic_on_a_non_work_verb_is_not_work(word: str) -> None:
    assert not is_work(fold(word))


@pytest.mark.parametrize(
    ("text", "verb"),
    [
        ("Füge einen Logout-Button hinzu", "fuge"),
        ("Añade tests al módulo de pagos", "anade"),
        ("Crée un fichier de configuration", "cree"),
    ],
)
def test_accents_fold_to_lexicon_entries(text: str, verb: str) -> None:
    s = signals(prepare(text))
    assert s.fired["order_first"] == f"'{verb}'"


def test_fold_strips_accents_and_case() -> None:
    assert fold("Füge") == "fuge"
    assert fold("ARRÉGLALO") == "arreglalo"


def test_file_paths_are_found() -> None:
    p = prepare("Move the helpers from src/api/users.py into src/api/common/ and update docs/")
    assert p.paths == ["src/api/users.py", "src/api/common/", "docs/"]
    assert "names_files" in signals(p)


def test_word_pairs_are_not_paths() -> None:
    p = prepare("Should I use TCP and/or UDP for this?")
    assert p.paths == []
    assert "names_files" not in signals(p)


@pytest.mark.parametrize(
    "text",
    [
        "write a regex that matches ISO 8601 dates",
        "Write me a haiku about Mondays",
        "Give me a SQL query that lists duplicate emails",
    ],
)
def test_one_shot_output_fires_for_a_single_piece(text: str) -> None:
    assert "one_shot_output" in signals(prepare(text))


@pytest.mark.parametrize(
    "text",
    ["add a hook to the checkout page", "add a button component to the settings page"],
)
def test_one_shot_output_does_not_fire_when_changing_existing_code(text: str) -> None:
    s = signals(prepare(text))
    assert "one_shot_output" not in s
    assert "order_first" in s
