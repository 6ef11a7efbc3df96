"""The API's documentation pages (api/routes/api_docs.py): /docs and /redoc reference nothing
but this server, and every asset they reference is served. (In a real browser, offline:
tests/api/routes/test_playground.py.)"""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from citeqa.api.app import create_app
from citeqa.api.settings import Settings

_REFERENCE = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|\burl\s*:\s*["']([^"']+)["']""")


def _references(html: str) -> list[str]:
    return [a or b for a, b in _REFERENCE.findall(html)]


@pytest.fixture(scope="module")
def client(tmp_path_factory, embedder):
    """One app for the module: the pages need no documents."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("docs") / "data", seeds_dir=None)
    with TestClient(create_app(settings, embedder=embedder)) as c:
        yield c


@pytest.mark.parametrize("page", ["/docs", "/redoc", "/docs/oauth2-redirect"])
def test_the_docs_pages_reference_no_other_host(client, page):
    r = client.get(page)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert not re.search(r"(?i)\b(?:https?:)?//[a-z0-9]", r.text.replace("window.location", "")), r.text
    for reference in _references(r.text):
        assert reference.startswith("/"), reference


@pytest.mark.parametrize("page, expected", [
    ("/docs", {"/static/docs/swagger-ui-bundle.js", "/static/docs/swagger-ui.css", "/static/docs/favicon.png",
               "/openapi.json"}),
    ("/redoc", {"/static/docs/redoc.standalone.js", "/static/docs/favicon.png", "/openapi.json"}),
])
def test_every_asset_a_docs_page_references_is_served(client, page, expected):
    html = client.get(page).text
    references = set(_references(html)) | set(re.findall(r"""spec-url=["']([^"']+)""", html))
    assert expected <= references, references
    for reference in references:
        r = client.get(reference)
        assert r.status_code == 200 and len(r.content) > 100, reference
        assert r.headers["content-type"].split(";")[0] in {
            "text/javascript", "text/css", "image/png", "application/json"}, (reference, r.headers)


def test_swagger_ui_asks_no_outside_validator(client):
    # Swagger UI's default validator badge fetches https://validator.swagger.io: off.
    assert '"validatorUrl": null' in client.get("/docs").text


@pytest.mark.parametrize("name", ["core.py", "..%2Fcore.py", "swagger-ui-bundle.js.map", "nothing.js"])
def test_only_the_listed_assets_are_served(client, name):
    r = client.get(f"/static/docs/{name}")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_the_docs_stay_public_when_keys_are_required(tmp_path, embedder):
    settings = Settings(data_dir=tmp_path / "data", seeds_dir=None, auth="on", auth_reads=True)
    with TestClient(create_app(settings, embedder=embedder)) as c:
        assert c.get("/v1/documents").status_code == 401
        for path in ("/docs", "/redoc", "/openapi.json", "/static/docs/swagger-ui.css"):
            assert c.get(path).status_code == 200, path


def test_the_redoc_script_loads_no_image_from_a_cdn_and_revalidates_by_etag(client):
    r = client.get("/static/docs/redoc.standalone.js")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")
    assert "cdn.redoc.ly" not in r.text and "data:image/svg+xml" in r.text
    again = client.get("/static/docs/redoc.standalone.js", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
