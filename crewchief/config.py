"""Settings: environment variables over an optional ``crewchief.toml`` over defaults.

Nothing here runs at import time. Call :func:`load_settings` (or build a
:class:`Settings` directly) when you need configuration.

Precedence, highest first: keyword overrides passed to :func:`load_settings`,
``CREWCHIEF_*`` environment variables, the TOML file, built-in defaults.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from crewchief.errors import ConfigError
from crewchief.mcp_config import McpSettings

ALIASES: tuple[str, ...] = ("orchestrator", "delegate", "fast")
# With nothing configured every alias runs this model on the local machine.
# The local model every alias uses when nothing is configured (one of local.catalog.CATALOG).
DEFAULT_LOCAL_MODEL = "qwen2.5-coder-1.5b"
DEFAULT_MODEL = f"local:{DEFAULT_LOCAL_MODEL}"


class AliasConfig(BaseModel):
    """What one model alias (``orchestrator``, ``delegate``, ``fast``) is bound to."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(DEFAULT_MODEL, description="Primary model as 'provider:model-name'.")
    fallbacks: list[str] = Field(
        default_factory=list, description="Models tried in order when the primary fails."
    )
    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, gt=0, description="Upper bound on output tokens.")

    @field_validator("model", "fallbacks")
    @classmethod
    def _specs_have_provider(cls, value: Any) -> Any:
        for spec in [value] if isinstance(value, str) else value:
            if ":" not in spec and spec != "fake":
                raise ValueError(
                    f"model spec {spec!r} must look like 'provider:model' (e.g. 'openai:gpt-4.1-mini')"
                )
        return value


class ProviderConfig(BaseModel):
    """Connection settings for one provider name used in model specs.

    ``type`` says which adapter serves it, so ``[providers.deepseek] type = "openai"``
    with a ``base_url`` makes ``deepseek:deepseek-chat`` a valid model spec.
    """

    model_config = ConfigDict(extra="forbid")

    type: str = Field(..., description="Adapter: openai | ollama | google | local | fake.")
    base_url: str | None = None
    api_key_env: str | None = Field(None, description="Environment variable holding the API key.")
    project: str | None = Field(None, description="Google Cloud project (google only).")
    location: str | None = Field(None, description="Google Cloud region (google only).")
    reasoning: bool | None = Field(
        None,
        description="Whether models of this provider accept a reasoning-effort knob. "
        "None means: decide from the model name.",
    )


class PriceConfig(BaseModel):
    """The price of one model in US dollars per million tokens (``[prices."<model>"]``),
    over the shipped table's."""

    model_config = ConfigDict(extra="forbid")

    input: float = Field(..., ge=0, allow_inf_nan=False, description="Prompt tokens.")
    output: float = Field(
        ..., ge=0, allow_inf_nan=False, description="Completion tokens (reasoning included)."
    )
    cached_input: float | None = Field(
        None,
        ge=0,
        allow_inf_nan=False,
        description="Prompt tokens read from the provider's cache (default: the input price).",
    )
    reasoning: float | None = Field(
        None,
        ge=0,
        allow_inf_nan=False,
        description="Reasoning tokens (default: the output price).",
    )


class TierConfig(BaseModel):
    """The model alias and reasoning effort one simplicity tier runs with."""

    model_config = ConfigDict(extra="forbid")

    alias: str = Field("orchestrator", description="Model alias: orchestrator | delegate | fast.")
    effort: str = Field(
        "medium", description="Reasoning effort: low | medium | high (or minimal, quick, deep...)."
    )

    @field_validator("alias")
    @classmethod
    def _known_alias(cls, value: str) -> str:
        if value not in ALIASES:
            raise ValueError(f"unknown model alias {value!r}; expected one of {list(ALIASES)}")
        return value

    @field_validator("effort")
    @classmethod
    def _normal_effort(cls, value: str) -> str:
        from crewchief.effort import normalize_effort

        return normalize_effort(value)


TIER_NAMES: tuple[str, ...] = ("fast", "balanced", "deep")
# fast answers in one call; balanced and deep plan, with more reasoning for lower scores.
DEFAULT_TIERS: dict[str, dict[str, str]] = {
    "fast": {"alias": "orchestrator", "effort": "low"},
    "balanced": {"alias": "orchestrator", "effort": "medium"},
    "deep": {"alias": "orchestrator", "effort": "high"},
}


class BudgetConfig(BaseModel):
    """A spending limit in US dollars per UTC day and per UTC month."""

    model_config = ConfigDict(extra="forbid")

    daily_usd: float | None = Field(None, ge=0, allow_inf_nan=False)
    monthly_usd: float | None = Field(None, ge=0, allow_inf_nan=False)
    enforcement: Literal["hard", "soft"] = Field(
        "hard", description="hard: no call may take the spend past the limit; soft: warn only."
    )
    on_exceed: Literal["refuse", "downgrade"] = Field(
        "refuse",
        description="refuse: HTTP 402 budget_exceeded; downgrade: answer with "
        "budgets.downgrade_model instead (a free local model never exceeds a budget).",
    )


