"""``/docs`` (Swagger UI) and ``/redoc``: the API's documentation pages, whose scripts, styles
and icon citeqa serves itself, so the pages work offline and load nothing from a CDN.

FastAPI's own pages fetch their assets from a CDN, with no integrity hashes. The same assets
ship in the ``fastapi-offline`` package (Swagger UI: Apache-2.0, ReDoc: MIT), whose files are
served here: FastAPI's HTML with local URLs, Swagger UI's validator badge (which calls an
outside service) turned off, and ReDoc's "API docs by Redocly" logo, the one URL its script
loads from a CDN, replaced by an empty inline image.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse, HTMLResponse, Response

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
_REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
_EMPTY_IMAGE = "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg'/%3E"

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


@router.get(ASSETS_URL + "/{name}", response_model=None)
def asset(name: str, request: Request) -> FileResponse | Response:
    if name not in _ASSETS:
        raise ApiError(404, "not_found", f"no documentation asset {name!r}")
    if name != "redoc.standalone.js":
        return FileResponse(assets_dir() / name, media_type=_ASSETS[name], headers=_HEADERS)
    body, etag = _redoc_script()
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers={**_HEADERS, "ETag": etag})
    return Response(body, media_type=_ASSETS[name], headers={**_HEADERS, "ETag": etag})


@lru_cache(maxsize=1)
def _redoc_script() -> tuple[bytes, str]:
    body = (assets_dir() / "redoc.standalone.js").read_bytes().replace(_REDOC_LOGO.encode(), _EMPTY_IMAGE.encode())
    return body, f'"{hashlib.sha256(body).hexdigest()[:32]}"'
