"""URLs the server writes (citation links in chat annotations) start with the configured
public base URL, or the bound address: never with what a request's ``Host`` header says."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from citeqa.api.app import create_app
from citeqa.api.settings import Settings
from tests.support.corpus import SEEDS_DIR, TROOPS_QUESTION

CHAT = {"messages": [{"role": "user", "content": TROOPS_QUESTION}]}
EVIL = {"Host": "evil.example:666", "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"}


def _annotation_urls(client: TestClient) -> list[str]:
    """Every url_citation URL of a whole and of a streamed chat answer, asked with a forged Host."""
    message = client.post("/v1/chat/completions", json=CHAT, headers=EVIL).json()["choices"][0]["message"]
    urls = [a["url_citation"]["url"] for a in message["annotations"]]
    streamed = client.post("/v1/chat/completions", json={**CHAT, "stream": True}, headers=EVIL).text
    for line in streamed.splitlines():
        if line.startswith("data: {"):
            chunk = json.loads(line[6:])
            notes = chunk.get("annotations", []) + chunk["choices"][0]["delta"].get("annotations", [])
            urls += [a["url_citation"]["url"] for a in notes]
    assert len(urls) >= 2, "the troops question is answered with citations, whole and streamed"
    return urls


@pytest.mark.parametrize("overrides, base", [
    ({}, "http://127.0.0.1:8000/v1/documents/"),
    ({"host": "0.0.0.0", "port": 9000, "auth": "off"}, "http://127.0.0.1:9000/v1/documents/"),
    ({"public_base_url": "https://qa.example.org/citeqa/"}, "https://qa.example.org/citeqa/v1/documents/"),
])
def test_citation_urls_ignore_the_host_header(tmp_path, embedder, overrides, base):
    settings = Settings(data_dir=tmp_path / "data", seeds_dir=SEEDS_DIR, **overrides)
    with TestClient(create_app(settings, embedder=embedder)) as c:
        for url in _annotation_urls(c):
            assert url.startswith(base) and "evil" not in url, url


@pytest.mark.parametrize("host, port, expected", [
    ("127.0.0.1", 8000, "http://127.0.0.1:8000"), ("", 8000, "http://127.0.0.1:8000"),
    ("0.0.0.0", 80, "http://127.0.0.1:80"), ("::", 8000, "http://[::1]:8000"), ("::1", 8001, "http://[::1]:8001"),
    ("qa.internal", 8000, "http://qa.internal:8000"),
])
def test_the_default_public_url_is_the_bound_address(host, port, expected):
    assert Settings(host=host, port=port).public_url() == expected


@pytest.mark.parametrize("value", ["qa.example.org", "ftp://qa.example.org", "http://", "https://qa.example.org/?a=1",
                                   "https://qa.example.org/#x"])
def test_a_public_base_url_must_be_an_absolute_http_url(value):
    with pytest.raises(ValidationError, match="public_base_url"):
        Settings(public_base_url=value)
    assert Settings(public_base_url="").public_url() == "http://127.0.0.1:8000"  # empty: the default
