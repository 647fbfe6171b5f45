"""`/docs` (Swagger UI) and `/redoc`, served with their assets from this server: no CDN.

The Swagger UI and ReDoc bundles come from the ``fastapi-standalone-docs``
package (PyPI), which repackages the upstream releases; FastAPI's own pages
would load them from a CDN and stay blank offline.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_PACKAGE = "fastapi_standalone_docs"
DOCS = "/docs"
REDOC = "/redoc"
OAUTH2_REDIRECT = "/docs/oauth2-redirect"
SWAGGER_ASSETS = "/docs/assets"  # swagger-ui-bundle.js, swagger-ui.css
ICONS = "/docs/icons"  # favicon.png
# ReDoc's bundle loads its logo from the page's own path: /redoc/logo-mini.svg.
REDOC_ASSETS = REDOC


def install(app: FastAPI) -> None:
    """Add the two documentation pages and their assets (the app is built with neither).

    Raises:
        RuntimeError: the assets package is not installed (a broken install).
    """
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get(DOCS, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{SWAGGER_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{SWAGGER_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ICONS}/favicon.png",
            oauth2_redirect_url=root + OAUTH2_REDIRECT,
            swagger_ui_parameters=app.swagger_ui_parameters,
        )

    @app.get(OAUTH2_REDIRECT, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(REDOC, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_redoc_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{REDOC_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ICONS}/favicon.png",
            with_google_fonts=False,
        )

    # Mounted after the pages, so /docs/oauth2-redirect stays a page.
    for path, folder in (
        (SWAGGER_ASSETS, "static/swagger"),
        (ICONS, "static/fastapi"),
        (REDOC_ASSETS, "static/redoc"),
    ):
        try:
            files = StaticFiles(packages=[(ASSETS_PACKAGE, folder)])
        except (AssertionError, ModuleNotFoundError) as exc:
            raise RuntimeError(
                f"the API docs need the {ASSETS_PACKAGE.replace('_', '-')} package"
                f" (a dependency of crewchief): {exc}"
            ) from exc
        app.mount(path, files, name=f"docs-{folder.rsplit('/', 1)[-1]}")
