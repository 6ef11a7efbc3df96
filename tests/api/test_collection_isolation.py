"""Collections and filters over HTTP (api/access.py and every route that reads or writes):
a key limited to one collection never gets, cites, quotes or even learns of another
collection's data, whichever route it uses, and filters narrow answers to the documents
they admit without starving them (real model, real embedded store; TestClient).

The collections hold near-identical documents (same doc_ids, same sentences, other
figures), so the retriever would happily answer from the wrong one: only the scope keeps
it out."""

from __future__ import annotations

import json
from typing import Any, Iterator
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from citeqa.api.app import create_app
from citeqa.api.settings import Settings
from tests.support.citations import assert_citation_contract

WORKERS_QUESTION = "How many workers does the Riverside factory employ?"
# collection -> the figures only its documents hold
FIGURES = {
    "alpha": ("1,200", "1952", "Hartmann", "Denmark"),
    "beta": ("3,400", "1987", "Okafor", "Brazil"),
    "default": ("5,600", "1931", "Lindqvist", "Japan"),
}


def factory_text(workers: str, year: str, family: str, country: str) -> str:
    return (f"The Riverside factory employs {workers} workers. It opened in {year} under the {family} family. "
            f"Its main product is bicycle frames. Most of the frames are shipped to {country}.")


SECRET = {"doc_id": "northgate", "title": "Northgate plant",
          "text": "The Northgate plant employs 7,700 workers. It builds tram carriages for Vienna."}

# Reports for the filters: the same sentences with other figures, and metadata to filter on.
REPORTS = {
    "r2019": ({"year": 2019, "region": "north", "published": "2019-03-01"}, "210"),
    "r2021": ({"year": 2021, "region": "south", "published": "2021-06-15"}, "450"),
    "r2023": ({"year": 2023, "region": "north", "published": "2023-09-30"}, "780"),
}


def report_text(ships: str) -> str:
    return (f"The harbour of Kessel handled {ships} cargo ships this year. The harbour master counted every "
            "arrival by hand. Storms closed the harbour for eleven days. A new crane was built on the east pier. "
            "The ferry to the islands ran twice a day. Fishing boats moored along the old quay.")


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


class AsKey:
    """The test client with one API key on every request."""

    def __init__(self, client: TestClient, secret: str):
        self.client, self.headers = client, bearer(secret)

    def get(self, url: str, **kw: Any) -> Any:
        return self.client.get(url, headers=self.headers, **kw)

    def post(self, url: str, **kw: Any) -> Any:
        return self.client.post(url, headers=self.headers, **kw)

    def delete(self, url: str, **kw: Any) -> Any:
        return self.client.delete(url, headers=self.headers, **kw)

    def stream(self, method: str, url: str, **kw: Any) -> Any:
        return self.client.stream(method, url, headers=self.headers, **kw)


class InCollection:
    """A client whose document reads name ``collection`` (what a citation's URL carries):
    lets tests/support/citations.py check citations of any collection."""

    def __init__(self, client: Any, collection: str):
        self.client, self.collection = client, collection

    def get(self, url: str, params: dict[str, Any] | None = None, **kw: Any) -> Any:
        return self.client.get(url, params={**(params or {}), "collection": self.collection}, **kw)


@pytest.fixture(scope="module")
def app_client(tmp_path_factory, embedder) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("isolation"), seeds_dir=None)
    with TestClient(create_app(settings, embedder=embedder)) as c:
        yield c


