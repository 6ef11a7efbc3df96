"""Citation verification: markers → passages → quotes cut from the stored text."""

from __future__ import annotations

import random
import re
from contextlib import closing
from urllib.parse import unquote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from citeqa.index.embedded_store import EmbeddedStore
from citeqa.index.file_input import document_from_file
from citeqa.index.ingest import DocumentInput, Ingestor, read_inputs
from citeqa.index.retriever import HybridRetriever
from citeqa.index.types import Hit, Sentence
from citeqa.qa.citations import MARKER_GROUP, SupportScorer, lexical_support, numbers_agree, parse_claims, verify
from citeqa.qa.types import Draft, Generator, Passage
from tests.index.extract.builders import Page, fpdf_document, news_page, paragraphs
from tests.support.corpus import SEEDS_DIR, TROOPS_QUESTION
from tests.support.scripted import ScriptedGenerator

FACTS = (
    "The Eiffel Tower is 330 metres tall. "
    "It was completed in 1889 for the World's Fair. "
    "Gustave Eiffel's company designed and built the tower. "
    "About seven million people visit it every year. "
    "The tower is repainted every seven years."
)
S_HEIGHT, S_BUILT, S_DESIGN, S_VISITS, S_PAINT = range(5)


def _is_generator(g: Generator) -> Generator:  # type-level check that the script fits the Protocol
    return g


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, embedder):
    store = EmbeddedStore(tmp_path_factory.mktemp("citations"), embedder.dimension)
    ingestor = Ingestor(store, embedder)
    ingestor.ingest(DocumentInput(text=FACTS, doc_id="eiffel", title="Eiffel Tower"))
    ingestor.ingest_many(read_inputs([SEEDS_DIR]))
    yield store
    store.close()


@pytest.fixture(scope="module")
def passages(corpus) -> list[Passage]:
    """The five Eiffel sentences as passages 1..5, in document order."""
    version = corpus.document("eiffel").version
    sentences = corpus.sentences("eiffel", version)
    assert len(sentences) == 5
    return [Passage(number=i + 1, hit=Hit(s, score=1.0 - i / 10, dense_score=0.7)) for i, s in enumerate(sentences)]


def run(text: str, passages, store, declined: bool = False, min_support: float = 0.5):
    generator = _is_generator(ScriptedGenerator(text, declined))
    draft = generator.generate("question", passages)
    return verify(draft, passages, store, min_support)


def check_contract(result, store) -> None:
    for c in result.citations:
        doc = store.document(c.doc_id, c.doc_version)
        assert doc is not None
        assert doc.text[c.start:c.end] == c.quote
        assert 0 <= c.answer_start < c.answer_end <= len(result.answer)
        after = re.match(r" ?((?:\[\d+\])+)", result.answer[c.answer_end:])
        assert after is not None and f"[{c.marker}]" in after.group(1), (result.answer, c)
        assert c.sentence_id == f"{c.doc_id}:{c.sentence_id.rsplit(':', 1)[1]}"


# -- parse_claims -----------------------------------------------------------------------------


def claim_view(text: str):
    return [(text[c.start:c.end], c.markers) for c in parse_claims(text)]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", []),
        ("   ", []),
        ("Just a sentence.", [("Just a sentence", [])]),
        ("Paris is big [1].", [("Paris is big", [1])]),
        ("Paris is big [1]. It has a tower [2].", [("Paris is big", [1]), ("It has a tower", [2])]),
        ("A fact [1][2] and more [3, 4].", [("A fact", [1, 2]), ("and more", [3, 4])]),
        ("Spaced [ 1 , 2 ] marker.", [("Spaced", [1, 2]), ("marker", [])]),
        ("Cited [1]. Then an uncited tail.", [("Cited", [1]), ("Then an uncited tail", [])]),
        ("Cited [1]. .", [("Cited", [1])]),  # a tail without words is no claim
        ("No space[3] here.", [("No space", [3]), ("here", [])]),
        ("Not markers: [a], [], [1.5], (1).", [("Not markers: [a], [], [1.5], (1)", [])]),
        ("Line one [1]\nLine two [2]", [("Line one", [1]), ("Line two", [2])]),
        ("Repeated [2][2].", [("Repeated", [2, 2])]),
        ("About [11,000] troops [1].", [("About [11,000] troops", [1])]),  # a number, not markers
        ("Both [1,2] and [ 3 , 4 ].", [("Both", [1, 2]), ("and", [3, 4])]),
        # An uncited tail is a claim per sentence (a model that skipped its markers).
        ("Cited [1]. Second one. Third one!", [("Cited", [1]), ("Second one", []), ("Third one", [])]),
        ("It rose 2.5 percent. Then it fell", [("It rose 2.5 percent", []), ("Then it fell", [])]),
    ],
)
def test_parse_claims(text, expected):
    assert claim_view(text) == expected


