"""QuestionAnswerer end to end on the seed article: retrieve → abstain or draft → verify."""

from __future__ import annotations

import pytest

from citeqa.qa import registry
from citeqa.qa.answer import NO_ANSWER
from tests.support.answering import TROOPS_CLAIM, TROOPS_FACT, answerer, troops_passage_number
from tests.support.corpus import TROOPS_QUESTION, UNSUPPORTED_QUESTION
from tests.support.scripted import ScriptedGenerator


@pytest.mark.parametrize("fusion", ["blend", "rrf"])
def test_troops_question_is_answered_with_one_exact_citation(seeded, embedder, fusion):
    result = answerer(seeded, embedder, fusion=fusion).ask(TROOPS_QUESTION, top_k=5)
    assert result.status == "answered"
    assert result.dropped_citations == 0
    # The troops sentence first; a second sentence likely to answer too may follow.
    citation = result.citations[0]
    assert 1 <= len(result.citations) <= 2
    assert TROOPS_FACT in citation.quote
    assert TROOPS_FACT in result.answer
    for c in result.citations:
        assert seeded.document(c.doc_id, c.doc_version).text[c.start:c.end] == c.quote
        assert result.answer[c.answer_start:c.answer_end] == c.quote
        assert 0.0 <= c.score <= 1.0
    doc = seeded.document(citation.doc_id, citation.doc_version)
    assert doc.text[citation.start:citation.end] == citation.quote
    assert citation.doc_id == "seed-russia-north-korea"
    index = int(citation.sentence_id.rsplit(":", 1)[1])
    sentence = seeded.sentences(citation.doc_id, citation.doc_version)[index]
    assert (sentence.start, sentence.end, sentence.text) == (citation.start, citation.end, citation.quote)
    assert result.answer.endswith(f" [{result.citations[-1].marker}]")
    assert [c.marker for c in result.citations] == list(range(1, len(result.citations) + 1))
    assert citation.support == 1.0


def test_unsupported_question_abstains_without_calling_the_generator(seeded, embedder):
    generator = ScriptedGenerator("Tungsten boils at 5,555 degrees Celsius [1].")
    result = answerer(seeded, embedder, generator).ask(UNSUPPORTED_QUESTION, top_k=5)
    assert result.status == "unsupported"
    assert result.citations == []
    assert result.answer == NO_ANSWER
    assert generator.calls == []  # abstained on retrieval evidence alone
    assert {"embed", "retrieve", "total"} <= set(result.timings_ms)


def test_unsupported_question_with_the_extractive_generator(seeded, embedder):
    result = answerer(seeded, embedder).ask(UNSUPPORTED_QUESTION, top_k=5)
    assert (result.status, result.citations, result.answer) == ("unsupported", [], NO_ANSWER)


def test_timings_are_reported(seeded, embedder):
    result = answerer(seeded, embedder).ask(TROOPS_QUESTION, top_k=5)
    assert set(result.timings_ms) == {"embed", "retrieve", "generate", "verify", "short_answer", "total"}
    assert all(v >= 0 for v in result.timings_ms.values())
    parts = sum(v for k, v in result.timings_ms.items() if k != "total")
    assert result.timings_ms["total"] == pytest.approx(parts, abs=0.05)  # parts are rounded
    assert result.timings_ms["embed"] > 0 and result.timings_ms["retrieve"] > 0


def test_min_similarity_refuses_what_the_collection_does_not_speak_of(seeded, embedder):
    refused = answerer(seeded, embedder).ask(UNSUPPORTED_QUESTION, top_k=5)
    assert refused.status == "unsupported" and refused.citations == []
    lax = answerer(seeded, embedder, min_similarity=-1.0, min_probability=0.0).ask(UNSUPPORTED_QUESTION, top_k=5)
    # Nothing stops the extractive generator now; it cites a real sentence verbatim.
    assert lax.status == "answered" and len(lax.citations) >= 1


