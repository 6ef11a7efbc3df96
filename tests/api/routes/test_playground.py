"""The web playground (api/routes/playground.py): its files in process, then the page in a
real browser: Debian's Chromium driven by Playwright against a real ``citeqa serve`` subprocess.

Asks a question and waits for the streamed answer, opens its citation and checks the
highlighted quote is exactly the cited text, asks a follow-up (the earlier turns are sent
again), adds a document whose quote has emoji before it (code points vs UTF-16), and
deletes that document. Uploads files (picker, drag and drop, an unsupported type) and
cites a PDF's page; and opens a citation's text-fragment link to a locally served news
page, where Chromium must scroll to the quoted words. Needs ``pip install playwright`` (its driver only: no ``playwright
install``, the system Chromium is used) and ``apt-get install chromium``; skipped otherwise.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.index.extract.builders import NEWS_ARTICLE
from tests.support.corpus import TROOPS_QUESTION
from tests.support.originals import GULLS_FACT, GULLS_PAGE, GULLS_QUESTION, report_pdf, upload
from tests.support.servers import Server

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ANSWER_TIMEOUT_MS = 30_000
SEED_DOC = "seed-russia-north-korea"

# Astral-plane emoji before the answer sentence: each is 1 code point (the API's offset unit)
# but 2 UTF-16 units in JavaScript, so a page slicing JS strings by the API's offsets would
# highlight the wrong characters.
EMOJI_TITLE = "Parrot club notes"
EMOJI_TEXT = ("🦜🦜 Parrot club notes 🎉🎉🎉. Members meet on Tuesdays 🗓️. "
              "The parrot named Zorblax has lived in Lisbon since 2019. "
              "Zorblax eats sunflower seeds 🌻 and dislikes thunderstorms ⛈️.")
EMOJI_QUESTION = "Where does the parrot Zorblax live?"


def _missing() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "needs Python Playwright: pip install playwright (no `playwright install`: the system Chromium is used)"
    if not CHROMIUM.exists():
        return f"needs Chromium at {CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)"
    return None


@pytest.mark.parametrize("path, content_type", [
    ("/", "text/html"), ("/static/app.js", "text/javascript"), ("/static/style.css", "text/css"),
])
def test_the_page_and_its_files_are_served_with_a_strict_policy(client, path, content_type):
    r = client.get(path)
    assert r.status_code == 200 and r.headers["content-type"].startswith(content_type)
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("name", ["index.html", "__init__.py", "..%2Froutes%2Fplayground.py", "nothing.js"])
def test_only_the_listed_static_files_are_served(client, name):
    r = client.get(f"/static/{name}")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


@pytest.fixture
def server(tmp_path):
    server = Server(tmp_path / "data", tmp_path)
    try:
        yield server.start()
    finally:
        server.kill_quietly()


@pytest.fixture
def page(tmp_path):
    """A fresh Chromium page; collects console errors and uncaught exceptions (a CSP
    violation or a JS error shows up there) in ``page.problems``."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.set_default_timeout(15_000)
            page.problems = []
            page.on("console", lambda m: m.type == "error" and page.problems.append(f"console: {m.text}"))
            page.on("pageerror", lambda e: page.problems.append(f"pageerror: {e}"))
            yield page
        finally:
            browser.close()


def _ask(page, question: str) -> dict:
    """Type the question, press Enter, wait for the stream to finish; returns the request body."""
    from playwright.sync_api import expect

    page.fill("#question", question)
    with page.expect_response("**/v1/chat/completions") as response_info:
        page.press("#question", "Enter")
    response = response_info.value
    assert response.status == 200, response.text()
    assert response.headers["content-type"].startswith("text/event-stream")
    expect(page.locator("#status")).not_to_have_attribute("data-state", "streaming", timeout=ANSWER_TIMEOUT_MS)
    return json.loads(response.request.post_data)


