"""`/docs` (Swagger UI) and `/redoc` render offline: every asset is served by the app itself."""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

import pytest

ASSET_TYPES = {
    ".js": ("javascript",),
    ".css": ("text/css",),
    ".png": ("image/png",),
    ".svg": ("image/svg",),
}


def _referenced_urls(html: str) -> list[str]:
    return re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)


@pytest.mark.parametrize(
    ("page", "marker"),
    [("/docs", "SwaggerUIBundle"), ("/redoc", "Redoc")],
)
async def test_docs_pages_load_every_asset_from_this_server(api, page, marker) -> None:
    r = await api.client.get(page)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    # No other host is named anywhere in the page (no CDN, no web fonts).
    assert not re.search(r"(https?:)?//[a-z0-9.-]+", r.text, re.I), r.text
    urls = _referenced_urls(r.text)
    scripts = [u for u in urls if u.endswith(".js")]
    assert scripts, urls
    if page == "/docs":
        assert any(u.endswith(".css") for u in urls), urls
    for url in urls:
        assert not urlsplit(url).netloc, url
        asset = await api.client.get(urljoin(f"http://api{page}", url))
        assert asset.status_code == 200, url
        suffix = "." + url.rsplit(".", 1)[-1]
        kinds = ASSET_TYPES[suffix]
        assert any(k in asset.headers["content-type"] for k in kinds), (url, asset.headers)
        assert len(asset.content) > 100, url
    bundle = await api.client.get(urljoin(f"http://api{page}", scripts[0]))
    assert marker in bundle.text
    assert len(bundle.content) > 100_000  # the real bundle, not a stub


async def test_docs_page_points_at_this_apps_openapi_document(api) -> None:
    html = (await api.client.get("/docs")).text
    assert "'/openapi.json'" in html
    assert (await api.client.get("/openapi.json")).status_code == 200
    assert (await api.client.get("/docs/oauth2-redirect")).status_code == 200


async def test_docs_assets_are_not_part_of_the_api_document(api) -> None:
    spec = (await api.client.get("/openapi.json")).json()
    assert not [p for p in spec["paths"] if p.startswith(("/docs", "/redoc"))]
