"""/v1/keys (api/routes/keys.py): key management over HTTP with the ``admin`` scope, through
the app factory and the security middleware (real keys.db; TestClient). A limited admin
administers only within its collections and never mints a key that sees more than it does."""

from __future__ import annotations

from typing import Iterator

import pytest
from fastapi.testclient import TestClient

from citeqa.api.app import create_app
from citeqa.api.settings import Settings

DOC = {"doc_id": "note", "title": "Note", "text": "The lighthouse keeper painted the tower red."}


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def make_client(tmp_path, embedder) -> Iterator:
    clients: list[TestClient] = []

    def make(name: str = "data", **overrides) -> TestClient:
        settings = Settings(data_dir=tmp_path / name, seeds_dir=None, **overrides)
        client = TestClient(create_app(settings, embedder=embedder))
        clients.append(client.__enter__())
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def test_no_one_mints_the_first_key_anonymously(make_client):
    # Auto mode on loopback with no key: everything else is open, key management is not
    # (the first key would switch auth on and lock everybody else out).
    c = make_client()
    assert c.post("/v1/documents", json=DOC).status_code == 201
    r = c.post("/v1/keys", json={"name": "mine", "scopes": ["admin"]})
    assert r.status_code == 401 and "'admin' scope" in r.json()["error"]["message"]
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert c.get("/v1/keys").status_code == 401
    assert not c.app.state.keys.has_keys()


def test_key_management_needs_an_admin_key_even_with_auth_off(make_client):
    c = make_client(auth="off")
    _, writer = c.app.state.keys.create("writer", ["read", "write"])
    _, admin = c.app.state.keys.create("admin", ["admin"])
    assert c.post("/v1/documents", json=DOC).status_code == 201  # auth is off for the rest
    assert c.get("/v1/keys").status_code == 401
    r = c.get("/v1/keys", headers=bearer(writer))
    assert r.status_code == 403 and r.json()["error"] == {
        "code": "forbidden", "message": f"this key (id {writer.split('_')[1]}) lacks the 'admin' scope"}
    assert c.get("/v1/keys", headers=bearer("cq_00000000_wrong")).status_code == 401
    assert c.get("/v1/keys", headers=bearer(admin)).status_code == 200


def test_create_list_revoke_over_http(make_client):
    c = make_client(auth="on", auth_reads=True)
    _, admin = c.app.state.keys.create("root", ["admin"])
    r = c.post("/v1/keys", headers=bearer(admin), json={
        "name": "bot", "scopes": ["write", "read"], "collections": ["news", "sports"], "rate_per_s": 2.5, "burst": 7})
    assert r.status_code == 201, r.text
    made = r.json()
    secret = made.pop("secret")
    assert secret.startswith(f"cq_{made['key_id']}_")
    assert made["scopes"] == ["read", "write"] and made["collections"] == ["news", "sports"]
    assert (made["rate_per_s"], made["burst"], made["revoked_at"]) == (2.5, 7, None)
    # The store holds what the response said, and the secret works at once (a key without
    # the admin scope: 403, not the 401 of an unknown key).
    stored = c.app.state.keys.verify(secret)
    assert stored is not None and stored.collections == frozenset({"news", "sports"})
    assert c.get("/v1/keys", headers=bearer(secret)).status_code == 403
    unlimited = c.post("/v1/keys", headers=bearer(admin), json={"name": "all", "scopes": ["read"]}).json()
    assert unlimited["collections"] is None and unlimited["rate_per_s"] is None and unlimited["burst"] is None
    # Listing: every key, never a secret.
    r = c.get("/v1/keys", headers=bearer(admin))
    assert r.status_code == 200
    listed = {k["key_id"]: k for k in r.json()["keys"]}
    assert set(listed) == {admin.split("_")[1], made["key_id"], unlimited["key_id"]}
    assert listed[made["key_id"]] == made
    assert secret not in r.text and unlimited["secret"] not in r.text and admin not in r.text
    assert all("secret" not in k for k in r.json()["keys"])
    # Revocation: 204, refused from the next request on, then the id is no live key.
    assert c.delete(f"/v1/keys/{made['key_id']}", headers=bearer(admin)).status_code == 204
    r = c.get("/v1/keys", headers=bearer(secret))
    assert r.status_code == 401 and "revoked" in r.json()["error"]["message"]
    listed = {k["key_id"]: k for k in c.get("/v1/keys", headers=bearer(admin)).json()["keys"]}
    assert listed[made["key_id"]]["revoked_at"] is not None
    for gone in (made["key_id"], "nosuchid"):
        r = c.delete(f"/v1/keys/{gone}", headers=bearer(admin))
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found" and gone in r.text


