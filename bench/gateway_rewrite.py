"""The gateway's prompt engineer with a real local model: how long a rewrite takes, and how
often a replayed conversation's rewrites come from the cache.

``python -m bench.gateway_rewrite [--json]``: ``crewchief serve`` with the ``fast`` alias on
the local 0.5B model (llama-server on this machine) and every other alias on the
zero-latency fake upstream. A conversation of realistic requests goes through the gateway
one request at a time, then again (a client replaying it): the first pass measures the
engineer's time per rewrite (``x_crewchief.rewrite.engineer_ms``), the second the rewrite
cache's hit rate.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench._scenarios import percentile
from bench.gateway import CHAT_PATH, start_upstream, stopping
from bench.server import ServerProcess, build_report, raise_fd_limit, render_table

LOCAL_MODEL = "qwen2.5-coder-0.5b"
TIMEOUT_S = 60.0  # the engineer's own limit for this run: every rewrite is timed to its end
DEFAULT_TIMEOUT_S = 5.0  # gateway.rewrite_timeout_seconds out of the box
# Requests as developers type them to an editor agent: long enough to be rewritten, plain prose.
CONVERSATION = [
    ("architect", "We need a cache in front of the parser because the same files get parsed many times a minute, what would you do"),
    ("implementation", "add retries to the http client in client.py so that timeouts and 503 answers are tried again a couple of times"),
    ("review", "can you look over the new session handling code and tell me if anything there looks risky or wrong"),
    ("testing", "write some tests for the date parsing helper, it has to deal with time zones and the odd invalid string"),
    ("documentation", "the README section about configuration is out of date, please update it for the new settings file"),
    ("debugger", "the worker crashes on startup since yesterday with a KeyError about the queue name, no idea why"),
    ("research", "which python job queue libraries are still maintained and work on postgres, and how do they compare"),
    ("general", "explain what the difference between a process and a thread is in a way a new team member understands"),
    ("implementation", "rename the settings loader function everywhere and keep the old name working for one release"),
    ("debugger", "memory keeps growing in the api process over a day of traffic, how would I find out what is leaking"),
]  # fmt: skip
ROWS: dict[str, tuple[str, str, str]] = {
    "rewrite_engineer_p50_ms": ("first pass", "engineer time per rewrite, p50", "ms"),
    "rewrite_engineer_p95_ms": ("first pass", "engineer time per rewrite, p95", "ms"),
    "rewrite_engineer_max_ms": ("first pass", "engineer time per rewrite, max", "ms"),
    "rewrite_applied": ("first pass", "requests rewritten", ""),
    "rewrite_cut_short": ("first pass", "rewrites dropped at their token bound", ""),
    "rewrite_cut_short_max_ms": ("first pass", "time of the slowest dropped one", "ms"),
    "rewrite_over_default_timeout": ("first pass", f"rewrites over the default {DEFAULT_TIMEOUT_S:g} s", ""),
    "rewrite_tokens_ratio": ("first pass", "rewritten ÷ original length, tokens (mean)", "×"),
    "replay_hit_rate_pct": ("replay", "rewrites from the cache", "%"),
    "replay_engineer_p50_ms": ("replay", "engineer time per request, p50", "ms"),
    "rewrite_errors": ("both", "requests that failed", ""),
}  # fmt: skip
TARGETS: dict[str, tuple[str, float]] = {"rewrite_errors": ("≤", 0)}


def _home() -> Path:
    if os.environ.get("CREWCHIEF_HOME"):
        return Path(os.environ["CREWCHIEF_HOME"])
    from crewchief.config import Settings

    return Path(Settings().home)  # the default home, where `crewchief models pull` puts models


async def _send(server: ServerProcess, role: str, text: str) -> dict[str, Any]:
    import httpx

    body = {"model": "auto", "role": role, "messages": [{"role": "user", "content": text}]}
    url = f"http://{server.host}:{server.port}{CHAT_PATH}"
    async with httpx.AsyncClient(timeout=TIMEOUT_S * 2) as client:
        response = await client.post(url, json=body, headers=server.auth)
    response.raise_for_status()
    return response.json()["x_crewchief"]["rewrite"]


async def _passes(server: ServerProcess, count: int) -> dict[str, Any]:
    first, replay, errors = [], [], 0
    for records in (first, replay):
        for role, text in CONVERSATION[:count]:
            try:
                records.append(await _send(server, role, text))
            except Exception as exc:  # noqa: BLE001 - counted and shown
                errors += 1
                print(f"    request failed: {exc}", file=sys.stderr)
    fresh = [r for r in first if r["applied"] and not r["cached"]]
    times = [r["engineer_ms"] for r in fresh]
    cut = [r for r in first if "reached its bound" in r["reason"]]
    for r in first:
        if not r["applied"]:
            print(f"    sent as written: {r['reason']}", file=sys.stderr)
    ratios = [r["optimized_tokens"] / r["original_tokens"] for r in fresh if r["original_tokens"]]
    return {
        "rewrite_engineer_p50_ms": percentile(times, 50),
        "rewrite_engineer_p95_ms": percentile(times, 95),
        "rewrite_engineer_max_ms": max(times, default=None),
        "rewrite_applied": len(fresh),
        "rewrite_cut_short": len(cut),
        "rewrite_cut_short_max_ms": max((r["engineer_ms"] for r in cut), default=None),
        "rewrite_over_default_timeout": sum(t > DEFAULT_TIMEOUT_S * 1000 for t in times),
        "rewrite_tokens_ratio": sum(ratios) / len(ratios) if ratios else None,
        "replay_hit_rate_pct": 100 * sum(r["cached"] for r in replay) / len(replay)
        if replay
        else None,
        "replay_engineer_p50_ms": percentile([r["engineer_ms"] for r in replay], 50),
        "rewrite_errors": errors,
    }


def collect(count: int) -> dict[str, Any]:
    from crewchief.local.build import ensure_llama_server
    from crewchief.local.store import ModelStore

    raise_fd_limit()
    home = _home()
    ModelStore(home).pull(LOCAL_MODEL)  # a no-op once pulled
    ensure_llama_server(home)
    with tempfile.TemporaryDirectory(prefix="crewchief-bench-rewrite-") as tmp:
        root = Path(tmp)
        upstream, base_url = start_upstream(root)
        with stopping(upstream):
            server = ServerProcess(root / "gateway", "openai:bench-model")
            server.env.update(
                CREWCHIEF_HOME=str(home),  # where the local model is pulled
                CREWCHIEF_DATABASE_URL=f"sqlite:///{root / 'gateway.db'}",
                CREWCHIEF_CHECKPOINT_URL=str(root / "checkpoints.db"),
                CREWCHIEF_FAST_MODEL=f"local:{LOCAL_MODEL}",
                CREWCHIEF_ALLOW_MODEL_REQUESTS="1",
                CREWCHIEF_GATEWAY_REWRITE_TIMEOUT=str(TIMEOUT_S),
                # The engineer alone: a profile learned from the first pass's requests would
                # be context for the replay's rewrites, and so another cache key.
                CREWCHIEF_PROFILES="false",
                OPENAI_BASE_URL=base_url,
                OPENAI_API_KEY="sk-bench",
            )
            print(f"  crewchief serve, fast alias on local:{LOCAL_MODEL}", file=sys.stderr)
            server.start(timeout=120)
            with stopping(server):
                print(f"  {count} requests, then the same again", file=sys.stderr)
                return asyncio.run(_passes(server, count))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.gateway_rewrite", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--requests",
        type=int,
        default=len(CONVERSATION),
        help=f"requests of the conversation to send ({len(CONVERSATION)})",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object only")
    args = parser.parse_args(argv)
    if not 1 <= args.requests <= len(CONVERSATION):
        parser.error(f"--requests must be 1-{len(CONVERSATION)}")
    report = build_report(collect(args.requests), 0, TARGETS)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        title = f"prompt engineer on local:{LOCAL_MODEL}, a conversation of {args.requests}"
        render_table(title, report, ROWS, TARGETS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