def test_parse_claims_spans_and_groups():
    text = "First claim [1]; second claim [2, 3] tail"
    claims = parse_claims(text)
    assert [(text[c.group_start:c.group_end]) for c in claims] == [" [1]", " [2, 3]", ""]
    assert claims[-1].group_start == claims[-1].group_end == len(text)
    for c in claims:
        piece = text[c.start:c.end]
        assert piece == piece.strip() and not piece.startswith((";", ",", "."))


def test_space_separated_markers_belong_to_the_same_claim():
    assert claim_view("The tower is tall [1] [2].") == [("The tower is tall", [1, 2])]


def test_support_is_share_of_claim_content_words():
    assert lexical_support("The Eiffel Tower is tall", "The Eiffel Tower is 330 metres tall.") == 1.0
    assert lexical_support("Eiffel Tower purple", "The Eiffel Tower is 330 metres tall.") == pytest.approx(2 / 3)
    assert lexical_support("bananas", "The Eiffel Tower is 330 metres tall.") == 0.0
    assert lexical_support("", "anything") == 0.0


# -- verify -----------------------------------------------------------------------------------


def test_verbatim_claims_all_supported_are_answered(passages, corpus):
    text = f"{passages[0].sentence.text} [1] {passages[1].sentence.text} [2]"
    result = run(text, passages, corpus)
    assert result.status == "answered"
    assert result.dropped == 0
    assert [c.sentence_id for c in result.citations] == ["eiffel:0", "eiffel:1"]
    assert [c.support for c in result.citations] == [1.0, 1.0]
    assert [c.score for c in result.citations] == [passages[0].hit.score, passages[1].hit.score]
    check_contract(result, corpus)


def test_invented_marker_is_dropped_and_counted(passages, corpus):
    result = run("The Eiffel Tower is 330 metres tall [1][9].", passages, corpus)
    assert result.dropped == 1
    assert [c.sentence_id for c in result.citations] == ["eiffel:0"]
    assert result.status == "answered"
    assert "[9]" not in result.answer
    assert result.answer == "The Eiffel Tower is 330 metres tall [1]."
    check_contract(result, corpus)


def test_only_invented_markers_is_unsupported(passages, corpus):
    result = run("The tower is 330 metres tall [9]. It opened in 1889 [0].", passages, corpus)
    assert result.status == "unsupported"
    assert result.citations == []
    assert result.dropped == 2


def test_claim_unrelated_to_its_cited_sentence_is_dropped_and_answer_is_partial(passages, corpus):
    text = "The Eiffel Tower is 330 metres tall [1]. Bananas grow on large herbaceous plants [2]."
    result = run(text, passages, corpus)
    assert result.status == "partial"
    assert result.dropped == 1
    assert [c.sentence_id for c in result.citations] == ["eiffel:0"]
    # The unsupported claim stays in the text but carries no marker.
    assert result.answer == "The Eiffel Tower is 330 metres tall [1]. Bananas grow on large herbaceous plants."
    check_contract(result, corpus)


def test_uncited_tail_makes_the_answer_partial(passages, corpus):
    result = run("The tower is repainted every seven years [5]. Also it is lovely in spring.", passages, corpus)
    assert result.status == "partial"
    assert result.dropped == 0
    assert [c.marker for c in result.citations] == [1]


