"""SQLAlchemy models of the app database. Every change here needs an Alembic revision."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy import true as sql_true
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, datetime: DateTime(timezone=True)}


class Operation(Base):
    __tablename__ = "operations"
    __table_args__ = (Index("ix_operations_owner_created", "owner", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    request: Mapped[str] = mapped_column(Text)
    workspace: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(32), index=True)
    route: Mapped[str | None] = mapped_column(String(16))
    route_forced: Mapped[bool] = mapped_column(default=False)
    simplicity_score: Mapped[float | None] = mapped_column(Float)
    simplicity_reasons: Mapped[list[str] | None] = mapped_column(JSON)
    simplicity_tier: Mapped[str | None] = mapped_column(String(16))
    plan_text: Mapped[str | None] = mapped_column(Text)
    plan_generated_at: Mapped[datetime | None]
    planning_input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    planning_output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    planning_reasoning_tokens: Mapped[int] = mapped_column(Integer, default=0)
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    reasoning_tokens: Mapped[int] = mapped_column(Integer, default=0)
    answer: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON)
    # The API key owner it belongs to; NULL for operations run through the library.
    owner: Mapped[str | None] = mapped_column(String(64))
    # The API key that started it (NULL through the library): its calls' ledger rows say so.
    api_key_id: Mapped[str | None] = mapped_column(String(32))
    # How it was started ({"approve_plan": ..., "models": {...}}), reused by resume and rerun.
    options: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # What the planner was given beyond the request: earlier operations, the owner's profile.
    planning_context: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The process running it and until when its lease holds (see crewchief.db.leases).
    lease_holder: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    started_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class OperationTask(Base):
    """One version of one task. Re-running a task adds a version; exactly one is current."""

    __tablename__ = "operation_tasks"
    __table_args__ = (
        UniqueConstraint(
            "operation_id", "sequence", "version", name="uq_task_operation_sequence_version"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    operation_id: Mapped[str] = mapped_column(
        ForeignKey("operations.id", ondelete="CASCADE"), index=True
    )
    sequence: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    is_current: Mapped[bool] = mapped_column(Boolean, default=True, server_default=sql_true())
    description: Mapped[str] = mapped_column(Text)
    # Extra guidance given when the task was re-run.
    instructions: Mapped[str | None] = mapped_column(Text)
    active_form: Mapped[str] = mapped_column(Text)
    skill: Mapped[str | None] = mapped_column(String(64))
    depends_on: Mapped[list[int]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    result: Mapped[str | None] = mapped_column(Text)
    error_message: Mapped[str | None] = mapped_column(Text)
    model: Mapped[str | None] = mapped_column(String(200))
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    reasoning_tokens: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]


class OperationEvent(Base):
    """Append-only; ``seq`` is 1, 2, 3... per operation and is the SSE event id.

    ``key`` makes recording idempotent: a node re-run after a crash records the
    same keys again, and those inserts are skipped.
    """

    __tablename__ = "operation_events"
    __table_args__ = (
        UniqueConstraint("operation_id", "seq", name="uq_event_operation_seq"),
        UniqueConstraint("operation_id", "key", name="uq_event_operation_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    operation_id: Mapped[str] = mapped_column(ForeignKey("operations.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    key: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ModelCall(Base):
    """The usage ledger: one row per attempt at one model, with its tokens and cost."""

    __tablename__ = "model_calls"
    __table_args__ = (
        Index("ix_model_calls_operation", "operation_id"),
        # Usage reports of one owner over a period (every row names its owner).
        Index("ix_model_calls_owner_created", "owner", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    operation_id: Mapped[str | None] = mapped_column(
        ForeignKey("operations.id", ondelete="CASCADE")
    )
    node: Mapped[str] = mapped_column(String(64))
    task_sequence: Mapped[int | None] = mapped_column(Integer)
    alias: Mapped[str] = mapped_column(String(32))
    # What the call was for, beyond its node: "meta:search_codebase" for a meta-tool
    # the planner asked the delegate to answer.
    purpose: Mapped[str | None] = mapped_column(String(64))
    # The gateway role the call served (its answer, or the rewrite or summary made for it);
    # NULL for the calls of operations.
    role: Mapped[str | None] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(200))
    effort: Mapped[str] = mapped_column(String(16))
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    # Of input_tokens, those read from the provider's prompt cache.
    cached_input_tokens: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    reasoning_tokens: Mapped[int] = mapped_column(Integer, default=0)
    # US dollars; where the figure comes from: provider (the response said), table (the
    # price table), unpriced (a local or unknown model: 0).
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    cost_source: Mapped[str] = mapped_column(
        String(16), default="unpriced", server_default="unpriced"
    )
    duration_ms: Mapped[float] = mapped_column(Float, default=0.0)
    error: Mapped[str | None] = mapped_column(Text)
    # The API key and its owner that made the call: the gateway's caller, or the
    # operation's (NULL for calls of the library).
    owner: Mapped[str | None] = mapped_column(String(64))
    api_key_id: Mapped[str | None] = mapped_column(String(32))
    # Whose credentials the call went out with: platform, or owner (their own stored key).
    paid_by: Mapped[str] = mapped_column(String(16), default="platform", server_default="platform")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiKey(Base):
    """A bearer key of the REST API. Only the SHA-256 of the secret is stored."""

    __tablename__ = "api_keys"
    __table_args__ = (UniqueConstraint("key_hash", name="uq_api_keys_hash"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    owner: Mapped[str] = mapped_column(String(64))
    key_hash: Mapped[str] = mapped_column(String(64))
    # The first characters of the key, shown by `keys list` so a key can be recognised.
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    # The plan in the settings' [plans] it belongs to (NULL: the default plan, if any).
    tier: Mapped[str | None] = mapped_column(String(64))


class GatewayMessage(Base):
    """One message of a gateway conversation (``conversation_id``), in OpenAI's shape."""

    __tablename__ = "gateway_messages"
    __table_args__ = (Index("ix_gateway_messages_conversation", "owner", "conversation_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # The API key owner it belongs to: one owner never reads another's conversation.
    owner: Mapped[str | None] = mapped_column(String(64))
    conversation_id: Mapped[str] = mapped_column(String(128))
    message: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Its hash, to tell the messages a client sends again from new ones.
    digest: Mapped[str] = mapped_column(String(64))
    tokens: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RoutingTableRow(Base):
    """One routing table of the gateway (the newest is in use), as ``routes refresh`` made it."""

    __tablename__ = "routing_tables"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(Text)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class OwnerProfile(Base):
    """An owner's stated and learned preferences (see :mod:`crewchief.db.profiles`)."""

    __tablename__ = "profiles"

    # The API key owner; "" for calls made without a key (no key owner is empty).
    owner: Mapped[str] = mapped_column(String(64), primary_key=True)
    stated: Mapped[dict[str, Any]] = mapped_column(JSON)
    learned: Mapped[dict[str, Any]] = mapped_column(JSON)
    learned_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Budget(Base):
    """A spending limit of a key or an owner (see :mod:`crewchief.db.budgets`)."""

    __tablename__ = "budgets"

    scope: Mapped[str] = mapped_column(String(8), primary_key=True)  # key | owner
    subject: Mapped[str] = mapped_column(String(64), primary_key=True)  # key id | owner
    daily_usd: Mapped[float | None] = mapped_column(Float)
    monthly_usd: Mapped[float | None] = mapped_column(Float)
    enforcement: Mapped[str] = mapped_column(String(8))  # hard | soft
    on_exceed: Mapped[str] = mapped_column(String(16))  # refuse | downgrade
    set_by: Mapped[str] = mapped_column(String(16))  # operator | owner
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class BudgetCounter(Base):
    """What one subject spent in one period: nano-dollars, or a count for a quota."""

    __tablename__ = "budget_counters"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    spent: Mapped[int] = mapped_column(BigInteger)
    period_end: Mapped[datetime]


class BudgetHold(Base):
    """A reservation of a call under way on one counter, until settled or expired."""

    __tablename__ = "budget_holds"
    __table_args__ = (Index("ix_budget_holds_counter", "counter"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    counter: Mapped[str] = mapped_column(String(200), primary_key=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[datetime]


class GatewayResponse(Base):
    """One answer of the gateway, by its ``x_crewchief.id``: what the client asked and what
    it got, kept so the answer can be rated and turned into preference pairs (see
    :mod:`crewchief.db.feedback`)."""

    __tablename__ = "gateway_responses"
    # The only index: an owner's responses over a period (export, forget). Every index more
    # would cost each gateway request its insert.
    __table_args__ = (Index("ix_gateway_responses_owner_created", "owner", "created_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner: Mapped[str | None] = mapped_column(String(64))
    api_key_id: Mapped[str | None] = mapped_column(String(32))
    role: Mapped[str] = mapped_column(String(64))
    model: Mapped[str | None] = mapped_column(String(200))
    # For ``model: "auto"``: the simplicity detector's tier and score of the request.
    auto_tier: Mapped[str | None] = mapped_column(String(16))
    simplicity_score: Mapped[float | None] = mapped_column(Float)
    # off, miss, hit, semantic or bypass (as x_crewchief.cache.state says)
    cache: Mapped[str] = mapped_column(String(16))
    conversation_id: Mapped[str | None] = mapped_column(String(128))
    # The hash of the messages as the client sent them: equal prompts answered again.
    prompt_digest: Mapped[str] = mapped_column(String(64))
    messages: Mapped[list[Any]] = mapped_column(JSON)
    answer: Mapped[str | None] = mapped_column(Text)
    # The request log's figures (NULL for answers kept before revision 0014): whether the
    # client asked for a stream, the wall time from the request's arrival to its answer,
    # the failed attempts before it ({model, error} each), its tokens and cost, and the
    # start of the last user message.
    stream: Mapped[bool | None] = mapped_column(Boolean)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    fallbacks: Mapped[list[Any] | None] = mapped_column(JSON)
    input_tokens: Mapped[int | None] = mapped_column(Integer)
    output_tokens: Mapped[int | None] = mapped_column(Integer)
    cost_usd: Mapped[float | None] = mapped_column(Float)
    question: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Feedback(Base):
    """A rating (and optional correction) of an operation, one version of a task, or a
    gateway response; one per owner and target, a second one replaces it. The dimensions
    it is reported by are copied from the target when it is given."""

    __tablename__ = "feedback"
    __table_args__ = (
        UniqueConstraint("owner", "target_kind", "target_id", name="uq_feedback_owner_target"),
        Index("ix_feedback_owner_created", "owner", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    # Who rated: the API key owner, "" without a key (so the unique constraint holds).
    owner: Mapped[str] = mapped_column(String(64))
    api_key_id: Mapped[str | None] = mapped_column(String(32))
    # operation | task | response; target_id is the operation id, "<operation>:<n>:<version>"
    # for a task, or the response id.
    target_kind: Mapped[str] = mapped_column(String(16))
    target_id: Mapped[str] = mapped_column(String(200))
    operation_id: Mapped[str | None] = mapped_column(
        ForeignKey("operations.id", ondelete="CASCADE")
    )
    task_sequence: Mapped[int | None] = mapped_column(Integer)
    task_version: Mapped[int | None] = mapped_column(Integer)
    response_id: Mapped[str | None] = mapped_column(
        ForeignKey("gateway_responses.id", ondelete="CASCADE")
    )
    # thumb (rating 1 up, 0 down) or stars (rating 1-5); score is 0..1 either way.
    rating_kind: Mapped[str] = mapped_column(String(8))
    rating: Mapped[int] = mapped_column(Integer)
    score: Mapped[float] = mapped_column(Float)
    correction: Mapped[str | None] = mapped_column(Text)
    comment: Mapped[str | None] = mapped_column(Text)
    role: Mapped[str | None] = mapped_column(String(64))
    model: Mapped[str | None] = mapped_column(String(200))
    skill: Mapped[str | None] = mapped_column(String(64))
    route: Mapped[str | None] = mapped_column(String(32))
    tier: Mapped[str | None] = mapped_column(String(32))
    simplicity_score: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class StoredCredential(Base):
    """An owner's API key for one provider name, encrypted (see :mod:`crewchief.db.credentials`)."""

    __tablename__ = "credentials"

    # The API key owner; "" for calls made without a key (no key owner is empty).
    owner: Mapped[str] = mapped_column(String(64), primary_key=True)
    provider: Mapped[str] = mapped_column(String(64), primary_key=True)
    # Where the owner's requests go (an OpenAI-compatible server); NULL: the provider's URL.
    base_url: Mapped[str | None] = mapped_column(Text)
    # Fernet token of the key, the owner, the provider and the base URL.
    ciphertext: Mapped[str] = mapped_column(Text)
    # What the owner recognises it by ("…3f9a"), never the key.
    fingerprint: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
