"""HTML: the article's text without the page's boilerplate, and its metadata."""

from __future__ import annotations

import pytest

from citeqa.index.extract import ExtractionError, extract
from tests.index.extract.builders import NEWS_ARTICLE, news_page

BOILERPLATE = ("Subscribe now", "Phone X", "Related stories", "Flood warnings", "Copyright 2024", "Privacy policy",
               "Cookie settings", "Weather")


@pytest.fixture(scope="module")
def article():
    return extract(news_page().encode("utf-8"), "text/html; charset=utf-8", "bridge.html")


def test_the_article_is_kept_paragraph_by_paragraph(article):
    assert article.media_type == "text/html" and article.pages == ()
    blocks = article.text.split("\n\n")
    # Each paragraph whole, in order, a blank line between paragraphs.
    positions = [blocks.index(paragraph) for paragraph in NEWS_ARTICLE]
    assert positions == sorted(positions)


def test_navigation_ads_related_links_and_footer_are_dropped(article):
    for text in BOILERPLATE:
        assert text not in article.text


def test_title_author_date_and_canonical_url_go_into_the_metadata(article):
    assert article.title == "Council approves new river bridge"
    assert article.metadata["author"] == "Jane Miller"
    assert article.metadata["date"] == "2024-03-05"
    assert article.metadata["url"] == "https://gazette.example.org/news/2024/03/council-approves-bridge"
    assert article.metadata["description"] == "The council voted for a new bridge."


def test_the_encoding_declared_by_the_page_is_honoured():
    page = news_page(("Le pont sera construit pr\u00e8s du march\u00e9 apr\u00e8s huit mois de d\u00e9bat au conseil.",)
                     + NEWS_ARTICLE[1:])
    got = extract(page.replace('charset="utf-8"', 'charset="iso-8859-1"').encode("latin-1"), "text/html")
    assert "pr\u00e8s du march\u00e9" in got.text


def test_a_fragment_without_a_body_still_has_its_text():
    got = extract(b"<p>The bridge opens in May. Tolls will be charged on weekdays only.</p>", "text/html")
    assert got.text == "The bridge opens in May. Tolls will be charged on weekdays only."


@pytest.mark.parametrize("page", [
    b"<html><head><title>Empty</title></head><body></body></html>",
    b"<html><body><nav><a href='/'>Home</a> <a href='/news'>News</a></nav></body></html>",
    b"<html><body><script>var x = 1;</script></body></html>",
])
def test_a_page_without_main_text_is_refused(page):
    with pytest.raises(ExtractionError) as err:
        extract(page, "text/html")
    assert err.value.status == 422 and "no main text" in err.value.message


def test_list_items_are_blocks_without_a_list_mark():
    items = ("Four lanes of traffic in both directions.", "A protected cycle path on the river side.")
    article = "".join(f"<p>{p}</p>" for p in NEWS_ARTICLE[:3])
    listed = "".join(f"<li>{item}</li>" for item in items)
    article += f"<p>The plan lists what the bridge will carry:</p><ul>{listed}</ul>"
    page = f"<html><head><title>Bridge</title></head><body><article>{article}</article></body></html>"
    got = extract(page.encode(), "text/html")
    blocks = got.text.split("\n\n")
    assert all(item in blocks for item in items)
    assert not [block for block in blocks if block.startswith("- ")]


def test_a_page_trafilatura_finds_no_article_in_falls_back_to_its_body_text():
    page = b"<html><head><title>Demo</title></head><body><pre>\nLine one of the demo.\nLine two.\n</pre></body></html>"
    got = extract(page, "text/html")
    assert got.title == "Demo" and "Line one of the demo." in got.text and "Line two." in got.text