def test_declined_draft_is_unsupported(passages, corpus):
    result = run("The Eiffel Tower is 330 metres tall [1].", passages, corpus, declined=True)
    assert (result.status, result.citations, result.answer) == ("unsupported", [], "")
    assert run("   ", passages, corpus).status == "unsupported"


def test_markers_are_renumbered_in_order_of_first_appearance(passages, corpus):
    text = (
        "About seven million people visit the tower every year [4]. "
        "Seven million visit the tower [5][4]. "
        "It was completed in 1889 [2][9]."
    )
    result = run(text, passages, corpus)
    assert result.status == "answered"
    assert result.dropped == 1
    assert result.answer == (
        "About seven million people visit the tower every year [1]. "
        "Seven million visit the tower [2][1]. "
        "It was completed in 1889 [3]."
    )
    by_marker = {c.marker: c.sentence_id for c in result.citations}
    assert by_marker == {1: "eiffel:3", 2: "eiffel:4", 3: "eiffel:1"}
    claims = ["About seven million people visit the tower every year", "Seven million visit the tower",
              "Seven million visit the tower", "It was completed in 1889"]
    assert [result.answer[c.answer_start:c.answer_end] for c in result.citations] == claims
    assert [c.marker for c in result.citations] == [1, 2, 1, 3]
    check_contract(result, corpus)


def test_markers_without_a_space_stay_without_one(passages, corpus):
    result = run("It was completed in 1889[2].", passages, corpus)
    assert result.answer == "It was completed in 1889[1]."
    check_contract(result, corpus)


def test_space_separated_markers_are_all_kept(passages, corpus):
    result = run("The Eiffel Tower is 330 metres tall [1] [2].", passages, corpus)
    # [2] (completed in 1889) does not support a height claim; it is dropped as unsupported,
    # but the claim itself is cited, so the answer is complete.
    assert result.status == "answered"
    assert result.dropped == 1
    assert result.answer == "The Eiffel Tower is 330 metres tall [1]."
    both = run("The Eiffel tower [1] [3].", passages, corpus)
    assert both.status == "answered" and both.dropped == 0
    assert both.answer == "The Eiffel tower [1][2]."
    assert [c.sentence_id for c in both.citations] == ["eiffel:0", "eiffel:2"]
    # A marker group on the next paragraph is not joined to the previous claim.
    assert claim_view("Tall [1]\n\n[2] Next") == [("Tall", [1]), ("", [2]), ("Next", [])]
    check_contract(both, corpus)


def test_quotes_come_from_the_store_even_when_the_draft_misquotes(passages, corpus):
    result = run('The tower is "330 metres high and tall", says the Eiffel Tower page [1].', passages, corpus)
    [citation] = result.citations
    assert citation.quote == "The Eiffel Tower is 330 metres tall."
    assert corpus.document("eiffel").text[citation.start:citation.end] == citation.quote
    assert "high" in result.answer and "high" not in citation.quote


def test_a_claim_that_changes_a_figure_is_not_supported(passages, corpus):
    # All words but the number match the quote; overlap alone would accept it.
    result = run("The Eiffel Tower is 300 metres tall [1].", passages, corpus)
    assert (result.status, result.citations, result.dropped) == ("unsupported", [], 1)
    # A number the question gave is not a changed figure.
    scorer = SupportScorer(question="Was the tower finished by 1900?")
    assert verify(Draft("It was completed in 1889, before 1900 [2]."), passages, corpus, scorer=scorer).citations
    assert not verify(Draft("It was completed in 1889, before 1900 [2]."), passages, corpus).citations
    assert numbers_agree("about 11,000 troops", "some 11000 soldiers")
    assert not numbers_agree("about 12,000 troops", "some 11,000 soldiers")


def test_a_passage_whose_text_disagrees_with_the_store_is_dropped(passages, corpus):
    real = passages[0].sentence
    forged = Sentence(real.doc_id, real.doc_version, real.index, real.start, real.end, "The tower is 500 metres tall.")
    shifted = Sentence(real.doc_id, real.doc_version, real.index, real.start + 4, real.end, real.text)
    missing = Sentence("ghost", "0000000000000000", 0, 0, 10, "The tower is tall.")
    bad = [Passage(1, Hit(forged, 1.0)), Passage(2, Hit(shifted, 1.0)), Passage(3, Hit(missing, 1.0))]
    result = run("The tower is 500 metres tall [1]. The tower is tall [2]. It is a tall tower [3].", bad, corpus)
    assert result.citations == []
    assert result.dropped == 3
    assert result.status == "unsupported"