@pytest.fixture(scope="module")
def admin(app_client) -> AsKey:
    """An unlimited key with every scope, which fills the collections."""
    _, secret = app_client.app.state.keys.create("admin", ["read", "write", "admin"], rate_per_s=0)
    c = AsKey(app_client, secret)
    for collection, figures in FIGURES.items():
        for doc_id in ("factory", "scratch"):
            r = c.post("/v1/documents", json={"doc_id": doc_id, "title": "Riverside factory", "collection": collection,
                                              "text": factory_text(*figures), "metadata": {"site": collection}})
            assert r.status_code == 201 and r.json()["collection"] == collection, r.text
        memo = f"Memo: the Riverside factory employs {figures[0]} workers.\n".encode()
        r = c.post("/v1/documents", files={"file": ("memo.txt", memo, "text/plain")},
                   data={"doc_id": "memo", "collection": collection})
        assert r.status_code == 201 and r.json()["collection"] == collection, r.text
    assert c.post("/v1/documents", json={**SECRET, "collection": "beta"}).status_code == 201
    for doc_id, (metadata, ships) in REPORTS.items():
        r = c.post("/v1/documents", json={"doc_id": doc_id, "title": f"Harbour report {metadata['year']}",
                                          "text": report_text(ships), "metadata": metadata, "collection": "reports"})
        assert r.status_code == 201, r.text
    for i in range(25):  # harbour news without metadata: what a filter must look past
        r = c.post("/v1/documents", json={
            "doc_id": f"news{i}", "collection": "reports",
            "text": f"The harbour of Kessel welcomed {1000 + i * 37} visitors on day {i}. Cargo ships and ferries "
                    f"crowded the harbour. The harbour master praised crew number {i}."})
        assert r.status_code == 201, r.text
    return c


@pytest.fixture(scope="module")
def alpha(app_client, admin) -> AsKey:
    """A key limited to ``alpha`` (read and write)."""
    _, secret = app_client.app.state.keys.create("alpha-only", ["read", "write"], rate_per_s=0,
                                                 collections=["alpha"])
    return AsKey(app_client, secret)


def others(collection: str) -> list[str]:
    return [f for name, figures in FIGURES.items() if name != collection for f in figures] + ["7,700", "Northgate"]


def assert_only(collection: str, *texts: str) -> None:
    for text in texts:
        leaked = [f for f in others(collection) if f in text]
        assert not leaked, f"{leaked} of another collection in {text!r}"


def assert_same_404(hidden: Any, hidden_name: str, missing: Any, missing_name: str) -> None:
    """The 404 for what exists where the key may not look is the 404 for what does not
    exist at all, but for the name asked about."""
    assert hidden.status_code == missing.status_code == 404, (hidden.text, missing.text)
    assert hidden.json() == json.loads(missing.text.replace(missing_name, hidden_name))


