"""index.sentences.split_sentences: exact code-point spans into the original text."""

from __future__ import annotations

import time

import pysbd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from citeqa.index.sentences import MAX_SENTENCE_CHARS, split_sentences
from citeqa.index.types import Span
from tests.support.corpus import SEEDS_DIR


def texts_of(text: str) -> list[str]:
    return [text[s.start:s.end] for s in split_sentences(text)]


# -- examples ------------------------------------------------------------------------------


def test_two_plain_sentences():
    assert texts_of("The cat sat. The dog ran.") == ["The cat sat.", "The dog ran."]


def test_spans_are_exact_offsets():
    text = "The cat sat. The dog ran."
    assert split_sentences(text) == [Span(0, 12), Span(13, 25)]


def test_headline_line_without_full_stop_is_its_own_sentence():
    text = "Russia Sends Troops\nThe ministry said so on Monday. It gave no numbers."
    assert texts_of(text) == [
        "Russia Sends Troops",
        "The ministry said so on Monday.",
        "It gave no numbers.",
    ]


def test_list_items_are_sentences():
    assert texts_of("- item one\n- item two\n\n* item three") == ["- item one", "- item two", "* item three"]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Dr. Smith went home. He slept.", ["Dr. Smith went home.", "He slept."]),
        (
            "Mr. and Mrs. Jones arrived at 5 p.m. on Monday. They left.",
            ["Mr. and Mrs. Jones arrived at 5 p.m. on Monday.", "They left."],
        ),
        ("U.S. officials said so. Then they left.", ["U.S. officials said so.", "Then they left."]),
    ],
)
def test_abbreviations_do_not_end_sentences(text, expected):
    assert texts_of(text) == expected


def test_crlf_line_endings():
    text = "First line.\r\nSecond line here.\r\n\r\nThird."
    spans = split_sentences(text)
    assert texts_of(text) == ["First line.", "Second line here.", "Third."]
    # Offsets index the original text, carriage returns included.
    assert spans[1].start == text.index("Second")
    assert spans[2].end == len(text)


def test_lone_carriage_return_and_unicode_line_separators_break_lines():
    text = "Alpha beta\rGamma delta\u2028Epsilon zeta\u2029Eta"
    assert texts_of(text) == ["Alpha beta", "Gamma delta", "Epsilon zeta", "Eta"]


@pytest.mark.parametrize("text", ["", " ", "\n\n", "\r\n\t \u00a0\u3000"])
def test_empty_or_blank_text_has_no_sentences(text):
    assert split_sentences(text) == []


def test_surrounding_white_space_is_outside_spans():
    text = "   \t Leading and trailing.   \n"
    assert texts_of(text) == ["Leading and trailing."]
    assert split_sentences(text)[0].start == 5


def test_runs_of_inner_white_space_are_kept_inside_a_sentence():
    text = "Wide    gaps\tinside  one sentence. Next one."
    assert texts_of(text) == ["Wide    gaps\tinside  one sentence.", "Next one."]


def test_unicode_text_offsets_are_code_points():
    text = "Café au lait 😀 costs €3. Ünïcode works! Is it 東京? はい。"
    got = texts_of(text)
    assert got[0] == "Café au lait 😀 costs €3."
    assert got[1] == "Ünïcode works!"
    assert "".join(got).replace(" ", "") == text.replace(" ", "")


def test_combining_marks_stay_with_their_letters():
    text = "e\u0301te\u0301 was warm. Yes."
    assert texts_of(text) == ["e\u0301te\u0301 was warm.", "Yes."]


def test_right_to_left_text():
    text = "الجملة الأولى. الجملة الثانية."
    assert texts_of(text) == ["الجملة الأولى.", "الجملة الثانية."]


@pytest.mark.parametrize("separator", ["\x1c", "\x1d", "\x1e", "\x1f"])
def test_information_separators_before_a_numbered_item_do_not_crash(separator):
    # pysbd once raised ValueError (int("\x1c1")) on these: an ingest would fail.
    text = f"Dr. Who{separator}1. First point. Second point."
    assert texts_of(text) == [f"Dr. Who{separator}1.", "First point.", "Second point."]


def test_no_trailing_punctuation_last_sentence():
    assert texts_of("One sentence. And a fragment") == ["One sentence.", "And a fragment"]


# -- properties ----------------------------------------------------------------------------


def check_spans(text: str, spans: list[Span]) -> None:
    covered = [False] * len(text)
    previous_end = 0
    for span in spans:
        assert 0 <= span.start < span.end <= len(text), (span, len(text))
        assert span.start >= previous_end, "spans overlap or are out of order"
        piece = text[span.start:span.end]
        assert piece == piece.strip(), f"span not stripped: {piece!r}"
        assert piece.strip(), "empty span"
        for i in range(span.start, span.end):
            covered[i] = True
        previous_end = span.end
    missed = [i for i, ch in enumerate(text) if not ch.isspace() and not covered[i]]
    assert not missed, f"non-white-space characters outside every span at {missed[:10]}"


WORDS = st.sampled_from(
    [
        "Dr.", "Mr.", "U.S.", "e.g.", "etc.", "Smith", "troops", "11,000", "12,000", "café",
        "Ünïcode", "東京", "はい。", "😀", "👩‍👩‍👧", "e\u0301", "a\u0308\u0301", "الجملة", "שלום",
        "\u200f", "\u200b", "(see", "note)", '"quoted"', "“curly”", "it's", "—", "...", "…",
        "?!", "3.14", "p.m.", "#", "*", "-", "1.", "a", "I",
    ]
)
SPACES = st.sampled_from(
    [" ", "  ", "\t", "\n", "\r\n", "\r", "\n\n", "\u00a0", "\u2028", "\u2029", "\u3000", "\x0b", "\x0c",
     "\x85", "\x1c", " \n ", ""]
)
ENDINGS = st.sampled_from([".", "!", "?", "", ". ", ".\n", "?\r\n", "。", "…", '."', ".)"])


