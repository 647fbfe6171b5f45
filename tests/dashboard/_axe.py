"""Accessibility checks on a Playwright page: axe-core's serious violations, sideways overflow.

axe-core comes inside ``axe-playwright-python`` (its ``axe.min.js`` is injected into the
page): the check runs offline.
"""

from __future__ import annotations

from typing import Any

from axe_playwright_python.sync_playwright import Axe

SERIOUS = {"serious", "critical"}


def serious_violations(page: Any) -> list[str]:
    """axe-core's serious and critical violations on the page, one line per element."""
    results = Axe().run(page)
    lines = []
    for v in results.response["violations"]:
        if v["impact"] not in SERIOUS:
            continue
        for node in v["nodes"]:
            where = ", ".join(map(str, node["target"]))
            why = " ".join(node.get("failureSummary", "").split())
            lines.append(f"{v['impact']} {v['id']} ({v['help']}) at {where}: {why}")
    return lines


def horizontal_overflow(page: Any) -> int:
    """How many CSS pixels the page is wider than the viewport (0 when it fits)."""
    return page.evaluate(
        "() => Math.max(0, document.scrollingElement.scrollWidth - window.innerWidth)"
    )
