"""`GET /v1/operations`: newest first, status filter, cursor pagination."""

from __future__ import annotations

import asyncio


async def _start(api, request: str, **extra) -> str:
    r = await api.client.post(
        "/v1/operations", json={"request": request, **extra}, headers=api.auth()
    )
    assert r.status_code == 202, r.text
    return r.json()["id"]


async def _wait_for(api, op: str, status: str) -> None:
    for _ in range(250):  # hang guard: ~5 s
        r = await api.client.get(f"/v1/operations/{op}", headers=api.auth())
        if r.json()["status"] == status:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{op} is {r.json()['status']}, never {status}")


async def _pages(api, query: str) -> list[dict]:
    pages, cursor = [], None
    for _ in range(20):  # hang guard against a cursor that never ends
        url = f"/v1/operations?{query}" + (f"&cursor={cursor}" if cursor else "")
        r = await api.client.get(url, headers=api.auth())
        assert r.status_code == 200, r.text
        pages.append(r.json())
        cursor = r.json()["next_cursor"]
        if cursor is None:
            return pages
    raise AssertionError("pagination did not end")


async def test_newest_first_with_status_filter(api) -> None:
    done = [await _start(api, f"question {i}") for i in range(3)]
    waiting = [await _start(api, f"plan {i}", route="plan", approve_plan=True) for i in range(2)]
    for op in done:
        await _wait_for(api, op, "completed")
    for op in waiting:
        await _wait_for(api, op, "awaiting_approval")

    r = await api.client.get("/v1/operations", headers=api.auth())
    items = r.json()["items"]
    assert [i["id"] for i in items] == list(reversed(done + waiting))
    assert items[0]["request"] == "plan 1"
    assert r.json()["next_cursor"] is None

    r = await api.client.get("/v1/operations?status=awaiting_approval", headers=api.auth())
    assert [i["id"] for i in r.json()["items"]] == list(reversed(waiting))
    r = await api.client.get("/v1/operations?status=completed", headers=api.auth())
    assert [i["id"] for i in r.json()["items"]] == list(reversed(done))
    assert all(i["status"] == "completed" for i in r.json()["items"])
    r = await api.client.get("/v1/operations?status=failed", headers=api.auth())
    assert r.json() == {"items": [], "next_cursor": None}


async def test_cursor_pages_give_every_operation_once(api) -> None:
    ops = [await _start(api, f"question {i}") for i in range(7)]
    pages = await _pages(api, "limit=2")
    assert [len(p["items"]) for p in pages] == [2, 2, 2, 1]
    seen = [i["id"] for p in pages for i in p["items"]]
    assert seen == list(reversed(ops))
    assert pages[-1]["next_cursor"] is None
    assert all(p["next_cursor"] for p in pages[:-1])


async def test_exact_multiple_ends_with_a_null_cursor(api) -> None:
    ops = [await _start(api, f"question {i}") for i in range(4)]
    pages = await _pages(api, "limit=2")
    assert [[i["id"] for i in p["items"]] for p in pages] == [ops[:1:-1], ops[1::-1]]
    assert pages[-1]["next_cursor"] is None


async def test_new_operations_do_not_shift_later_pages(api) -> None:
    ops = [await _start(api, f"question {i}") for i in range(5)]
    r = await api.client.get("/v1/operations?limit=2", headers=api.auth())
    first = r.json()
    await _start(api, "arrived while paging")
    r = await api.client.get(
        f"/v1/operations?limit=10&cursor={first['next_cursor']}", headers=api.auth()
    )
    rest = r.json()
    seen = [i["id"] for i in first["items"] + rest["items"]]
    assert seen == list(reversed(ops))
    assert rest["next_cursor"] is None


async def test_paging_with_a_status_filter(api) -> None:
    waiting = [await _start(api, f"plan {i}", route="plan", approve_plan=True) for i in range(3)]
    done = await _start(api, "a quick one")
    for op in waiting:
        await _wait_for(api, op, "awaiting_approval")
    await _wait_for(api, done, "completed")
    pages = await _pages(api, "limit=2&status=awaiting_approval")
    assert [i["id"] for p in pages for i in p["items"]] == list(reversed(waiting))
    assert len(pages) == 2
