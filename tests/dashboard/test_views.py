"""The usage, gateway and feedback views show the server's data after some work."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from openai import OpenAI
from playwright.sync_api import expect

from bench.fake_openai import FakeOpenAIThread
from tests.dashboard.conftest import Dashboard, four_task_rules

pytestmark = pytest.mark.browser

COMMENT = "Exactly the four steps I needed"


@pytest.fixture
def upstream() -> Iterator[FakeOpenAIThread]:
    """A fake OpenAI-compatible server on loopback, for the gateway to forward to."""
    with FakeOpenAIThread() as fake:
        yield fake


def _number(n: int) -> re.Pattern[str]:
    """``n`` as a page may print it: 1234, 1,234 or 1 234 (any thousands separator)."""
    digits = str(n)
    groups = [digits[max(0, i - 3) : i] for i in range(len(digits), 0, -3)][::-1]
    return re.compile(r"(?<![\d.,])" + r"[,.\u202f\u00a0 ]?".join(groups) + r"(?![\d])")


class TestKeylessServer:
    def test_usage_gateway_and_feedback_views_show_the_work_done(
        self, dashboard_factory: Callable[..., Dashboard], upstream: FakeOpenAIThread
    ) -> None:
        # The gateway forwards to OpenAI-compatible servers only: the fake one on loopback
        # (real requests on for it; the operations stay on the scripted fake model).
        dash = dashboard_factory(
            four_task_rules(plan=0.1, delays=(0.1, 0.1, 0.1, 0.1), synthesize=0.1),
            env={
                "CREWCHIEF_ALLOW_MODEL_REQUESTS": "1",
                "OPENAI_BASE_URL": upstream.base_url,
                "OPENAI_API_KEY": "sk-upstream",
            },
        )
        dash.open()
        op_id = dash.start_from_page("Do the four steps", route="plan")
        page = dash.page
        expect(page.locator("[data-testid=op-status]")).to_have_text("completed")

        client = OpenAI(base_url=f"{dash.server.url}/v1", api_key="unused", max_retries=0)
        answer = client.chat.completions.create(
            model="openai:upstream-strong",
            messages=[{"role": "user", "content": "Design a cache for the parser"}],
            extra_body={"role": "architect"},
        )
        gateway = answer.model_extra["x_crewchief"]
        assert gateway["role"] == "architect"
        rated = dash.api(
            "POST", f"/v1/operations/{op_id}/feedback", json={"thumb": "up", "comment": COMMENT}
        )
        assert rated.status_code == 201, rated.text

        usage = dash.api("GET", "/v1/usage", params={"since": "7d"}).json()["totals"]
        tokens = usage["input_tokens"] + usage["output_tokens"]
        assert tokens > 0 and usage["calls"] >= 7  # plan, four tasks, synthesis, gateway
        dash.open("#/usage")
        main = page.locator("main")
        expect(main).to_contain_text(_number(tokens), use_inner_text=True)
        expect(main).to_contain_text(re.compile("tokens", re.I))

        dash.open("#/gateway")
        row = page.locator("tr", has_text="architect")
        expect(row).to_have_count(1)
        expect(row).to_contain_text(gateway["model"])

        dash.open("#/feedback")
        expect(page.locator("main")).to_contain_text(COMMENT)