def _open_first_citation(page, http) -> tuple[str, str]:
    """Click the latest answer's first marker; returns (highlighted text, the document text
    at the citation's offsets, sliced by code points in Python)."""
    from playwright.sync_api import expect

    marker = page.locator("#answer sup > button.marker").first
    marker.click()
    mark = page.locator("#quote-view mark")
    expect(mark).to_be_visible()
    view = page.locator("#quote-view")
    doc_id, version = view.get_attribute("data-doc-id"), view.get_attribute("data-doc-version")
    start, end = int(view.get_attribute("data-start")), int(view.get_attribute("data-end"))
    text = http.get(f"/v1/documents/{doc_id}", params={"version": version}).json()["text"]
    # The context around the mark is the document's own text, ellipses aside.
    shown = view.locator("blockquote").text_content().strip("…")
    assert shown in text and text[start:end] in shown
    return mark.text_content(), text[start:end]


@pytest.mark.slow
@pytest.mark.skipif(_missing() is not None, reason=str(_missing()))
def test_playground_in_a_browser(server, page, tmp_path):
    from playwright.sync_api import expect

    http = server.client()
    expected = http.post("/v1/ask", json={"question": TROOPS_QUESTION}).json()
    assert expected["status"] == "answered", expected
    expected_quote = next(c["quote"] for c in expected["citations"] if c["marker"] == 1)

    home = page.goto(server.url + "/")
    assert home.status == 200, f"GET / gave {home.status}: is api.routes.playground wired into api/app.py?"
    try:
        # Generators fill the select (the default chosen, unavailable ones disabled with
        # the reason); the seed document is listed; every input has a real label.
        expect(page.locator("#generator")).to_have_value("extractive")
        openai = page.locator('#generator option[value="openai"]')
        expect(openai).to_be_disabled()
        assert "CITEQA_OPENAI_BASE_URL" in (openai.get_attribute("title") or "")
        expect(page.locator(f'#doc-list li[data-doc-id="{SEED_DOC}"]')).to_be_visible()
        for label, target in (("Question", "question"), ("Generator", "generator"), ("Title", "doc-title"),
                              ("Text", "doc-text")):
            assert page.get_by_label(label, exact=True).get_attribute("id") == target

        # Ask: the answer streams in, then the status and dropped count show.
        sent = _ask(page, TROOPS_QUESTION)
        assert sent["stream"] is True and sent["model"] == "extractive"
        assert sent["messages"] == [{"role": "user", "content": TROOPS_QUESTION}]
        expect(page.locator("#status")).to_have_attribute("data-state", "answered")
        expect(page.locator("#status")).to_contain_text("0 dropped")
        expect(page.locator("#answer")).to_contain_text("11,000")

        # The first marker shows exactly the cited quote, highlighted in its document.
        highlighted, at_offsets = _open_first_citation(page, http)
        assert highlighted == expected_quote == at_offsets
        expect(page.locator("#quote-view")).to_have_attribute("data-doc-id", SEED_DOC)
        screenshot = tmp_path / "playground.png"
        page.screenshot(path=str(screenshot), full_page=True)
        print(f"playground screenshot: {screenshot}")

        # Keyboard: Tab from the question reaches Ask, with a visible focus ring.
        page.focus("#question")
        page.keyboard.press("Tab")
        expect(page.locator("#ask")).to_be_focused()
        ring = page.locator("#ask").evaluate(
            "b => [getComputedStyle(b).outlineStyle, getComputedStyle(b).outlineWidth]")
        assert ring[0] != "none" and ring[1] != "0px", ring

        # A follow-up sends the conversation so far.
        answer_text = expected["answer"]
        sent = _ask(page, "Who is Russia's ambassador to Pyongyang?")
        assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
        assert sent["messages"][1]["content"] == answer_text
        expect(page.locator(".turn.assistant")).to_have_count(2)

        # Add a document through the form; it is listed.
        page.fill("#doc-title", EMOJI_TITLE)
        page.fill("#doc-text", EMOJI_TEXT)
        page.click("#doc-add")
        item = page.locator("#doc-list li", has_text=EMOJI_TITLE)
        expect(item).to_be_visible()
        expect(page.locator("#doc-message")).to_contain_text("Added")
        doc_id = item.get_attribute("data-doc-id")

        # A new conversation about it: the highlight is exact although emoji come first.
        page.click("#clear")
        expect(page.locator(".turn")).to_have_count(0)
        sent = _ask(page, EMOJI_QUESTION)
        assert len(sent["messages"]) == 1
        expect(page.locator("#status")).to_have_attribute("data-state", "answered")
        highlighted, at_offsets = _open_first_citation(page, http)
        expect(page.locator("#quote-view")).to_have_attribute("data-doc-id", doc_id)
        assert highlighted == at_offsets == "The parrot named Zorblax has lived in Lisbon since 2019."

        # Delete it (after the confirm dialog): gone from the page and from the API.
        page.once("dialog", lambda dialog: dialog.accept())
        item.locator("button.delete").click()
        expect(page.locator(f'#doc-list li[data-doc-id="{doc_id}"]')).to_have_count(0)
        expect(page.locator("#doc-message")).to_contain_text("Deleted")
        listed = http.get("/v1/documents", params={"limit": 1000}).json()["documents"]
        assert doc_id not in {d["doc_id"] for d in listed}

        assert page.problems == [], page.problems
    except BaseException:
        failed = tmp_path / "playground-failure.png"
        page.screenshot(path=str(failed), full_page=True)
        print(f"screenshot at failure: {failed}\nserver log:\n{server.log()[-3000:]}")
        raise


