"""The web playground: ``GET /`` is a static page (api/static) that drives the public API.

Plain files, no build step. Only the files listed here are served, so nothing else in the
package can be read through ``/static/``.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from citeqa.api.errors import ApiError

STATIC_DIR = Path(__file__).parent.parent / "static"
_FILES = {
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
# The page loads nothing but its own files and talks only to this server.
_HEADERS = {
    "Cache-Control": "no-cache",  # revalidate (ETag), so an upgrade shows up at once
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; base-uri 'none'; "
                               "form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}

router = APIRouter(include_in_schema=False)


@router.get("/")
def index() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html; charset=utf-8", headers=_HEADERS)


@router.get("/static/{name}")
def static(name: str) -> FileResponse:
    if name not in _FILES:
        raise ApiError(404, "not_found", f"no static file {name!r}")
    return FileResponse(STATIC_DIR / name, media_type=_FILES[name], headers=_HEADERS)