def test_the_cosine_floor_spares_questions_that_share_words_with_the_answer(seeded, embedder):
    # A short question has a low cosine even to the sentence that answers it (0.19 here):
    # the floor applies only when no hit shares a word with the question.
    strict = answerer(seeded, embedder, min_similarity=0.99)
    assert strict.ask(TROOPS_QUESTION, top_k=5).status == "answered"
    short = answerer(seeded, embedder).ask("what is the ISW", top_k=5)
    assert short.status == "answered"
    assert "Institute for the Study of War" in short.citations[0].quote


def test_the_floor_spares_a_question_whose_longest_word_is_a_paraphrase(seeded, embedder):
    # "previous" is not in the article ("... compared to prior years"), "years" is: with the
    # floor at 0.99 only the shared word keeps the question answerable.
    strict = answerer(seeded, embedder, min_similarity=0.99, min_probability=0.0)
    paraphrased = strict.ask("is that more than in previous years?", top_k=5)
    assert paraphrased.status == "answered"
    assert strict.ask("any zeppelins or submarines?", top_k=5).status == "unsupported"


def test_a_count_asked_of_sentences_without_one_is_unsupported(seeded, embedder):
    # The article names no count of educators, and neither of the best sentences for this
    # question holds a number. ("How many teachers is North Korea sending?" was the example
    # until session 27: since "many" no longer weighs as a word of the subject, the troops
    # sentence, which holds a count, ranks first for it and it is answered; noted on issue 14.)
    question = "How many educators will go to Kazan?"
    from citeqa.index.language import shared_analyzer

    def build(**settings):
        a = answerer(seeded, embedder, **settings)
        a.analyzer = shared_analyzer()
        return a

    refused = build().ask(question, top_k=5)
    assert (refused.status, refused.citations) == ("unsupported", [])
    # Without the check the same question gets a confident citation of a sentence that
    # holds no number or date (what the check exists for).
    lax = build(require_asked_kind=False).ask(question, top_k=5)
    assert lax.status == "answered"
    # A count the article does hold is still answered.
    assert build().ask(TROOPS_QUESTION, top_k=5).status == "answered"


def test_an_abbreviation_the_article_never_spells_out_is_unsupported(seeded, embedder):
    # The article uses "DPRK" but never says what it stands for; it does say what "SVO" means.
    refused = answerer(seeded, embedder).ask("what does DPRK stand for", top_k=5)
    assert (refused.status, refused.citations) == ("unsupported", [])
    lax = answerer(seeded, embedder, require_asked_kind=False).ask("what does DPRK stand for", top_k=5)
    assert lax.status == "answered" and "DPRK" in lax.citations[0].quote
    meant = answerer(seeded, embedder).ask("what does SVO mean", top_k=5)
    assert meant.status == "answered" and "special military operation" in meant.citations[0].quote


def test_min_probability_controls_abstention(seeded, embedder):
    strict = answerer(seeded, embedder, min_probability=1.0).ask(TROOPS_QUESTION, top_k=5)
    assert strict.status == "unsupported" and strict.citations == []
    answered = answerer(seeded, embedder).ask(TROOPS_QUESTION, top_k=5)
    assert answered.citations[0].score >= answerer(seeded, embedder).min_probability


def test_generator_citing_the_right_passage_is_answered(seeded, embedder):
    number = troops_passage_number(seeded, embedder, 5)
    generator = ScriptedGenerator(f"Kim Jong Un dispatched approximately 11,000 to 12,000 elite troops [{number}].")
    result = answerer(seeded, embedder, generator).ask(TROOPS_QUESTION, top_k=5)
    assert result.status == "answered"
    assert result.dropped_citations == 0
    assert result.answer == "Kim Jong Un dispatched approximately 11,000 to 12,000 elite troops [1]."
    [citation] = result.citations
    assert TROOPS_FACT in citation.quote and citation.quote != result.answer
    assert seeded.document(citation.doc_id, citation.doc_version).text[citation.start:citation.end] == citation.quote