@st.composite
def sentence_like(draw) -> str:
    parts: list[str] = []
    for _ in range(draw(st.integers(1, 8))):
        words = draw(st.lists(WORDS, min_size=1, max_size=10))
        for word in words:
            parts.append(word)
            parts.append(draw(SPACES))
        parts.append(draw(ENDINGS))
        parts.append(draw(SPACES))
    if draw(st.booleans()):
        parts.insert(0, draw(SPACES))
    return "".join(parts)


PROPERTY_SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY_SETTINGS
@given(st.text())
def test_property_any_unicode_text(text):
    check_spans(text, split_sentences(text))


@PROPERTY_SETTINGS
@given(st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=400))
def test_property_any_valid_unicode_text(text):
    check_spans(text, split_sentences(text))


@PROPERTY_SETTINGS
@given(sentence_like())
def test_property_sentence_like_text(text):
    check_spans(text, split_sentences(text))


@PROPERTY_SETTINGS
@given(
    st.lists(
        st.one_of(
            sentence_like(),
            st.text(alphabet=st.characters(categories=["Zs", "Cc", "Mn", "So", "Po", "Lo"]), max_size=20),
        ),
        min_size=1,
        max_size=5,
    )
)
def test_property_mixed_pieces(pieces):
    text = "".join(pieces)
    check_spans(text, split_sentences(text))


@PROPERTY_SETTINGS
@given(sentence_like())
def test_property_split_is_deterministic_and_line_local(text):
    """Splitting is deterministic and a line break always ends a sentence."""
    spans = split_sentences(text)
    assert spans == split_sentences(text)
    # No sentence crosses a line break.
    for span in spans:
        piece = text[span.start:span.end]
        assert not any(ch in piece for ch in "\r\n\u2028\u2029\x85\x0b\x0c"), repr(piece)


# -- bounded cost and size -----------------------------------------------------------------
# Generous bounds in CPU seconds of this process (other work on a shared machine does not
# count): before windows, 100 KB of "a. " took 275 s and 100 KB of prose on one line 8.7 s,
# growing with the square of the line.


def seed_as_one_line() -> str:
    text = next(SEEDS_DIR.glob("*.txt")).read_text()
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def cpu_seconds(text: str) -> tuple[list[Span], float]:
    start = time.process_time()
    spans = split_sentences(text)
    return spans, time.process_time() - start


def test_100_kb_of_tiny_sentences_splits_in_seconds():
    text = ("a. " * 34_000)[:100_000]
    spans, took = cpu_seconds(text)
    assert took < 20, f"{took:.1f} s"
    assert len(spans) == 33_334
    check_spans(text, spans)


def test_300_kb_of_prose_on_one_line_splits_in_seconds():
    text = " ".join([seed_as_one_line()] * 85)  # ~300 KB, no line break
    spans, took = cpu_seconds(text)
    assert took < 30, f"{took:.1f} s"
    check_spans(text, spans)


def test_a_long_line_ends_its_sentences_where_pysbd_does_on_the_whole_line():
    """The windows pysbd reads a long line in do not move a sentence end: the same spans as
    pysbd's own offsets for the whole line (~11 KB: about four windows)."""
    text = " ".join([seed_as_one_line()] * 3)
    whole = pysbd.Segmenter(language="en", clean=False, char_span=True).segment(text)
    expected = [Span(t.start, t.start + len(t.sent.rstrip())) for t in whole]
    assert split_sentences(text) == expected


def test_a_line_without_punctuation_is_cut_at_white_space_into_bounded_sentences():
    text = " ".join(f"word{i}" for i in range(20_000))  # ~130 KB, one "sentence" to pysbd
    spans = split_sentences(text)
    check_spans(text, spans)
    assert max(s.end - s.start for s in spans) <= MAX_SENTENCE_CHARS
    assert min(s.end - s.start for s in spans[:-1]) > MAX_SENTENCE_CHARS // 2
    # Cut between words: every piece is whole words.
    assert all(text[s.start:s.end].split()[-1] == f"word{text[:s.end].count(' ')}" for s in spans[:5])


def test_a_run_without_white_space_is_cut_at_the_limit_but_keeps_accents_on_their_letters():
    text = "e\u0301" * 3_000  # 6,000 code points, no white space, no full stop
    spans = split_sentences(text)
    check_spans(text, spans)
    assert all(s.end - s.start <= MAX_SENTENCE_CHARS for s in spans)
    assert all(text[s.start] == "e" for s in spans), "a combining accent was cut from its letter"


LONG_LINE_SETTINGS = settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))


@LONG_LINE_SETTINGS
@given(st.lists(sentence_like(), min_size=5, max_size=15), st.integers(5, 40))
def test_property_long_lines_split_in_windows_keep_the_span_contract(pieces, repeats):
    # One line several windows long (repeated, so that windows end in ever other places):
    # every span exact, stripped, covering, bounded.
    text = " ".join(pieces * repeats)
    for brk in "\r\n\u2028\u2029\x85\x0b\x0c":
        text = text.replace(brk, " ")
    spans = split_sentences(text)
    check_spans(text, spans)
    assert all(s.end - s.start <= MAX_SENTENCE_CHARS for s in spans)
