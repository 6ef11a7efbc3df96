"""GET /healthz and /readyz (api/routes/health.py)."""

from __future__ import annotations

import sqlite3

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


def test_not_ready_when_the_store_cannot_answer(client):
    """A store that cannot run a query (here: closed under the app) fails readiness with a
    503 that says so; the process is still up."""
    client.app.state.services.store.close()
    r = client.get("/readyz")
    assert r.status_code == 503
    error = r.json()["error"]
    assert error["code"] == "store_unavailable"
    assert error["message"].startswith("the store cannot answer queries (RuntimeError: store is closed")
    assert client.get("/healthz").json() == {"status": "ok"}


def test_not_ready_when_the_database_cannot_be_opened(client, monkeypatch):
    """What issue 13 saw once file descriptors ran out: every query failed to open the database."""
    def cannot_open() -> int:
        raise sqlite3.OperationalError("unable to open database file")

    monkeypatch.setattr(client.app.state.services.store, "sentence_count", cannot_open)
    r = client.get("/readyz")
    assert r.status_code == 503
    assert r.json()["error"] == {"code": "store_unavailable", "message":
                                 "the store cannot answer queries (OperationalError: unable to open database file)"}
    assert client.get("/healthz").status_code == 200
