"""Hybrid code search over a workspace: BM25 and vectors, fused by reciprocal rank.

Each (owner, workspace) pair has its own index under ``<home>/code-index/<key>/``:

- the files' chunks (:mod:`crewchief.knowledge.chunks`), their BM25 terms
  (:mod:`crewchief.knowledge.terms`) and each file's size, modification time and SHA-256,
  in a SQLite file;
- the chunks' vectors in a Chroma collection of their own (``code-<key>``), through
  :class:`~crewchief.knowledge.store.VectorStore`, every entry stamped with its owner.

A search ranks the chunks twice, by BM25 (``bm25s``, rebuilt in memory from the stored
terms, a fraction of a second at 10,000 chunks) and by cosine similarity to the question,
and fuses the two rankings with reciprocal rank fusion: a chunk scores
``sum(1 / (5 + rank))`` over the rankings that hold it, so a chunk both find comes
first, and one only a single ranking finds still has its place.

The index is kept fresh incrementally. A refresh walks the workspace (``.gitignore`` and
the usual build folders are left out, as by the file tools), reads only files whose size
or modification time changed, re-cuts only those whose content hash changed, embeds only
chunks whose text is new (a chunk's id is a hash of its path and text), and deletes the
vectors no chunk uses any more. Vectors are written before the SQLite transaction that
references them commits, and deleted after it, so a process killed mid-refresh leaves an
index that the next refresh completes. Refreshes of one index are serialized across
processes by a lock file. A search on an index checked more than
``knowledge.search_refresh_seconds`` ago is answered from it while a refresh runs in the
background; a workspace never indexed is indexed first.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from crewchief.config import Settings
from crewchief.knowledge._imports import heavy
from crewchief.knowledge.chunks import Chunk, chunk_file
from crewchief.knowledge.store import VectorStore, owner_key
from crewchief.knowledge.stores import VectorStores
from crewchief.knowledge.terms import sourced_terms, terms, words
from crewchief.tools._walk import glob_regex, walk

log = logging.getLogger(__name__)

Mode = Literal["hybrid", "bm25", "vector"]
MODES: tuple[str, ...] = ("hybrid", "bm25", "vector")
# The rank constant of reciprocal rank fusion, chosen on half of the labelled queries of
# bench/code_search.py (of 1, 5, 10, 20 and 60; the other half confirms it).
RRF_K = 5
INDEX_VERSION = "1"  # a change to chunking or terms: indexes of another version are rebuilt
MAX_FILE_BYTES = 1_000_000  # larger files are not indexed (generated code, data, bundles)
_BINARY_PROBE = 8192
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, sha256 TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, path TEXT NOT NULL,
    start INTEGER NOT NULL, "end" INTEGER NOT NULL, symbol TEXT NOT NULL, kind TEXT NOT NULL,
    terms TEXT NOT NULL, text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_path ON chunks (path);
"""


