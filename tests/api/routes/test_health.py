"""GET /healthz and /readyz (api/routes/health.py)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from citeqa.api.app import create_app


def test_health_and_ready(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["sentences"] > 0


def test_not_ready_before_the_lifespan_has_run(settings):
    # Without ``with``, TestClient never runs the lifespan: no model, no index.
    client = TestClient(create_app(settings))
    assert client.get("/healthz").json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 503
    assert r.json() == {"error": {"code": "not_ready", "message": "the model or index is still loading"}}
    r = client.get("/v1/documents")
    assert r.status_code == 503
    assert r.json() == {"error": {"code": "not_ready", "message": "the index is still loading; try again shortly"}}
