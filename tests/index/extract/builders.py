"""Documents the extraction tests build for themselves, so every assertion knows the truth.

PDFs come from fpdf2 (and reportlab, a second producer with justified text), DOCX from
python-docx, HTML and Markdown are written here. Texts are ASCII: the PDF core fonts
encode Latin-1 only.
"""

from __future__ import annotations

import io
import random
import zipfile
from dataclasses import dataclass

from fpdf import FPDF

WORDS = (
    "the river city council voted on a new bridge plan after months of debate over cost and "
    "traffic while residents asked for safer crossings schools parks and better lighting near "
    "the old market where farmers sell apples bread cheese fish and flowers every morning "
    "engineers measured steel beams concrete piers and cables before the storm season began "
    "history records earlier floods that destroyed wooden bridges along the valley"
).split()


def sentences(rng: random.Random, count: int) -> list[str]:
    """``count`` made-up sentences, capitalised, each ending with a full stop."""
    out = []
    for _ in range(count):
        words = [rng.choice(WORDS) for _ in range(rng.randint(8, 18))]
        out.append(" ".join(words).capitalize() + ".")
    return out


def paragraphs(rng: random.Random, count: int, per: tuple[int, int] = (2, 5)) -> list[str]:
    return [" ".join(sentences(rng, rng.randint(*per))) for _ in range(count)]


@dataclass(frozen=True)
class Page:
    heading: str | None
    paragraphs: tuple[str, ...]