class PlanConfig(BaseModel):
    """A named plan (tier) an API key belongs to: what its calls may use and spend."""

    model_config = ConfigDict(extra="forbid")

    models: list[str] = Field(
        default_factory=list,
        description="Model specs the plan may use, shell patterns allowed ('openai:gpt-5-*', "
        "'local:*'); empty: any.",
    )
    efforts: list[Literal["low", "medium", "high"]] = Field(
        default_factory=list,
        description="Reasoning efforts the plan may use; a higher one is lowered to the "
        "highest allowed. Empty: any.",
    )
    rate_limit_per_minute: int | None = Field(
        None, ge=0, description="Requests per minute per key (default: api.rate_limit_per_minute)."
    )
    budget: BudgetConfig = Field(
        default_factory=BudgetConfig, description="Spending limit of each key of the plan."
    )
    requests_per_day: int | None = Field(
        None, ge=0, description="Gateway requests per key and UTC day (a free-tier quota)."
    )
    operations_per_day: int | None = Field(
        None, ge=0, description="Operations started per key and UTC day (a free-tier quota)."
    )
    admin: bool = Field(
        False,
        description="Keys of the plan may set other owners' budgets and read every owner's "
        "usage. Their own calls are still held to every budget.",
    )


class BudgetSettings(BaseModel):
    """How budgets are enforced (the limits themselves are in plans and set per key/owner)."""

    model_config = ConfigDict(extra="forbid")

    warn_at: float = Field(
        0.8, gt=0, le=1, description="Share of a limit whose crossing emits a budget.warning."
    )
    downgrade_model: str | None = Field(
        None,
        description="The model a downgrading budget answers with once exhausted, as "
        "'provider:model' (e.g. a 'local:' model). Default: the delegate alias's model.",
    )
    hold_seconds: float = Field(
        900.0,
        gt=0,
        description="A reservation not settled this long after it was made (its process died "
        "mid-call) stops counting.",
    )
    limits_cache_seconds: float = Field(
        2.0,
        ge=0,
        description="How long a process trusts the budgets it read; a change made through "
        "another process applies within this time.",
    )


class LocalSettings(BaseModel):
    """How ``local:`` models are pulled and served (llama.cpp's llama-server)."""

    model_config = ConfigDict(extra="forbid")

    auto_pull: bool = Field(
        True,
        description="Pull the model and build llama-server on first use. Env: CREWCHIEF_LOCAL_AUTO_PULL.",
    )
    server_binary: str | None = Field(
        None,
        description="Use this llama-server instead of building one. Env: CREWCHIEF_LLAMA_SERVER.",
    )
    context_size: int = Field(
        16384,
        ge=512,
        description="Context tokens, shared by the parallel slots. Env: CREWCHIEF_LOCAL_CONTEXT_SIZE.",
    )
    parallel: int = Field(2, ge=1, le=16, description="Requests the server decodes at once.")
    threads: int | None = Field(
        None, ge=1, description="CPU threads (default: all cores). Env: CREWCHIEF_LOCAL_THREADS."
    )
    startup_timeout: float = Field(180.0, gt=0, description="Seconds the server may take to load.")


class KnowledgeSettings(BaseModel):
    """``[knowledge]``: where vectors are kept, and the conversation memory."""

    model_config = ConfigDict(extra="forbid")

    chroma_url: str | None = Field(
        None,
        description="A Chroma server (chroma run) that every process shares, e.g."
        " http://127.0.0.1:8001; unset: an embedded Chroma under the home. Env:"
        " CREWCHIEF_CHROMA_URL.",
    )
    memory: bool = Field(
        True,
        description="Keep gateway exchanges and finished operations per owner, and add"
        " similar earlier ones to new gateway requests (per request: x_crewchief.memory) and"
        " to the planner's prompt (operations of the same workspace). Env: CREWCHIEF_MEMORY.",
    )
    memory_k: int = Field(
        3, ge=1, le=20, description="The most earlier exchanges added. Env: CREWCHIEF_MEMORY_K."
    )
    memory_floor: float = Field(
        0.7,
        ge=0,
        le=1,
        description="The least similarity (cosine) of an exchange that is added."
        " Env: CREWCHIEF_MEMORY_FLOOR.",
    )
    profiles: bool = Field(
        True,
        description="Learn owners' preferences from what the memory keeps, and add their"
        " profile (stated and learned preferences) to gateway requests and the planner's"
        " prompt. Env: CREWCHIEF_PROFILES.",
    )
    code_search: bool = Field(
        True,
        description="Index workspaces for hybrid code search (the planner's search_codebase,"
        " the executors' search_code); off: both search with grep. Env: CREWCHIEF_CODE_SEARCH.",
    )
    chunk_tokens: int = Field(
        400,
        ge=64,
        le=4000,
        description="The largest chunk of a file in the code index, in tokens."
        " Env: CREWCHIEF_CHUNK_TOKENS.",
    )
    index_max_files: int = Field(
        20_000,
        ge=1,
        description="The most files of one workspace indexed (the rest are reported as"
        " skipped). Env: CREWCHIEF_INDEX_MAX_FILES.",
    )
    search_refresh_seconds: float = Field(
        5.0,
        ge=0,
        description="How old a code index's last look at the files may be before a search"
        " starts a refresh in the background. Env: CREWCHIEF_SEARCH_REFRESH_SECONDS.",
    )