class SearchError(ValueError):
    """A search that cannot run as asked (an empty query, an unknown mode, no vectors)."""


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One chunk found: where it is, how it ranked in each list, and why it matched."""

    path: str
    start: int
    end: int
    symbol: str
    kind: str
    score: float  # the fused score (reciprocal rank fusion)
    text: str
    bm25_rank: int | None = None
    bm25_score: float | None = None
    vector_rank: int | None = None
    similarity: float | None = None
    matched: tuple[str, ...] = ()  # the query's words found in the chunk

    def why(self) -> str:
        """Why this chunk matched, in a few words."""
        reasons = []
        if self.bm25_rank is not None:
            words = f": {', '.join(self.matched)}" if self.matched else ""
            reasons.append(f"keywords #{self.bm25_rank}{words}")
        if self.vector_rank is not None:
            reasons.append(f"meaning #{self.vector_rank} (similarity {self.similarity:.2f})")
        return "; ".join(reasons)

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "start_line": self.start,
            "end_line": self.end,
            "symbol": self.symbol,
            "kind": self.kind,
            "score": round(self.score, 5),
            "bm25": None
            if self.bm25_rank is None
            else {"rank": self.bm25_rank, "score": round(self.bm25_score or 0.0, 4)},
            "vector": None
            if self.vector_rank is None
            else {"rank": self.vector_rank, "similarity": round(self.similarity or 0.0, 4)},
            "matched": list(self.matched),
            "why": self.why(),
            "text": self.text,
        }


@dataclass(frozen=True, slots=True)
class Refresh:
    """What one refresh of an index changed, and how long it took."""

    added: int = 0  # files
    changed: int = 0
    removed: int = 0
    embedded: int = 0  # chunks whose vectors were computed
    unembedded: int = 0  # vectors deleted
    seconds: float = 0.0
    skipped: int = 0  # files left out: too large, binary, or past the file limit

    @property
    def touched(self) -> bool:
        return bool(self.added or self.changed or self.removed)

    def as_dict(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "changed": self.changed,
            "removed": self.removed,
            "embedded": self.embedded,
            "skipped": self.skipped,
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True, slots=True)
class SearchResult:
    """A search's hits, best first, and the state of the index that answered it."""

    query: str
    workspace: str
    mode: str
    hits: list[SearchHit]
    ms: float
    files: int
    chunks: int
    vectors: bool
    refresh: Refresh | None = None  # the refresh this search waited for, if any

    def as_dict(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "workspace": self.workspace,
            "mode": self.mode,
            "took_ms": round(self.ms, 2),
            "index": {
                "files": self.files,
                "chunks": self.chunks,
                "vectors": self.vectors,
                "refresh": self.refresh.as_dict() if self.refresh else None,
            },
            "hits": [hit.as_dict() for hit in self.hits],
        }

    def render(self, lines: int = 8) -> str:
        """The hits as text for a model: location, symbol, why, and the first lines."""
        if not self.hits:
            return f"no chunk of the workspace matches {self.query!r}"
        out = []
        for n, hit in enumerate(self.hits, 1):
            title = f" {hit.symbol}" if hit.symbol else ""
            out.append(f"{n}. {hit.path}:{hit.start}-{hit.end}{title}  ({hit.why()})")
            body = hit.text.splitlines()
            out.extend(f"    {line}" for line in body[:lines])
            if len(body) > lines:
                out.append(f"    … {len(body) - lines} more lines")
        return "\n".join(out)


@dataclass(frozen=True, slots=True)
class _Row:
    id: str
    path: str
    start: int
    end: int
    symbol: str
    kind: str
    terms: frozenset[str]
    text: str


@dataclass(frozen=True, slots=True)
class _FileRow:
    size: int
    mtime_ns: int
    sha256: str


@dataclass(slots=True)
class _State:
    """An index as loaded in memory; replaced whole by a refresh, so a search never waits."""

    generation: str = ""
    rows: list[_Row] = field(default_factory=list)
    by_id: dict[str, int] = field(default_factory=dict)
    files: dict[str, _FileRow] = field(default_factory=dict)
    tokens: list[list[str]] = field(default_factory=list)  # each row's terms, for BM25
    bm25: Any = None

    @classmethod
    def build(
        cls,
        generation: str,
        rows: list[_Row],
        files: dict[str, _FileRow],
        tokens: list[list[str]],
    ) -> _State:
        by_id = {r.id: i for i, r in enumerate(rows)}
        state = cls(generation, rows, by_id, files, tokens)
        if rows:
            bm25s = heavy("bm25s")
            logging.getLogger("bm25s").setLevel(logging.WARNING)  # it sets DEBUG on import
            state.bm25 = bm25s.BM25()
            state.bm25.index(tokens, show_progress=False)
        return state


def chunk_id(path: str, text: str, occurrence: int) -> str:
    """A chunk's id: the same path and text (the ``occurrence``-th time in the file) keep
    the same id, and so their vector, when other lines of the file change."""
    digest = hashlib.sha256(f"{path}\0{occurrence}\0{text}".encode()).hexdigest()
    return digest[:32]