@pytest.mark.slow
@pytest.mark.skipif(_missing() is not None, reason=str(_missing()))
def test_the_api_docs_render_offline_in_a_browser(server, page, tmp_path):
    """/docs and /redoc render every route with nothing but this server: any request to
    another host is refused (as on a machine with no network) and recorded."""
    from playwright.sync_api import expect

    elsewhere: list[str] = []

    def only_this_server(route) -> None:
        if route.request.url.startswith(server.url + "/"):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", only_this_server)
    try:
        assert page.goto(server.url + "/docs").status == 200
        expect(page.locator(".opblock-summary-path", has_text="/v1/ask").first).to_be_visible()
        expect(page.locator(".opblock-summary-path", has_text="/v1/chat/completions").first).to_be_visible()
        page.screenshot(path=str(tmp_path / "docs.png"))
        assert page.goto(server.url + "/redoc").status == 200
        expect(page.get_by_text("/v1/documents", exact=False).first).to_be_attached()
        assert elsewhere == [] and page.problems == [], (elsewhere, page.problems)
    except BaseException:
        page.screenshot(path=str(tmp_path / "docs-failure.png"), full_page=True)
        print(f"screenshots in {tmp_path}\nserver log:\n{server.log()[-3000:]}")
        raise



# -- anchors back into the original, and uploads --------------------------------------------

# The news page served locally: each paragraph of the article has a screenful and more of
# empty space before it, so a browser that scrolls to the quote shows that paragraph alone.
FARMER_QUESTION = "What did the farmer who sells apples say about the current bridge?"
FARMER_QUOTE = "A farmer who sells apples there said the current bridge shakes whenever a lorry passes."
SPACER = '<div class="spacer" style="height: 1800px"></div>'


def _spaced_news_page() -> bytes:
    paragraphs = "\n".join(f'      <p id="p{i}">{p}</p>\n      {SPACER}' for i, p in enumerate(NEWS_ARTICLE))
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Council approves new river bridge | The Valley Gazette</title>
  <meta name="author" content="Jane Miller">
  <link rel="icon" href="data:,">
</head>
<body>
  <header><nav><ul><li><a href="/">Home</a></li><li><a href="/news">News</a></li><li><a href="/sport">Sport</a></li>
  <li><a href="/subscribe">Subscribe now</a></li></ul></nav></header>
  <div class="ad-banner advertisement"><p>Buy the new Phone X today with 50% off! Limited offer.</p></div>
  <main>
    <article>
      <h1>Council approves new river bridge</h1>
      <p class="byline">By Jane Miller, 5 March 2024</p>
      {SPACER}
{paragraphs}
    </article>
  </main>
  <footer><p>Copyright 2024 The Valley Gazette. All rights reserved.</p></footer>
