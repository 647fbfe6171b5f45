"""Role inference: held-out accuracy, each role from a request and from a system prompt,
reasons that name the cues, the fallback, long inputs, and the cue file's checks."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import pytest

from bench import roles as bench_roles
from crewchief.gateway import infer
from crewchief.gateway.infer import Cues, Inference, infer_role, shipped_cues
from crewchief.gateway.roles import ROLES

TOOLS = (
    "\n\n====\n\nTOOL USE\n\nYou can read files, search the code, run commands (for example "
    "the test suite) and write files, one tool per message.\n"
)
# One agent system prompt per role (paraphrased, in the style of editor-agent modes), each
# with a request that says nothing about the kind of work.
AGENT_PROMPTS = {
    "architect": "You are Kilo, an experienced technical leader and an excellent planner. "
    "Gather context and produce a detailed plan before anything is implemented." + TOOLS,
    "implementation": "You are Clara, a highly skilled software engineer with broad knowledge "
    "of programming languages, frameworks and best practices." + TOOLS,
    "review": "You are a meticulous senior code reviewer: you give actionable feedback on "
    "diffs, with a severity for each finding." + TOOLS,
    "testing": "You are a test engineer. You write thorough, fast, deterministic automated "
    "tests." + TOOLS,
    "documentation": "You are a technical writer who keeps READMEs, guides and docstrings "
    "accurate." + TOOLS,
    "debugger": "You are an expert software debugger specialising in systematic problem "
    "diagnosis." + TOOLS,
    "research": "You are a deep research assistant: investigate the topic, compare sources "
    "and cite them.",
    "general": "You are a helpful assistant.",
}
NEUTRAL = "Let's start."

CLEAR_REQUESTS = {
    "architect": "Design the architecture of a notification service: components, queues and "
    "data flow.",
    "implementation": "Implement a `slugify(title)` function that strips accents.",
    "review": "Review this diff and point out anything risky before I merge.",
    "testing": "Write tests for the date parser, including leap years.",
    "documentation": "Add a docstring to every public function in parser.py.",
    "debugger": 'I get this:\nTraceback (most recent call last):\n  File "app.py", line 3, '
    "in <module>\nKeyError: 'id'",
    "research": "Compare FastAPI and Litestar: performance, ecosystem and typing support.",
    "general": "hi there!",
}


def test_accuracy_on_the_held_out_split() -> None:
    test = [e for e in bench_roles.load_examples() if e.split == "test"]
    assert len(test) >= 60 and {e.role for e in test} == set(ROLES)
    misses = [
        (e.line, e.role, got.role)
        for e in test
        if (got := infer_role(e.system, e.request)).role != e.role
    ]
    accuracy = 1 - len(misses) / len(test)
    assert accuracy >= 0.90, (
        f"test-split accuracy {accuracy:.1%}; misses (line, want, got): {misses}"
    )


def test_the_labelled_set_is_balanced_and_split() -> None:
    examples = bench_roles.load_examples()
    assert len(examples) >= 200
    by_role = {r: sum(e.role == r for e in examples) for r in ROLES}
    assert min(by_role.values()) >= 25, by_role
    share = sum(e.split == "test" for e in examples) / len(examples)
    assert 0.25 <= share <= 0.35
    assert any(e.system is None for e in examples) and any(e.system for e in examples)


@pytest.mark.parametrize("role", ROLES)
def test_each_role_from_a_clear_request(role: str) -> None:
    got = infer_role(None, CLEAR_REQUESTS[role])
    assert got.role == role, got
    assert got.confidence > 0 and got.reasons


@pytest.mark.parametrize("role", ROLES)
def test_each_role_from_an_agent_system_prompt(role: str) -> None:
    got = infer_role(AGENT_PROMPTS[role], NEUTRAL)
    assert got.role == role, got
    assert got.reasons[0].startswith("system prompt: '"), got.reasons


def test_reasons_name_the_cues() -> None:
    got = infer_role("You are an expert software debugger.", "go")
    assert got == Inference("debugger", 1.0, ["system prompt: 'software debugger' → debugger"])

    got = infer_role(None, "Could you please write tests for the CSV importer?")
    assert got.role == "testing"
    assert "request opens with: 'write tests' → testing" in got.reasons  # after "could you please"
    assert "request: 'tests' → testing" in got.reasons

    got = infer_role(None, "Fix this:\nTraceback (most recent call last):\nKeyError: 'id'")
    assert "request: pasted Python traceback 'Traceback (most recent call last)' → debugger" in (
        got.reasons
    )
    assert "request: error message 'KeyError:' → debugger" in got.reasons


def test_the_request_outweighs_a_generic_agent_but_not_a_dedicated_mode() -> None:
    generic, debug_mode = AGENT_PROMPTS["implementation"], AGENT_PROMPTS["debugger"]
    assert infer_role(generic, "Write unit tests for the cart service.").role == "testing"
    assert infer_role(generic, "hello").role == "general"
    assert infer_role(generic, "Add a CSV export button.").role == "implementation"
    assert infer_role(debug_mode, "The websocket disconnects every minute.").role == "debugger"


@pytest.mark.parametrize(
    ("request_text", "role"),
    [
        ("Schreibe Unit-Tests für die Klasse Warenkorb.", "testing"),
        ("Écris la documentation de la commande export.", "documentation"),
        ("Revisa este código y dime si hay problemas.", "review"),
        ("Me sale el error `TypeError: x is undefined` al arrancar. ¿Por qué?", "debugger"),
        ("Vergleiche Kafka und RabbitMQ für unser Event-System.", "research"),
        ("Merci beaucoup, bonne journée !", "general"),
    ],
)
def test_some_cues_in_german_french_and_spanish(request_text: str, role: str) -> None:
    assert infer_role(None, request_text).role == role


def test_tricky_requests() -> None:
    # A review that mentions tests, a bug report that asks for the fix, docs about tests,
    # research that compares testing frameworks, and a greeting.
    assert infer_role(None, "Review the tests in test_billing.py: are they meaningful?").role == (
        "review"
    )
    assert infer_role(None, "Find the root cause of the off-by-one and fix it.").role == "debugger"
    assert infer_role(None, "Document the fixtures in conftest.py.").role == "documentation"
    assert infer_role(None, "Compare Vitest and Jest: speed, ESM support.").role == "research"
    assert infer_role(None, "Good morning").role == "general"


@pytest.mark.parametrize("request_text", ["", "   ", "\n\t\n"])
def test_nothing_to_read_plays_general(request_text: str) -> None:
    got = infer_role(None, request_text)
    assert got.role == "general" and got.confidence == 1.0
    assert got.reasons == ["no role stood out (minimum 3)"]


def test_weak_cues_fall_back_to_general_and_say_so() -> None:
    got = infer_role(None, "What's 15% of 2,340?")
    assert got.role == "general"
    assert got.reasons[0].startswith("no role stood out")


def test_a_megabyte_is_read_by_its_head_and_tail() -> None:
    filler = "lorem ipsum dolor sit amet " * 40_000  # about 1 MB
    assert len(filler) > 1_000_000
    got = infer_role(filler, filler)
    assert got.role in ROLES
    # A cue far from both ends is not read; at the end of the request it is.
    assert infer_role(None, filler + " traceback " + filler).role == "general"
    assert infer_role(None, filler + "\nWhy does the build fail?").role == "debugger"
    assert infer_role("x" * 1_000_000, "\n" * 1_000_000).role == "general"


def test_never_a_role_outside_roles() -> None:
    rng = random.Random(7)
    vocabulary = [w for e in bench_roles.load_examples()[:60] for w in e.request.split()]
    alphabet = "abcXYZ .,:;!?\n\t`'\"()[]{}/\\-_=+*#@$%^&|<>~0123456789éüß—«»…"
    for _ in range(300):
        words = " ".join(rng.choice(vocabulary) for _ in range(rng.randint(0, 40)))
        noise = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 200)))
        system = rng.choice([None, "", noise, words])
        got = infer_role(system, rng.choice([words, noise, words + noise]))
        assert got.role in ROLES
        assert 0.0 <= got.confidence <= 1.0
        assert all(isinstance(r, str) and r for r in got.reasons)


def test_confidence_is_the_winning_margin() -> None:
    cues = Cues.from_toml(
        '[settings]\nstrong = 8.0\n[review.request]\n4 = ["diff"]\n[testing.request]\n4 = ["tests"]\n'
        '2 = ["assert"]'
    )
    tie = infer.decide(infer.score(None, "the diff and the tests", cues))
    assert tie == Inference(
        "review", 0.0, ["request: 'diff' → review", "scores: review 4, testing 4"]
    )
    clear = infer.decide(infer.score(None, "tests that assert", cues))
    assert clear.role == "testing" and clear.confidence == 6 / 8  # margin over max(score, strong)
    weak = infer.decide(infer.score(None, "assert", cues))
    assert weak.role == "general" and weak.confidence == round(1 - 2 / 3, 3)
    assert weak.reasons[0] == "no role stood out: the best was testing at 2 (minimum 3)"


def test_the_cues_load_on_first_use() -> None:
    code = (
        "from crewchief.gateway import infer; assert not infer.cues_loaded(); "
        "infer.infer_role(None, 'hi'); assert infer.cues_loaded()"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr


def test_the_shipped_cues_cover_every_role_and_place() -> None:
    cues = shipped_cues()
    for place, index in cues.places.items():
        found = {c.role for cs in index.values() for c in cs}
        expected = set(ROLES) - ({"general"} if place == "system" else set())
        assert expected <= found | ({"general"} & found), (place, set(ROLES) - found)
    assert {p.role for p in cues.patterns} >= {"debugger"}


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[wizard.request]\n3 = ["spell"]', "[wizard]: not a role"),
        ('[review.elsewhere]\n3 = ["x"]', "[review.elsewhere]"),
        ('[review.request]\nheavy = ["x"]', "weight 'heavy' is not a number"),
        ('[review.request]\n3 = ["..."]', "expected words"),
        ('[[debugger.patterns]]\nlabel = "x"\nweight = 1\nregex = "("', "debugger.patterns"),
        ('[[debugger.patterns]]\nlabel = "x"\nweight = 1', "expected literals or a regex"),
        ("[settings]\nspeed = 3", "[settings]"),
    ],
)
def test_a_bad_cue_file_is_refused_with_the_place(toml: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Cues.from_toml(toml)


def test_the_bench_reports_what_it_measures(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_roles.main(["--rounds", "1", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    examples = bench_roles.load_examples()
    dev = [e for e in examples if e.split == "dev"]
    right = sum(infer_role(e.system, e.request).role == e.role for e in dev)
    assert report["examples"] == len(examples)
    assert report["splits"]["dev"]["accuracy"] == pytest.approx(right / len(dev))
    assert set(report["splits"]["test"]["by_role"]) == set(ROLES)
    assert 0 < report["p50_us"] <= report["p99_us"] <= report["max_us"]
    assert set(report["met"]) == {"test_accuracy", "p50_us"}