def test_invented_marker_from_a_generator_is_dropped_and_answer_is_partial(seeded, embedder):
    number = troops_passage_number(seeded, embedder, 5)
    generator = ScriptedGenerator(
        f"Approximately 11,000 to 12,000 elite troops were dispatched [{number}]. They flew to Mars [99]."
    )
    result = answerer(seeded, embedder, generator).ask(TROOPS_QUESTION, top_k=5)
    assert result.status == "partial"
    assert result.dropped_citations == 1
    assert result.answer == "Approximately 11,000 to 12,000 elite troops were dispatched [1]. They flew to Mars."
    assert [c.marker for c in result.citations] == [1]


def test_only_invented_markers_give_unsupported_with_the_count(seeded, embedder):
    generator = ScriptedGenerator("Elite troops were dispatched [42]. Many of them [43].")
    result = answerer(seeded, embedder, generator).ask(TROOPS_QUESTION, top_k=5)
    assert (result.status, result.citations, result.answer) == ("unsupported", [], NO_ANSWER)
    assert result.dropped_citations == 2


def test_declining_generator_gives_unsupported(seeded, embedder):
    result = answerer(seeded, embedder, ScriptedGenerator("", declined=True)).ask(TROOPS_QUESTION, top_k=5)
    assert (result.status, result.citations, result.answer) == ("unsupported", [], NO_ANSWER)


def test_extractive_generator_comes_from_the_registry(seeded, embedder):
    assert "extractive" in registry.available()
    generator = registry.create("extractive")
    result = answerer(seeded, embedder, generator).ask(TROOPS_QUESTION, top_k=5)
    assert result.status == "answered" and TROOPS_FACT in result.citations[0].quote
    with pytest.raises(TypeError):
        registry.create("extractive", temperature=0.5)
    with pytest.raises(registry.UnknownGenerator):
        registry.create("no-such-generator")


# -- small models misbehave: each way is a case -----------------------------------------------



def test_a_looping_generator_is_cut_at_the_first_repeat(seeded, embedder):
    number = troops_passage_number(seeded, embedder, 5)
    generator = ScriptedGenerator(pieces=[f"{TROOPS_CLAIM} [{number}]. "] * 6)
    result = answerer(seeded, embedder, generator).ask(TROOPS_QUESTION, top_k=5)
    assert result.answer == f"{TROOPS_CLAIM} [1]."
    assert result.status == "answered" and len(result.citations) == 1


def test_skipped_markers_are_attributed_by_the_verifier(seeded, embedder):
    generator = ScriptedGenerator(f"{TROOPS_CLAIM}.")
    strict = answerer(seeded, embedder, generator).ask(TROOPS_QUESTION, top_k=5)
    assert (strict.status, strict.citations) == ("unsupported", [])
    result = answerer(seeded, embedder, generator, attribute_uncited=True).ask(TROOPS_QUESTION, top_k=5)
    assert result.status == "answered" and result.dropped_citations == 0
    [citation] = result.citations
    assert citation.origin == "verifier" and TROOPS_FACT in citation.quote and citation.support >= 0.5
    assert result.answer == f"{TROOPS_CLAIM} [1]."
    assert seeded.document(citation.doc_id, citation.doc_version).text[citation.start:citation.end] == citation.quote


def test_citing_passage_9_of_5_is_dropped_and_the_claim_reattributed(seeded, embedder):
    generator = ScriptedGenerator(f"{TROOPS_CLAIM} [9].")
    result = answerer(seeded, embedder, generator, attribute_uncited=True).ask(TROOPS_QUESTION, top_k=5)
    assert result.dropped_citations == 1
    assert [c.origin for c in result.citations] == ["verifier"]
    assert "[9]" not in result.answer and result.status == "answered"


def test_a_marker_past_the_passages_the_model_was_shown_is_invented(seeded, embedder):
    number = troops_passage_number(seeded, embedder, 5)
    shown = number - 1 if number > 1 else 0
    generator = ScriptedGenerator(f"{TROOPS_CLAIM} [{number}].", shown=shown)
    result = answerer(seeded, embedder, generator).ask(TROOPS_QUESTION, top_k=5)
    assert (result.status, result.citations, result.dropped_citations) == ("unsupported", [], 1)


