"""With Redis, per-key rate limits hold across API instances, not per process."""

from __future__ import annotations

import httpx

from crewchief.api import create_app
from tests.conftest import make_settings


async def test_two_instances_share_one_keys_limit(
    tmp_path, api_factory, redis_url: str, redis_prefix: str
) -> None:
    limits = {
        "api": {"rate_limit_per_minute": 6},
        "redis_url": redis_url,
        "redis_prefix": redis_prefix,
    }
    async with api_factory(**limits) as a:
        # A second instance on the same database and Redis.
        other = create_app(make_settings(a.settings.home, **limits))
        async with other.router.lifespan_context(other):
            transport = httpx.ASGITransport(app=other)
            async with httpx.AsyncClient(transport=transport, base_url="http://api") as b:
                codes = []
                for i in range(8):
                    client = a.client if i % 2 == 0 else b
                    r = await client.get("/v1/operations", headers=a.auth())
                    codes.append(r.status_code)
                # 6 a minute for the key, whichever instance answers.
                assert codes[:6] == [200] * 6 and codes[6:] == [429, 429], codes
                assert int(r.headers["Retry-After"]) >= 1
                # Another key has a bucket of its own.
                assert (await b.get("/v1/operations", headers=a.auth("bob"))).status_code == 200


async def test_without_redis_each_instance_limits_alone(
    api_factory,
) -> None:
    async with api_factory(api={"rate_limit_per_minute": 3}) as a:
        other = create_app(a.settings)
        async with other.router.lifespan_context(other):
            transport = httpx.ASGITransport(app=other)
            async with httpx.AsyncClient(transport=transport, base_url="http://api") as b:
                codes = [
                    (await c.get("/v1/operations", headers=a.auth())).status_code
                    for c in (a.client, b, a.client, b, a.client, b)
                ]
    assert codes == [200] * 6  # 3 each: embedded mode counts per process
