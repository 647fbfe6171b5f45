"""Readiness says whether the service can take operations, without exposing its internals."""

from __future__ import annotations

import logging

import pytest

from crewchief.api.deps import get_chief


class _DatabaseDown:
    """Stands in for the open facade when the database cannot be reached."""

    async def ping(self) -> None:
        raise OSError(
            'connection to server at "10.20.30.40", port 5432 failed: '
            'password authentication failed for user "crewchief_admin"'
        )


async def test_readiness_is_503_without_the_drivers_details(
    api, caplog: pytest.LogCaptureFixture
) -> None:
    assert (await api.client.get("/readyz")).status_code == 200

    async def down() -> _DatabaseDown:
        return _DatabaseDown()

    api.app.dependency_overrides[get_chief] = down
    try:
        with caplog.at_level(logging.WARNING):
            r = await api.client.get("/readyz")
    finally:
        api.app.dependency_overrides.pop(get_chief)
    assert r.status_code == 503
    error = r.json()["error"]
    assert error["code"] == "not_ready"
    assert "database unreachable" in error["message"]
    for secret in ("10.20.30.40", "5432", "crewchief_admin"):
        assert secret not in r.text
    # The operator still learns why, from the log.
    assert "10.20.30.40" in caplog.text
