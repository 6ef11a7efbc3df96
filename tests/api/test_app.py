"""The app factory (api/app.py): each app holds its own settings, services, keys and
metrics on ``app.state``, builds its security policy from the settings, and serves its schema."""

from __future__ import annotations

from dataclasses import fields

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from citeqa.api.app import create_app, security_policy
from citeqa.api.security import SecurityPolicy
from citeqa.api.settings import Settings


def _metric(client: TestClient, name: str) -> float:
    [value] = [s.value for f in text_string_to_metric_families(client.get("/metrics").text) for s in f.samples
               if s.name == name]
    return value


def test_openapi_is_served(client):
    spec = client.get("/openapi.json").json()
    assert {"/v1/ask", "/v1/search", "/v1/documents"} <= set(spec["paths"])


def test_the_security_policy_comes_from_the_settings_of_its_names(tmp_path):
    settings = Settings(data_dir=tmp_path, auth="on", host="0.0.0.0", auth_reads=True, key_rate_per_s=3.0,
                        key_burst=4, anonymous_rate_per_s=5.0, anonymous_burst=6, request_timeout_s=7.0)
    policy = security_policy(settings)
    for field in fields(SecurityPolicy):
        assert getattr(policy, field.name) == getattr(settings, field.name), field.name
    assert security_policy(Settings(data_dir=tmp_path)) == SecurityPolicy()  # the same defaults


def test_the_app_state_holds_what_routes_depend_on(settings, embedder):
    app = create_app(settings, embedder=embedder)
    assert app.state.settings is settings and app.state.services is None  # until the lifespan runs
    with TestClient(app):
        assert app.state.services.settings is settings
        assert app.state.keys.path == settings.data_dir / "keys.db"
    assert app.state.services is None  # closed with the lifespan


def test_two_apps_in_one_process_count_apart(tmp_path, embedder):
    one = create_app(Settings(data_dir=tmp_path / "one", seeds_dir=None), embedder=embedder)
    two = create_app(Settings(data_dir=tmp_path / "two", seeds_dir=None), embedder=embedder)
    assert one.state.metrics is not two.state.metrics
    assert one.state.metrics.registry is not two.state.metrics.registry
    with TestClient(one) as a, TestClient(two) as b:
        assert a.post("/v1/documents", json={"text": "One sentence. And another."}).status_code == 201
        assert _metric(a, "citeqa_documents_ingested_total") == 1 and _metric(a, "citeqa_index_sentences") == 2
        assert _metric(b, "citeqa_documents_ingested_total") == 0 and _metric(b, "citeqa_index_sentences") == 0