</body>
</html>
""".encode()


@pytest.fixture
def news_site(tmp_path):
    """The spaced news page on a local HTTP server (python's http.server in a thread); yields its URL."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "bridge.html").write_bytes(_spaced_news_page())

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format, *args):  # noqa: A002 - the base class's name
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(site)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/bridge.html"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)


def _only_visible_paragraph(page) -> str | None:
    """The id of the one article paragraph inside the viewport (None: none, or several)."""
    return page.evaluate("""() => {
        const seen = [...document.querySelectorAll("article p[id]")].filter((p) => {
            const r = p.getBoundingClientRect();
            return r.top >= 0 && r.bottom <= window.innerHeight;
        });
        return seen.length === 1 ? seen[0].id : null;
    }""")


def _wait_for_scroll(page) -> None:
    page.wait_for_load_state("load")
    # Chromium scrolls to a text fragment just after load, and smoothly in some builds.
    page.wait_for_function("window.scrollY > 0", timeout=10_000)
    page.wait_for_timeout(300)


@pytest.mark.slow
@pytest.mark.skipif(_missing() is not None, reason=str(_missing()))
def test_a_citation_link_scrolls_the_original_page_to_the_quote(server, page, news_site, tmp_path):
    """The page is ingested with metadata url = where it is served; the citation's
    text-fragment link, opened by navigation and from the playground's "Open in source",
    shows the quoted paragraph and no other."""
    from playwright.sync_api import expect

    http = server.client()
    upload(http, _spaced_news_page(), "bridge.html", "text/html", doc_id="bridge-local", metadata={"url": news_site})
    body = http.post("/v1/ask", json={"question": FARMER_QUESTION}).json()
    cited = next(c for c in body["citations"] if c["quote"] == FARMER_QUOTE)
    link = cited["link"]
    assert link.startswith(news_site + "#:~:text="), link
    quoted = f"p{next(i for i, p in enumerate(NEWS_ARTICLE) if FARMER_QUOTE in p)}"
    try:
        # Without the fragment the page opens at its top: the scroll below is the fragment's.
        page.goto(news_site)
        page.wait_for_timeout(500)
        assert page.evaluate("window.scrollY") == 0 and _only_visible_paragraph(page) is None

        page.goto(link)
        _wait_for_scroll(page)
        assert _only_visible_paragraph(page) == quoted, page.evaluate("window.scrollY")

        # From the playground: the citation shows "Open in source", which opens the link.
        page.goto(server.url + "/")
        _ask(page, FARMER_QUESTION)
        markers = page.locator("#answer sup > button.marker")
        for i in range(markers.count()):
            markers.nth(i).click()
            expect(page.locator("#quote-view mark")).to_be_visible()
            if page.locator("#quote-view mark").text_content() == FARMER_QUOTE:
                break
        opener = page.locator("#quote-view a.open-source")
        expect(opener).to_have_attribute("href", link)
        expect(page.locator("#quote-view .page")).to_have_count(0)  # not a PDF
        assert page.problems == [], page.problems
        with page.context.expect_page() as opened:
            opener.click()
        source = opened.value
        _wait_for_scroll(source)
        assert source.url == link
        assert _only_visible_paragraph(source) == quoted
    except BaseException:
        page.screenshot(path=str(tmp_path / "text-fragment-failure.png"))
        print(f"screenshot in {tmp_path}\nserver log:\n{server.log()[-3000:]}")
        raise


