"""/v1/collections (api/routes/collections.py) and the ``collection`` / ``filter`` fields of
every route (api/access.py) through the app factory: create, list and delete collections,
and bad names and filters get a 422 (or 404) that says what is wrong, never a 500."""

from __future__ import annotations

import pytest

NOTE = {"doc_id": "note", "title": "Note", "text": "The lighthouse keeper painted the tower red."}
QUESTION = "What colour did the keeper paint the tower?"


def names(client) -> dict[str, dict]:
    return {c["name"]: c for c in client.get("/v1/collections").json()["collections"]}


def test_create_list_and_delete_a_collection(client):
    seeded = names(client)
    assert list(seeded) == ["default"] and seeded["default"]["documents"] > 0

    r = client.post("/v1/collections", json={"name": "news"})
    assert r.status_code == 201, r.text
    assert r.json()["name"] == "news" and r.json()["documents"] == 0 and r.json()["created_at"] > 0
    again = client.post("/v1/collections", json={"name": "news"})
    assert again.status_code == 409 and again.json()["error"]["message"] == "collection 'news' already exists"
    assert client.get("/v1/documents", params={"collection": "news"}).json() == {
        "collection": "news", "documents": [], "total": 0, "limit": 50, "offset": 0, "next_offset": None}

    written = client.post("/v1/documents", json={**NOTE, "collection": "news"}).json()
    assert written["collection"] == "news"
    assert names(client)["news"]["documents"] == 1
    busy = client.delete("/v1/collections/news")
    assert busy.status_code == 409
    message = busy.json()["error"]["message"]
    assert "holds 1 live document" in message and "force=true" in message
    assert client.get("/v1/documents/note", params={"collection": "news"}).status_code == 200

    gone = client.delete("/v1/collections/news", params={"force": "true"})
    assert gone.status_code == 200, gone.text
    assert gone.json()["documents_removed"] == 1 and gone.json()["kept"] is False
    assert "news" not in names(client)
    for r in (client.get("/v1/documents", params={"collection": "news"}),
              client.get("/v1/documents/note", params={"collection": "news"}),
              client.delete("/v1/collections/news"),
              client.post("/v1/search", json={"query": "keeper", "collection": "news"})):
        assert r.status_code == 404 and r.json()["error"] == {"code": "not_found",
                                                              "message": "collection 'news' not found"}
    # The version a citation named still resolves, as after a document's delete.
    old = client.get("/v1/documents/note", params={"collection": "news", "version": written["doc_version"]})
    assert old.status_code == 200 and old.json()["text"] == NOTE["text"] and old.json()["current"] is False
    # An empty collection goes without force.
    client.post("/v1/collections", json={"name": "empty"})
    assert client.delete("/v1/collections/empty").json()["documents_removed"] == 0


def test_deleting_default_empties_it_and_keeps_it(client):
    assert client.delete("/v1/collections/default").status_code == 409
    r = client.delete("/v1/collections/default", params={"force": "true"})
    assert r.status_code == 200 and r.json()["kept"] is True and r.json()["documents_removed"] > 0
    assert "emptied" in r.json()["message"] and "kept" in r.json()["message"]
    assert names(client)["default"]["documents"] == 0
    assert client.get("/v1/documents").json()["total"] == 0
    assert client.post("/v1/ask", json={"question": "How many troops?"}).json()["status"] == "unsupported"
    assert client.post("/v1/documents", json=NOTE).status_code == 201  # still there to write into


def test_same_doc_id_in_two_collections_is_two_documents(client):
    client.post("/v1/documents", json={**NOTE, "collection": "a"})
    client.post("/v1/documents", json={**NOTE, "text": NOTE["text"].replace("red", "blue"), "collection": "b"})
    for collection, colour in (("a", "red"), ("b", "blue")):
        doc = client.get("/v1/documents/note", params={"collection": collection}).json()
        assert doc["collection"] == collection and colour in doc["text"]
        body = client.post("/v1/ask", json={"question": QUESTION, "collection": collection}).json()
        assert colour in body["answer"] and all(c["collection"] == collection for c in body["citations"])
    assert client.get("/v1/documents/note").status_code == 404  # not in default
    upload = client.post("/v1/documents", files={"file": ("n.txt", b"The tower is green.", "text/plain")},
                         data={"doc_id": "note", "collection": "c"})
    assert upload.status_code == 201 and upload.json()["collection"] == "c"
    assert upload.json()["source"]["original_url"].endswith("&collection=c")
    assert client.get(upload.json()["source"]["original_url"]).content == b"The tower is green."
    blank = client.post("/v1/documents", files={"file": ("n.txt", b"The tower is grey.", "text/plain")},
                        data={"doc_id": "blank", "collection": ""})  # an empty form field is no field
    assert blank.status_code == 201 and blank.json()["collection"] == "default"


BAD_NAMES = ["bad name", "", "-dash", ".dot", "x" * 65, "a/b", "é"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_collection_names_are_422_everywhere(client, name):
    expected = "a collection name is 1-64 characters"
    for r in (client.post("/v1/collections", json={"name": name}),
              client.post("/v1/ask", json={"question": QUESTION, "collection": name}),
              client.post("/v1/search", json={"query": QUESTION, "collection": name}),
              client.post("/v1/documents", json={**NOTE, "collection": name}),
              client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": QUESTION}],
                                                        "collection": name}),
              client.post("/v1/chat/completions", json={"model": f"citeqa@{name}",
                                                        "messages": [{"role": "user", "content": QUESTION}]}),
              client.get("/v1/documents", params={"collection": name})):
        assert r.status_code == 422, (r.request.url, r.text)
        assert expected in r.json()["error"]["message"], r.text
    if name and "/" not in name:
        r = client.delete(f"/v1/collections/{name}")
        assert r.status_code == 422 and expected in r.json()["error"]["message"]


