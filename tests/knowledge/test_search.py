"""Hybrid code search: what it finds, how it stays fresh, whose it is, and what survives a kill."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from crewchief.config import Settings
from crewchief.knowledge.search import CodeSearch, SearchError
from crewchief.knowledge.store import shared_client
from crewchief.knowledge.stores import VectorStores
from tests.conftest import make_settings
from tests.knowledge._chroma import free_port, start_chroma, stop

RETRY = '''
def backoff_delay(attempt: int, base: float = 0.5) -> float:
    """How long to wait before the next attempt: doubles each time, capped at a minute."""
    return min(60.0, base * 2 ** attempt)


def parse_retry_after(header: str) -> float:
    """Seconds from a Retry-After header."""
    return float(header)
'''
CACHE = '''
class LruCache:
    """Keeps the most recently used entries and evicts the oldest when full."""

    def get(self, key):
        return self._data.get(key)

    def evict_oldest(self):
        self._data.popitem(last=False)
'''
DOCS = "# Guide\n\n## Configuration\n\nSet CREWCHIEF_HOME to move the data folder.\n"


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    (root / "src").mkdir(parents=True)
    (root / "src" / "retry.py").write_text(RETRY)
    (root / "src" / "cache.py").write_text(CACHE)
    (root / "README.md").write_text(DOCS)
    (root / "logo.png").write_bytes(b"\x89PNG\x00\x00binary")
    return root


@pytest.fixture
def search(settings: Settings) -> CodeSearch:
    found = CodeSearch(settings, VectorStores(settings))
    yield found
    found.close()


def _top(result) -> tuple[str, str]:  # noqa: ANN001
    return result.hits[0].path, result.hits[0].symbol


def test_a_question_in_words_finds_the_function_and_says_why(
    search: CodeSearch, workspace: Path
) -> None:
    result = search.search(None, workspace, "how long to wait between retry attempts")
    assert result.refresh is not None and result.refresh.added == 3  # the PNG is left out
    assert (result.files, result.vectors, result.mode) == (3, True, "hybrid")
    hit = result.hits[0]
    assert _top(result) == ("src/retry.py", "backoff_delay")
    assert (hit.start, hit.end, hit.kind) == (2, 4, "function")
    assert hit.bm25_rank == 1 and hit.vector_rank is not None
    assert "wait" in hit.matched and "attempts" in hit.matched
    assert hit.why().startswith("keywords #1: ") and "meaning #" in hit.why()
    assert "src/retry.py:2-4 backoff_delay" in result.render()
    docs = search.search(None, workspace, "where the data folder is configured", k=1)
    assert _top(docs) == ("README.md", "Guide > Configuration")


def test_each_ranking_alone_and_a_glob_restrict_what_is_found(
    search: CodeSearch, workspace: Path
) -> None:
    keyword = search.search(None, workspace, "evict_oldest", mode="bm25")
    assert _top(keyword) == ("src/cache.py", "LruCache")
    assert all(h.vector_rank is None for h in keyword.hits)
    meaning = search.search(None, workspace, "least recently used entries", mode="vector")
    assert _top(meaning)[1] == "LruCache" and all(h.bm25_rank is None for h in meaning.hits)
    only_docs = search.search(None, workspace, "retry attempts wait", glob="*.md")
    assert {h.path for h in only_docs.hits} <= {"README.md"}


def test_changes_are_picked_up_incrementally(search: CodeSearch, workspace: Path) -> None:
    search.search(None, workspace, "warm", refresh="now")
    index = search.index(None, workspace)
    assert not index.refresh().touched  # nothing changed: nothing re-read
    os.utime(workspace / "src" / "cache.py")  # a new mtime, the same content
    assert index.refresh().embedded == 0

    (workspace / "src" / "retry.py").write_text(RETRY + "\ndef jitter():\n    return 0.1\n")
    (workspace / "src" / "cache.py").unlink()
    (workspace / "src" / "queue.py").write_text("def enqueue_job(job):\n    return job\n")
    done = index.refresh()
    assert (done.added, done.changed, done.removed) == (1, 1, 1)
    # Only new chunk texts are embedded: the unchanged functions of retry.py keep theirs.
    assert (done.embedded, done.unembedded) == (2, 1)  # jitter and queue.py; cache.py's

    found = search.search(None, workspace, "enqueue a job", refresh="never")
    assert _top(found) == ("src/queue.py", "enqueue_job")
    for mode in ("bm25", "vector"):
        hits = search.search(None, workspace, "evict the oldest entries", mode=mode).hits
        assert all(h.path != "src/cache.py" for h in hits), mode
    index = search.index(None, workspace)
    assert index.vectors.size() == index.stats()[1] == 6  # one per chunk: nothing left over


def test_a_stale_index_is_refreshed_in_the_background(tmp_path: Path, workspace: Path) -> None:
    settings = make_settings(tmp_path / "home")
    settings.knowledge.search_refresh_seconds = 0
    search = CodeSearch(settings, VectorStores(settings))
    try:
        search.search(None, workspace, "warm")
        (workspace / "src" / "late.py").write_text("def arrives_later():\n    pass\n")
        deadline = time.monotonic() + 30
        while True:
            hits = search.search(None, workspace, "arrives later", mode="bm25").hits
            if hits and hits[0].path == "src/late.py":
                break
            assert time.monotonic() < deadline, "the change was never picked up"
            time.sleep(0.05)
    finally:
        search.close()


def test_a_stored_index_is_loaded_by_another_process_without_rework(
    settings: Settings, workspace: Path
) -> None:
    first = CodeSearch(settings, VectorStores(settings))
    first.search(None, workspace, "warm")
    first.close()
    again = CodeSearch(settings, VectorStores(settings))
    try:
        result = again.search(None, workspace, "backoff delay", refresh="now")
        assert result.refresh is not None and not result.refresh.touched
        assert _top(result) == ("src/retry.py", "backoff_delay")
    finally:
        again.close()


def test_owners_never_see_each_others_index_and_forgetting_deletes_it(
    settings: Settings, search: CodeSearch, workspace: Path
) -> None:
    secret = workspace / "src" / "secret.py"
    secret.write_text("def launch_codes():\n    return 'zebra-42'\n")
    alice = search.search("alice", workspace, "launch codes")
    assert _top(alice) == ("src/secret.py", "launch_codes")
    secret.unlink()
    # Alice's index still holds it until refreshed; Bob's, built now, never did.
    assert _top(search.search("alice", workspace, "launch codes", refresh="never"))[1] == (
        "launch_codes"
    )
    bob = search.search("bob", workspace, "launch codes")
    assert all(h.path != "src/secret.py" for h in bob.hits)

    alice_index = search.index("alice", workspace)
    stamped = alice_index.vectors._chroma().get(include=["metadatas"])["metadatas"]
    assert {m["owner"] for m in stamped} == {"alice"}
    collection = alice_index.vectors.collection
    assert search.forget("alice") == 1
    assert not alice_index.directory.exists()
    names = {c.name for c in shared_client(settings).list_collections()}
    assert collection not in names
    assert _top(search.search("bob", workspace, "backoff delay"))[1] == "backoff_delay"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"query": "  "}, "query"),
        ({"query": "x" * 2001}, "query"),
        ({"k": 0}, "k"),
        ({"k": 51}, "k"),
        ({"mode": "fuzzy"}, "mode"),
        ({"glob": "../outside/*"}, "glob"),
    ],
)
def test_bad_arguments_are_refused_naming_the_argument(
    search: CodeSearch, workspace: Path, kwargs: dict, field: str
) -> None:
    query = kwargs.pop("query", "retry")
    with pytest.raises(SearchError, match=f"^{field}: "):
        search.search(None, workspace, query, **kwargs)


def test_scaled_mode_without_a_chroma_server_searches_by_keywords_only(
    tmp_path: Path, workspace: Path
) -> None:
    settings = make_settings(tmp_path / "home", executor="queue")
    search = CodeSearch(settings, VectorStores(settings))
    try:
        result = search.search(None, workspace, "retry backoff delay")
        assert (result.vectors, result.mode) == (False, "bm25")
        assert _top(result)[1] == "backoff_delay"
        with pytest.raises(SearchError, match="^mode: 'vector' needs vectors"):
            search.search(None, workspace, "retry", mode="vector")
    finally:
        search.close()


INDEXER = textwrap.dedent(
    """
    import sys
    from crewchief.knowledge.search import CodeSearch
    from crewchief.knowledge.stores import VectorStores
    from tests.conftest import make_settings

    settings = make_settings(sys.argv[1])
    search = CodeSearch(settings, VectorStores(settings))
    print("indexing", flush=True)
    search.search(None, sys.argv[2], "anything", refresh="now")
    print("done", flush=True)
    """
)


def _many_files(root: Path, count: int) -> None:
    for i in range(count):
        body = "\n\n".join(
            f"def handler_{i}_{j}(request):\n    return route_{j}(request, {i})" for j in range(20)
        )
        (root / f"module_{i}.py").write_text(body + "\n")


def _chunks_stored(db: Path) -> int:
    import sqlite3

    with contextlib.closing(sqlite3.connect(db, timeout=30)) as conn:
        return conn.execute("SELECT count(*) FROM chunks").fetchone()[0]


def test_an_indexer_killed_mid_refresh_loses_nothing(tmp_path: Path) -> None:
    home, workspace = tmp_path / "home", tmp_path / "big"
    workspace.mkdir()
    _many_files(workspace, 400)
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-c", INDEXER, str(home), str(workspace)],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "indexing"
        # Killed while it writes vectors, before the transaction that would use them.
        deadline = time.monotonic() + 60
        while not (home / "chroma" / "chroma.sqlite3").exists():
            assert time.monotonic() < deadline, "the indexer never reached its vectors"
            time.sleep(0.01)
        time.sleep(0.2)
        assert proc.poll() is None, "the indexer finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        db = next(home.glob("code-index/*/index.db"))
        assert _chunks_stored(db) == 0, "killed too late: the chunks were already stored"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    settings = make_settings(home)
    search = CodeSearch(settings, VectorStores(settings))
    try:
        result = search.search(None, workspace, "handler 399 19", refresh="now")
        index = search.index(None, workspace)
        files, chunks = index.stats()
        assert (files, chunks) == (400, 8000)
        assert index.vectors.size() == chunks  # every chunk has its vector, and no more
        assert any(h.symbol == "handler_399_19" for h in result.hits)
    finally:
        search.close()


def test_an_index_cut_to_another_chunk_size_is_rebuilt(tmp_path: Path, workspace: Path) -> None:
    (workspace / "src" / "long.py").write_text(
        "def long_one():\n" + "".join(f"    step_{i}()  # part {i}\n" for i in range(120))
    )
    first = CodeSearch(make_settings(tmp_path / "home"), None)
    before = first.search(None, workspace, "step", mode="bm25").chunks
    first.close()
    settings = make_settings(tmp_path / "home")
    settings.knowledge.chunk_tokens = 64
    again = CodeSearch(settings, VectorStores(settings))
    try:
        result = again.search(None, workspace, "step 100", refresh="now")
        assert result.refresh.added == 4 and result.chunks > before
        assert again.index(None, workspace).vectors.size() == result.chunks
    finally:
        again.close()


def test_a_chroma_server_that_dies_leaves_keyword_search_and_is_caught_up_on_return(
    tmp_path: Path, workspace: Path
) -> None:
    data, port = tmp_path / "chroma", free_port()
    server = start_chroma(data, port)
    settings = make_settings(
        tmp_path / "home", knowledge={"chroma_url": f"http://127.0.0.1:{port}"}
    )
    search = CodeSearch(settings, VectorStores(settings))
    try:
        assert search.search(None, workspace, "backoff delay").vectors
        stop(server, signal.SIGKILL)
        (workspace / "src" / "queue.py").write_text("def enqueue_job(job):\n    return job\n")
        (workspace / "src" / "cache.py").unlink()  # its vector cannot be deleted yet
        result = search.search(None, workspace, "enqueue a job", refresh="now")
        assert (result.vectors, result.mode) == (False, "bm25")  # answered, by keywords
        assert _top(result) == ("src/queue.py", "enqueue_job")

        server = start_chroma(data, port)
        search.index(None, workspace).refresh()  # nothing changed on disk: vectors catch up
        back = search.search(None, workspace, "enqueue a job", mode="vector")
        assert back.vectors and _top(back) == ("src/queue.py", "enqueue_job")
        index = search.index(None, workspace)
        assert index.vectors.size() == index.stats()[1]
    finally:
        search.close()
        stop(server)
