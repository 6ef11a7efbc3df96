"""The web playground (api/routes/playground.py): its files in process, then the page in a
real browser: Debian's Chromium driven by Playwright against a real ``citeqa serve`` subprocess.

Asks a question and waits for the streamed answer, opens its citation and checks the
highlighted quote is exactly the cited text, asks a follow-up (the earlier turns are sent
again), adds a document whose quote has emoji before it (code points vs UTF-16), and
deletes that document. Needs ``pip install playwright`` (its driver only: no ``playwright
install``, the system Chromium is used) and ``apt-get install chromium``; skipped otherwise.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

from tests.support.corpus import TROOPS_QUESTION
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
