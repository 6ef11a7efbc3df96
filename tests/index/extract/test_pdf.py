"""PDF extraction on generated documents whose text and pages are known, on damaged ones,
and on two real PDFs (tests/index/extract/data/README.md)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from citeqa.index.extract import ExtractionError, Limits, extract
from tests.index.extract.builders import (
    Page,
    encrypted,
    fpdf_document,
    fpdf_lines,
    fpdf_two_columns,
    fpdf_with_running_heads,
    image_only_pdf,
    paragraphs,
    reportlab_document,
)

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def pages() -> list[Page]:
    rng = random.Random(7)
    headed = [Page(f"Chapter {n}", tuple(paragraphs(rng, 3))) for n in (1, 2, 3)]
    return headed + [Page(None, tuple(paragraphs(rng, 2)))]


@pytest.mark.parametrize("producer", [fpdf_document, reportlab_document])
def test_each_page_holds_its_paragraphs_verbatim_in_order(pages, producer):
    got = extract(producer(pages))
    assert got.media_type == "application/pdf" and len(got.pages) == len(pages)
    for number, (page, (start, end)) in enumerate(zip(pages, got.pages, strict=True), start=1):
        written = ([page.heading] if page.heading else []) + list(page.paragraphs)
        # Line breaks inside a paragraph became spaces, paragraphs are blank-line separated.
        assert got.text[start:end] == "\n\n".join(written)
        for paragraph in page.paragraphs:
            offset = got.text.index(paragraph)
            assert got.page_of(offset) == number
            assert got.pages_of(offset, offset + len(paragraph)) == (number, number)
    assert got.text[got.pages[0][1]:got.pages[1][0]] == "\n\n"


def test_a_span_across_a_page_break_reports_both_pages(pages):
    got = extract(fpdf_document(pages))
    last_word_of_page_1 = got.pages[0][1] - 5
    assert got.pages_of(last_word_of_page_1, got.pages[1][0] + 3) == (1, 2)


def test_a_word_hyphenated_at_a_line_end_is_rejoined_and_compounds_keep_their_hyphen():
    got = extract(fpdf_lines([[
        "The bridge plan needs careful engineering and the extrac-",
        "tion of old piers before work starts. The state-of-the-",
        "art design was drawn by a well-",
        "known firm in Anytown, near Smith-",
        "Jones Park. Only the document can tell a split word from a hyphenated one: it also",
        "writes well-known and self-aware on one line, so a broken self-",
        "aware keeps its hyphen, but non-",
        "profit, written nowhere else, loses it.",
    ]]))
    assert got.text == (
        "The bridge plan needs careful engineering and the extraction of old piers before work starts. "
        "The state-of-the-art design was drawn by a well-known firm in Anytown, near Smith-Jones Park. "
        "Only the document can tell a split word from a hyphenated one: it also writes well-known and self-aware "
        "on one line, so a broken self-aware keeps its hyphen, but nonprofit, written nowhere else, loses it."
    )


def test_paragraph_gaps_and_short_closing_lines_end_paragraphs_but_full_lines_do_not():
    lines = [
        "Results",
        "The first paragraph is written over two lines of text that fill the width of the",
        "page, and it ends here.",
        "The second paragraph starts on the next line without a gap between them and it",
        "ends after a gap.",
        "A third paragraph follows the gap.",
    ]
    got = extract(fpdf_lines([lines], gaps_after=frozenset({(0, 4)})))
    assert got.text.split("\n\n") == [
        "Results",
        lines[1] + " " + lines[2],
        lines[3] + " " + lines[4],
        lines[5],
    ]


def test_two_columns_are_read_column_after_column():
    rng = random.Random(3)
    left, right = " ".join(paragraphs(rng, 1)), " ".join(paragraphs(rng, 1))
    got = extract(fpdf_two_columns("Two columns", left, right))
    assert got.text == f"Two columns\n\n{left}\n\n{right}"


def test_metadata_comes_from_the_document_info(pages):
    got = extract(fpdf_document(pages[:2], title="Bridge report", author="Jane Miller"))
    assert got.title == "Bridge report"
    assert got.metadata["author"] == "Jane Miller"
    assert got.metadata["page_count"] == 2
    assert len(got.metadata["created"]) == 10  # YYYY-MM-DD


def test_a_bare_page_number_at_the_bottom_is_dropped():
    got = extract(fpdf_lines([["Body text of page one ends here."] + [""] * 30 + ["1"]]))
    assert got.text == "Body text of page one ends here."


def test_running_heads_and_feet_repeated_on_most_pages_are_dropped(pages):
    got = extract(fpdf_with_running_heads(pages))
    assert "Valley Gazette" not in got.text and "Annual report" not in got.text
    for page, (start, end) in zip(pages, got.pages, strict=True):
        assert got.text[start:end] == "\n\n".join(page.paragraphs)


def test_a_line_repeated_on_two_pages_only_is_kept(pages):
    got = extract(fpdf_with_running_heads(pages[:2]))
    assert got.text.count("Valley Gazette - annual report 2024") == 2


def test_image_only_pdf_has_no_text_layer():
    with pytest.raises(ExtractionError) as err:
        extract(image_only_pdf())
    assert err.value.status == 422 and "no text layer" in err.value.message and "OCR" in err.value.message


def test_encrypted_pdf_is_refused():
    with pytest.raises(ExtractionError) as err:
        extract(encrypted(fpdf_lines([["Secret plans for the bridge."]])), "application/pdf")
    assert err.value.status == 422 and "encrypted" in err.value.message


@pytest.mark.parametrize("cut", [0.3, 0.6, 0.9])
def test_truncated_pdf_is_refused(pages, cut):
    data = fpdf_document(pages)
    with pytest.raises(ExtractionError) as err:
        extract(data[: int(len(data) * cut)])
    assert err.value.status == 422 and "truncated" in err.value.message


def test_corrupt_pdf_is_refused():
    with pytest.raises(ExtractionError) as err:
        extract(b"%PDF-1.7\n1 0 obj garbage endobj\n%%EOF\n")
    assert err.value.status == 422 and "corrupt" in err.value.message


def test_page_and_text_limits_give_413(pages):
    data = fpdf_document(pages)
    with pytest.raises(ExtractionError) as err:
        extract(data, limits=Limits(max_pages=3))
    assert err.value.status == 413 and "4 pages" in err.value.message
    with pytest.raises(ExtractionError) as err:
        extract(data, limits=Limits(max_text_chars=500))
    assert err.value.status == 413


def test_real_latex_pdf_with_sections_over_four_pages():
    got = extract((DATA / "pypdf-pdflatex-outline.pdf").read_bytes())
    assert len(got.pages) == 4 and got.metadata["page_count"] == 4
    start, end = got.pages[1]
    page_2 = got.text[start:end]
    assert page_2.startswith("1 Foo\n\nHello, here is some text without a meaning.")
    # LaTeX wraps lines mid-sentence: they read as one line of prose.
    assert "This text should show what a printed text will look like at this place." in page_2
    assert "\n" not in page_2.split("\n\n")[1]


def test_real_ocr_scan_rejoins_hyphenated_words_and_drops_the_file_name_title():
    got = extract((DATA / "pypdf-siege-of-vicksburg-ocr.pdf").read_bytes())
    assert len(got.pages) == 6 and got.title == ""  # its Title is "Binder1.pdf"
    first = got.text[slice(*got.pages[0])]
    # The running head ("THE SIEGE OF VICKSBURG. 49", "50 THE SIEGE OF VICKSBURG." ...) is
    # dropped where OCR read it right; its misreadings ("VICKSBUEG", "OP") stay.
    assert "THE SIEGE OF VICKSBURG" not in got.text and "VICKSBUEG" in got.text
    assert "it became too conspicuous and dangerous for use." in first  # "conspicu-/ous", "dan-/gerous"
    assert "A report creeps into camp that Johnston is coming with fifty thousand men" in first
    assert got.page_of(got.text.index("JUNE 11TH")) == 1


def test_concurrent_extractions_give_the_same_text_as_one_at_a_time(pages):
    from concurrent.futures import ThreadPoolExecutor

    documents = [fpdf_document(pages[i:i + 2]) for i in range(3)] * 3
    alone = [extract(data).text for data in documents]
    with ThreadPoolExecutor(max_workers=4) as pool:  # PDFium itself is not thread-safe
        assert list(pool.map(lambda data: extract(data).text, documents)) == alone
