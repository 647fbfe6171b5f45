"""The ``fake`` provider: a scripted chat model for tests, demos and benchmarks.

A script is a list of rules. Each call picks the first rule whose ``node``
(the graph node making the call), ``alias`` (orchestrator, delegate or fast)
and ``match`` (a regex searched in the prompt) fit and which still has uses
left, and answers with that rule's next reply.
Rules keyed by node and prompt let concurrent task executors each get their own
reply, whatever order they run in.

Example script (YAML or JSON)::

    fallback: auto            # or "error": fail calls that no rule covers
    rules:
      - node: plan
        reply:
          plan:
            tasks:
              - {id: 1, description: Write the parser, active_form: Writing the parser}
      - node: execute_task
        match: "parser"
        replies:              # consumed in order; the last one repeats
          - {text: "Parser written.", delay: 0.2, usage: {input: 120, output: 30}}
      - node: fast_path
        reply: {error: "provider unavailable"}
      - node: plan              # the delegate answering a planner's meta-tool call
        alias: delegate
        reply: "utils.py defines slugify and chunks."

A reply has ``text``, ``plan`` (serialized to JSON text), ``tool_calls``
(``[{name, args}]``), ``chunks`` (how the text streams), ``usage``
(``{input, output, reasoning, cached_input}``), ``cost`` (the dollars the reply says it
cost, as a provider that reports its cost does), ``delay`` (seconds before answering),
``token_delay`` (seconds between streamed chunks) and ``error`` (raise instead of
answering). A bare string is shorthand for ``{text: ...}``.

With ``fallback: auto`` (what ``fake:default`` uses) uncovered calls get a
deterministic reply shaped for the calling node: a short answer, a plan of
``auto_tasks`` tasks (the last depending on the others), a task result, or a
summary of task results.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from crewchief import prompts
from crewchief.errors import ScriptError


class FakeUsage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input: int = Field(0, ge=0)
    output: int = Field(0, ge=0)
    reasoning: int = Field(0, ge=0)
    cached_input: int = Field(0, ge=0, description="Of ``input``, read from a prompt cache.")


class FakeToolCall(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    args: dict[str, Any] = Field(default_factory=dict)
    id: str | None = None


class FakeReply(BaseModel):
    """One scripted answer."""

    model_config = ConfigDict(extra="forbid")

    text: str | None = None
    plan: dict[str, Any] | list[Any] | None = None
    tool_calls: list[FakeToolCall] = Field(default_factory=list)
    chunks: list[str] | None = None
    usage: FakeUsage | None = None
    cost: float | None = Field(None, ge=0, description="The cost the reply states, in dollars.")
    delay: float = Field(0.0, ge=0)
    token_delay: float = Field(0.0, ge=0, description="Seconds between streamed chunks.")
    error: str | None = None

    def content(self) -> str:
        if self.plan is not None:
            return json.dumps(self.plan)
        return self.text or ""


class FakeRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    node: str | None = None
    alias: str | None = None
    match: str | None = None
    reply: FakeReply | None = None
    replies: list[FakeReply] = Field(default_factory=list)
    times: int | None = Field(None, ge=1, description="Use this rule at most N times.")

    @field_validator("reply", mode="before")
    @classmethod
    def _short_reply(cls, value: Any) -> Any:
        return {"text": value} if isinstance(value, str) else value

    @field_validator("replies", mode="before")
    @classmethod
    def _short_replies(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"text": v} if isinstance(v, str) else v for v in value]
        return value

    @field_validator("match")
    @classmethod
    def _valid_regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"match is not a valid regular expression: {exc}") from None
        return value

    def all_replies(self) -> list[FakeReply]:
        replies = list(self.replies)
        if self.reply is not None:
            replies.insert(0, self.reply)
        return replies


class FakeScript(BaseModel):
    """Rules plus the bookkeeping of which replies were used. Thread-safe."""

    model_config = ConfigDict(extra="forbid")

    rules: list[FakeRule] = Field(default_factory=list)
    fallback: str = Field("auto", pattern="^(auto|error)$")
    auto_tasks: int = Field(3, ge=1, le=50)
    auto_delay: float = Field(0.0, ge=0)
    auto_token_delay: float = Field(0.0, ge=0)

    def model_post_init(self, _context: Any) -> None:
        self._used = [0] * len(self.rules)
        self._lock = threading.Lock()
        for i, rule in enumerate(self.rules):
            if not rule.all_replies():
                raise ScriptError(f"rule {i + 1} has neither 'reply' nor 'replies'")

    @classmethod
    def load(cls, path: str | Path) -> FakeScript:
        """Read a script from a ``.json``, ``.yaml`` or ``.yml`` file."""
        path = Path(path)
        try:
            raw = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ScriptError(f"cannot read fake script {path}: {exc.strerror}") from None
        try:
            if path.suffix in (".yaml", ".yml"):
                import yaml

                data = yaml.safe_load(raw) or {}
            else:
                data = json.loads(raw)
        except Exception as exc:  # noqa: BLE001 - any parse error is the user's file
            raise ScriptError(f"fake script {path} does not parse: {exc}") from None
        if isinstance(data, list):
            data = {"rules": data}
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            where = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
            )
            raise ScriptError(f"fake script {path} is invalid: {where}") from None

    def pick(self, node: str | None, prompt: str, alias: str | None = None) -> FakeReply | None:
        with self._lock:
            for i, rule in enumerate(self.rules):
                if rule.node is not None and rule.node != node:
                    continue
                if rule.alias is not None and rule.alias != alias:
                    continue
                if rule.match is not None and not re.search(rule.match, prompt):
                    continue
                if rule.times is not None and self._used[i] >= rule.times:
                    continue
                replies = rule.all_replies()
                reply = replies[min(self._used[i], len(replies) - 1)]
                self._used[i] += 1
                return reply
        if self.fallback == "auto":
            reply = _auto_reply(node, prompt, self.auto_tasks, self.auto_delay, alias)
            reply.token_delay = self.auto_token_delay
            return reply
        return None


def _section(prompt: str, marker: str) -> str:
    """The text after ``marker`` up to the next blank line."""
    start = prompt.find(marker)
    if start < 0:
        return ""
    rest = prompt[start + len(marker) :].strip()
    return rest.split("\n\n", 1)[0].strip()


def _auto_plan(request: str, n: int) -> dict[str, Any]:
    short = request.strip().splitlines()[0][:80] if request.strip() else "the request"
    tasks = []
    for i in range(1, n + 1):
        last = i == n and n > 1
        tasks.append(
            {
                "id": i,
                "description": f"{'Check and combine the work for' if last else f'Part {i} of'}: {short}",
                "active_form": f"{'Combining the work for' if last else f'Working on part {i} of'}: {short}",
                "depends_on": list(range(1, n)) if last else [],
            }
        )
    return {"summary": f"{n} steps for: {short}", "tasks": tasks}


def _auto_reply(
    node: str | None, prompt: str, n_tasks: int, delay: float, alias: str | None = None
) -> FakeReply:
    request = _section(prompt, prompts.REQUEST_MARKER)
    if node == "plan" and alias == "delegate":
        # The delegate answering one of the planner's meta-tool calls.
        question = _section(prompt, prompts.QUESTION_MARKER) or "the workspace"
        return FakeReply(text=f"Findings for: {question[:200]}", delay=delay)
    if node == "plan":
        return FakeReply(plan=_auto_plan(request, n_tasks), delay=delay)
    if node == "execute_task":
        task = _section(prompt, prompts.TASK_MARKER)
        return FakeReply(text=f"Done: {task}", delay=delay)
    if node == "synthesize":
        count = prompt.count(prompts.RESULT_MARKER)
        return FakeReply(text=f"Finished {count} tasks for: {request}", delay=delay)
    question = request or prompt.rsplit("\n\n", 1)[-1]
    return FakeReply(text=f"Answer to: {question.strip()[:200]}", delay=delay)


def _calling_node(run_manager: Any) -> str | None:
    """The graph node making this call: crewchief's call info, else LangGraph's metadata."""
    from crewchief.models.registry import current_call

    info = current_call.get()
    if info is not None:
        return info.node
    metadata = getattr(run_manager, "metadata", None) or {}
    if metadata.get("langgraph_node"):
        return metadata["langgraph_node"]
    try:
        from langgraph.config import get_config

        return get_config().get("metadata", {}).get("langgraph_node")
    except RuntimeError:
        return None


def _messages_text(messages: list[BaseMessage]) -> str:
    return "\n\n".join(m.text if hasattr(m, "text") else str(m.content) for m in messages)


def _usage(reply: FakeReply, prompt: str, content: str) -> dict[str, Any]:
    usage = reply.usage or FakeUsage(
        input=max(1, len(prompt) // 4), output=max(1, len(content) // 4)
    )
    details = {"reasoning": usage.reasoning} if usage.reasoning else {}
    metadata: dict[str, Any] = {
        "input_tokens": usage.input,
        "output_tokens": usage.output + usage.reasoning,
        "total_tokens": usage.input + usage.output + usage.reasoning,
        "output_token_details": details,
    }
    if usage.cached_input:
        metadata["input_token_details"] = {"cache_read": usage.cached_input}
    return metadata


def _split_chunks(text: str) -> list[str]:
    return re.findall(r"\S+\s*|\s+", text) or [""]


class FakeChatModel(BaseChatModel):
    """A chat model that answers from a :class:`FakeScript`.

    It is a complete LangChain chat model (``invoke``, ``ainvoke``, ``astream``,
    usage metadata), so it can stand in for any provider in your own tests.
    Every call is appended to ``calls`` for assertions.
    """

    script: FakeScript = Field(default_factory=FakeScript)
    effort: str = "medium"
    model_name: str = "default"
    # Bounded, so a long-running service left on ``fake:default`` does not grow.
    calls: deque[dict[str, Any]] = Field(default_factory=lambda: deque(maxlen=10_000))

    @property
    def _llm_type(self) -> str:
        return "crewchief-fake"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Runnable:
        """Accept tools like a real chat model; the offered names are recorded in ``calls``."""
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)

    def _select(
        self, messages: list[BaseMessage], run_manager: Any, kwargs: dict[str, Any]
    ) -> tuple[FakeReply, str]:
        node = _calling_node(run_manager)
        prompt = _messages_text(messages)
        from crewchief.models.registry import current_call

        info = current_call.get()
        effort = info.effort if info is not None and info.effort else self.effort
        alias = info.alias if info is not None else None
        tools = [t["function"]["name"] for t in kwargs.get("tools") or []]
        self.calls.append(
            {
                "node": node,
                "alias": alias,
                "effort": effort,
                "prompt": prompt,
                "tools": tools,
                "messages": list(messages),
                "at": time.monotonic(),
            }
        )
        reply = self.script.pick(node, prompt, alias)
        if reply is None:
            raise ScriptError(
                f"fake script has no reply for node {node!r}; prompt starts {prompt[:120]!r}"
            )
        return reply, prompt

    def _message(self, reply: FakeReply, prompt: str) -> AIMessage:
        if reply.error:
            raise RuntimeError(reply.error)
        content = reply.content()
        return AIMessage(
            content=content,
            tool_calls=[
                {"name": c.name, "args": c.args, "id": c.id or f"call_{uuid.uuid4().hex[:12]}"}
                for c in reply.tool_calls
            ],
            usage_metadata=_usage(reply, prompt, content),
            response_metadata={"model_name": f"fake:{self.model_name}"}
            | ({} if reply.cost is None else {"cost": reply.cost}),
        )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        reply, prompt = self._select(messages, run_manager, kwargs)
        if reply.delay:
            time.sleep(reply.delay)
        return ChatResult(generations=[ChatGeneration(message=self._message(reply, prompt))])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        reply, prompt = self._select(messages, run_manager, kwargs)
        if reply.delay:
            await asyncio.sleep(reply.delay)
        return ChatResult(generations=[ChatGeneration(message=self._message(reply, prompt))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        result = self._generate(messages, stop, run_manager, **kwargs)
        yield from self._chunks(result.generations[0].message)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        reply, prompt = self._select(messages, run_manager, kwargs)
        if reply.delay:
            await asyncio.sleep(reply.delay)
        message = self._message(reply, prompt)
        pieces = reply.chunks if reply.chunks is not None else _split_chunks(message.text)
        for i, piece in enumerate(pieces[:-1]):
            if reply.token_delay and i:
                await asyncio.sleep(reply.token_delay)
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=piece))
            if run_manager:
                await run_manager.on_llm_new_token(piece, chunk=chunk)
            yield chunk
        last = AIMessageChunk(
            content=pieces[-1] if pieces else "",
            tool_call_chunks=[
                {"name": c["name"], "args": json.dumps(c["args"]), "id": c["id"], "index": i}
                for i, c in enumerate(message.tool_calls)
            ],
            usage_metadata=message.usage_metadata,
            response_metadata=message.response_metadata,
            chunk_position="last",
        )
        if reply.token_delay and len(pieces) > 1:
            await asyncio.sleep(reply.token_delay)
        yield ChatGenerationChunk(message=last)

    def _chunks(self, message: BaseMessage) -> Iterator[ChatGenerationChunk]:
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content=message.content,
                usage_metadata=getattr(message, "usage_metadata", None),
            )
        )


_SCRIPT_CACHE: dict[str, FakeScript] = {}
_SCRIPT_LOCK = threading.Lock()


def script_for_spec(name: str) -> FakeScript:
    """The shared script for a ``fake:NAME`` spec.

    ``default`` is the auto script; ``default?tasks=N`` plans N tasks, ``delay=S``
    waits before each reply and ``token_delay=S`` between streamed chunks; anything
    else is a path to a JSON/YAML script file. Scripts are shared per spec so
    replies are consumed once across aliases and efforts.
    """
    with _SCRIPT_LOCK:
        if name not in _SCRIPT_CACHE:
            _SCRIPT_CACHE[name] = _build_script(name)
        return _SCRIPT_CACHE[name]


def _build_script(name: str) -> FakeScript:
    base, _, query = name.partition("?")
    params = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
    if base in ("", "default"):
        try:
            return FakeScript(
                auto_tasks=int(params.get("tasks", 3)),
                auto_delay=float(params.get("delay", 0)),
                auto_token_delay=float(params.get("token_delay", 0)),
            )
        except (ValueError, ValidationError) as exc:
            raise ScriptError(f"bad fake:default options {query!r}: {exc}") from None
    return FakeScript.load(base)


def reset_scripts() -> None:
    """Forget cached scripts (tests that rewrite a script file between runs)."""
    with _SCRIPT_LOCK:
        _SCRIPT_CACHE.clear()
