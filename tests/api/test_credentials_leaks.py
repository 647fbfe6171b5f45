"""An owner's key never leaks: every scenario of bring-your-own-key (store, refuse, list,
gateway answers streamed or not, embeddings, an upstream 401 that echoes the key, an
operation that succeeds and one whose key is refused, delete) is run with every logger at
DEBUG, and the key is looked for in every response body and header, every log line, the
process's stdout and stderr, and every row of the app database and the checkpoints
(ledger, events, operations, credentials...). It is found only where it must be: in what
the upstream received."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from bench.fake_openai import FakeOpenAIThread
from tests.api.test_credentials_use import (  # noqa: F401 - fixtures
    CHAT,
    SECRET,
    allow_requests,
    byok,
    echo_401,
    finished,
    fresh,
    upstream,
)

# What a leak would show: the key, or a long piece of it.
PIECES = (SECRET, SECRET[10:30])


def _rows(path: Path) -> list[str]:
    """Every row of every table of a SQLite file, as text."""
    if not path.exists():
        return []
    with sqlite3.connect(path) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return [repr(row) for t in tables for row in conn.execute(f'SELECT * FROM "{t}"')]


async def _scenarios(api: Any, fake: FakeOpenAIThread) -> list[Any]:
    """Every way the key goes in and around; the responses."""
    auth, client = api.auth(), api.client
    out = [
        await client.put("/v1/credentials/up", json={"api_key": SECRET}, headers=auth),
        await client.put("/v1/credentials/up", json={"api_key": SECRET + " x"}, headers=auth),
        await client.put(
            "/v1/credentials/openai",
            json={"api_key": SECRET, "base_url": "gopher://x"},
            headers=auth,
        ),
        await client.get("/v1/credentials", headers=auth),
        await client.post("/v1/chat/completions", json=CHAT, headers=auth),
        await client.post("/v1/chat/completions", json={**CHAT, "stream": True}, headers=auth),
        await client.post("/v1/embeddings", json={"input": "hi"}, headers=auth),
    ]
    fake.script(echo_401())
    out.append(await client.post("/v1/chat/completions", json=CHAT, headers=auth))
    for request in ("Say hello", "Say hello once more"):
        op = await finished(api, "alice", request)
        out.append(await client.get(f"/v1/operations/{op['id']}?events=true", headers=auth))
        fake.script(echo_401())  # the second operation's key is refused
    out.append(await client.get("/v1/usage?group_by=paid_by", headers=auth))
    out.append(await client.delete("/v1/credentials/up", headers=auth))
    return out


async def test_the_key_appears_nowhere_but_upstream(
    byok: Any,  # noqa: F811
    fresh: FakeOpenAIThread,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    responses = await _scenarios(byok, fresh)
    assert [r.status_code for r in responses] == [200, 422, 422, 200, 200, 200, 200, 502] + [
        200
    ] * 4
    await byok.app.state.chief.services.history.settle()
    home = byok.settings.home
    seen = {
        "responses": [r.text for r in responses],
        "headers": [repr(r.headers.multi_items()) for r in responses],
        "logs": [caplog.text] + [r.getMessage() for r in caplog.records],
        "exceptions": [repr(r.exc_info) for r in caplog.records if r.exc_info],
        "app database": _rows(home / "crewchief.db"),
        "checkpoints": _rows(home / "checkpoints.db"),
        "output": list(capfd.readouterr()),
    }
    # The scenarios did what they should: logs were written, the key went upstream (so a
    # leak anywhere would have had the key to leak), an upstream echoed it back.
    assert len(caplog.records) > 20
    sent = [r["headers"].get("authorization") for r in fresh.requests]
    assert sent.count(f"Bearer {SECRET}") >= 5
    assert any("[redacted]" in text for text in seen["responses"] + seen["app database"])
    for where, texts in seen.items():
        for piece in PIECES:
            leaked = [t for t in texts if piece in t]
            assert not leaked, f"the key appears in the {where}: {leaked[0][:300]}"