class CodeIndex:
    """The search index of one owner's view of one workspace.

    Args:
        directory: Where the index is kept.
        root: The workspace (an absolute, resolved directory).
        owner: Whose index it is (the API key owner; None for the library and no-auth).
        vectors: The chunks' vector collection (None: BM25 only).
        chunk_tokens: The largest chunk, in tokens.
        max_files: The most files indexed (in walk order); the rest are counted as skipped.
    """

    def __init__(
        self,
        directory: Path,
        root: Path,
        owner: str | None,
        vectors: VectorStore | None,
        *,
        chunk_tokens: int,
        max_files: int,
    ):
        self.directory, self.root, self.owner = directory, root, owner
        self.vectors = vectors
        self.chunk_tokens, self.max_files = chunk_tokens, max_files
        self._version = f"{INDEX_VERSION}/{chunk_tokens}"
        self.checked_at = 0.0  # monotonic time of the last refresh in this process
        self.last_vector_error: str | None = None  # why the last search had no vectors
        self._state = _State()
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    # -- storage -----------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.directory / "index.db", timeout=60, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
            self._db = db
        return self._db

    def _meta(self, db: sqlite3.Connection, key: str) -> str | None:
        row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[sqlite3.Connection]:
        """This index for writing: one thread here, one process anywhere."""
        with self._lock:
            db = self._connect()
            with open(self.directory / "lock", "a+b") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                try:
                    yield db
                finally:
                    fcntl.flock(lock, fcntl.LOCK_UN)

    def _load(self, db: sqlite3.Connection) -> None:
        """Read the stored index into memory (when another process changed it, or at first)."""
        generation = self._meta(db, "generation") or ""
        if generation == self._state.generation and self._state.rows:
            return
        if self._meta(db, "version") not in (None, self._version):
            # Cut or tokenized another way (a new release, another chunk size): start again.
            if self.vectors is not None:
                self.vectors.drop()
            with db:
                db.execute("DELETE FROM chunks")
                db.execute("DELETE FROM files")
                db.execute("DELETE FROM meta WHERE key IN ('generation', 'version')")
            generation = ""
        files = {
            path: _FileRow(size, mtime, sha)
            for path, size, mtime, sha in db.execute(
                "SELECT path, size, mtime_ns, sha256 FROM files"
            )
        }
        rows, tokens = [], []
        query = 'SELECT id, path, start, "end", symbol, kind, terms, text FROM chunks ORDER BY seq'
        for id_, path, start, end, symbol, kind, terms_, text in db.execute(query):
            words = terms_.split()
            tokens.append(words)
            rows.append(_Row(id_, path, start, end, symbol, kind, frozenset(words), text))
        self._state = _State.build(generation, rows, files, tokens)

    def ready(self) -> bool:
        """Whether the index has been built (here or by another process) and is loaded."""
        if self._state.generation:
            return True
        with self._lock:
            db = self._connect()
            if not self._meta(db, "generation"):
                return False
            self._load(db)
            return True

    # -- refresh -----------------------------------------------------------------------

    def refresh(self) -> Refresh:
        """Bring the index up to date with the workspace's files."""
        started = time.perf_counter()
        with self._exclusive() as db:
            self._load(db)
            state = self._state
            seen: dict[str, _FileRow] = {}
            cut: dict[str, list[Chunk]] = {}
            skipped = 0
            for n, entry in enumerate(walk(self.root)):
                if n >= self.max_files:
                    skipped += 1
                    continue
                found = self._look(entry.rel, entry.real, state.files.get(entry.rel), cut)
                if found is None:
                    skipped += 1
                else:
                    seen[entry.rel] = found
            removed = [p for p in state.files if p not in seen]
            stat_only = [p for p in seen if p not in cut and seen[p] != state.files.get(p)]
            if not cut and not removed and not stat_only and state.generation:
                self._reconcile(db)
                self.checked_at = time.monotonic()
                return Refresh(skipped=skipped, seconds=time.perf_counter() - started)
            refresh = self._apply(db, state, seen, cut, removed, skipped)
            self._reconcile(db)
        self.checked_at = time.monotonic()
        return Refresh(**{**refresh, "seconds": time.perf_counter() - started})

    def _look(
        self, rel: str, real: Path, known: _FileRow | None, cut: dict[str, list[Chunk]]
    ) -> _FileRow | None:
        """The file's row, cutting it into ``cut[rel]`` when its content changed; None for a
        file that is not indexed (too large, binary, unreadable)."""
        try:
            st = os.stat(real)
            if st.st_size > MAX_FILE_BYTES:
                return None
            if known and known.size == st.st_size and known.mtime_ns == st.st_mtime_ns:
                return known
            data = real.read_bytes()
        except OSError:
            return None
        if b"\0" in data[:_BINARY_PROBE]:
            return None
        row = _FileRow(len(data), st.st_mtime_ns, hashlib.sha256(data).hexdigest())
        if known is None or known.sha256 != row.sha256:
            cut[rel] = chunk_file(rel, data.decode("utf-8", errors="replace"), self.chunk_tokens)
        return row

    def _apply(
        self,
        db: sqlite3.Connection,
        state: _State,
        seen: dict[str, _FileRow],
        cut: dict[str, list[Chunk]],
        removed: list[str],
        skipped: int,
    ) -> dict[str, int]:
        gone = set(removed) | set(cut)
        kept_at = [i for i, r in enumerate(state.rows) if r.path not in gone]
        kept = [state.rows[i] for i in kept_at]
        new_rows: list[_Row] = []
        new_tokens: list[list[str]] = []
        for path, chunks in cut.items():
            occurrences: dict[str, int] = {}
            for c in chunks:
                occurrence = occurrences.get(c.text, 0)
                occurrences[c.text] = occurrence + 1
                words = terms(f"{c.path}\n{c.symbol}\n{c.text}")
                new_tokens.append(words)
                id_ = chunk_id(path, c.text, occurrence)
                row = _Row(id_, c.path, c.start, c.end, c.symbol, c.kind, frozenset(words), c.text)
                new_rows.append(row)
        before = {r.id for r in state.rows}
        after = {r.id for r in kept} | {r.id for r in new_rows}
        fresh = [r for r in new_rows if r.id not in before]
        if fresh and not self._embed(db, fresh):
            fresh = []  # the vector store is unreachable: embedded when it answers again
        generation = f"{time.time_ns():x}"
        unused = sorted(before - after) if self.vectors is not None else []
        stale = self._meta(db, "vectors_stale") == "1"  # an earlier failure, still to repair
        with db:
            db.executemany("DELETE FROM chunks WHERE path = ?", [(p,) for p in gone])
            db.executemany("DELETE FROM files WHERE path = ?", [(p,) for p in removed])
            db.executemany(
                'INSERT INTO chunks (id, path, start, "end", symbol, kind, terms, text)'
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (r.id, r.path, r.start, r.end, r.symbol, r.kind, " ".join(t), r.text)
                    for r, t in zip(new_rows, new_tokens, strict=True)
                ],
            )
            db.executemany(
                "INSERT OR REPLACE INTO files (path, size, mtime_ns, sha256) VALUES (?, ?, ?, ?)",
                [(p, f.size, f.mtime_ns, f.sha256) for p, f in seen.items()],
            )
            db.executemany(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                [
                    ("generation", generation),
                    ("version", self._version),
                    ("owner", owner_key(self.owner)),
                    ("workspace", str(self.root)),
                ],
            )
            if unused:  # until they are deleted: a process killed first leaves this mark
                db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('vectors_stale', '1')")
        if unused:
            try:
                self.vectors.delete_ids(unused)  # type: ignore[union-attr]
            except Exception as exc:  # noqa: BLE001 - any client or server failure
                self._vectors_failed(db, exc)
                unused = []
            else:
                if not stale:
                    with db:
                        db.execute("DELETE FROM meta WHERE key = 'vectors_stale'")
        # Rows keep the order of the stored ones: those kept, then the new ones.
        tokens = [state.tokens[i] for i in kept_at] + new_tokens
        self._state = _State.build(generation, kept + new_rows, dict(seen), tokens)
        added = sum(1 for p in cut if p not in state.files)
        return {
            "added": added,
            "changed": len(cut) - added,
            "removed": len(removed),
            "embedded": len(fresh) if self.vectors is not None else 0,
            "unembedded": len(unused) if self.vectors is not None else 0,
            "skipped": skipped,
        }

    def _embed(self, db: sqlite3.Connection, rows: list[_Row]) -> bool:
        """Store the vectors of ``rows``; False (and the index marked for a later
        reconciliation) when the vector store fails."""
        if self.vectors is None:
            return True
        try:
            self.vectors.add(
                self.owner,
                [_embedded(r) for r in rows],
                metadatas=[{"path": r.path} for r in rows],
                ids=[r.id for r in rows],
            )
        except Exception as exc:  # noqa: BLE001 - any client or server failure
            self._vectors_failed(db, exc)
            return False
        return True

    def _vectors_failed(self, db: sqlite3.Connection, exc: Exception) -> None:
        log.warning(
            "code index of %s: the vector store failed (%s); searches use keywords until it"
            " answers again",
            self.root,
            exc,
        )
        with db:
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('vectors_stale', '1')")

    def _reconcile(self, db: sqlite3.Connection) -> None:
        """After a vector store failure: embed the chunks it lacks, delete the vectors no
        chunk uses (a no-op while it still fails)."""
        if self.vectors is None or self._meta(db, "vectors_stale") != "1":
            return
        try:
            stored = self.vectors.ids()
        except Exception as exc:  # noqa: BLE001
            log.warning("code index of %s: the vector store still fails (%s)", self.root, exc)
            return
        rows = self._state.rows
        wanted = {r.id for r in rows}
        missing = [r for r in rows if r.id not in stored]
        if missing and not self._embed(db, missing):
            return
        extra = sorted(stored - wanted)
        try:
            if extra:
                self.vectors.delete_ids(extra)
        except Exception as exc:  # noqa: BLE001
            self._vectors_failed(db, exc)
            return
        with db:
            db.execute("DELETE FROM meta WHERE key = 'vectors_stale'")
        log.info(
            "code index of %s: %d vectors added, %d deleted", self.root, len(missing), len(extra)
        )

    # -- search ------------------------------------------------------------------------

    def search(
        self, query: str, k: int = 10, mode: Mode = "hybrid", glob: str | None = None
    ) -> list[SearchHit]:
        """The ``k`` chunks that best answer ``query`` (only in files matching ``glob``)."""
        state = self._state
        if not state.rows or k <= 0:
            return []
        wanted = max(k * 5, 50)
        allowed = None
        if glob:
            matcher = glob_regex(glob)
            allowed = [bool(matcher.fullmatch(r.path)) for r in state.rows]
        sourced = sourced_terms(query)
        keyword: list[tuple[int, float]] = []
        if mode in ("hybrid", "bm25"):
            keyword = _bm25(state, [t for t, _ in sourced], wanted, allowed)
        meaning: list[tuple[int, float]] = []
        if mode in ("hybrid", "vector") and self.vectors is not None:
            meaning = self._nearest(state, query, wanted, allowed)
        fused: dict[int, float] = {}
        for ranking in (keyword, meaning):
            for rank, (i, _score) in enumerate(ranking, 1):
                fused[i] = fused.get(i, 0.0) + 1.0 / (RRF_K + rank)
        kw = {i: (rank, s) for rank, (i, s) in enumerate(keyword, 1)}
        vec = {i: (rank, s) for rank, (i, s) in enumerate(meaning, 1)}
        best = sorted(fused, key=lambda i: (-fused[i], i))[:k]
        hits = []
        for i in best:
            row = state.rows[i]
            words = tuple(dict.fromkeys(w for t, w in sourced if t in row.terms))
            hits.append(
                SearchHit(
                    row.path,
                    row.start,
                    row.end,
                    row.symbol,
                    row.kind,
                    fused[i],
                    row.text,
                    bm25_rank=kw[i][0] if i in kw else None,
                    bm25_score=kw[i][1] if i in kw else None,
                    vector_rank=vec[i][0] if i in vec else None,
                    similarity=vec[i][1] if i in vec else None,
                    matched=words if i in kw else (),
                )
            )
        return hits

    def _nearest(
        self, state: _State, query: str, wanted: int, allowed: list[bool] | None
    ) -> list[tuple[int, float]]:
        assert self.vectors is not None
        asked = wanted if allowed is None else min(len(state.rows), wanted * 4)
        try:
            nearest = self.vectors.nearest(" ".join(words(query)) or query, asked)
        except Exception as exc:  # noqa: BLE001 - any client or server failure
            log.warning("code search in %s by keywords only: %s", self.root, exc)
            self.last_vector_error = str(exc)
            return []
        self.last_vector_error = None
        out = []
        for id_, similarity in nearest:
            i = state.by_id.get(id_)
            if i is None or (allowed is not None and not allowed[i]):
                continue  # a vector left by an interrupted refresh, or outside the glob
            out.append((i, similarity))
        return out[:wanted]

    def stats(self) -> tuple[int, int]:
        """(files, chunks) in the loaded index."""
        return len(self._state.files), len(self._state.rows)

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


