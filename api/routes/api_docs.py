"""``/docs`` (Swagger UI) and ``/redoc``: the API's documentation pages, whose scripts, styles
and icon citeqa serves itself, so the pages work offline and load nothing from a CDN.

FastAPI's own pages fetch their assets from a CDN, with no integrity hashes. The same assets
ship in the ``fastapi-offline`` package (Swagger UI: Apache-2.0, ReDoc: MIT), whose files are
served here as they are: FastAPI's HTML with local URLs, and Swagger UI's validator badge
(which calls an outside service) turned off.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse, HTMLResponse

from citeqa.api.errors import ApiError

ASSETS_URL = "/static/docs"
_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "redoc.standalone.js": "text/javascript; charset=utf-8",
    "favicon.png": "image/png",
}
_HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}  # revalidate by ETag after upgrades
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"

router = APIRouter(include_in_schema=False)


def assets_dir() -> Path:
    return Path(str(files("fastapi_offline") / "static"))


def _asset(request: Request, name: str) -> str:
    return f"{request.scope.get('root_path', '')}{ASSETS_URL}/{name}"


@router.get("/docs")
def swagger_ui(request: Request) -> HTMLResponse:
    root = request.scope.get("root_path", "")
    return get_swagger_ui_html(
        openapi_url=f"{root}{request.app.openapi_url}", title=f"{request.app.title} - Swagger UI",
        oauth2_redirect_url=f"{root}{OAUTH2_REDIRECT_URL}",
        swagger_js_url=_asset(request, "swagger-ui-bundle.js"), swagger_css_url=_asset(request, "swagger-ui.css"),
        swagger_favicon_url=_asset(request, "favicon.png"),
        swagger_ui_parameters={"validatorUrl": None},
    )


@router.get(OAUTH2_REDIRECT_URL)
def swagger_ui_oauth2_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


@router.get("/redoc")
def redoc(request: Request) -> HTMLResponse:
    root = request.scope.get("root_path", "")
    return get_redoc_html(
        openapi_url=f"{root}{request.app.openapi_url}", title=f"{request.app.title} - ReDoc",
        redoc_js_url=_asset(request, "redoc.standalone.js"), redoc_favicon_url=_asset(request, "favicon.png"),
        with_google_fonts=False,
    )


@router.get(ASSETS_URL + "/{name}")
def asset(name: str) -> FileResponse:
    if name not in _ASSETS:
        raise ApiError(404, "not_found", f"no documentation asset {name!r}")
    return FileResponse(assets_dir() / name, media_type=_ASSETS[name], headers=_HEADERS)
