"""Token counting works offline: tiktoken's cache is seeded from the bundled vocabulary."""

from __future__ import annotations

import gzip
import hashlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import tiktoken.registry

from crewchief.models import tokens as _tokens
from crewchief.models.tokens import TokenizerError, count_tokens, get_encoding

O200K_URL = "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken"
O200K_SHA256 = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"


@pytest.fixture
def fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty tiktoken cache, no loaded encodings, and no network at all."""
    cache = tmp_path / "tiktoken-cache"
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(cache))
    monkeypatch.setattr(tiktoken.registry, "ENCODINGS", {})
    _tokens._load.cache_clear()

    def no_network(*args: object, **kwargs: object) -> None:
        raise OSError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    yield cache
    _tokens._load.cache_clear()


def cached_file(cache: Path) -> Path:
    return cache / hashlib.sha1(O200K_URL.encode()).hexdigest()


def test_empty_cache_is_seeded_and_counting_works_offline(fresh: Path) -> None:
    assert not fresh.exists()
    assert count_tokens("hello world") == 2
    assert count_tokens("") == 0
    # Special-token text is counted as plain text rather than refused.
    assert count_tokens("<|endoftext|>") > 1
    assert hashlib.sha256(cached_file(fresh).read_bytes()).hexdigest() == O200K_SHA256
    assert [p.name for p in fresh.iterdir()] == [cached_file(fresh).name], "no temp files left"


def test_url_and_hash_come_from_tiktoken_itself() -> None:
    assert _tokens.blob_for("o200k_base") == (O200K_URL, O200K_SHA256)
    assert _tokens.blob_for("o200k_harmony") == (O200K_URL, O200K_SHA256)
    with pytest.raises(TokenizerError, match="no known vocabulary for tiktoken encoding 'gpt2'"):
        _tokens.blob_for("gpt2")


def test_corrupted_seed_is_refused(
    fresh: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = tmp_path / "o200k_base.tiktoken.gz"
    bad.write_bytes(gzip.compress(b"aGVsbG8= 0\n"))
    monkeypatch.setattr(_tokens, "seed_path", lambda url: bad)
    with pytest.raises(TokenizerError, match=r"expects 446a9538.* refusing to use it"):
        get_encoding()
    assert not cached_file(fresh).exists()


def test_corrupted_cache_file_is_replaced_by_the_verified_seed(fresh: Path) -> None:
    fresh.mkdir()
    cached_file(fresh).write_bytes(b"tampered")
    assert count_tokens("hello world") == 2
    assert hashlib.sha256(cached_file(fresh).read_bytes()).hexdigest() == O200K_SHA256


def test_unset_cache_dir_becomes_crewchief_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An empty value would make tiktoken skip its cache and download, so it counts as unset.
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")
    monkeypatch.setattr("platformdirs.user_cache_dir", lambda app: str(tmp_path / app))
    assert _tokens.cache_dir() == tmp_path / "crewchief" / "tiktoken"
    assert os.environ["TIKTOKEN_CACHE_DIR"] == str(tmp_path / "crewchief" / "tiktoken")