def _embedded(row: _Row) -> str:
    """What is embedded of a chunk: the words of its definition's name (twice: they say
    most about it), then each other word of its identifiers and comments once.

    A static embedding is a mean of word vectors: the chunk's syntax, and identifiers it
    repeats, would drown the words that carry its meaning.
    """
    name = " ".join(words(row.symbol.replace(".", " ")))
    return f"{name} {name} {' '.join(dict.fromkeys(words(row.text)))}"


def _bm25(
    state: _State, query_terms: list[str], wanted: int, allowed: list[bool] | None
) -> list[tuple[int, float]]:
    if not query_terms or state.bm25 is None:
        return []
    np = heavy("numpy")
    mask = None if allowed is None else np.asarray(allowed, dtype=np.float32)
    k = min(wanted, len(state.rows))
    docs, scores = state.bm25.retrieve(
        [query_terms], k=k, show_progress=False, weight_mask=mask, n_threads=0
    )
    return [(int(d), float(s)) for d, s in zip(docs[0], scores[0], strict=True) if s > 0]


MAX_QUERY_CHARS = 2000
MAX_K = 50


class CodeSearch:
    """The code indexes of this process, one per owner and workspace.

    Args:
        settings: The home (where indexes are kept) and ``knowledge.*``.
        stores: Where the chunks' vectors go (None, or a place that keeps none: BM25 only).
    """

    def __init__(self, settings: Settings, stores: VectorStores | None):
        self.settings = settings
        self.stores = stores
        self._indexes: dict[str, CodeIndex] = {}
        self._pending: dict[str, Future[Refresh]] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="code-index")

    @property
    def home(self) -> Path:
        return Path(self.settings.home) / "code-index"

    def _key(self, owner: str | None, root: Path) -> str:
        return hashlib.sha256(f"{owner_key(owner)}\n{root}".encode()).hexdigest()[:24]

    def _vectors(self, key: str) -> VectorStore | None:
        return None if self.stores is None else self.stores.get(f"code-{key}")

    def index(self, owner: str | None, workspace: str | Path) -> CodeIndex:
        """The index of ``owner``'s view of ``workspace`` (loaded, not refreshed)."""
        root = Path(os.path.realpath(workspace))
        key = self._key(owner, root)
        with self._lock:
            found = self._indexes.get(key)
            if found is None:
                found = CodeIndex(
                    self.home / key,
                    root,
                    owner,
                    self._vectors(key),
                    chunk_tokens=self.settings.knowledge.chunk_tokens,
                    max_files=self.settings.knowledge.index_max_files,
                )
                self._indexes[key] = found
            return found

    def search(
        self,
        owner: str | None,
        workspace: str | Path,
        query: str,
        *,
        k: int = 10,
        mode: str = "hybrid",
        glob: str | None = None,
        refresh: Literal["auto", "now", "never"] = "auto",
    ) -> SearchResult:
        """The chunks of ``workspace`` that best answer ``query``.

        Args:
            refresh: ``auto`` refreshes an index never built first, and one checked more
                than ``knowledge.search_refresh_seconds`` ago in the background; ``now``
                refreshes first; ``never`` searches the index as it is.

        Raises:
            SearchError: naming the argument that cannot be used.
        """
        started = time.perf_counter()
        query, glob = _checked(query, k, mode, glob)
        index = self.index(owner, workspace)
        if mode == "vector" and index.vectors is None:
            raise SearchError(
                "mode: 'vector' needs vectors, which are off here"
                " (scaled mode keeps them only on a Chroma server: knowledge.chroma_url)"
            )
        waited = None
        if refresh == "now" or (refresh == "auto" and not index.ready()):
            waited = self._refresh_now(index)
        elif refresh == "auto":
            age = time.monotonic() - index.checked_at
            if age > self.settings.knowledge.search_refresh_seconds:
                self.refresh_later(index)
        hits = index.search(query, k, mode, glob)  # type: ignore[arg-type]
        files, chunks = index.stats()
        vectors = index.vectors is not None and index.last_vector_error is None
        used = mode if vectors else "bm25"
        return SearchResult(
            query,
            str(index.root),
            used,
            hits,
            (time.perf_counter() - started) * 1000,
            files,
            chunks,
            vectors,
            waited,
        )

    def _refresh_now(self, index: CodeIndex) -> Refresh:
        pending = self._pending.get(str(index.directory))
        if pending is not None:
            pending.result()  # a background refresh is running: wait, then look again
        return index.refresh()

    def refresh_later(self, index: CodeIndex) -> None:
        """Refresh ``index`` in the background (once at a time; a failure is logged)."""
        key = str(index.directory)
        with self._lock:
            pending = self._pending.get(key)
            if pending is not None and not pending.done():
                return
            self._pending[key] = self._pool.submit(self._background, index)

    def warm(self, owner: str | None, workspace: str | Path) -> None:
        """Start indexing ``workspace`` in the background, so that a search soon after
        finds it ready (an operation warms its workspace as it starts)."""
        self.refresh_later(self.index(owner, workspace))

    @staticmethod
    def _background(index: CodeIndex) -> Refresh:
        try:
            return index.refresh()
        except Exception:  # noqa: BLE001 - the next search tries again
            log.exception("could not refresh the code index of %s", index.root)
            return Refresh()

    def forget(self, owner: str | None, workspace: str | Path | None = None) -> int:
        """Delete ``owner``'s indexes (of ``workspace`` only, when given), vectors included;
        how many there were."""
        wanted = owner_key(owner)
        root = str(Path(os.path.realpath(workspace))) if workspace is not None else None
        dropped = 0
        if not self.home.is_dir():
            return 0
        for directory in sorted(self.home.iterdir()):
            meta = _read_meta(directory)
            if meta.get("owner") != wanted or (root is not None and meta.get("workspace") != root):
                continue
            key = directory.name
            with self._lock:
                index = self._indexes.pop(key, None)
                pending = self._pending.pop(str(directory), None)
            if pending is not None:
                pending.result()
            if index is not None:
                index.close()
            store = self._vectors(key)
            if store is not None:
                store.drop()
            shutil.rmtree(directory, ignore_errors=True)
            dropped += 1
        return dropped

    def close(self) -> None:
        """Wait for a refresh under way, then release every index (this object is done)."""
        with _SHARED_LOCK:
            for key, found in list(_SHARED.items()):
                if found is self:
                    del _SHARED[key]
        self._pool.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            for index in self._indexes.values():
                index.close()
            self._indexes.clear()


