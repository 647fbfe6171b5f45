"""Vectors per owner on Chroma, embedded and as a server: one owner never retrieves
another's entries, deletion really deletes, and entries survive a reopening."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from crewchief.config import Settings
from crewchief.knowledge.embeddings import LocalEmbeddings
from crewchief.knowledge.store import VectorStore, shared_client
from tests.conftest import make_settings
from tests.knowledge._chroma import free_port, start_chroma, stop

NOTES = [
    "We decided to cache parsed files by content hash.",
    "The deploy runs on Fridays after the tests pass.",
    "Retries use exponential backoff with jitter.",
]


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``chroma run`` on loopback, stopped by its PID at the end."""
    port = free_port()
    proc = start_chroma(tmp_path_factory.mktemp("chroma-server"), port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)


@pytest.fixture(params=["embedded", "server"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    if request.param == "server":
        url = request.getfixturevalue("chroma_server")
        return make_settings(tmp_path / "home", knowledge={"chroma_url": url})
    return make_settings(tmp_path / "home")


def test_one_owner_never_retrieves_anothers_entries(settings: Settings, request) -> None:
    store = VectorStore(settings, LocalEmbeddings(), f"notes-{request.node.callspec.id}")
    store.add("alice", NOTES, [{"kind": "decision"}] * len(NOTES))
    store.add("bob", ["Bob's secret: the staging password rotates monthly."])
    hits = store.search("alice", "how do we cache parsed files?", k=3)
    assert hits[0].text == NOTES[0] and hits[0].metadata["owner"] == "alice"
    assert hits[0].score > hits[-1].score and 0 < hits[0].score <= 1
    assert all(h.metadata["owner"] == "alice" for h in hits)
    # Bob's entry is the closest text in the collection, and alice still never gets it.
    assert all("secret" not in h.text for h in store.search("alice", "staging password", k=5))
    assert store.search("bob", "staging password", k=5)[0].text.startswith("Bob's secret")
    assert store.search(None, "cache", k=5) == []  # the anonymous owner has nothing
    # A similarity floor drops weak matches.
    assert store.search("alice", "how do we cache parsed files?", k=3, floor=0.99) == []


def test_deleting_an_owners_entries_deletes_the_vectors(settings: Settings, request) -> None:
    name = f"delete-{request.node.callspec.id}"
    store = VectorStore(settings, LocalEmbeddings(), name)
    store.add("alice", NOTES)
    store.add("bob", NOTES[:1])
    store.delete_owner("alice")
    assert store.count("alice") == 0 and store.search("alice", NOTES[0]) == []
    assert store.count("bob") == 1
    raw = shared_client(settings).get_collection(name).get(include=["embeddings"])
    assert len(raw["ids"]) == 1 and len(raw["embeddings"]) == 1  # no vector left behind


def test_embedded_entries_survive_a_new_process(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "home")
    VectorStore(settings, LocalEmbeddings(), "kept").add("alice", NOTES)
    code = (
        "from crewchief.knowledge.store import VectorStore;"
        "from crewchief.knowledge.embeddings import LocalEmbeddings;"
        "from tests.conftest import make_settings;"
        f"s = make_settings({str(tmp_path / 'home')!r});"
        "print(VectorStore(s, LocalEmbeddings(), 'kept').search('alice', 'deploy day')[0].text)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == NOTES[1]


def test_scaled_mode_keeps_vectors_only_on_a_shared_chroma_server(tmp_path: Path) -> None:
    from crewchief.client.facade import Crewchief

    alone = Crewchief(make_settings(tmp_path / "a", executor="queue"))
    assert alone.vectors("memory") is None and alone.memory() is None
    shared = make_settings(
        tmp_path / "b", executor="queue", knowledge={"chroma_url": "http://127.0.0.1:9"}
    )
    assert isinstance(Crewchief(shared).vectors("memory"), VectorStore)  # connects on first use
    assert isinstance(Crewchief(make_settings(tmp_path / "c")).memory().store, VectorStore)


FIRST_USE_FROM_THREADS = """
import sys, threading
from pathlib import Path
from crewchief.knowledge._imports import heavy
from crewchief.knowledge.embeddings import LocalEmbeddings
from crewchief.knowledge.search import CodeSearch
from crewchief.knowledge.store import VectorStore
from tests.conftest import make_settings

home = Path(sys.argv[1])
settings = make_settings(home)
workspace = home / "ws"
workspace.mkdir(parents=True)
(workspace / "retry.py").write_text("def retry(times):\\n    return times\\n")
embeddings = LocalEmbeddings()
uses = [
    # The planner warms the workspace's keyword index while memory is recalled.
    lambda: CodeSearch(settings, None).index(None, workspace).refresh(),
    lambda: VectorStore(settings, embeddings, "operations").count("someone"),
    lambda: embeddings.embed_query("hello"),
    # The modules those load, entered at the points that race each other at once.
    lambda: heavy("langchain_chroma"),
    lambda: heavy("numpy"),
    lambda: heavy("bm25s"),
]
barrier = threading.Barrier(len(uses))
failures = []

def first_use(use):
    barrier.wait()
    try:
        use()
    except Exception as exc:
        failures.append(repr(exc))

threads = [threading.Thread(target=first_use, args=(use,)) for use in uses]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(failures or "ok")
"""


@pytest.mark.slow
def test_first_use_from_several_threads_at_once_loads_every_store(tmp_path: Path) -> None:
    """In a fresh process, the code index, two collections and the embeddings first used at
    the same moment (as in a first operation: the planner warms the code index while memory
    is recalled, and when it ends its memory and the owner's profile load Chroma on threads
    of their own) all load: numpy is never seen half-imported."""
    for attempt in range(3):
        done = subprocess.run(
            [sys.executable, "-c", FIRST_USE_FROM_THREADS, str(tmp_path / f"home{attempt}")],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=Path(__file__).parents[2],
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert done.stdout.strip().splitlines()[-1] == "ok", done.stdout[-2000:]
