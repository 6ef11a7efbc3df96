"""Answers do not depend on whether the mention backfill has caught up: a service that
stored the seed article without analysis (CITEQA_MENTION_ANALYSIS=background, its backfill
held) answers every seed question as one that analysed it at ingest. Real model, real spaCy."""

from __future__ import annotations

import json
from dataclasses import replace
from importlib.resources import files
from pathlib import Path
from typing import Any, Iterator, Sequence

import pytest

from citeqa.index.fresh_mentions import with_mentions
from citeqa.index.retriever import CandidatePool, Pooled
from citeqa.index.types import Hit, Mention, Sentence
from tests.support.corpus import SEEDS_DIR

QUESTIONS = Path(str(files("citeqa.evaluation").joinpath("sets/seed_questions.jsonl")))


def seed_questions() -> list[str]:
    with open(QUESTIONS, encoding="utf-8") as fh:
        return [json.loads(line)["question"] for line in fh if line.strip()]


def answered(services: Any, questions: Sequence[str]) -> list[dict[str, Any]]:
    """What a client sees of each answer and search, and the ranking behind them."""
    out = []
    for q in questions:
        a = services.answerer.ask(q, 5)
        short = a.short_answer
        out.append({
            "question": q, "answer": a.answer, "status": a.status,
            "citations": [(c.sentence_id, c.start, c.end, c.quote) for c in a.citations],
            "short": None if short is None else (short.text, short.doc_id, short.start, short.end),
            "ranking": [(h.sentence.id, round(h.score, 9)) for h in services.answerer.search(q, 10)],
        })
    return out


@pytest.fixture(scope="module")
def services_pair(tmp_path_factory, embedder, analyzer) -> Iterator[tuple[Any, Any]]:
    """An inline-analysed service and a background one whose backfill never runs."""
    from citeqa.api.services import Services
    from citeqa.api.settings import Settings

    opened = []
    try:
        for mode in ("inline", "background"):
            settings = Settings(data_dir=tmp_path_factory.mktemp(mode), seeds_dir=SEEDS_DIR, mention_analysis=mode)
            services = Services.open(settings, embedder=embedder, analyzer=analyzer)
            opened.append(services)
            assert services.backfill is not None and services.backfill.wait(timeout=60)  # the empty store's pass
            services.backfill.stop()  # from here on only the answer path may analyse
            services.seed()
        yield opened[0], opened[1]
    finally:
        for services in opened:
            services.close()


@pytest.mark.slow
def test_answers_without_the_backfill_equal_the_inline_analysed_ones(services_pair, monkeypatch):
    inline, background = services_pair
    stored = background.store.current_sentences(["seed-russia-north-korea"])
    assert stored and not any(s.analysed for s in stored)
    assert all(s.analysed for s in inline.store.current_sentences(["seed-russia-north-korea"]))
    questions = seed_questions()
    expected = answered(inline, questions)
    assert answered(background, questions) == expected
    assert any(e["short"] for e in expected) and any(e["status"] == "unsupported" for e in expected)
    assert not any(s.analysed for s in background.store.current_sentences(["seed-russia-north-korea"]))
    # The check has teeth: without the analysis on the spot, the same store answers otherwise.
    monkeypatch.setattr("citeqa.qa.answer.with_mentions", lambda pool, analyzer: pool)
    assert answered(background, questions) != expected


class CountingAnalyzer:
    def __init__(self, inner: Any):
        self.inner = inner
        self.name = f"counting-{id(self)}"  # its own cache entries
        self.asked: list[str] = []

    def mentions(self, texts: Sequence[str]) -> list[list[Mention]]:
        self.asked += texts
        return self.inner.mentions(texts)

    def question_doc(self, text: str) -> Any:
        return self.inner.question_doc(text)

    def question_docs(self, texts: Sequence[str]) -> list[Any]:
        return self.inner.question_docs(texts)


def pooled(text: str, index: int, analysed: bool, mentions: Sequence[Mention] = ()) -> Pooled:
    sentence = Sentence("doc", "v1", index, 0, len(text), text, mentions=tuple(mentions), analysed=analysed)
    return Pooled(Hit(sentence, 1.0 - index / 10, dense_score=0.5))


def test_only_unanalysed_candidates_are_analysed_once_each(analyzer):
    counting = CountingAnalyzer(analyzer)
    kept = (Mention(0, 3, "ORG"),)
    pool = CandidatePool([pooled("Marie Curie moved to Paris in 1891.", 0, False),
                          pooled("ACME is a company.", 1, True, kept),
                          pooled("Marie Curie moved to Paris in 1891.", 2, False)], top_lexical=1.0)
    fresh = with_mentions(pool, counting)
    assert counting.asked == ["Marie Curie moved to Paris in 1891."]  # each text once; stored ones never
    first, second, third = (p.hit.sentence for p in fresh.items)
    assert first.analysed and third.analysed and first.mentions == third.mentions
    assert ("Paris", "GPE") in {(first.text[m.start:m.end], m.label) for m in first.mentions}
    assert second.mentions == kept
    assert [p.hit.score for p in fresh.items] == [p.hit.score for p in pool.items]
    assert fresh.top_lexical == pool.top_lexical
    # A question moments later finds the analysis cached; an analysed pool is returned as it is.
    with_mentions(pool, counting)
    assert counting.asked == ["Marie Curie moved to Paris in 1891."]
    assert with_mentions(fresh, counting) is fresh
    assert with_mentions(pool, None) is pool


def test_the_analysis_equals_the_ingest_analysis(analyzer):
    text = "Kim Jong Un dispatched approximately 11,000 to 12,000 elite troops."
    fresh = with_mentions(CandidatePool([pooled(text, 0, False)]), analyzer)
    assert list(fresh.items[0].hit.sentence.mentions) == analyzer.mentions([text])[0]
    assert replace(fresh.items[0].hit.sentence, analysed=False) == pooled(text, 0, False).hit.sentence