def fpdf_document(pages: list[Page], *, paragraph_gap: float = 3.0, title: str | None = None,
                  author: str | None = None) -> bytes:
    """A PDF with one heading (bold, larger) and wrapped paragraphs per page."""
    pdf = FPDF(format="A4")
    if title:
        pdf.set_title(title)
    if author:
        pdf.set_author(author)
    pdf.set_auto_page_break(False)
    for page in pages:
        pdf.add_page()
        if page.heading:
            pdf.set_font("helvetica", "B", 15)
            pdf.multi_cell(0, 8, page.heading, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(2)
        pdf.set_font("helvetica", size=11)
        for text in page.paragraphs:
            pdf.multi_cell(0, 5.5, text, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(paragraph_gap)
    return bytes(pdf.output())


class _WithRunningHeads(FPDF):
    def header(self) -> None:
        self.set_font("helvetica", "I", 9)
        self.cell(0, 6, "Valley Gazette - annual report 2024", new_x="LMARGIN", new_y="NEXT")

    def footer(self) -> None:
        self.set_y(-15)
        self.set_font("helvetica", "I", 9)
        self.cell(0, 6, f"Annual report 2024 | page {self.page_no()}")


def fpdf_with_running_heads(pages: list[Page]) -> bytes:
    """Like fpdf_document, with a running head and a numbered running foot on every page."""
    pdf = _WithRunningHeads(format="A4")
    pdf.set_auto_page_break(False)
    for page in pages:
        pdf.add_page()
        pdf.set_font("helvetica", size=11)
        for text in page.paragraphs:
            pdf.multi_cell(0, 5.5, text, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(3)
    return bytes(pdf.output())


def fpdf_lines(lines_per_page: list[list[str]], *, gaps_after: frozenset[tuple[int, int]] = frozenset()) -> bytes:
    """A PDF whose lines are placed exactly as given (a line ending "extrac-" stays so);
    ``gaps_after`` holds (page, line) pairs after which a paragraph gap is left."""
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(False)
    pdf.set_font("helvetica", size=11)
    for p, lines in enumerate(lines_per_page):
        pdf.add_page()
        for i, line in enumerate(lines):
            pdf.cell(0, 5.5, line, new_x="LMARGIN", new_y="NEXT")
            if (p, i) in gaps_after:
                pdf.ln(4)
    return bytes(pdf.output())


def fpdf_two_columns(title: str, left: str, right: str) -> bytes:
    """A page with a full-width title over two columns, drawn column after column."""
    pdf = FPDF(format="A4")
    pdf.add_page()
    pdf.set_font("helvetica", "B", 15)
    pdf.multi_cell(0, 8, title, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    pdf.set_font("helvetica", size=10)
    top = pdf.get_y()
    pdf.set_xy(10, top)
    pdf.multi_cell(90, 5, left)
    pdf.set_xy(110, top)
    pdf.multi_cell(90, 5, right)
    return bytes(pdf.output())


def reportlab_document(pages: list[Page]) -> bytes:
    """The same shape through reportlab's platypus: justified paragraphs, another producer."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate

    styles = getSampleStyleSheet()
    body = styles["BodyText"]
    body.alignment = 4  # justified
    story: list = []
    for number, page in enumerate(pages):
        if number:
            story.append(PageBreak())
        if page.heading:
            story.append(Paragraph(page.heading, styles["Heading1"]))
        story.extend(Paragraph(text, body) for text in page.paragraphs)
    out = io.BytesIO()
    SimpleDocTemplate(out, pagesize=A4).build(story)
    return out.getvalue()


def image_only_pdf() -> bytes:
    """A page with drawings and an embedded image but no text layer, as a scan has."""
    from PIL import Image

    image = Image.new("RGB", (60, 20), (200, 30, 30))
    pdf = FPDF(format="A4")
    pdf.add_page()
    pdf.rect(20, 20, 100, 50)
    pdf.image(image, x=30, y=90, w=120)
    return bytes(pdf.output())


def encrypted(pdf: bytes, password: str = "secret") -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    writer.encrypt(user_password=password, owner_password=password + "-owner", algorithm="AES-256")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def docx_document(title: str | None, blocks: list[tuple[str, str]], *, core_title: str | None = None) -> bytes:
    """A DOCX of (kind, text) blocks: kind "h1"/"h2" a heading, "p" a paragraph, "li" a list item."""
    from docx import Document

    doc = Document()
    if core_title is not None:
        doc.core_properties.title = core_title
    if title:
        doc.add_heading(title, level=0)
    for kind, text in blocks:
        if kind.startswith("h"):
            doc.add_heading(text, level=int(kind[1:]))
        elif kind == "li":
            doc.add_paragraph(text, style="List Bullet")
        else:
            doc.add_paragraph(text)
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


def zip_bomb_docx(inflated: int) -> bytes:
    """A real DOCX whose document.xml is padded to ``inflated`` bytes of white space, which
    deflate squeezes to almost nothing (about 1,000:1)."""
    base = docx_document("Bomb", [("p", "A small paragraph.")])
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(base)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "word/document.xml":
                head, tail = data.split(b"<w:body>", 1)
                data = head + b"<w:body>" + b" " * inflated + tail
            dst.writestr(info.filename, data)
    return out.getvalue()


NEWS_ARTICLE = (
    "The river city council approved the new bridge on Tuesday after eight months of debate.",
    "Engineers said the steel span will carry four lanes of traffic and a protected cycle path. "
    "Construction is expected to start in the spring and to last two years.",
    "Residents who had asked for a safer crossing near the old market welcomed the vote. "
    "A farmer who sells apples there said the current bridge shakes whenever a lorry passes.",
    "The council will publish the final cost estimate next month.",
)


def news_page(paragraphs: tuple[str, ...] = NEWS_ARTICLE) -> str:
    """A news web page: navigation, an ad, related links and a footer around an article,
    with title, author and date metadata and a canonical link."""
    body = "\n".join(f"      <p>{p}</p>" for p in paragraphs)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Council approves new river bridge | The Valley Gazette</title>
  <meta name="author" content="Jane Miller">
  <meta property="article:published_time" content="2024-03-05T09:30:00Z">
  <meta name="description" content="The council voted for a new bridge.">
  <link rel="canonical" href="https://gazette.example.org/news/2024/03/council-approves-bridge">
</head>
<body>
  <header>
    <nav><ul><li><a href="/">Home</a></li><li><a href="/news">News</a></li><li><a href="/sport">Sport</a></li>
    <li><a href="/weather">Weather</a></li><li><a href="/subscribe">Subscribe now</a></li></ul></nav>
  </header>
  <div class="ad-banner advertisement"><p>Buy the new Phone X today with 50% off! Limited offer.</p></div>
  <main>
    <article>
      <h1>Council approves new river bridge</h1>
      <p class="byline">By Jane Miller, 5 March 2024</p>
{body}
    </article>
    <aside class="related"><h3>Related stories</h3><ul><li><a href="/a">Flood warnings issued</a></li>
    <li><a href="/b">Market opening hours change</a></li></ul></aside>
  </main>
  <footer><p>Copyright 2024 The Valley Gazette. All rights reserved.</p>
  <ul><li><a href="/privacy">Privacy policy</a></li><li><a href="/cookies">Cookie settings</a></li></ul></footer>
</body>
</html>
"""
