"""The ``local`` provider: a chat model backed by a supervised llama-server.

Requests go through ``ChatOpenAI`` against the server's OpenAI-compatible
endpoint, the same path as any other OpenAI-compatible server. Before the
first request the model file is pulled (when allowed), llama-server is found
or built, and the server is started; :meth:`LocalChatModel.aprepare` does that
ahead of time, outside any per-call time limit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, Field, PrivateAttr

from crewchief.config import LocalSettings
from crewchief.local._files import Progress, ProgressFn
from crewchief.local.build import ensure_llama_server
from crewchief.local.server import LlamaServer, ServerOptions, acquire_server, release_server
from crewchief.local.store import ModelStore

log = logging.getLogger(__name__)


def _log_progress(progress: Progress) -> None:
    # Without a progress bar, log each message once (not every percent).
    if progress.message != getattr(_log_progress, "last", None):
        _log_progress.last = progress.message  # type: ignore[attr-defined]
        log.info("%s", progress.message)


class LocalChatModel(BaseChatModel):
    """A pulled GGUF model served by llama.cpp on a loopback port."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model_name: str
    home: Path
    local: LocalSettings = Field(default_factory=LocalSettings)
    max_tokens: int = 4096
    temperature: float | None = None
    timeout: float = 300.0

    _server: LlamaServer | None = PrivateAttr(default=None)
    _clients: dict[str, Any] = PrivateAttr(default_factory=dict)

    @property
    def _llm_type(self) -> str:
        return "local"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name}

    def prepare(self, on_progress: ProgressFn | None = None) -> str:
        """Pull, build and start whatever is missing; return the server's base URL.

        Blocking (minutes on first use). Raises ``LocalModelError`` subclasses.
        """
        if self._server is None:
            report = on_progress or _log_progress
            store = ModelStore(self.home)
            if self.local.auto_pull and not store.is_pulled(self.model_name):
                path = store.pull(self.model_name, on_progress=report)
            else:
                path = store.require(self.model_name)
            binary = ensure_llama_server(
                self.home, explicit=self.local.server_binary, on_progress=report
            )
            report(Progress("start", f"starting llama-server for {self.model_name}"))
            options = ServerOptions(
                binary=binary,
                model_path=path,
                alias=self.model_name,
                context_size=self.local.context_size,
                parallel=self.local.parallel,
                threads=self.local.threads,
                startup_timeout=self.local.startup_timeout,
                log_path=self.home / "logs" / f"llama-server-{self.model_name}.log",
            )
            self._server = acquire_server(options)
        return self._server.ensure_running()

    async def aprepare(self, on_progress: ProgressFn | None = None) -> str:
        return await asyncio.to_thread(self.prepare, on_progress)

    def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            release_server(server)

    def _client(self, base_url: str) -> Any:
        client = self._clients.get(base_url)
        if client is None:
            from langchain_openai import ChatOpenAI

            kwargs: dict[str, Any] = {
                "model": self.model_name,
                "base_url": base_url,
                "api_key": "local",
                "max_tokens": self.max_tokens,
                "timeout": self.timeout,
                "max_retries": 0,
                "stream_usage": True,
            }
            if self.temperature is not None:
                kwargs["temperature"] = self.temperature
            client = self._clients[base_url] = ChatOpenAI(**kwargs)
        return client

    def bind_tools(
        self,
        tools: Sequence[Any],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable:
        formatted = [convert_to_openai_tool(tool) for tool in tools]
        if tool_choice is not None:
            kwargs["tool_choice"] = tool_choice
        return self.bind(tools=formatted, **kwargs)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        import openai

        for attempt in (1, 2):
            client = self._client(await self.aprepare())
            started = False
            try:
                async for chunk in client._astream(messages, stop=stop, **kwargs):
                    started = True
                    yield chunk
                return
            except openai.APIConnectionError:
                # The server died under us: restart it once, unless output already flowed.
                if started or attempt == 2 or self._server is None or self._server.running():
                    raise
                log.warning("local model server for %s is gone; restarting", self.model_name)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        client = self._client(await self.aprepare())
        return await client._agenerate(messages, stop=stop, **kwargs)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return self._client(self.prepare())._generate(messages, stop=stop, **kwargs)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        yield from self._client(self.prepare())._stream(messages, stop=stop, **kwargs)
