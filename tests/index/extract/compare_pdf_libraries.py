"""Measure pypdf, pdfplumber and pypdfium2 on generated PDFs whose text is known.

Run from the repository root: ``python -m tests.index.extract.compare_pdf_libraries``.
Each library extracts the raw text of every page; the same repair (line breaks joined,
hyphenated line ends rejoined) runs on each, and the words are compared, in order, with
the words written (difflib ratio over word sequences: 1.0 = every word, in order). Time is
the median of three runs over the whole document, per page. The last row, citeqa, is the
extractor itself (index/extract/pdf.py: pypdfium2 plus line boxes, paragraphs and repair);
"paragraphs" counts the written paragraphs it returns verbatim as blocks of their own.
"""

from __future__ import annotations

import difflib
import io
import random
import re
import statistics
import time
from pathlib import Path
from typing import Callable

from tests.index.extract.builders import (
    Page,
    fpdf_document,
    fpdf_lines,
    fpdf_two_columns,
    paragraphs,
    reportlab_document,
)

Extract = Callable[[bytes], list[str]]
DATA = Path(__file__).parent / "data"


def with_pypdf(data: bytes) -> list[str]:
    from pypdf import PdfReader

    return [page.extract_text() for page in PdfReader(io.BytesIO(data)).pages]


def with_pdfplumber(data: bytes) -> list[str]:
    import pdfplumber

    with pdfplumber.open(io.BytesIO(data)) as pdf:
        return [page.extract_text() for page in pdf.pages]


def with_pdfium(data: bytes) -> list[str]:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(data)
    try:
        return [page.get_textpage().get_text_range() for page in pdf]
    finally:
        pdf.close()


def with_citeqa(data: bytes) -> list[str]:
    """The extractor built on the winner: pypdfium2's text and line boxes, repaired."""
    from citeqa.index.extract import extract

    got = extract(data, "application/pdf")
    return [got.text[start:end] for start, end in got.pages]


LIBRARIES: dict[str, Extract] = {
    "pypdf": with_pypdf, "pdfplumber": with_pdfplumber, "pypdfium2": with_pdfium, "citeqa": with_citeqa,
}


def repair(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\ufffe", "-\n")
    text = re.sub(r"(\w)-\n(?=[a-z])", r"\1", text)
    return re.sub(r"\s+", " ", text).strip()


def words(text: str) -> list[str]:
    return text.split()


def score(truth: str, got: str) -> float:
    return difflib.SequenceMatcher(None, words(truth), words(got), autojunk=False).ratio()


def cases() -> dict[str, tuple[bytes, list[str], list[str]]]:
    rng = random.Random(15)
    pages = [Page(f"Section {n}", tuple(paragraphs(rng, 4))) for n in range(1, 31)]
    truth = [f"{p.heading} " + " ".join(p.paragraphs) for p in pages]
    written = [paragraph for p in pages for paragraph in p.paragraphs]
    left, right = " ".join(paragraphs(rng, 2)), " ".join(paragraphs(rng, 2))
    hyphen_lines = [["The bridge plan needs careful engineering and the extrac-",
                     "tion of old piers before work starts."]]
    return {
        "fpdf2, 30 pages": (fpdf_document(pages), truth, written),
        "reportlab justified, 30 pages": (reportlab_document(pages), truth, written),
        "two columns": (fpdf_two_columns("Two columns", left, right), [f"Two columns {left} {right}"], [left, right]),
        "hyphenated line end": (fpdf_lines(hyphen_lines), [
            "The bridge plan needs careful engineering and the extraction of old piers before work starts."], []),
    }


def main() -> None:
    for name, (data, truth, blocks) in cases().items():
        print(f"## {name}")
        for lib, extract in LIBRARIES.items():
            times = []
            for _ in range(3):
                start = time.perf_counter()
                got = extract(data)
                times.append(time.perf_counter() - start)
            quality = statistics.mean(score(t, repair(g)) for t, g in zip(truth, got, strict=True))
            per_page = statistics.median(times) / len(truth) * 1000
            line = f"{lib:11s} word-order match {quality:.4f}   {per_page:7.2f} ms/page"
            if lib == "citeqa" and blocks:
                found = {block for page in got for block in page.split("\n\n")}
                line += f"   paragraphs {sum(b in found for b in blocks)}/{len(blocks)}"
            print(line)
    print("## real PDFs (tests/index/extract/data): time only, ms/page")
    for path in sorted(DATA.glob("*.pdf")):
        data = path.read_bytes()
        pages = len(with_pdfium(data))
        row = []
        for lib, extract in LIBRARIES.items():
            times = []
            for _ in range(3):
                start = time.perf_counter()
                extract(data)
                times.append(time.perf_counter() - start)
            row.append(f"{lib} {statistics.median(times) / pages * 1000:.2f}")
        print(f"{path.name} ({pages} pages): " + ", ".join(row))


if __name__ == "__main__":
    main()
