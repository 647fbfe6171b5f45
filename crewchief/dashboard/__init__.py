"""The web dashboard: a static page at ``/`` that watches and steers operations.

The page and its scripts ship inside the package (``static/``): plain HTML, CSS and
JavaScript modules, with no build step, so an installed wheel serves it as is and no
Node.js is needed anywhere. It talks to the REST API with the same API keys as any
client; the page itself holds no data and needs no key to load.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import Scope

STATIC = Path(__file__).parent / "static"
ASSETS = "/dashboard"

# Everything the page loads comes from this server: no CDN, fonts or trackers. Scripts
# set styles through the DOM (allowed) and never inject HTML.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none';"
        " frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


class _Assets(StaticFiles):
    """The page's scripts and styles, revalidated on every load (their names carry no
    version, so a new release must not be hidden behind a cached copy)."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers["Cache-Control"] = "no-cache"
        response.headers.update(SECURITY_HEADERS)
        return response


def install(app: FastAPI) -> None:
    """Serve the page at ``/`` and its assets under ``/dashboard``.

    Raises:
        RuntimeError: the page's files are missing (a broken install).
    """
    index = STATIC / "index.html"
    if not index.is_file():
        raise RuntimeError(f"the dashboard's files are missing from {STATIC}: reinstall crewchief")

    @app.get("/", include_in_schema=False)
    async def dashboard() -> FileResponse:
        return FileResponse(
            index,
            media_type="text/html; charset=utf-8",
            headers={"Cache-Control": "no-cache", **SECURITY_HEADERS},
        )

    app.mount(ASSETS, _Assets(directory=STATIC), name="dashboard")