def sse_events(response: Any) -> list[dict]:
    lines = [line for line in response.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    return [json.loads(line[6:]) for line in lines[:-1]]


# -- answers: ask, search, chat --------------------------------------------------------------


def test_ask_answers_from_the_keys_collection_alone(alpha):
    for payload in ({"question": WORKERS_QUESTION}, {"question": WORKERS_QUESTION, "collection": "alpha"}):
        body = alpha.post("/v1/ask", json=payload).json()
        assert body["status"] == "answered" and "1,200" in body["answer"], body
        assert body["citations"] and {c["collection"] for c in body["citations"]} == {"alpha"}
        assert_only("alpha", body["answer"], *(c["quote"] for c in body["citations"]))
        assert_citation_contract(InCollection(alpha, "alpha"), body)


def test_an_unlimited_caller_picks_the_collection(admin):
    for collection, figures in FIGURES.items():
        body = admin.post("/v1/ask", json={"question": WORKERS_QUESTION, "collection": collection}).json()
        assert figures[0] in body["answer"], body
        assert_only(collection, body["answer"], *(c["quote"] for c in body["citations"]))
        assert_citation_contract(InCollection(admin, collection), body)
    # Without a collection: default, as before collections existed.
    assert "5,600" in admin.post("/v1/ask", json={"question": WORKERS_QUESTION}).json()["answer"]


def test_ask_and_search_elsewhere_are_404_as_for_a_missing_collection(alpha):
    for path, payload in (("/v1/ask", {"question": WORKERS_QUESTION}), ("/v1/search", {"query": WORKERS_QUESTION})):
        for hidden in ("beta", "default"):
            assert_same_404(alpha.post(path, json={**payload, "collection": hidden}), hidden,
                            alpha.post(path, json={**payload, "collection": "nowhere"}), "nowhere")


def test_search_hits_stay_in_the_collection(alpha, admin):
    query = {"query": "Riverside factory workers bicycle frames", "top_k": 20}
    hits = alpha.post("/v1/search", json=query).json()["hits"]
    assert hits and {h["collection"] for h in hits} == {"alpha"}
    assert {h["doc_id"] for h in hits} <= {"factory", "scratch", "memo", "note"}
    assert_only("alpha", *(h["text"] for h in hits))
    for h in hits:
        text = alpha.get(f"/v1/documents/{h['doc_id']}", params={"version": h["doc_version"]}).json()["text"]
        assert text[h["start"]:h["end"]] == h["text"]
    beta = admin.post("/v1/search", json={"query": "Which plant builds tram carriages?", "collection": "beta"}).json()
    assert beta["hits"][0]["doc_id"] == "northgate" and beta["hits"][0]["collection"] == "beta"


def _check_chat_citations(client: Any, collection: str, content: str, message: dict) -> None:
    assert message["citations"] and {c["collection"] for c in message["citations"]} == {collection}
    assert_only(collection, content, *(c["quote"] for c in message["citations"]))
    quotes = {c["marker"]: c["quote"] for c in message["citations"]}
    for a in message["annotations"]:
        u = a["url_citation"]
        url = urlsplit(u["url"])
        assert f"collection={collection}" in url.query
        resolved = client.get(f"{url.path}?{url.query}")
        assert resolved.status_code == 200, resolved.text
        assert resolved.json()["span"]["text"] == quotes[int(content[u["start_index"] + 1:u["end_index"] - 1])]


@pytest.mark.parametrize("model", ["citeqa", "citeqa@alpha", "extractive@alpha"])
def test_chat_whole_and_streamed_answers_from_the_collection(alpha, model):
    payload = {"model": model, "messages": [{"role": "user", "content": WORKERS_QUESTION}]}
    whole = alpha.post("/v1/chat/completions", json=payload)
    assert whole.status_code == 200, whole.text
    assert whole.json()["model"] == model
    message = whole.json()["choices"][0]["message"]
    assert "1,200" in message["content"]
    _check_chat_citations(alpha, "alpha", message["content"], message)
    with alpha.stream("POST", "/v1/chat/completions", json={**payload, "stream": True}) as r:
        assert r.status_code == 200
        events = sse_events(r)
    content = "".join(e["choices"][0]["delta"].get("content", "") for e in events)
    assert content == message["content"]
    streamed = [c for e in events for c in e["choices"][0]["delta"].get("citations", [])]
    assert streamed == events[-1]["citations"] == message["citations"]
    _check_chat_citations(alpha, "alpha", content, {**events[-1], "citations": streamed})


def test_chat_model_names_pick_collections_and_hide_the_others(alpha, admin):
    body = admin.post("/v1/chat/completions", json={
        "model": "extractive@beta", "messages": [{"role": "user", "content": WORKERS_QUESTION}]}).json()
    assert "3,400" in body["choices"][0]["message"]["content"]
    _check_chat_citations(admin, "beta", body["choices"][0]["message"]["content"], body["choices"][0]["message"])
    question = [{"role": "user", "content": WORKERS_QUESTION}]
    for hidden in ("beta", "default"):
        assert_same_404(alpha.post("/v1/chat/completions", json={"model": f"citeqa@{hidden}", "messages": question}),
                        hidden,
                        alpha.post("/v1/chat/completions", json={"model": "citeqa@nowhere", "messages": question}),
                        "nowhere")
        with alpha.stream("POST", "/v1/chat/completions",
                          json={"model": f"citeqa@{hidden}", "messages": question, "stream": True}) as r:
            assert r.status_code == 404  # decided before the stream starts
    models = [m["id"] for m in alpha.get("/v1/models").json()["data"]]
    assert "citeqa@alpha" in models and not [m for m in models if "beta" in m or "reports" in m]
    everything = {m["id"] for m in admin.get("/v1/models").json()["data"]}
    assert {"citeqa", "extractive", "citeqa@alpha", "citeqa@beta", "citeqa@reports"} <= everything


# -- documents and collections --------------------------------------------------------------------


def test_document_reads_stay_in_the_collection(alpha):
    listed = alpha.get("/v1/documents").json()
    assert listed["collection"] == "alpha" and {d["doc_id"] for d in listed["documents"]} == {"factory", "memo",
                                                                                              "scratch"}
    doc = alpha.get("/v1/documents/factory").json()
    assert doc["collection"] == "alpha" and "1,200" in doc["text"]
    assert_only("alpha", doc["text"])
    start = doc["text"].index("1,200")
    span = alpha.get("/v1/documents/factory", params={"start": start, "end": start + 5}).json()["span"]
    assert span["text"] == "1,200"
    memo = alpha.get("/v1/documents/memo").json()
    assert memo["source"]["original_url"].endswith("&collection=alpha")
    original = alpha.get(memo["source"]["original_url"])
    assert original.status_code == 200 and b"1,200" in original.content
    assert alpha.get("/v1/documents/memo/original").content == original.content


def test_documents_elsewhere_are_404_as_for_a_missing_collection(alpha):
    for hidden in ("beta", "default"):
        for method, path in (("get", "/v1/documents"), ("get", "/v1/documents/factory"),
                             ("get", "/v1/documents/memo/original"), ("delete", "/v1/documents/scratch")):
            call = getattr(alpha, method)
            assert_same_404(call(path, params={"collection": hidden}), hidden,
                            call(path, params={"collection": "nowhere"}), "nowhere")


def test_a_document_only_elsewhere_is_as_missing_as_one_nowhere(alpha, admin):
    version = admin.get("/v1/documents/northgate", params={"collection": "beta"}).json()["doc_version"]
    assert_same_404(alpha.get("/v1/documents/northgate"), "northgate", alpha.get("/v1/documents/nodoc"), "nodoc")
    assert_same_404(alpha.get("/v1/documents/northgate", params={"version": version}), "northgate",
                    alpha.get("/v1/documents/nodoc", params={"version": version}), "nodoc")
    assert_same_404(alpha.delete("/v1/documents/northgate"), "northgate", alpha.delete("/v1/documents/nodoc"), "nodoc")
    assert admin.get("/v1/documents/northgate", params={"collection": "beta"}).status_code == 200


def test_deletes_touch_only_the_collection(alpha, admin):
    assert alpha.delete("/v1/documents/scratch", params={"collection": "beta"}).status_code == 404
    assert alpha.delete("/v1/documents/scratch").status_code == 204
    assert alpha.get("/v1/documents/scratch").status_code == 404
    for collection in ("beta", "default"):
        assert admin.get("/v1/documents/scratch", params={"collection": collection}).status_code == 200


def test_writes_go_to_the_keys_collection_alone(alpha, admin):
    doc = {"doc_id": "note", "text": "A note about the Riverside canteen."}
    r = alpha.post("/v1/documents", json=doc)
    assert r.status_code == 201 and r.json()["collection"] == "alpha"
    for elsewhere in ("beta", "default", "fresh"):
        assert_same_404(alpha.post("/v1/documents", json={**doc, "collection": elsewhere}), elsewhere,
                        alpha.post("/v1/documents", json={**doc, "collection": "nowhere"}), "nowhere")
        upload = alpha.post("/v1/documents", files={"file": ("n.txt", b"A note.", "text/plain")},
                            data={"collection": elsewhere})
        assert upload.status_code == 404 and upload.json()["error"]["message"] == f"collection {elsewhere!r} not found"
    assert admin.get("/v1/documents/note", params={"collection": "beta"}).status_code == 404
    assert not [c for c in admin.get("/v1/collections").json()["collections"] if c["name"] in ("fresh", "nowhere")]
    # An unlimited writer creates a collection by writing into it.
    r = admin.post("/v1/documents", json={**doc, "collection": "fresh"})
    assert r.status_code == 201 and "fresh" in {c["name"] for c in admin.get("/v1/collections").json()["collections"]}


def test_the_collection_list_shows_only_the_keys_collections(alpha, admin):
    assert [c["name"] for c in alpha.get("/v1/collections").json()["collections"]] == ["alpha"]
    everything = {c["name"]: c for c in admin.get("/v1/collections").json()["collections"]}
    assert {"default", "alpha", "beta", "reports"} <= set(everything)
    assert everything["reports"]["documents"] == len(REPORTS) + 25
    assert everything["beta"]["documents"] >= 4 and everything["beta"]["created_at"] > 0


def test_a_key_of_several_collections_names_one(app_client, admin):
    _, secret = app_client.app.state.keys.create("two", ["read"], rate_per_s=0, collections=["alpha", "beta"])
    two = AsKey(app_client, secret)
    r = two.post("/v1/ask", json={"question": WORKERS_QUESTION})
    assert r.status_code == 422 and "name one with 'collection'" in r.json()["error"]["message"]
    assert two.get("/v1/documents").status_code == 422
    body = two.post("/v1/ask", json={"question": WORKERS_QUESTION, "collection": "beta"}).json()
    assert "3,400" in body["answer"]
    assert {c["name"] for c in two.get("/v1/collections").json()["collections"]} == {"alpha", "beta"}


# -- filters -----------------------------------------------------------------------------------------

HARBOUR_QUESTION = "How many cargo ships did the harbour of Kessel handle?"


def _report_hits(client: Any, filter: dict, top_k: int) -> list[dict]:
    r = client.post("/v1/search", json={"query": HARBOUR_QUESTION, "collection": "reports", "filter": filter,
                                        "top_k": top_k})
    assert r.status_code == 200, r.text
    return r.json()["hits"]


@pytest.mark.parametrize(("filter", "admitted"), [
    ({"doc_ids": ["r2019"]}, {"r2019"}),
    ({"doc_ids": ["r2021", "news3"]}, {"r2021", "news3"}),
    ({"metadata": {"region": "north"}}, {"r2019", "r2023"}),
    ({"metadata": {"year": {"gte": 2021}}}, {"r2021", "r2023"}),
    ({"metadata": {"published": {"lt": "2020-01-01"}}}, {"r2019"}),
    ({"metadata": {"year": [2019, 2021]}, "doc_ids": ["r2021", "r2023"]}, {"r2021"}),
])
def test_search_filters_admit_only_matching_documents_and_still_return_k(admin, filter, admitted):
    sentences_in_scope = sum(6 if d.startswith("r") else 3 for d in admitted)
    top_k = 5
    hits = _report_hits(admin, filter, top_k)
    assert {h["doc_id"] for h in hits} <= admitted
    assert len(hits) == min(top_k, sentences_in_scope)
    wide = _report_hits(admin, filter, 50)
    assert len(wide) == sentences_in_scope and {h["doc_id"] for h in wide} == admitted


def test_an_unfiltered_search_is_crowded_by_other_documents(admin):
    """What the filters above are tested against: without one, the 25 news items compete."""
    hits = _report_hits(admin, {}, 20)
    assert len({h["doc_id"] for h in hits}) > 3


@pytest.mark.parametrize("doc_id", sorted(REPORTS))
def test_ask_and_chat_answer_from_the_filtered_document(admin, doc_id):
    ships = REPORTS[doc_id][1]
    body = admin.post("/v1/ask", json={"question": HARBOUR_QUESTION, "collection": "reports",
                                       "filter": {"doc_ids": [doc_id]}}).json()
    assert body["status"] == "answered" and ships in body["answer"], body
    assert {c["doc_id"] for c in body["citations"]} == {doc_id}
    assert_citation_contract(InCollection(admin, "reports"), body)
    year = REPORTS[doc_id][0]["year"]
    payload = {"model": "citeqa@reports", "messages": [{"role": "user", "content": HARBOUR_QUESTION}],
               "filter": {"metadata": {"year": year}}}
    message = admin.post("/v1/chat/completions", json=payload).json()["choices"][0]["message"]
    assert ships in message["content"] and {c["doc_id"] for c in message["citations"]} == {doc_id}
    with admin.stream("POST", "/v1/chat/completions", json={**payload, "stream": True}) as r:
        events = sse_events(r)
    assert {c["doc_id"] for c in events[-1]["citations"]} == {doc_id}
    assert ships in events[-1]["answer"]


def test_a_filter_that_admits_nothing_answers_unsupported(admin):
    body = admin.post("/v1/ask", json={"question": HARBOUR_QUESTION, "collection": "reports",
                                       "filter": {"metadata": {"year": 1800}}}).json()
    assert body["status"] == "unsupported" and body["citations"] == []
    assert _report_hits(admin, {"doc_ids": ["factory"]}, 5) == []  # alpha's doc_id: not in reports
