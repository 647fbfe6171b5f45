"""Embeddings: the shipped local model works offline, is checked by SHA-256 and loads only
when first used; the setting rebinds it to a provider's model."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from crewchief.config import Settings
from crewchief.errors import ModelConfigError, ModelRequestsBlocked
from crewchief.knowledge.embeddings import (
    WORDLLAMA_FILES,
    EmbeddingsError,
    LocalEmbeddings,
    build_embeddings,
)
from tests.conftest import make_settings

PARAPHRASES = [
    ("How do I reset my password?", "What are the steps to change a forgotten password?"),
    ("The parser crashes on empty input", "Parsing an empty string raises an exception"),
    ("Add unit tests for the cache", "Write tests covering the caching layer"),
]
UNRELATED = [
    ("How do I reset my password?", "The weather in Lisbon is sunny today"),
    ("The parser crashes on empty input", "Bake the bread for forty minutes"),
    ("Add unit tests for the cache", "The orchestra played a symphony"),
]


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_the_local_model_loads_on_first_use_and_puts_paraphrases_closer() -> None:
    model = LocalEmbeddings()
    assert not model.loaded  # building it loads nothing
    pairs = [model.embed_documents(list(p)) for p in PARAPHRASES + UNRELATED]
    assert model.loaded
    assert all(
        len(v) == 256 and math.isclose(cosine(v, v), 1.0, abs_tol=1e-4) for a in pairs for v in a
    )
    close = [cosine(a, b) for a, b in pairs[: len(PARAPHRASES)]]
    far = [cosine(a, b) for a, b in pairs[len(PARAPHRASES) :]]
    assert min(close) > max(far) + 0.2, (close, far)
    assert model.embed_query("") == model.embed_documents([" "])[0]  # empty text: no error
    assert model.embed_documents([]) == []


def test_the_local_model_needs_no_network(tmp_path: Path) -> None:
    code = (
        "from crewchief.knowledge.embeddings import LocalEmbeddings;"
        "print(len(LocalEmbeddings().embed_query('offline')))"
    )
    dead = "http://127.0.0.1:9"  # any download attempt would fail here
    env = dict(os.environ, http_proxy=dead, https_proxy=dead, HTTP_PROXY=dead, HTTPS_PROXY=dead,
               HF_HUB_OFFLINE="1", HOME=str(tmp_path))  # fmt: skip
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "256"


def test_files_that_differ_from_the_pinned_hashes_are_refused(tmp_path: Path) -> None:
    import wordllama

    source = Path(wordllama.__file__).parent
    for name in WORDLLAMA_FILES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source / name, tmp_path / name)
    assert len(LocalEmbeddings(root=tmp_path).embed_query("intact")) == 256
    weights = tmp_path / "weights/l2_supercat_256.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(EmbeddingsError, match="SHA-256"):
        LocalEmbeddings(root=tmp_path).embed_query("tampered")
    weights.unlink()
    with pytest.raises(EmbeddingsError, match="lacks"):
        LocalEmbeddings(root=tmp_path).embed_query("missing")


def test_the_setting_rebinds_embeddings_to_an_openai_compatible_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bench.fake_openai import FakeOpenAIThread

    monkeypatch.setenv("CREWCHIEF_ALLOW_MODEL_REQUESTS", "1")
    with FakeOpenAIThread() as fake:
        monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        settings = make_settings(tmp_path, embeddings="openai:text-embedding-3-small")
        vectors = build_embeddings(settings).embed_documents(["one", "two"])
        assert len(vectors) == 2 and len(vectors[0]) > 0
        assert fake.requests[-1]["path"] == "/v1/embeddings"
        assert fake.requests[-1]["body"]["input"] == ["one", "two"]


def test_bad_embedding_settings_say_what_is_wrong(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ValueError, match="provider:model"):
        Settings(embeddings="wordllama")
    with pytest.raises(ModelConfigError, match="unknown local embedding model 'minilm'"):
        build_embeddings(make_settings(tmp_path, embeddings="local:minilm"))
    with pytest.raises(ModelConfigError, match="'fake' provider has no embeddings"):
        build_embeddings(make_settings(tmp_path, embeddings="fake:default"))
    monkeypatch.setenv("CREWCHIEF_ALLOW_MODEL_REQUESTS", "0")
    with pytest.raises(ModelRequestsBlocked):
        build_embeddings(make_settings(tmp_path, embeddings="openai:text-embedding-3-small"))
    assert isinstance(build_embeddings(make_settings(tmp_path)), LocalEmbeddings)  # the default