@pytest.mark.parametrize("body, words", [
    ({"name": "x", "scopes": ["root"]}, "scopes must be some of read, write, admin"),
    ({"name": "x", "scopes": []}, "scopes"),
    ({"name": "x", "scopes": ["read"], "collections": ["bad name"]}, "'bad name'"),
    ({"name": "x", "scopes": ["read"], "collections": []}, "collections"),
    ({"name": "x", "scopes": ["read"], "collections": "news"}, "collections"),
    ({"name": "", "scopes": ["read"]}, "name"),
    ({"name": "x", "scopes": ["read"], "rate_per_s": -1}, "rate_per_s"),
    ({"name": "x", "scopes": ["read"], "burst": 0}, "burst"),
    ({"name": "x", "scopes": ["read"], "burst": 2**40}, "burst"),
    ({"name": "x", "scope": ["read"]}, "scope"),  # a typo is an error, not a key with no scope
])
def test_invalid_key_requests_are_422_and_create_nothing(make_client, body, words):
    c = make_client(auth="on")
    _, admin = c.app.state.keys.create("root", ["admin"])
    r = c.post("/v1/keys", headers=bearer(admin), json=body)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_request" and words in error["message"], error
    assert len(c.app.state.keys.list()) == 1


def test_a_limited_admin_administers_only_within_its_collections(make_client):
    c = make_client(auth="on")
    store = c.app.state.keys
    _, limited = store.create("news-admin", ["admin"], collections=["news", "sports"])
    other, _ = store.create("finance", ["read"], collections=["finance"])
    everything, _ = store.create("everything", ["read"])
    mine, _ = store.create("news-reader", ["read"], collections=["news"])
    # It may mint keys within its collections...
    r = c.post("/v1/keys", headers=bearer(limited), json={"name": "n", "scopes": ["read", "admin"],
                                                           "collections": ["sports"]})
    assert r.status_code == 201 and r.json()["collections"] == ["sports"]
    made = r.json()["key_id"]
    # ... never one for every collection or for one of its own plus another.
    for body, words in (({"name": "all", "scopes": ["read"]}, "not a key for every collection"),
                        ({"name": "more", "scopes": ["read"], "collections": ["news", "finance"]},
                         "not a key for collections finance")):
        r = c.post("/v1/keys", headers=bearer(limited), json=body)
        assert r.status_code == 403, r.text
        assert r.json()["error"]["code"] == "forbidden" and words in r.json()["error"]["message"]
        assert "limited to collections news, sports" in r.json()["error"]["message"]
    # It lists and revokes only keys limited within its collections (itself included).
    listed = {k["key_id"] for k in c.get("/v1/keys", headers=bearer(limited)).json()["keys"]}
    assert listed == {limited.split("_")[1], mine.key_id, made}
    for outside in (other.key_id, everything.key_id):
        r = c.delete(f"/v1/keys/{outside}", headers=bearer(limited))
        assert r.status_code == 404 and r.json()["error"]["message"] == f"no live key with id {outside!r}"
    assert {k.key_id for k in store.list() if k.revoked_at is None} >= {other.key_id, everything.key_id}
    assert c.delete(f"/v1/keys/{mine.key_id}", headers=bearer(limited)).status_code == 204
    # An unlimited admin sees and manages them all.
    _, root = store.create("root", ["admin"])
    assert len(c.get("/v1/keys", headers=bearer(root)).json()["keys"]) == 6
    assert c.delete(f"/v1/keys/{other.key_id}", headers=bearer(root)).status_code == 204


def test_admin_does_not_imply_read_or_write(make_client):
    c = make_client(auth="on", auth_reads=True)
    _, admin = c.app.state.keys.create("admin", ["admin"])
    _, everything = c.app.state.keys.create("all", ["admin", "read", "write"])
    r = c.post("/v1/documents", json=DOC, headers=bearer(admin))
    assert r.status_code == 403 and "'write' scope" in r.json()["error"]["message"]
    assert c.get("/v1/documents", headers=bearer(admin)).status_code == 403
    assert c.post("/v1/documents", json=DOC, headers=bearer(everything)).status_code == 201
    assert c.get("/v1/keys", headers=bearer(everything)).status_code == 200


def test_an_admin_keys_rate_limit_holds_on_key_management(make_client):
    c = make_client(auth="on")
    _, slow = c.app.state.keys.create("slow-admin", ["admin"], rate_per_s=0.1, burst=2)
    codes = [c.get("/v1/keys", headers=bearer(slow)).status_code for _ in range(3)]
    assert codes == [200, 200, 429]


def test_the_keys_routes_are_in_the_openapi_schema_with_the_error_shape(make_client):
    c = make_client()
    paths = c.get("/openapi.json").json()["paths"]
    assert {"get", "post"} <= set(paths["/v1/keys"]) and "delete" in paths["/v1/keys/{key_id}"]
    assert "4XX" in paths["/v1/keys"]["post"]["responses"]