def _read_meta(directory: Path) -> dict[str, str]:
    path = directory / "index.db"
    if not path.is_file():
        return {}
    db = sqlite3.connect(path, timeout=60)
    try:
        return dict(db.execute("SELECT key, value FROM meta").fetchall())
    except sqlite3.Error:
        return {}
    finally:
        db.close()


def _checked(query: Any, k: Any, mode: Any, glob: Any) -> tuple[str, str | None]:
    """The query stripped and the glob checked, or a SearchError naming the argument."""
    if not isinstance(query, str) or not query.strip():
        raise SearchError("query: expected a non-empty string")
    if len(query) > MAX_QUERY_CHARS:
        raise SearchError(f"query: expected at most {MAX_QUERY_CHARS} characters, got {len(query)}")
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise SearchError(f"k: expected an integer from 1 to {MAX_K}, got {k!r}")
    if mode not in MODES:
        raise SearchError(f"mode: expected one of {', '.join(MODES)}, got {mode!r}")
    if glob is not None:
        from crewchief.tools._fs import ToolError
        from crewchief.tools._walk import check_pattern

        try:
            glob = check_pattern(str(glob), "glob") or None
        except ToolError as exc:  # "glob must be relative ...", "glob contains a NUL byte"
            raise SearchError(f"glob: {str(exc).removeprefix('glob ')}") from None
    return query.strip(), glob


_SHARED: dict[tuple[str, ...], CodeSearch] = {}
_SHARED_LOCK = threading.Lock()


def code_search(settings: Settings, stores: VectorStores | None = None) -> CodeSearch:
    """This process's code search for ``settings``' home and vector store (one per place:
    an index must not be loaded twice in one process); ``stores``: the process's vector
    collections to share (their embeddings model is loaded once), used when it is made."""
    knowledge = settings.knowledge
    key = (str(settings.home), knowledge.chroma_url or "", settings.embeddings, settings.executor)
    with _SHARED_LOCK:
        found = _SHARED.get(key)
        if found is None:
            found = CodeSearch(settings, stores or VectorStores(settings))
            _SHARED[key] = found
        return found