class GatewaySettings(BaseModel):
    """The OpenAI-compatible gateway (`/v1/chat/completions`)."""

    model_config = ConfigDict(extra="forbid")

    retries: int = Field(
        1,
        ge=0,
        le=5,
        description="Tries of the same model after its first, on a retryable error (429, 5xx,"
        " timeout), before its fallbacks. Env: CREWCHIEF_GATEWAY_RETRIES.",
    )
    circuit_failures: int = Field(
        3,
        ge=1,
        description="Failures in a row that open a model's circuit (it is skipped meanwhile)."
        " Env: CREWCHIEF_GATEWAY_CIRCUIT_FAILURES.",
    )
    circuit_cooldown_seconds: float = Field(
        30.0,
        gt=0,
        description="How long an open circuit skips its model before one trial request."
        " Env: CREWCHIEF_GATEWAY_CIRCUIT_COOLDOWN.",
    )
    models: list[str] = Field(
        default_factory=list,
        description="Model specs the routing table may choose from besides the aliases' models"
        " and fallbacks. Env: CREWCHIEF_GATEWAY_MODELS (comma-separated).",
    )
    embeddings_model: str | None = Field(
        None,
        description="The model `/v1/embeddings` forwards to, an OpenAI-compatible spec such as"
        " 'openai:text-embedding-3-small'. Env: CREWCHIEF_GATEWAY_EMBEDDINGS_MODEL.",
    )
    benchmarks_file: Path | None = Field(
        None,
        description="The benchmark figures the routing table is ranked from (default: the"
        " snapshot shipped with crewchief). Env: CREWCHIEF_GATEWAY_BENCHMARKS.",
    )
    routes_refresh: str = Field(
        "0 4 1 * *",
        description="When the workers of scaled mode recompute the routing table (cron; monthly"
        " by default; empty: never). Env: CREWCHIEF_GATEWAY_ROUTES_REFRESH.",
    )
    rewrite: bool = Field(
        True,
        description="Rewrite a request's latest human message for its role with the fast"
        " alias (per request: x_crewchief.rewrite or X-Crewchief-Rewrite). Env:"
        " CREWCHIEF_GATEWAY_REWRITE.",
    )
    rewrite_timeout_seconds: float = Field(
        5.0,
        gt=0,
        description="How long a rewrite may take before the original is sent instead."
        " Env: CREWCHIEF_GATEWAY_REWRITE_TIMEOUT.",
    )
    rewrite_max_tokens: int = Field(
        1024,
        ge=64,
        description="The most tokens a rewrite may have (it may also have at most three times"
        " the original's); longer messages are sent as written, and a rewrite that reaches"
        " the bound is dropped. Env: CREWCHIEF_GATEWAY_REWRITE_MAX_TOKENS.",
    )
    strategies_file: Path | None = Field(
        None,
        description="A YAML file of role strategies over the shipped ones."
        " Env: CREWCHIEF_GATEWAY_STRATEGIES.",
    )
    history_messages: int = Field(
        20,
        ge=0,
        description="Recent messages of a conversation (conversation_id) added to a request"
        " that did not send them. Env: CREWCHIEF_GATEWAY_HISTORY.",
    )
    context_tokens: int = Field(
        32768,
        gt=0,
        description="The context window of a model whose window is not known, in tokens."
        " Env: CREWCHIEF_GATEWAY_CONTEXT_TOKENS.",
    )
    cache: bool = Field(
        True,
        description="Answer a repeated deterministic request (temperature 0 or a seed) from the"
        " response cache. Env: CREWCHIEF_GATEWAY_CACHE.",
    )
    cache_ttl_seconds: float = Field(
        3600.0,
        gt=0,
        description="How long a cached answer is kept. Env: CREWCHIEF_GATEWAY_CACHE_TTL.",
    )
    cache_max_entries: int = Field(
        10000,
        ge=1,
        description="Answers kept in one process's cache (without Redis)."
        " Env: CREWCHIEF_GATEWAY_CACHE_SIZE.",
    )
    semantic_cache: bool = Field(
        False,
        description="After the exact cache, answer a single-turn, tool-free cacheable request"
        " from an earlier one that means the same (owner, role, model and system prompt"
        " alike) and agrees on its critical terms (numbers, names, code, negations, opposite"
        " words). Off by default: the threshold chosen on half of the shipped labelled set"
        " (0.76) kept 98.0 % of its hits right on the other half, short of 99 % (python -m"
        " bench.semantic_cache). Env: CREWCHIEF_GATEWAY_SEMANTIC_CACHE.",
    )
    semantic_threshold: float = Field(
        0.76,
        gt=0,
        le=1,
        description="The least cosine similarity of two requests for one to reuse the other's"
        " answer, once their critical terms agree. 0.76 is the lowest that kept 99 % of the"
        " hits right on the calibration half of the shipped labelled set: on the whole set it"
        " answers 47 % of the paraphrases and one near miss in 309 (hits right 99.3 % of the"
        " time); 0.95 answers 4 % of them and none (python -m bench.semantic_cache)."
        " Env: CREWCHIEF_GATEWAY_SEMANTIC_THRESHOLD.",
    )


