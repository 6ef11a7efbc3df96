"""Words of free text: tokens, stop words, a question's content words, its lexical query terms."""

from __future__ import annotations

from citeqa.index.tantivy_lexical import query_terms
from citeqa.index.text import MAX_QUERY_WORDS, STOPWORDS, content_words, query_words, tokens


def test_tokens_are_lowercased_unicode_words_in_order():
    assert tokens("The Café's crème, 12,000 troops — naïve_x!") == ["the", "café", "s", "crème", "12", "000",
                                                                    "troops", "naïve_x"]
    assert tokens("東京 שלום") == ["東京", "שלום"]
    assert tokens("?!  ") == []


def test_content_words_drop_stop_words_unless_nothing_is_left():
    assert content_words("How many troops did they send?") == ["many", "troops", "send"]
    assert content_words("Who is it?") == ["who", "is", "it"]
    assert content_words("") == []
    assert {"the", "and", "who", "what"} <= STOPWORDS


def test_query_words_are_distinct_content_words_in_order():
    assert query_words("Storms, storms and more STORMS on the coast") == ["storms", "more", "coast"]


def test_query_terms_are_the_stemmed_folded_content_words():
    assert query_terms('Which storms NEAR "the" coast?') == ["storm", "near", "coast"]
    assert query_terms("OR AND NOT") == ["not"]  # "or" and "and" are stop words
    assert query_terms("Café résumés") == ["cafe", "resum"]  # folded as FTS5's remove_diacritics, stemmed
    assert query_terms("?!") == []


def test_a_question_keeps_all_its_words():
    question = "Which Carolina Panthers quarterback threw the interception returned for a touchdown in Super Bowl 50?"
    assert query_words(question) == list(dict.fromkeys(content_words(question)))
    assert len(query_words(question)) < MAX_QUERY_WORDS


def test_a_long_text_is_searched_by_its_longest_words_in_order():
    words = [f"w{'x' * (i % 9)}{i}" for i in range(1_000)]  # distinct, of lengths 2..12
    kept = query_words(" ".join(words))
    assert len(kept) == MAX_QUERY_WORDS
    assert kept == [w for w in words if w in set(kept)]  # in the text's order
    assert min(map(len, kept)) >= max(len(w) for w in words if w not in set(kept))


def test_no_text_makes_an_or_of_more_terms_than_the_cap():
    # A megabyte of distinct words (before the cap: ~150,000 OR terms, minutes of FTS5).
    text = " ".join(f"term{i}" for i in range(150_000))
    assert len(query_terms(text)) == MAX_QUERY_WORDS
