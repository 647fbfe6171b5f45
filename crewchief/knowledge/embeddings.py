"""Text embeddings: a local static model by default, any provider's when configured.

The ``embeddings`` setting names the model, as a spec like the chat aliases':

- ``local:wordllama`` (the default): WordLlama's ``l2_supercat`` static embeddings (256
  dimensions, L2-normalized), whose weights and tokenizer ship inside the ``wordllama``
  wheel. Both files are checked against the SHA-256 pinned here before first use; nothing
  is downloaded, and no torch is loaded: an embedding is a tokenizer pass and a mean of
  table rows, tens of thousands of short texts per second on one core;
- ``openai:<model>`` (any OpenAI-compatible server, the provider's ``base_url``),
  ``ollama:<model>``, ``google:<model>`` (Vertex AI): the provider's LangChain embeddings.

Nothing loads until the first text is embedded.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Any

from langchain_core.embeddings import Embeddings

from crewchief.config import Settings
from crewchief.errors import ModelConfigError, ModelRequestsBlocked
from crewchief.knowledge._imports import heavy
from crewchief.models.providers import api_key, parse_spec, provider_config, requests_allowed

DEFAULT = "local:wordllama"
# The files of the wordllama 0.4.0.post1 wheel that make the model, and their SHA-256.
WORDLLAMA_FILES = {
    "weights/l2_supercat_256.safetensors": (
        "64b47a2dc493cb8e85944076601189739852d7b64e0e1eedcb1937a251cd9fd5"
    ),
    "tokenizers/l2_supercat_tokenizer_config.json": (
        "93248f2a9ec36c7b35f700a033d5f36228aae48db61aee31007fa49062cdeb68"
    ),
}
LOCAL_MODELS = {"wordllama": 256}  # name -> dimensions


class EmbeddingsError(RuntimeError):
    """The local embedding model cannot be loaded (missing package, files that differ)."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class LocalEmbeddings(Embeddings):
    """WordLlama's static embeddings from the installed wheel, checked by SHA-256.

    Args:
        root: Where the model's files are (default: the installed ``wordllama`` package).
        batch: Texts embedded per call of the model.
    """

    dimensions = LOCAL_MODELS["wordllama"]

    def __init__(self, root: Path | None = None, batch: int = 512):
        self.root = root
        self.batch = batch
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                self._model = self._open()
            return self._model

    def _open(self) -> Any:
        try:
            wordllama = heavy("wordllama")
            WordLlama = wordllama.WordLlama  # noqa: N806 - the package's class
        except ImportError:
            raise EmbeddingsError(
                "local embeddings need the wordllama package: pip install wordllama"
            ) from None
        root = self.root or Path(wordllama.__file__).parent
        for name, expected in WORDLLAMA_FILES.items():
            path = root / name
            if not path.is_file():
                raise EmbeddingsError(f"the local embedding model lacks {path}")
            if (found := _sha256(path)) != expected:
                raise EmbeddingsError(
                    f"{path} has SHA-256 {found}, not the pinned {expected}: reinstall"
                    " wordllama==0.4.0.post1"
                )
        # cache_dir: the wheel's own files (its default looks elsewhere and would download);
        # disable_download: a missing file is an error, never a request.
        return WordLlama.load(cache_dir=root, disable_download=True)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        model = self._load()
        out: list[list[float]] = []
        for start in range(0, len(texts), self.batch):
            chunk = [t if t.strip() else " " for t in texts[start : start + self.batch]]
            out += model.embed(chunk, norm=True).tolist()
        return out

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


def build_embeddings(settings: Settings, spec: str | None = None) -> Embeddings:
    """The embeddings model of ``spec`` (default: the ``embeddings`` setting).

    Raises:
        ModelConfigError: an unknown model or provider, or a provider without embeddings.
        ModelRequestsBlocked: a provider's model while real model requests are off.
    """
    spec = spec or settings.embeddings
    provider, name = parse_spec(spec)
    cfg = provider_config(settings, provider)
    if cfg.type in ("openai", "ollama", "google") and not requests_allowed(cfg.type):
        raise ModelRequestsBlocked(
            f"embeddings {spec!r} would make real requests, and CREWCHIEF_ALLOW_MODEL_REQUESTS"
            " switches them off"
        )
    if cfg.type == "local":
        if name not in LOCAL_MODELS:
            raise ModelConfigError(
                f"unknown local embedding model {name!r}; available: {', '.join(LOCAL_MODELS)}"
            )
        return LocalEmbeddings()
    if cfg.type == "openai":
        from langchain_openai import OpenAIEmbeddings

        base_url = cfg.base_url or os.environ.get("OPENAI_BASE_URL")
        return OpenAIEmbeddings(
            model=name,
            base_url=base_url,
            api_key=api_key(cfg, "OPENAI_API_KEY") or "unused",  # type: ignore[arg-type]
            # Other servers take text, not the token arrays OpenAI's own API accepts.
            check_embedding_ctx_length=base_url is None,
            timeout=settings.model_timeout,
        )
    if cfg.type == "ollama":
        try:
            from langchain_ollama import OllamaEmbeddings
        except ImportError:
            raise ModelConfigError(
                "ollama embeddings need: pip install 'crewchief[ollama]'"
            ) from None
        return OllamaEmbeddings(model=name, base_url=cfg.base_url or os.environ.get("OLLAMA_HOST"))
    if cfg.type == "google":
        try:
            from langchain_google_genai import GoogleGenerativeAIEmbeddings
        except ImportError:
            raise ModelConfigError(
                "google embeddings need: pip install 'crewchief[google]'"
            ) from None
        return GoogleGenerativeAIEmbeddings(
            model=name,
            vertexai=True,
            project=cfg.project or os.environ.get("GOOGLE_CLOUD_PROJECT"),
            location=cfg.location or os.environ.get("GOOGLE_CLOUD_LOCATION", "global"),
        )
    raise ModelConfigError(
        f"embeddings {spec!r}: a {cfg.type!r} provider has no embeddings; use local:wordllama,"
        " openai:<model>, ollama:<model> or google:<model>"
    )
