"""DOCX: headings, paragraphs, lists and tables in order; bombs and damage refused."""

from __future__ import annotations

import io

import pytest
from docx import Document

from citeqa.index.extract import ExtractionError, Limits, extract
from citeqa.index.extract.docx import MEDIA_TYPE
from tests.index.extract.builders import docx_document, zip_bomb_docx

BLOCKS = [
    ("h1", "Introduction"),
    ("p", "The council approved the bridge on Tuesday."),
    ("li", "Four lanes of traffic."),
    ("h2", "Costs"),
    ("p", "Steel   costs\t12 million."),
]


def test_blocks_come_out_in_order_with_a_blank_line_between_them():
    got = extract(docx_document("Bridge report", BLOCKS), MEDIA_TYPE, "report.docx")
    assert got.media_type == MEDIA_TYPE
    assert got.text == ("Bridge report\n\nIntroduction\n\nThe council approved the bridge on Tuesday.\n\n"
                        "Four lanes of traffic.\n\nCosts\n\nSteel costs 12 million.")
    assert got.title == "Bridge report"  # the first heading (the Title style)
    assert "author" not in got.metadata  # python-docx's template default is no author


def test_the_core_properties_title_and_author_win():
    doc = Document()
    doc.core_properties.title = "Official title"
    doc.core_properties.author = "Jane Miller"
    doc.add_heading("A heading", level=1)
    doc.add_paragraph("Body.")
    table = doc.add_table(rows=2, cols=2)
    for r, row in enumerate((("Item", "Cost"), ("Steel", "12"))):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    doc.add_paragraph("After the table.")
    out = io.BytesIO()
    doc.save(out)
    got = extract(out.getvalue())
    assert got.title == "Official title" and got.metadata["author"] == "Jane Miller"
    assert got.text == "A heading\n\nBody.\n\nItem | Cost\n\nSteel | 12\n\nAfter the table."


def test_a_zip_bomb_is_refused_before_it_is_inflated():
    bomb = zip_bomb_docx(30_000_000)
    assert len(bomb) < 100_000
    with pytest.raises(ExtractionError) as err:
        extract(bomb, limits=Limits(max_decompressed_bytes=10_000_000))
    assert err.value.status == 422 and "decompression bomb" in err.value.message


def test_truncated_and_corrupt_docx_are_refused():
    data = docx_document("Title", BLOCKS)
    for broken in (data[: len(data) // 2], data[:200]):
        with pytest.raises(ExtractionError) as err:
            extract(broken, MEDIA_TYPE)
        assert err.value.status == 422 and "DOCX" in err.value.message


def test_a_docx_without_text_is_refused():
    out = io.BytesIO()
    Document().save(out)
    with pytest.raises(ExtractionError) as err:
        extract(out.getvalue())
    assert err.value.status == 422 and "no text" in err.value.message
