"""The learned ranker: its artifact, its ranking with the real model, its gate, and a
deterministic refit."""

from __future__ import annotations

import json

import numpy as np
import pytest

from citeqa.evaluation.fit_ranker import Pooled, choose_threshold, fit_linear, platt
from citeqa.index.types import Hit, Sentence
from citeqa.qa.ranking.features import FEATURES
from citeqa.qa.ranking.learned import ARTIFACT, ArtifactError, LearnedRanker, LinearModel, load_model
from citeqa.qa.ranking.types import Candidate
from tests.support.answering import answerer
from tests.support.corpus import TROOPS_QUESTION, UNSUPPORTED_QUESTION

TROOPS_FACT = "11,000 to 12,000"


def test_the_artifact_loads_and_names_known_features():
    model = load_model()
    assert set(model.features) <= set(FEATURES)
    assert model.weights.shape == (len(model.features),)
    assert np.all(model.scale > 0)
    assert 0.0 < model.threshold < 1.0
    body = json.loads(ARTIFACT.read_text(encoding="utf-8"))
    assert body["report"]["held_out"]["questions"]  # it says what it was measured on


def test_the_answering_sentence_outranks_an_unrelated_one_with_the_real_model(seeded, embedder):
    ranked = answerer(seeded, embedder).rank(TROOPS_QUESTION)
    assert all(0.0 <= r.probability <= 1.0 for r in ranked)
    assert [r.probability for r in ranked] == sorted((r.probability for r in ranked), reverse=True)
    position = next(i for i, r in enumerate(ranked) if TROOPS_FACT in r.hit.sentence.text)
    assert position < 3, [r.hit.sentence.text for r in ranked[:3]]
    assert ranked[position].probability > ranked[-1].probability


def test_the_gate_is_surer_of_an_answered_question_than_an_unrelated_one(seeded, embedder):
    qa = answerer(seeded, embedder)
    assert qa.rank(TROOPS_QUESTION)[0].probability > qa.rank(UNSUPPORTED_QUESTION)[0].probability
    assert qa.rank(UNSUPPORTED_QUESTION)[0].probability < qa.min_probability


def test_search_returns_probabilities_as_scores(seeded, embedder):
    hits = answerer(seeded, embedder).search(TROOPS_QUESTION, 5)
    assert len(hits) == 5
    assert all(0.0 <= h.score <= 1.0 for h in hits)
    assert any(TROOPS_FACT in h.sentence.text for h in hits)


def test_rerank_orders_by_probability_and_keeps_every_candidate():
    ranker = LearnedRanker()
    def candidate(i: int, cosine: float, coverage: float) -> Candidate:
        text = f"Sentence {i}."
        features = {f: 0.0 for f in FEATURES} | {"cosine": cosine, "coverage": coverage,
                                                  "coverage_context": coverage, "dense_rank": 1 / (i + 1)}
        return Candidate(Hit(Sentence("d", "v", i, 0, len(text), text), 0.0, cosine), features=features)
    weak, strong = candidate(0, 0.05, 0.0), candidate(1, 0.8, 1.0)
    ranked = ranker.rerank("q", [weak, strong])
    assert [r.hit for r in ranked] == [strong.hit, weak.hit]
    assert ranked[0].probability > ranked[1].probability
    assert ranker.rerank("q", []) == []


def test_a_threshold_setting_overrides_the_artifacts():
    assert LearnedRanker(threshold=0.9).threshold == 0.9
    assert LearnedRanker().threshold == load_model().threshold


def test_a_wrong_artifact_fails_clearly(tmp_path):
    path = tmp_path / "ranker.json"
    path.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ArtifactError, match="format"):
        LearnedRanker(path=path)
    body = json.loads(ARTIFACT.read_text(encoding="utf-8"))
    body["features"] = ["telepathy"] + body["features"][1:]
    path.write_text(json.dumps(body))
    with pytest.raises(ArtifactError, match="telepathy"):
        LearnedRanker(path=path)


def _tiny_pools(seed: int) -> list[Pooled]:
    """Pools where the gold candidate has the higher cosine and coverage, with noise."""
    rng = np.random.default_rng(seed)
    pools = []
    for q in range(60):
        n = 8
        rows = rng.normal(0.0, 0.3, size=(n, len(FEATURES)))
        labels = np.zeros(n, dtype=np.int8)
        negative = q % 5 == 0
        if not negative:
            gold = int(rng.integers(n))
            labels[gold] = 1
            rows[gold, FEATURES.index("cosine")] += 1.0
            rows[gold, FEATURES.index("coverage")] += 1.0
        pools.append(Pooled(f"q{q}", rows, labels, negative, np.zeros(n)))
    return pools


def test_refitting_the_same_data_writes_the_same_bytes():
    pools = _tiny_pools(0)
    features = list(range(len(FEATURES)))
    texts = [fit_linear(pools, features).to_json({"report": {}}) for _ in range(2)]
    assert texts[0] == texts[1]
    model = LinearModel.from_json(texts[0])
    assert model.weights[FEATURES.index("cosine")] > 0 and model.weights[FEATURES.index("coverage")] > 0


def test_calibration_and_threshold_on_a_tiny_fit():
    pools = _tiny_pools(1)
    features = list(range(len(FEATURES)))
    model = fit_linear(pools, features)
    best = np.array([model.logits(p.rows).max() for p in pools])
    right = np.array([int(p.labels[int(np.argmax(model.logits(p.rows)))]) for p in pools])
    a, b = platt(best, right)
    assert a > 0  # a higher logit means likelier right
    probability = 1 / (1 + np.exp(-(a * best + b)))
    negative = np.array([p.negative for p in pools])
    gate = choose_threshold(probability, right, negative, max_top1_loss=0.05)
    ungated = right[~negative].mean()
    assert ungated - gate["top1_answered"] <= 0.05 + 1e-9
    assert 0.0 <= gate["abstain_f1"] <= 1.0
