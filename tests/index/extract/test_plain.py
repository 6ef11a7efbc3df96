"""Plain text: UTF-8 stored as is, the byte-order mark stripped, other encodings refused."""

from __future__ import annotations

import codecs

import pytest

from citeqa.index.extract import ExtractionError, extract


def test_utf8_text_is_stored_unchanged_without_its_bom():
    text = "Caf\u00e9 opens at 9.\r\nSecond line \u2014 with a dash.\n"
    got = extract(codecs.BOM_UTF8 + text.encode("utf-8"), "text/plain; charset=utf-8")
    assert got.text == text and got.media_type == "text/plain" and got.pages == ()


def test_utf16_with_a_bom_is_read():
    text = "R\u00e9sum\u00e9 of the bridge plan."
    assert extract(codecs.BOM_UTF16_LE + text.encode("utf-16-le"), "text/plain").text == text


def test_latin1_bytes_are_refused_with_where_they_fail():
    with pytest.raises(ExtractionError) as err:
        extract("na\u00efve caf\u00e9".encode("latin-1"), "text/plain")
    assert err.value.status == 422
    assert "not valid UTF-8" in err.value.message and "offset 2" in err.value.message


def test_empty_and_blank_files_are_refused():
    for data in (b"", b"  \n\t "):
        with pytest.raises(ExtractionError) as err:
            extract(data, "text/plain")
        assert err.value.status == 422
