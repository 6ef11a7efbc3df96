"""Files and folders as ``citeqa ingest`` reads them (index/file_input.py): which files a
folder holds, the doc_id each gets, sidecars, and each file read on its own."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import pytest

from citeqa.index.extract import ExtractionError
from citeqa.index.file_input import input_files, read_input_file
from citeqa.index.ingest import InvalidDocument, read_inputs
from tests.index.extract.builders import Page, docx_document, fpdf_document, news_page, paragraphs

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def _tree(root: Path) -> None:
    rng = random.Random(3)
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / ".git").mkdir()
    (root / "a.txt").write_text("A text. With two sentences.\n", encoding="utf-8")
    (root / "a.json").write_text(json.dumps({"title": "A"}), encoding="utf-8")
    (root / "b.md").write_text("# Bee\n\nSome **bold** text.\n", encoding="utf-8")
    (root / "page.html").write_text(news_page(), encoding="utf-8")
    (root / "c.jsonl").write_text(json.dumps({"doc_id": "c", "text": "C text."}) + "\n", encoding="utf-8")
    (root / "sub" / "report.pdf").write_bytes(fpdf_document([Page("R", tuple(paragraphs(rng, 1)))]))
    (root / "sub" / "deeper" / "memo.docx").write_bytes(docx_document("Memo", [("p", "One line.")]))
    (root / "sub" / "table.csv").write_text("x,y\n", encoding="utf-8")
    (root / "sub" / "lonely.json").write_text("{}", encoding="utf-8")
    (root / ".hidden.md").write_text("# Hidden\n", encoding="utf-8")
    (root / ".git" / "config.txt").write_text("not a document\n", encoding="utf-8")


def test_a_folder_is_walked_recursively_for_the_types_read(tmp_path):
    _tree(tmp_path)
    found = input_files([tmp_path])
    got = [(f.path.relative_to(tmp_path).as_posix(), f.doc_id, f.extracted) for f in found.files]
    assert got == [
        ("a.txt", "a", False), ("b.md", "b", True), ("c.jsonl", None, False), ("page.html", "page", True),
        ("sub/deeper/memo.docx", "sub/deeper/memo", True), ("sub/report.pdf", "sub/report", True),
    ]
    # A sidecar is not a document, hidden files and folders are not read; the rest is named.
    assert [p.relative_to(tmp_path).as_posix() for p in found.skipped] == ["sub/lonely.json", "sub/table.csv"]
    assert all(f.problem is None for f in found.files)


def test_a_text_file_reads_as_read_inputs_reads_it(tmp_path):
    _tree(tmp_path)
    [entry] = [f for f in input_files([tmp_path]).files if f.path.name == "a.txt"]
    assert read_input_file(entry) == read_inputs([tmp_path / "a.txt"])
    named = input_files([tmp_path / "a.txt"]).files
    assert read_input_file(named[0]) == read_inputs([tmp_path / "a.txt"])


def test_a_text_file_in_a_subfolder_gets_its_path_as_doc_id(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "a.txt").write_text("Deep text.", encoding="utf-8")
    (tmp_path / "a.txt").write_text("Top text.", encoding="utf-8")
    items = [i for f in input_files([tmp_path]).files for i in read_input_file(f)]
    assert [(i.doc_id, i.text) for i in items] == [("a", "Top text."), ("x/a", "Deep text.")]


def test_markdown_is_extracted_without_markup(tmp_path):
    (tmp_path / "notes.md").write_text("# Lighthouse notes\n\nThe **Bell Rock** light, by [Stevenson](https://x.org).\n",
                                       encoding="utf-8")
    [item] = read_input_file(input_files([tmp_path / "notes.md"]).files[0])
    assert item.doc_id == "notes" and item.title == "Lighthouse notes"
    assert "The Bell Rock light, by Stevenson." in item.text
    assert not {"#", "*", "[", "]("} & set(item.text)
    assert item.source is not None and item.source.media_type == "text/markdown"


def test_a_sidecar_names_an_extracted_file_and_its_source_is_recorded(tmp_path):
    rng = random.Random(5)
    data = fpdf_document([Page("One", tuple(paragraphs(rng, 2))), Page("Two", tuple(paragraphs(rng, 2)))])
    (tmp_path / "report.pdf").write_bytes(data)
    (tmp_path / "report.json").write_text(json.dumps(
        {"doc_id": "annual-2024", "title": "Annual report", "metadata": {"team": "bridges"}}), encoding="utf-8")
    [item] = read_input_file(input_files([tmp_path]).files[0])
    assert (item.doc_id, item.title) == ("annual-2024", "Annual report")
    assert item.metadata["team"] == "bridges" and item.metadata["source_file"] == "report.pdf"
    assert item.source is not None and item.original == data
    assert (item.source.media_type, item.source.filename, item.source.size) == ("application/pdf", "report.pdf",
                                                                                 len(data))
    assert item.source.sha256 == hashlib.sha256(data).hexdigest()
    assert len(item.source.pages) == 2


def test_two_files_of_one_doc_id_the_later_one_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("Text notes.", encoding="utf-8")
    (tmp_path / "notes.md").write_text("Markdown notes.", encoding="utf-8")
    first, second = input_files([tmp_path]).files
    assert (first.path.name, first.problem) == ("notes.md", None)
    assert read_input_file(first)[0].doc_id == "notes"
    with pytest.raises(InvalidDocument, match=r"doc_id 'notes' is also .*notes\.md's .*notes\.json"):
        read_input_file(second)


@pytest.mark.parametrize(("sidecar", "message"), [
    ("{not json", "report.json is not JSON"),
    ('["a", "list"]', "report.json must be a JSON object"),
    ('{"doc_id": 7}', "report.json: doc_id must be a string"),
    ('{"metadata": "x"}', "report.json: metadata must be a JSON object"),
])
def test_a_bad_sidecar_is_that_files_problem(tmp_path, sidecar, message):
    (tmp_path / "report.html").write_text(news_page(), encoding="utf-8")
    (tmp_path / "report.json").write_text(sidecar, encoding="utf-8")
    [entry] = input_files([tmp_path]).files
    with pytest.raises(InvalidDocument, match=message):
        read_input_file(entry)


def test_a_file_named_is_read_whatever_its_name_and_its_type_comes_from_its_bytes(tmp_path):
    (tmp_path / "picture").write_bytes(PNG)
    (tmp_path / "page.txt.bak").write_text(news_page(), encoding="utf-8")
    picture, page = input_files([tmp_path / "picture", tmp_path / "page.txt.bak"]).files
    with pytest.raises(ExtractionError, match="unsupported media type image/png; supported: ") as refused:
        read_input_file(picture)
    assert refused.value.status == 415
    [item] = read_input_file(page)
    assert item.source is not None and item.source.media_type == "text/html"
    assert "Navigation" not in item.text and "council approved the new bridge" in item.text


def test_a_jsonl_file_with_one_bad_row_gives_nothing(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps({"text": "Fine."}) + "\n" + json.dumps({"text": "  "}) + "\n", encoding="utf-8")
    with pytest.raises(InvalidDocument, match="empty"):
        read_input_file(input_files([path]).files[0])


def test_a_file_named_twice_is_read_once(tmp_path):
    (tmp_path / "a.txt").write_text("A text.", encoding="utf-8")
    found = input_files([tmp_path / "a.txt", tmp_path, tmp_path / "a.txt"]).files
    assert [(f.path.name, f.doc_id, f.problem) for f in found] == [("a.txt", "a", None)]
