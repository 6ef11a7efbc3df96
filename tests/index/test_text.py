"""Words of free text: tokens, stop words, a question's content words, its FTS5 query."""

from __future__ import annotations

from citeqa.index.lexical import fts_query
from citeqa.index.text import STOPWORDS, content_words, query_words, tokens


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


def test_fts_query_quotes_every_word_so_operators_stay_words():
    assert fts_query('Which storms NEAR "the" coast?') == '"storms" OR "near" OR "coast"'
    assert fts_query("OR AND NOT") == '"not"'  # "or" and "and" are stop words
    assert fts_query("?!") is None