@pytest.mark.slow
@pytest.mark.skipif(_missing() is not None, reason=str(_missing()))
def test_the_playground_uploads_files_and_cites_a_pdf_page(server, page, tmp_path):
    from playwright.sync_api import expect

    http = server.client()
    home = page.goto(server.url + "/")
    assert home.status == 200
    try:
        assert page.get_by_label("File", exact=True).get_attribute("id") == "doc-file"
        # The file picker: a three-page PDF with the answer on page 2.
        with page.expect_response("**/v1/documents") as posted:
            page.set_input_files("#doc-file", files=[
                {"name": "report.pdf", "mimeType": "application/pdf", "buffer": report_pdf()}])
        request = posted.value.request
        assert request.headers["content-type"].startswith("multipart/form-data; boundary=")
        written = posted.value.json()
        assert posted.value.status == 201 and written["source"]["page_count"] == 3, written
        message = page.locator("#upload-message")
        expect(message).to_contain_text(
            f"Uploaded “report.pdf” as {written['doc_id']} ({written['sentence_count']} sentences, 3 pages).")
        expect(page.locator(f'#doc-list li[data-doc-id="{written["doc_id"]}"]')).to_be_visible()

        # Answerable at once; the citation says its page, and has no link (no URL given).
        _ask(page, GULLS_QUESTION)
        expect(page.locator("#status")).to_have_attribute("data-state", "answered")
        expect(page.locator("#answer")).to_contain_text(GULLS_FACT)
        marker = page.locator("#answer sup > button.marker").first
        expect(marker).to_have_attribute("aria-label", f"Source 1, p. {GULLS_PAGE}")
        marker.click()
        expect(page.locator("#quote-view mark")).to_contain_text(GULLS_FACT)
        expect(page.locator("#quote-view .page")).to_have_text(f"p. {GULLS_PAGE}")
        expect(page.locator("#quote-view a.open-source")).to_have_count(0)
        page.screenshot(path=str(tmp_path / "upload.png"), full_page=True)

        # Drag and drop onto the page: a Markdown note.
        note = "# Harbour notes\n\nThe **harbour master** logged 37 fishing boats on Friday.\n"
        with page.expect_response("**/v1/documents") as posted:
            page.evaluate("""(text) => {
                const data = new DataTransfer();
                data.items.add(new File([text], "notes.md", { type: "text/markdown" }));
                const target = document.querySelector("#conversation");
                for (const type of ["dragenter", "dragover", "drop"]) {
                    target.dispatchEvent(new DragEvent(type, { dataTransfer: data, bubbles: true, cancelable: true }));
                }
            }""", note)
        assert posted.value.status == 201
        expect(message).to_contain_text("Uploaded “notes.md” as")
        stored = http.get(f"/v1/documents/{posted.value.json()['doc_id']}").json()
        assert "The harbour master logged 37 fishing boats on Friday." in stored["text"]

        assert page.problems == [], page.problems

        # A type the API does not read: its own error message is shown (Chromium logs the 415).
        png = b"\x89PNG\r\n\x1a\n" + bytes(64)
        refused = http.post("/v1/documents", files={"file": ("chart.png", png, "image/png")})
        assert refused.status_code == 415
        page.set_input_files("#doc-file", files=[{"name": "chart.png", "mimeType": "image/png", "buffer": png}])
        expect(message).to_have_text(f"Not uploaded “chart.png”: {refused.json()['error']['message']}")
        assert [p for p in page.problems if "status of 415" not in p] == [], page.problems
    except BaseException:
        page.screenshot(path=str(tmp_path / "upload-failure.png"), full_page=True)
        print(f"screenshots in {tmp_path}\nserver log:\n{server.log()[-3000:]}")
        raise


# -- collections: the picker ------------------------------------------------------------------------

HARBOUR_TEXT = ("Harbour notes for the season. The Kestrel ferry leaves Port Ellen at seven o'clock every morning. "
                "A single fare costs four pounds.")
HARBOUR_QUESTION = "When does the Kestrel ferry leave Port Ellen?"
HARBOUR_QUOTE = "The Kestrel ferry leaves Port Ellen at seven o'clock every morning."