class ApiSettings(BaseModel):
    """The REST service (`crewchief serve`)."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field("127.0.0.1", description="Interface to listen on. Env: CREWCHIEF_API_HOST.")
    port: int = Field(8000, ge=1, le=65535, description="Port. Env: CREWCHIEF_API_PORT.")
    heartbeat_seconds: float = Field(
        15.0,
        gt=0,
        le=3600,
        description="Idle seconds before an event stream sends a keep-alive comment. "
        "Env: CREWCHIEF_API_HEARTBEAT.",
    )
    rate_limit_per_minute: int = Field(
        600,
        ge=0,
        description="Requests one API key may make per minute (0: no limit). "
        "Env: CREWCHIEF_API_RATE_LIMIT.",
    )
    auth_failures_per_minute: int = Field(
        60,
        ge=0,
        description="Requests with a missing, malformed or unknown API key one client address "
        "may make per minute before it gets 429 (0: no limit). Env: CREWCHIEF_API_AUTH_FAILURES.",
    )
    max_body_bytes: int = Field(
        1_048_576,
        ge=1024,
        description="Largest request body accepted. Env: CREWCHIEF_API_MAX_BODY.",
    )
    workspace_roots: list[Path] = Field(
        default_factory=list,
        description="Directories under which an operation's workspace may lie; none allowed when "
        "empty. Env: CREWCHIEF_API_WORKSPACE_ROOTS (os.pathsep-separated).",
    )
    allowed_models: list[str] = Field(
        default_factory=list,
        description="Model specs a request's `models` may bind, besides those already configured "
        "for an alias. Env: CREWCHIEF_API_ALLOWED_MODELS (comma-separated).",
    )
    metrics: bool = Field(
        True,
        description="Serve Prometheus metrics at /metrics (no API key: expose the port to your "
        "monitoring network only, or turn this off). Env: CREWCHIEF_API_METRICS.",
    )


def _default_home() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("crewchief", appauthor=False))


class Settings(BaseModel):
    """All of crewchief's configuration in one validated object."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    home: Path = Field(
        default_factory=_default_home,
        description="Where all state lives (database, checkpoints, caches). Env: CREWCHIEF_HOME.",
    )
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the app database. Default: SQLite file in home. "
        "A postgresql:// URL switches both the app database and checkpoints to PostgreSQL.",
    )
    checkpoint_url: str | None = Field(
        None,
        description="Where LangGraph checkpoints go. Default: SQLite file in home, or the "
        "database URL when that is PostgreSQL.",
    )
    redis_url: str | None = Field(
        None,
        description="Redis for events across processes (pub/sub), e.g. redis://127.0.0.1:6379/0. "
        "Without it, a process sees other processes' events by polling the database. "
        "Env: CREWCHIEF_REDIS_URL.",
    )
    redis_prefix: str = Field(
        "crewchief",
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.:-]+$",
        description="Prefix of every Redis channel and key, so deployments can share a server. "
        "Env: CREWCHIEF_REDIS_PREFIX.",
    )
    events_poll_seconds: float = Field(
        1.0,
        gt=0,
        le=60,
        description="How often a process looks in the database for events of the operations it "
        "streams that reached it from no bus (another process wrote them and Redis is off or "
        "down). Env: CREWCHIEF_EVENTS_POLL.",
    )
    executor: Literal["process", "queue"] = Field(
        "process",
        description="Where operations run: 'process', in the process that starts them (embedded "
        "mode); 'queue', on `crewchief worker` processes fed by the job queue in the PostgreSQL "
        "database (scaled mode). Env: CREWCHIEF_EXECUTOR.",
    )
    lease_seconds: float = Field(
        10.0,
        ge=1,
        le=600,
        description="How long a process's claim on an operation it runs (its lease) holds without "
        "renewal; renewed every third of it. When a process dies, another takes its operations "
        "over within about 1.5 times this. Env: CREWCHIEF_LEASE_SECONDS.",
    )
    log_format: Literal["text", "json"] = Field(
        "text",
        description="How `crewchief serve` and `crewchief worker` write log lines: 'text' for "
        "people, 'json' for log pipelines (one object per line, with request_id, operation_id, "
        "task_id and worker). Env: CREWCHIEF_LOG_FORMAT.",
    )
    secret_keys: list[SecretStr] = Field(
        default_factory=list,
        description="Fernet keys that encrypt owners' stored provider credentials: the first"
        " encrypts, every one decrypts (rotate: put a new key first, run `crewchief credentials"
        " rotate`, then drop the old one). Make one with `crewchief credentials keygen`; every"
        " API server and worker needs the same keys. Env: CREWCHIEF_SECRET_KEYS"
        " (comma-separated).",
    )
    credential_private_urls: bool = Field(
        False,
        description="Let owners point a stored credential at a loopback, private or link-local"
        " address (base_url), which the service's own network may reach; off, such an address"
        " is refused. Env: CREWCHIEF_CREDENTIAL_PRIVATE_URLS.",
    )
    models: dict[str, AliasConfig] = Field(
        default_factory=lambda: {alias: AliasConfig() for alias in ALIASES}
    )
    providers: dict[str, ProviderConfig] = Field(default_factory=dict)
    prices: dict[str, PriceConfig] = Field(
        default_factory=dict,
        description="Prices per million tokens over the shipped table, by model name "
        "('gpt-5-mini': any provider serving it) or full spec ('deepseek:deepseek-chat'). "
        "Only a full spec prices a local or fake model.",
    )
    simplicity_threshold: float = Field(
        0.7,
        ge=0,
        le=1,
        description="Score (1 = simple) at or above which a request takes the fast path. "
        "`crewchief calibrate` picks one. Env: CREWCHIEF_SIMPLICITY_THRESHOLD.",
    )
    simplicity_deep_below: float = Field(
        0.3,
        ge=0,
        le=1,
        description="Planned requests scoring below this get the deep tier, the rest balanced. "
        "Env: CREWCHIEF_SIMPLICITY_DEEP_BELOW.",
    )
    tiers: dict[str, TierConfig] = Field(
        default_factory=lambda: {name: TierConfig(**cfg) for name, cfg in DEFAULT_TIERS.items()},
        description="Alias and reasoning effort per tier: fast (the fast path's one call), "
        "balanced and deep (the planner).",
    )
    max_parallel_tasks: int = Field(4, ge=1, le=64)
    max_plan_tasks: int = Field(12, ge=1, le=100)
    plan_attempts: int = Field(3, ge=1, le=10)
    max_task_steps: int = Field(
        12, ge=1, le=100, description="Model calls one task's tool loop may make."
    )
    max_task_tokens: int = Field(
        200_000,
        gt=0,
        description="Input plus output tokens one task's tool loop may spend before it must report.",
    )
    embeddings: str = Field(
        "local:wordllama",
        description="The embedding model: local:wordllama (shipped, offline), openai:<model>,"
        " ollama:<model> or google:<model>. Env: CREWCHIEF_EMBEDDINGS.",
    )
    context_share: float = Field(
        0.8,
        gt=0,
        le=1,
        description="The share of a model's context window a conversation may fill (with the"
        " answer's tokens) before its middle is summarized: gateway requests and task tool"
        " loops. Env: CREWCHIEF_CONTEXT_SHARE.",
    )
    context_keep_last: int = Field(
        6,
        ge=1,
        description="Turns (a tool call with its results counts as one) kept whole at the end"
        " of a conversation that must be shortened. Env: CREWCHIEF_CONTEXT_KEEP_LAST.",
    )
    max_plan_tool_calls: int = Field(
        8,
        ge=0,
        le=50,
        description="Meta-tool calls the planner may make (0: plan without reading the workspace).",
    )
    meta_tool_steps: int = Field(
        4,
        ge=1,
        le=20,
        description="Model calls the delegate may make to answer one meta-tool call.",
    )
    skill_dirs: list[Path] = Field(
        default_factory=list,
        description="Folders of user skills (each holds <name>/SKILL.md), loaded after the "
        "built-ins; a user skill with a built-in's name replaces it. "
        "Env: CREWCHIEF_SKILL_DIRS (os.pathsep-separated).",
    )
    model_timeout: float = Field(300.0, gt=0, description="Seconds one model call may take.")
    max_output_tokens: int = Field(
        4096,
        gt=0,
        description="Output tokens one call may produce unless the alias sets max_tokens.",
    )
    local: LocalSettings = Field(default_factory=LocalSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    gateway: GatewaySettings = Field(default_factory=GatewaySettings)
    knowledge: KnowledgeSettings = Field(default_factory=KnowledgeSettings)
    auto_migrate: bool = Field(True, description="Upgrade the app database on start.")
    feedback_redact: str = Field(
        "default",
        min_length=1,
        description="What masks personal data in exported preference pairs: default (e-mail"
        " addresses, API-key-like secrets, phone numbers), off, or module:function (a"
        " callable (text) -> text). Env: CREWCHIEF_FEEDBACK_REDACT.",
    )
    plans: dict[str, PlanConfig] = Field(
        default_factory=dict,
        description="Named plans (tiers) for API keys: allowed models and efforts, rate limits, "
        "budgets and quotas. `crewchief keys create --tier NAME`.",
    )
    default_plan: str | None = Field(
        None, description="The plan of keys created without --tier. Env: CREWCHIEF_DEFAULT_PLAN."
    )
    budgets: BudgetSettings = Field(default_factory=BudgetSettings)
    mcp: McpSettings = Field(
        default_factory=McpSettings,
        description="MCP servers whose tools executors and the planner may use (docs/mcp-tools.md).",
    )

    @field_validator("models")
    @classmethod
    def _known_aliases(cls, value: dict[str, AliasConfig]) -> dict[str, AliasConfig]:
        unknown = sorted(set(value) - set(ALIASES))
        if unknown:
            raise ValueError(f"unknown model alias(es) {unknown}; expected {list(ALIASES)}")
        return {alias: value.get(alias, AliasConfig()) for alias in ALIASES}

    @field_validator("prices")
    @classmethod
    def _price_names(cls, value: dict[str, PriceConfig]) -> dict[str, PriceConfig]:
        for name in value:
            if not name.strip() or name != name.strip():
                raise ValueError(
                    f"price key {name!r} must be a model name ('gpt-5-mini') or a spec"
                    " ('openai:gpt-5-mini') without surrounding spaces"
                )
        return value

    @field_validator("secret_keys")
    @classmethod
    def _fernet_keys(cls, value: list[SecretStr]) -> list[SecretStr]:
        # ConfigError, not ValueError: pydantic would put the key in its error text.
        keys = [SecretStr(k.get_secret_value().strip()) for k in value]
        for i, key in enumerate(keys):
            check_secret_key(key.get_secret_value(), i)
        return keys

    @field_validator("embeddings")
    @classmethod
    def _embeddings_spec(cls, value: str) -> str:
        if ":" not in value:
            raise ValueError(
                f"embeddings {value!r} must look like 'provider:model' (e.g. 'local:wordllama'"
                " or 'openai:text-embedding-3-small')"
            )
        return value

    @field_validator("tiers", mode="before")
    @classmethod
    def _known_tiers(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        unknown = sorted(set(value) - set(TIER_NAMES))
        if unknown:
            raise ValueError(f"unknown tier(s) {unknown}; expected {list(TIER_NAMES)}")
        # A table that sets only some keys of a tier keeps that tier's defaults for the rest.
        return {
            name: {**DEFAULT_TIERS[name], **_as_dict(value.get(name, {}))} for name in TIER_NAMES
        }

    @field_validator("default_plan")
    @classmethod
    def _default_plan_known(cls, value: str | None, info: ValidationInfo) -> str | None:
        # A field's check: the error shows this value only, never the rest of the settings.
        plans = info.data.get("plans") or {}
        if value is not None and value not in plans:
            raise ValueError(f"expected one of the plans {sorted(plans)}, got {value!r}")
        return value

    @property
    def resolved_database_url(self) -> str:
        """The app database URL, with the driver crewchief uses (sqlite3 or psycopg)."""
        url = self.database_url or f"sqlite:///{self.home / 'crewchief.db'}"
        return normalize_database_url(url)

    @property
    def resolved_checkpoint_url(self) -> str:
        """Where checkpoints live: a file path for SQLite or a postgresql:// URL."""
        if self.checkpoint_url:
            return self.checkpoint_url
        if self.is_postgres:
            return plain_postgres_url(self.resolved_database_url)
        return str(self.home / "checkpoints.db")

    @property
    def is_postgres(self) -> bool:
        return self.resolved_database_url.startswith("postgresql")

    def models_configured(self) -> bool:
        """True when any alias is bound to something other than the default local model."""
        return any(cfg.model != DEFAULT_MODEL for cfg in self.models.values())


def _as_dict(value: Any) -> Any:
    return value.model_dump() if isinstance(value, BaseModel) else value


def check_secret_key(key: str, position: int = 0) -> None:
    """Raises: ConfigError naming the setting (never the key) when ``key`` is not a Fernet key."""
    from cryptography.fernet import Fernet

    try:
        Fernet(key.encode())
    except (ValueError, TypeError):
        raise ConfigError(
            f"secret_keys (CREWCHIEF_SECRET_KEYS): key {position + 1} is not a Fernet key (32"
            " bytes in URL-safe base64, 44 characters); make one with `crewchief credentials"
            " keygen`"
        ) from None


def normalize_database_url(url: str) -> str:
    """Point a database URL at the drivers crewchief ships with: sqlite3 or psycopg."""
    if url.startswith("sqlite+"):
        return "sqlite" + url[url.index(":") :]
    for prefix in ("postgresql://", "postgres://", "postgresql+asyncpg://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def plain_postgres_url(url: str) -> str:
    """A libpq-style URL (what psycopg and the Postgres checkpointer take)."""
    for prefix in ("postgresql+psycopg://", "postgresql+asyncpg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


# Environment variables and where they land. Model aliases are handled separately.
_ENV_FIELDS: dict[str, str] = {
    "CREWCHIEF_HOME": "home",
    "CREWCHIEF_DATABASE_URL": "database_url",
    "CREWCHIEF_REDIS_URL": "redis_url",
    "CREWCHIEF_REDIS_PREFIX": "redis_prefix",
    "CREWCHIEF_EVENTS_POLL": "events_poll_seconds",
    "CREWCHIEF_LEASE_SECONDS": "lease_seconds",
    "CREWCHIEF_EXECUTOR": "executor",
    "CREWCHIEF_LOG_FORMAT": "log_format",
    "CREWCHIEF_CHECKPOINT_URL": "checkpoint_url",
    "CREWCHIEF_SIMPLICITY_THRESHOLD": "simplicity_threshold",
    "CREWCHIEF_SIMPLICITY_DEEP_BELOW": "simplicity_deep_below",
    "CREWCHIEF_MAX_PARALLEL_TASKS": "max_parallel_tasks",
    "CREWCHIEF_MAX_PLAN_TASKS": "max_plan_tasks",
    "CREWCHIEF_PLAN_ATTEMPTS": "plan_attempts",
    "CREWCHIEF_MAX_TASK_STEPS": "max_task_steps",
    "CREWCHIEF_MODEL_TIMEOUT": "model_timeout",
    "CREWCHIEF_AUTO_MIGRATE": "auto_migrate",
    "CREWCHIEF_MAX_OUTPUT_TOKENS": "max_output_tokens",
    "CREWCHIEF_MAX_TASK_TOKENS": "max_task_tokens",
    "CREWCHIEF_MAX_PLAN_TOOL_CALLS": "max_plan_tool_calls",
    "CREWCHIEF_CONTEXT_SHARE": "context_share",
    "CREWCHIEF_EMBEDDINGS": "embeddings",
    "CREWCHIEF_CONTEXT_KEEP_LAST": "context_keep_last",
    "CREWCHIEF_FEEDBACK_REDACT": "feedback_redact",
    "CREWCHIEF_CREDENTIAL_PRIVATE_URLS": "credential_private_urls",
    "CREWCHIEF_DEFAULT_PLAN": "default_plan",
}
_LOCAL_ENV_FIELDS: dict[str, str] = {
    "CREWCHIEF_LOCAL_AUTO_PULL": "auto_pull",
    "CREWCHIEF_LLAMA_SERVER": "server_binary",
    "CREWCHIEF_LOCAL_CONTEXT_SIZE": "context_size",
    "CREWCHIEF_LOCAL_THREADS": "threads",
}


_API_ENV_FIELDS: dict[str, str] = {
    "CREWCHIEF_API_HOST": "host",
    "CREWCHIEF_API_PORT": "port",
    "CREWCHIEF_API_HEARTBEAT": "heartbeat_seconds",
    "CREWCHIEF_API_RATE_LIMIT": "rate_limit_per_minute",
    "CREWCHIEF_API_AUTH_FAILURES": "auth_failures_per_minute",
    "CREWCHIEF_API_MAX_BODY": "max_body_bytes",
    "CREWCHIEF_API_METRICS": "metrics",
}


_GATEWAY_ENV_FIELDS: dict[str, str] = {
    "CREWCHIEF_GATEWAY_RETRIES": "retries",
    "CREWCHIEF_GATEWAY_CIRCUIT_FAILURES": "circuit_failures",
    "CREWCHIEF_GATEWAY_CIRCUIT_COOLDOWN": "circuit_cooldown_seconds",
    "CREWCHIEF_GATEWAY_EMBEDDINGS_MODEL": "embeddings_model",
    "CREWCHIEF_GATEWAY_BENCHMARKS": "benchmarks_file",
    "CREWCHIEF_GATEWAY_ROUTES_REFRESH": "routes_refresh",
    "CREWCHIEF_GATEWAY_REWRITE": "rewrite",
    "CREWCHIEF_GATEWAY_REWRITE_TIMEOUT": "rewrite_timeout_seconds",
    "CREWCHIEF_GATEWAY_REWRITE_MAX_TOKENS": "rewrite_max_tokens",
    "CREWCHIEF_GATEWAY_STRATEGIES": "strategies_file",
    "CREWCHIEF_GATEWAY_HISTORY": "history_messages",
    "CREWCHIEF_GATEWAY_CONTEXT_TOKENS": "context_tokens",
    "CREWCHIEF_GATEWAY_CACHE": "cache",
    "CREWCHIEF_GATEWAY_CACHE_TTL": "cache_ttl_seconds",
    "CREWCHIEF_GATEWAY_CACHE_SIZE": "cache_max_entries",
    "CREWCHIEF_GATEWAY_SEMANTIC_CACHE": "semantic_cache",
    "CREWCHIEF_GATEWAY_SEMANTIC_THRESHOLD": "semantic_threshold",
}

# The settings sections set from the environment, field by field.
_SECTION_ENV_FIELDS: dict[str, dict[str, str]] = {
    "local": _LOCAL_ENV_FIELDS,
    "api": _API_ENV_FIELDS,
    "gateway": _GATEWAY_ENV_FIELDS,
    "knowledge": {
        "CREWCHIEF_CHROMA_URL": "chroma_url",
        "CREWCHIEF_MEMORY": "memory",
        "CREWCHIEF_MEMORY_K": "memory_k",
        "CREWCHIEF_MEMORY_FLOOR": "memory_floor",
        "CREWCHIEF_PROFILES": "profiles",
        "CREWCHIEF_CODE_SEARCH": "code_search",
        "CREWCHIEF_CHUNK_TOKENS": "chunk_tokens",
        "CREWCHIEF_INDEX_MAX_FILES": "index_max_files",
        "CREWCHIEF_SEARCH_REFRESH_SECONDS": "search_refresh_seconds",
    },
}


def config_file_path(env: Mapping[str, str], explicit: str | Path | None) -> Path | None:
    if explicit is not None:
        return Path(explicit)
    if env.get("CREWCHIEF_CONFIG"):
        return Path(env["CREWCHIEF_CONFIG"])
    local = Path("crewchief.toml")
    return local if local.is_file() else None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def _apply_env(data: dict[str, Any], env: Mapping[str, str]) -> None:
    for var, field in _ENV_FIELDS.items():
        if env.get(var, "") != "":
            data[field] = env[var]
    for section, fields in _SECTION_ENV_FIELDS.items():
        for var, field in fields.items():
            if env.get(var, "") != "":
                data.setdefault(section, {})[field] = env[var]
    if env.get("CREWCHIEF_API_WORKSPACE_ROOTS", "") != "":
        roots = env["CREWCHIEF_API_WORKSPACE_ROOTS"].split(os.pathsep)
        data.setdefault("api", {})["workspace_roots"] = [p for p in roots if p]
    if env.get("CREWCHIEF_API_ALLOWED_MODELS", "") != "":
        specs = env["CREWCHIEF_API_ALLOWED_MODELS"].split(",")
        data.setdefault("api", {})["allowed_models"] = [s.strip() for s in specs if s.strip()]
    if env.get("CREWCHIEF_GATEWAY_MODELS", "") != "":
        specs = [s.strip() for s in env["CREWCHIEF_GATEWAY_MODELS"].split(",") if s.strip()]
        data.setdefault("gateway", {})["models"] = specs
    if env.get("CREWCHIEF_SECRET_KEYS", "") != "":
        keys = env["CREWCHIEF_SECRET_KEYS"].split(",")
        data["secret_keys"] = [SecretStr(k.strip()) for k in keys if k.strip()]
    if env.get("CREWCHIEF_SKILL_DIRS", "") != "":
        data["skill_dirs"] = [p for p in env["CREWCHIEF_SKILL_DIRS"].split(os.pathsep) if p]
    models = data.setdefault("models", {})
    everything = env.get("CREWCHIEF_MODEL")
    for alias in ALIASES:
        entry = models.setdefault(alias, {})
        if everything:
            entry["model"] = everything
        if env.get(f"CREWCHIEF_{alias.upper()}_MODEL"):
            entry["model"] = env[f"CREWCHIEF_{alias.upper()}_MODEL"]
        fallbacks = env.get(f"CREWCHIEF_{alias.upper()}_FALLBACKS")
        if fallbacks is not None:
            entry["fallbacks"] = [s.strip() for s in fallbacks.split(",") if s.strip()]


def _format_validation_error(exc: ValidationError, source: str) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(root)"
        parts.append(f"{where}: {err['msg']}")
    return f"invalid configuration ({source}): " + "; ".join(parts)


def load_settings(
    config_file: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Build settings from the TOML file, the environment and explicit overrides.

    Args:
        config_file: A TOML file to read. Default: ``$CREWCHIEF_CONFIG`` or
            ``./crewchief.toml`` when present.
        env: The environment to read (default ``os.environ``).
        **overrides: Field values that win over everything else.

    Raises:
        ConfigError: naming the offending field and what was expected.
    """
    env = os.environ if env is None else env
    path = config_file_path(env, config_file)
    data: dict[str, Any] = _read_toml(path) if path else {}
    _apply_env(data, env)
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        settings = Settings(**data)
    except ValidationError as exc:
        source = str(path) if path else "environment"
        raise ConfigError(_format_validation_error(exc, source)) from None
    settings.home = settings.home.expanduser().resolve()
    settings.skill_dirs = [p.expanduser().resolve() for p in settings.skill_dirs]
    settings.api.workspace_roots = [p.expanduser().resolve() for p in settings.api.workspace_roots]
    return settings
