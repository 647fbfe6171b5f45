"""The owner's profile in the gateway, through a real `crewchief serve` and the `openai` SDK,
with a fake OpenAI-compatible upstream on loopback: the role's model gets an "About this
user" system message, the prompt engineer's rewrite gets it as context, `x_crewchief` says
so, and another owner's requests get nothing of it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import openai
import pytest

from bench.fake_openai import FakeOpenAIThread
from tests.api.conftest import LiveServer

pytestmark = pytest.mark.slow

ASK = "Write a function that parses the config file and reports every bad line"


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeOpenAIThread]:
    with FakeOpenAIThread() as fake:
        yield fake


@pytest.fixture
def server(
    live_server_factory: Callable[..., LiveServer], upstream: FakeOpenAIThread
) -> LiveServer:
    upstream.clear_script()
    upstream.clear_requests()
    # Real requests are allowed: the only upstream is the fake on loopback.
    return live_server_factory(
        env={
            "CREWCHIEF_ALLOW_MODEL_REQUESTS": "1",
            "OPENAI_BASE_URL": upstream.base_url,
            "OPENAI_API_KEY": "sk-upstream",
            "CREWCHIEF_MODEL": "openai:plain",
            "CREWCHIEF_FAST_MODEL": "openai:rewriter",
            "CREWCHIEF_MEMORY": "false",  # only the profile joins the requests here
        }
    )


def _ask(server: LiveServer, owner: str, **extra) -> dict:
    api = openai.OpenAI(base_url=f"{server.url}/v1", api_key=server.keys[owner], max_retries=0)
    answer = api.chat.completions.create(
        model="crewchief/implementation",
        messages=[
            {"role": "system", "content": "You are a careful engineer."},
            {"role": "user", "content": ASK},
        ],
        **extra,
    )
    return answer.model_extra["x_crewchief"]


def test_the_profile_reaches_the_roles_model_and_the_rewrite(
    server: LiveServer, upstream: FakeOpenAIThread
) -> None:
    stated = {"languages": ["Rust"], "skill_level": "beginner", "notes": "Uses tokio"}
    r = httpx.put(f"{server.url}/v1/profile", json=stated, headers=server.auth("alice"))
    assert r.status_code == 200, r.text
    meta = _ask(server, "alice")
    assert meta["user_profile"] == {
        "added": True,
        "stated": ["languages", "skill_level", "notes"],
        "learned": [],
    }
    assert meta["rewrite"]["applied"] is True
    rewrite = next(q["body"] for q in upstream.requests if q["body"]["model"] == "rewriter")
    assert "- Languages: Rust" in rewrite["messages"][0]["content"]  # the rewrite's context
    sent = next(q["body"] for q in upstream.requests if q["body"]["model"] == "plain")
    own, about = sent["messages"][0], sent["messages"][1]
    assert own == {"role": "system", "content": "You are a careful engineer."}
    assert about["role"] == "system" and about["content"].startswith("About this user")
    assert "- Languages: Rust" in about["content"] and "Uses tokio" in about["content"]
    assert "beginner (explain terms and steps)" in about["content"]
    assert sent["messages"][-1]["role"] == "user"

    # Another owner gets nothing of it; nor does alice when she says no.
    upstream.clear_requests()
    assert _ask(server, "bob")["user_profile"]["added"] is False
    off = _ask(server, "alice", extra_body={"x_crewchief": {"user_profile": False}})
    assert off["user_profile"]["added"] is False
    for request in upstream.requests:
        assert "About this user" not in str(request["body"]["messages"])

    # Deleted: nothing is added any more.
    assert httpx.delete(f"{server.url}/v1/profile", headers=server.auth("alice")).json() == {
        "owner": "alice",
        "deleted": 1,
    }
    assert _ask(server, "alice")["user_profile"]["added"] is False