@pytest.mark.slow
@pytest.mark.skipif(_missing() is not None, reason=str(_missing()))
def test_the_playground_asks_lists_and_adds_in_the_picked_collection(server, page, tmp_path):
    """The picker lists GET /v1/collections; once one is picked, questions are answered from
    it alone, the list shows its documents, and added, uploaded and new collections go there."""
    from playwright.sync_api import expect

    http = server.client()
    assert http.post("/v1/collections", json={"name": "harbour"}).status_code == 201
    assert http.post("/v1/documents", json={"collection": "harbour", "doc_id": "ferry", "title": "Ferry notes",
                                            "text": HARBOUR_TEXT}).status_code == 201
    page.goto(server.url + "/")
    try:
        picker = page.locator("#collection")
        assert page.get_by_label("Collection", exact=True).get_attribute("id") == "collection"
        expect(picker).to_have_value("default")
        expect(picker.locator('option[value="harbour"]')).to_have_text("harbour (1)")
        expect(page.locator(f'#doc-list li[data-doc-id="{SEED_DOC}"]')).to_be_visible()

        picker.select_option("harbour")
        expect(page.locator('#doc-list li[data-doc-id="ferry"]')).to_be_visible()
        expect(page.locator(f'#doc-list li[data-doc-id="{SEED_DOC}"]')).to_have_count(0)
        expect(page.locator("#doc-count")).to_have_text("(1)")

        sent = _ask(page, HARBOUR_QUESTION)
        assert sent["collection"] == "harbour"
        expect(page.locator("#status")).to_have_attribute("data-state", "answered")
        page.locator("#answer sup > button.marker").first.click()
        expect(page.locator("#quote-view mark")).to_have_text(HARBOUR_QUOTE)  # read from the collection
        expect(page.locator("#quote-view")).to_have_attribute("data-doc-id", "ferry")
        # The seed article is in default: asked here, it is not cited.
        _ask(page, TROOPS_QUESTION)
        expect(page.locator("#status")).to_have_attribute("data-state", "unsupported")

        # A document added with the form, and a file uploaded, land in the picked collection.
        page.fill("#doc-title", EMOJI_TITLE)
        page.fill("#doc-text", EMOJI_TEXT)
        page.click("#doc-add")
        expect(page.locator("#doc-list li", has_text=EMOJI_TITLE)).to_be_visible()
        with page.expect_response("**/v1/documents") as posted:
            page.set_input_files("#doc-file", files=[
                {"name": "tides.md", "mimeType": "text/markdown", "buffer": b"# Tides\n\nHigh water is at noon.\n"}])
        assert posted.value.status == 201, posted.value.text()
        expect(page.locator("#doc-count")).to_have_text("(3)")
        expect(picker.locator('option[value="harbour"]')).to_have_text("harbour (3)")
        in_harbour = http.get("/v1/documents", params={"collection": "harbour"}).json()["documents"]
        assert len(in_harbour) == 3 and {"ferry", posted.value.json()["doc_id"]} <= {d["doc_id"] for d in in_harbour}
        assert EMOJI_TITLE in {d["title"] for d in in_harbour}
        in_default = {d["doc_id"] for d in http.get("/v1/documents").json()["documents"]}
        assert in_default == {SEED_DOC}

        # "New…" creates a collection and picks it: empty, nothing to cite.
        page.once("dialog", lambda dialog: dialog.accept("scratch-1"))
        page.click("#collection-new")
        expect(picker).to_have_value("scratch-1")
        expect(page.locator("#collection-hint")).to_contain_text("Created “scratch-1”")
        expect(page.locator("#doc-list li.empty")).to_be_visible()
        assert "scratch-1" in {c["name"] for c in http.get("/v1/collections").json()["collections"]}

        # Back to default: the seed again, and questions carry no collection field.
        picker.select_option("default")
        expect(page.locator(f'#doc-list li[data-doc-id="{SEED_DOC}"]')).to_be_visible()
        sent = _ask(page, TROOPS_QUESTION)
        assert "collection" not in sent
        expect(page.locator("#status")).to_have_attribute("data-state", "answered")
        assert page.problems == [], page.problems
    except BaseException:
        page.screenshot(path=str(tmp_path / "collections-failure.png"), full_page=True)
        print(f"screenshot in {tmp_path}\nserver log:\n{server.log()[-3000:]}")
        raise