def test_min_support_threshold(passages, corpus):
    text = "Eiffel Tower purple giraffes [1]."  # 2 of 4 content words in the quote
    assert run(text, passages, corpus, min_support=0.5).citations
    assert not run(text, passages, corpus, min_support=0.6).citations


# -- property: whatever a generator writes, returned citations keep the contract -------------------

CLAIM_WORDS = st.sampled_from(
    "the tower eiffel 330 metres tall 1889 completed world's fair seven million visit "
    "north korea troops 11,000 12,000 sent russia banana quantum é 😀 [ ] , . ; :".split()
)


@st.composite
def claim_strings(draw, sentences: list[str]) -> str:
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return draw(st.sampled_from(sentences))
    if kind == 1:
        sentence = draw(st.sampled_from(sentences))
        start = draw(st.integers(0, len(sentence)))
        return sentence[start:start + draw(st.integers(0, 80))]
    if kind == 2:
        return " ".join(draw(st.lists(CLAIM_WORDS, min_size=1, max_size=12)))
    return draw(st.text(max_size=40))


@st.composite
def marker_groups(draw, count: int) -> str:
    numbers = draw(st.lists(st.integers(0, count + 3), min_size=0, max_size=3))
    style = draw(st.integers(0, 2))
    if not numbers:
        return ""
    if style == 0:
        return "".join(f"[{n}]" for n in numbers)
    if style == 1:
        return " ".join(f"[{n}]" for n in numbers)
    return "[" + ", ".join(str(n) for n in numbers) + "]"


@pytest.fixture(scope="module")
def retrieved(corpus, embedder) -> list[Passage]:
    hits = HybridRetriever(corpus, embedder).search(TROOPS_QUESTION + " Eiffel Tower height", 6)
    return [Passage(number=i, hit=h) for i, h in enumerate(hits, start=1)]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_property_returned_citations_always_keep_the_contract(data, corpus, retrieved):
    sentences = [p.sentence.text for p in retrieved]
    pieces = data.draw(
        st.lists(
            st.tuples(
                claim_strings(sentences),
                st.sampled_from(["", " ", "  ", "\n"]),
                marker_groups(len(retrieved)),
                st.sampled_from(["", " ", ". ", ".\n", "; ", "\n\n"]),
            ),
            min_size=1,
            max_size=5,
        )
    )
    text = "".join(claim + space + markers + after for claim, space, markers, after in pieces)
    result = run(text, retrieved, corpus)

    check_contract(result, corpus)
    markers = sorted({c.marker for c in result.citations})
    assert markers == list(range(1, len(markers) + 1))
    by_marker: dict[int, str] = {}
    for c in result.citations:
        assert by_marker.setdefault(c.marker, c.sentence_id) == c.sentence_id  # one sentence per number
        assert c.support >= 0.5
    # The markers left in the answer are exactly the surviving citations' numbers.
    assert {int(n) for n in re.findall(r"\[(\d+)\]", result.answer)} == set(markers)
    if result.citations:
        assert result.status in ("answered", "partial")
    else:
        assert result.status == "unsupported"
    # Every marker of the text, those a free-text claim holds by chance ("[ 330 ]") included.
    total = sum(len(re.findall(r"\d+", g.group())) for g in MARKER_GROUP.finditer(text))
    assert len(result.citations) + result.dropped <= total



