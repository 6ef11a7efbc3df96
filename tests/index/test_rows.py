"""Reading stored sentence rows: the fast paths give what the plain ones give."""

from __future__ import annotations

import pytest

from citeqa.index import rows
from citeqa.index.types import Mention, Sentence

MENTIONS = [Mention(0, 6, "PERSON"), Mention(0, 6, "NOUN_CHUNK"), Mention(11, 15, "DATE"), Mention(7, 10, "syn:subj")]
STORED = rows.mentions_value(MENTIONS)


@pytest.mark.parametrize("stored", [STORED, None, "[]"])
def test_a_row_reads_as_the_sentence_its_fields_make(stored):
    row = (42, "doc", "v1", 3, 10, 30, "Amelia won 1932 flight", stored)
    read = rows.sentence(row)
    made = Sentence(doc_id="doc", doc_version="v1", index=3, start=10, end=30, text="Amelia won 1932 flight", key=42,
                    mentions=rows.mentions(stored), analysed=stored is not None)
    assert read == made
    # The fields equality leaves out (key, mentions, analysed) too, and nothing more or less.
    assert vars(read) == vars(made)
    assert list(read.mentions) == (MENTIONS if stored == STORED else [])


@pytest.mark.parametrize("labels", [{"DATE"}, {"PERSON", "DATE"}, {"GPE"}, {"syn:subj"}, set(), {"NOUN_CHUNK"}])
def test_labelled_mentions_are_those_of_the_labels_in_order(labels):
    expected = [m for m in MENTIONS if m.label in labels]
    assert rows.labelled(rows.mentions(STORED), labels) == expected  # undecoded JSON text
    assert rows.labelled(rows.StoredMentions([list(m) for m in MENTIONS]), labels) == expected  # PostgreSQL's jsonb
    decoded = rows.mentions(STORED)
    assert list(decoded) == MENTIONS  # decoded first: read from the decoded tuple
    assert rows.labelled(decoded, labels) == expected
    assert rows.labelled(MENTIONS, labels) == expected  # mentions that were never stored


def test_a_label_json_would_escape_is_still_found():
    odd = [Mention(0, 3, 'Q"X'), Mention(4, 7, "É")]
    stored = rows.StoredMentions(rows.mentions_value(odd))
    assert rows.labelled(stored, {'Q"X'}) == odd[:1]
    assert rows.labelled(stored, {"É"}) == odd[1:]