@pytest.mark.parametrize("body", [{"name": 5}, {"name": None}, {}, {"name": "ok", "extra": 1}])
def test_bad_collection_bodies_are_422(client, body):
    r = client.post("/v1/collections", json=body)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"


BAD_FILTERS = [
    ({"metadata": {"year": {"foo": 1}}}, "a condition object holds one or more of"),
    ({"metadata": {"year": {}}}, "a condition object holds one or more of"),
    ({"metadata": {"year": {"gte": "soon"}}}, "neither a number nor an ISO-8601 date"),
    ({"metadata": {"year": {"gte": 1, "lt": "2020-01-01"}}}, "all numbers or all dates"),
    ({"metadata": {"year": {"eq": 1, "gt": 0}}}, "'eq' and 'in' stand alone"),
    ({"metadata": {"tags": []}}, "membership needs a non-empty list"),
    ({"metadata": {"x": {"eq": [1]}}}, "compares with a string, number"),
    ({"metadata": {"x": {"in": 3}}}, "membership needs a non-empty list"),
    ({"metadata": {"a\"b": 1}}, "a metadata key is 1-200 characters"),
    ({"metadata": {"x": 2**70}}, "out of range"),
    ({"metadata": {f"k{i}": 1 for i in range(21)}}, "at most 20"),
    ({"metadata": [1]}, "filter.metadata"),
    ({"doc_ids": "abc"}, "filter.doc_ids"),
    ({"doc_ids": [1]}, "filter.doc_ids"),
    ({"doc_ids": ["a"] * 1001}, "filter.doc_ids"),
    ({"docs": ["a"]}, "filter.docs"),
    ("north", "filter"),
]


@pytest.mark.parametrize(("filter", "message"), BAD_FILTERS)
def test_bad_filters_are_422_with_what_is_wrong(client, filter, message):
    chat = {"messages": [{"role": "user", "content": QUESTION}], "filter": filter}
    for path, payload in (("/v1/ask", {"question": QUESTION, "filter": filter}),
                          ("/v1/search", {"query": QUESTION, "filter": filter}),
                          ("/v1/chat/completions", chat), ("/v1/chat/completions", {**chat, "stream": True})):
        r = client.post(path, json=payload)
        assert r.status_code == 422, (path, r.text)
        assert r.json()["error"]["code"] == "invalid_request" and message in r.json()["error"]["message"], r.text


def test_an_empty_filter_and_an_empty_doc_id_list(client):
    whole = client.post("/v1/search", json={"query": QUESTION, "top_k": 3}).json()["hits"]
    assert client.post("/v1/search", json={"query": QUESTION, "top_k": 3, "filter": {}}).json()["hits"] == whole
    none = client.post("/v1/search", json={"query": QUESTION, "filter": {"doc_ids": []}})
    assert none.status_code == 200 and none.json()["hits"] == []


def test_chat_model_names_and_collection_fields(client):
    messages = [{"role": "user", "content": QUESTION}]
    client.post("/v1/documents", json={**NOTE, "collection": "lights"})
    for payload in ({"model": "citeqa@lights"}, {"model": "extractive@lights"}, {"collection": "lights"},
                    {"model": "citeqa@lights", "collection": "lights"}):
        r = client.post("/v1/chat/completions", json={**payload, "messages": messages})
        assert r.status_code == 200, r.text
        assert "red" in r.json()["choices"][0]["message"]["content"]
    clash = client.post("/v1/chat/completions", json={"model": "citeqa@lights", "collection": "default",
                                                      "messages": messages})
    assert clash.status_code == 422 and "'lights'" in clash.json()["error"]["message"]
    missing = client.post("/v1/chat/completions", json={"model": "citeqa@nowhere", "messages": messages})
    assert missing.status_code == 404 and missing.json()["error"]["message"] == "collection 'nowhere' not found"
    unknown = client.post("/v1/chat/completions", json={"model": "nosuch@lights", "messages": messages})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "model_not_found"
    assert "citeqa@lights" in unknown.json()["error"]["message"]
    assert "citeqa@lights" in {m["id"] for m in client.get("/v1/models").json()["data"]}


def test_a_limited_admin_creates_and_deletes_only_its_collections(client):
    _, secret = client.app.state.keys.create("ops", ["read", "write", "admin"], rate_per_s=0,
                                             collections=["mine", "also"])
    ops = {"Authorization": f"Bearer {secret}"}
    assert client.post("/v1/collections", json={"name": "mine"}, headers=ops).status_code == 201
    _, root = client.app.state.keys.create("root", ["read", "admin"], rate_per_s=0)
    assert client.post("/v1/collections", json={"name": "theirs"}, headers={"Authorization": f"Bearer {root}"}
                       ).status_code == 201
    for name in ("theirs", "default", "unheard"):
        for r in (client.post("/v1/collections", json={"name": name}, headers=ops),
                  client.delete(f"/v1/collections/{name}", headers=ops, params={"force": "true"})):
            assert r.status_code == 404 and r.json()["error"]["message"] == f"collection {name!r} not found"
    assert "also" not in names(client)  # "also" is allowed but was never created
    assert client.delete("/v1/collections/also", headers=ops).status_code == 404
    assert [c["name"] for c in client.get("/v1/collections", headers=ops).json()["collections"]] == ["mine"]
    assert client.delete("/v1/collections/mine", headers=ops).status_code == 200