def test_an_answer_from_memory_is_not_supported_even_with_attribution(seeded, embedder):
    generator = ScriptedGenerator("North Korea has a population of about 26 million people [1].")
    result = answerer(seeded, embedder, generator, attribute_uncited=True).ask(TROOPS_QUESTION, top_k=5)
    assert (result.status, result.citations, result.answer) == ("unsupported", [], NO_ANSWER)
    mixed = ScriptedGenerator(f"{TROOPS_CLAIM} [1]. Tungsten boils at 5,555 degrees Celsius.")
    number = troops_passage_number(seeded, embedder, 5)
    mixed.pieces = [f"{TROOPS_CLAIM} [{number}]. Tungsten boils at 5,555 degrees Celsius."]
    result = answerer(seeded, embedder, mixed, attribute_uncited=True).ask(TROOPS_QUESTION, top_k=5)
    assert result.status == "partial" and len(result.citations) == 1
    assert result.answer.endswith("Tungsten boils at 5,555 degrees Celsius.")  # left uncited, flagged partial


@pytest.mark.parametrize("text", [
    "The passages do not answer this question.",
    "I'm sorry, but the passages don't mention how many troops were sent [2].",
    "I cannot answer that from the given context.",
])
def test_saying_the_passages_do_not_answer_is_unsupported(seeded, embedder, text):
    result = answerer(seeded, embedder, ScriptedGenerator(text), attribute_uncited=True).ask(TROOPS_QUESTION, top_k=5)
    assert (result.status, result.citations, result.answer) == ("unsupported", [], NO_ANSWER)


def test_generator_options_and_the_generation_report(seeded, embedder):
    number = troops_passage_number(seeded, embedder, 5)
    generator = ScriptedGenerator(f"{TROOPS_CLAIM} [{number}].")
    qa = answerer(seeded, embedder, generator)
    result = qa.ask(TROOPS_QUESTION, top_k=5, options={"shout": True})
    assert result.answer == f"{TROOPS_CLAIM.upper()} [1]."  # options reached the generator
    assert result.generation == {"generator": "scripted", "passages_shown": 5}
    with pytest.raises(registry.InvalidGeneratorOptions, match="Valid options: shout"):
        qa.ask(TROOPS_QUESTION, top_k=5, options={"temperature": 0})
    with pytest.raises(registry.UnknownGenerator):
        qa.ask(TROOPS_QUESTION, top_k=5, generator="nope")
    assert len(generator.calls) == 1  # wrong names and options fail before any work


def test_the_lead_is_one_of_the_two_best_and_moves_only_for_names_numbers_and_dates(seeded, embedder):
    # qa/answer_lead.py inside the answerer: the first citation is the ranker's first or second
    # sentence; questions asking for a reason, a manner or a description keep the ranker's order.
    import json

    from citeqa.index.language import shared_analyzer
    from citeqa.qa.short_answer import asks_for_a_name
    from tests.support.corpus import SEED_QUESTIONS

    ranked, led = answerer(seeded, embedder, lead_short_answer_weight=0), answerer(seeded, embedder)
    ranked.analyzer = led.analyzer = shared_analyzer()
    questions = [json.loads(line)["question"] for line in SEED_QUESTIONS.read_text(encoding="utf-8").splitlines()]
    moved = 0
    for question in questions:
        a, b = led.ask(question, top_k=5), ranked.ask(question, top_k=5)
        assert a.status == b.status, question  # the lead never decides whether to answer
        if a.status != "answered":
            continue
        best_two = [r.hit.sentence.text for r in ranked.rank(question)[:2]]
        assert a.citations[0].quote in best_two, question
        if a.citations[0].quote != b.citations[0].quote:
            assert asks_for_a_name(question), question
            moved += 1
        for c in a.citations:
            assert seeded.document(c.doc_id, c.doc_version).text[c.start:c.end] == c.quote
    assert moved >= 1  # it does move some: the seed set has answers found one sentence down