def test_a_claims_support_does_not_depend_on_the_claims_beside_it(embedder):
    """Paraphrases are embedded one by one: in one batch, their vectors (and so supports) would
    move with their batch-mates (in bfloat16 by ~1e-5), and a streamed answer, scored claim by
    claim, would not equal the same answer asked whole."""
    claim = "Kim Jong Un sent 11,000 to 12,000 elite soldiers to help in the conflict"
    quote = ("Kim Jong Un's leadership has reportedly dispatched approximately 11,000 to 12,000 elite "
             "troops to assist in the conflict.")
    others = ["Russia pays nothing for the treatment of its wounded in North Korean hospitals",
              "Korean teachers will work in Moscow and Vladivostok", "Workers arrive on student visas"]
    alone = SupportScorer(embedder, TROOPS_QUESTION)
    beside = SupportScorer(embedder, TROOPS_QUESTION)
    beside.prefetch([*others, claim, quote, "a very much longer text " * 12])
    assert 0.5 < alone(claim, quote) < 1.0  # a paraphrase: scored with the embeddings
    assert beside(claim, quote) == alone(claim, quote)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_property_attribution_and_embeddings_keep_the_contract(data, corpus, retrieved, embedder):
    """With the full scorer (embeddings) and verifier attribution on, as the service runs."""
    sentences = [p.sentence.text for p in retrieved]
    pieces = data.draw(st.lists(st.tuples(claim_strings(sentences), marker_groups(len(retrieved)),
                                          st.sampled_from(["", ". ", ".\n", " "])), min_size=1, max_size=4))
    text = "".join(claim + " " + markers + after for claim, markers, after in pieces)
    result = verify(Draft(text), retrieved, corpus, 0.5, SupportScorer(embedder, TROOPS_QUESTION), attribute=True)
    check_contract(result, corpus)
    markers = sorted({c.marker for c in result.citations})
    assert markers == list(range(1, len(markers) + 1))
    assert {int(n) for n in re.findall(r"\[(\d+)\]", result.answer)} == set(markers)
    assert all(c.support >= 0.5 and c.origin in ("generator", "verifier") for c in result.citations)
    assert (result.status == "unsupported") == (not result.citations)


# -- anchors back into the original (qa/anchors.py) --------------------------------------------

CANONICAL = "https://gazette.example.org/news/2024/03/council-approves-bridge"  # news_page's canonical link


@pytest.fixture(scope="module")
def originals(tmp_path_factory, embedder):
    """A three-page PDF and a news page, ingested from their bytes as uploads are."""
    rng = random.Random(11)
    pages = [Page(None, tuple(paragraphs(rng, 2))) for _ in range(3)]
    with closing(EmbeddedStore(tmp_path_factory.mktemp("originals"), embedder.dimension)) as store:
        ingestor = Ingestor(store, embedder)
        ingestor.ingest(document_from_file(fpdf_document(pages), filename="report.pdf", doc_id="report"))
        ingestor.ingest(document_from_file(news_page().encode(), filename="bridge.html", doc_id="bridge"))
        yield store, pages


def _cite_every_sentence(store, doc_id: str):
    """A draft that quotes each sentence of the document and cites it."""
    version = store.document(doc_id).version
    passages = [Passage(number=i, hit=Hit(s, score=0.9)) for i, s in enumerate(store.sentences(doc_id, version), 1)]
    text = " ".join(f"{p.sentence.text} [{p.number}]" for p in passages)
    result = run(text, passages, store)
    check_contract(result, store)
    assert len(result.citations) == len(passages)
    return result


def test_pdf_citations_carry_the_page_the_quote_was_written_on(originals):
    store, pages = originals
    result = _cite_every_sentence(store, "report")
    for c in result.citations:
        written_on = [n for n, page in enumerate(pages, start=1) if any(c.quote in p for p in page.paragraphs)]
        assert [c.page] == written_on, c
        assert c.end_page is None and c.link is None  # one page each; the upload has no URL


def test_citations_of_a_web_page_link_to_the_quote_with_a_text_fragment(originals):
    store, _ = originals
    result = _cite_every_sentence(store, "bridge")
    for c in result.citations:
        assert c.page is None and c.end_page is None
        base, directive = c.link.split("#:~:text=")
        assert base == CANONICAL  # the page's canonical URL, from the extractor
        head, *tail = [unquote(part) for part in directive.split(",")]
        assert c.quote.startswith(head) and c.quote.rstrip(".").endswith(tail[0] if tail else head)
