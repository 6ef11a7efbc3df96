"""The format comes from the declared type and the bytes, never from the file name alone."""

from __future__ import annotations

import io
import zipfile

import pytest

from citeqa.index.extract import SUPPORTED, ExtractionError, Limits, detect, extract
from citeqa.index.extract.docx import MEDIA_TYPE as DOCX
from tests.index.extract.builders import docx_document, fpdf_lines, news_page

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00"


@pytest.fixture(scope="module")
def pdf() -> bytes:
    return fpdf_lines([["A page of text."]])


@pytest.fixture(scope="module")
def docx() -> bytes:
    return docx_document(None, [("p", "A paragraph.")])


def test_a_text_that_mentions_the_pdf_header_is_text_and_junk_before_it_is_pdf(pdf):
    assert detect(b"Notes: a PDF starts with %PDF-1.7 and ends with %%EOF.", None) == "text/plain"
    assert detect(b"\x00\x01junk\r\n" + pdf, None) == "application/pdf"


def test_other_zips_are_named_by_what_they_hold():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.text")
        archive.writestr("content.xml", "<office:document-content/>")
    assert detect(out.getvalue(), "application/octet-stream") == "application/vnd.oasis.opendocument.text"


def test_signatures_win_over_declarations_and_names(pdf, docx):
    assert detect(pdf, "text/plain", "notes.md") == "application/pdf"
    assert detect(pdf, "application/octet-stream", "report.docx") == "application/pdf"
    assert detect(docx, "application/pdf", "x.pdf") == DOCX
    assert detect(docx, None, None) == DOCX


def test_text_formats_follow_the_declared_type_then_the_content_then_the_extension():
    markdown = b"# Title\n\nSome *text*."
    assert detect(markdown, "text/markdown") == "text/markdown"
    assert detect(markdown, "text/x-markdown; charset=utf-8") == "text/markdown"
    assert detect(markdown, "text/plain", "notes.md") == "text/plain"  # the declaration beats the name
    assert detect(markdown, None, "notes.md") == "text/markdown"
    assert detect(markdown, "application/octet-stream", "NOTES.MARKDOWN") == "text/markdown"
    assert detect(markdown, None, None) == "text/plain"
    page = news_page().encode()
    assert detect(page, None, "page.txt") == "text/html"
    assert detect(page, "application/xhtml+xml") == "text/html"
    assert detect(b"  <!-- saved -->\n<p>Hello there.</p>", None) == "text/html"
    assert detect(b"a < b and c > d", None) == "text/plain"


def _zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("notes.txt", "not a word document")
    return out.getvalue()


def test_an_unsupported_type_gets_415_listing_the_supported_ones():
    for data, declared in ((PNG, None), (PNG, "image/png"), (b"plain words", "image/png"), (_zip(), None)):
        with pytest.raises(ExtractionError) as err:
            extract(data, declared, "picture.md")
        assert err.value.status == 415
        assert all(media_type in err.value.message for media_type in SUPPORTED)
    with pytest.raises(ExtractionError) as err:
        extract(PNG)
    assert "image/png" in err.value.message


def test_a_file_over_the_size_limit_gets_413_before_it_is_read(pdf):
    with pytest.raises(ExtractionError) as err:
        extract(pdf, "application/pdf", limits=Limits(max_bytes=len(pdf) - 1))
    assert err.value.status == 413 and f"{len(pdf) - 1:,}" in err.value.message
    assert extract(pdf, limits=Limits(max_bytes=len(pdf))).text == "A page of text."


def test_extracted_text_over_the_text_limit_gets_413():
    with pytest.raises(ExtractionError) as err:
        extract(b"word " * 100, "text/plain", limits=Limits(max_text_chars=100))
    assert err.value.status == 413


def test_declared_pdf_without_a_pdf_inside_is_reported_as_damaged():
    with pytest.raises(ExtractionError) as err:
        extract(b"this is not a pdf at all", "application/pdf")
    assert err.value.status == 422 and "PDF" in err.value.message


def test_an_extractor_that_fails_unexpectedly_is_a_422_naming_the_type_not_a_crash():
    class Fragile:
        media_types = ("text/plain",)

        def extract(self, data: bytes, limits):
            raise ValueError("max() arg is an empty sequence")

    with pytest.raises(ExtractionError) as refused:
        extract(b"some words", "text/plain", extractors={"text/plain": Fragile()})
    assert refused.value.status == 422
    assert "text/plain" in refused.value.message and "max() arg is an empty sequence" in refused.value.message
