"""The learned ranker: its artifact, its ranking with the real model, its gate, and a
deterministic refit."""

from __future__ import annotations

import json

import numpy as np
import pytest

from citeqa.evaluation.fit_ranker import Pooled, best_of, choose_threshold, fit_linear, fit_listwise, platt
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
    assert qa.ask(UNSUPPORTED_QUESTION, top_k=5).status == "unsupported"


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


@pytest.mark.parametrize("fit", [fit_linear, fit_listwise], ids=["pointwise", "listwise"])
def test_refitting_writes_the_same_bytes_and_finds_the_planted_signal(fit):
    pools = _tiny_pools(2)
    features = list(range(len(FEATURES)))
    texts = [fit(pools, features).to_json({"report": {}}) for _ in range(2)]
    assert texts[0] == texts[1]
    model = LinearModel.from_json(texts[0])
    assert model.weights[FEATURES.index("cosine")] > 0 and model.weights[FEATURES.index("coverage")] > 0
    answerable = [p for p in pools if not p.negative]
    right = sum(int(p.labels[int(np.argmax(model.logits(p.rows)))]) for p in answerable)
    assert right / len(answerable) > 0.8  # the planted signal is found


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


def test_pool_gate_inputs_say_how_far_a_candidate_stands_out():
    features = ("cosine",)
    model = LinearModel(features, np.zeros(1), np.ones(1), np.ones(1), 0.0, np.zeros(3), 0.0, 0.5,
                        ("logit", "margin", "share"))
    rows = np.array([[2.0], [0.5], [0.0]])
    logit, margin, share = model.gate_rows(rows).T
    assert list(logit) == [2.0, 0.5, 0.0]
    assert list(margin) == [1.5, -1.5, -2.0]  # the best against the runner-up, the others against the best
    assert share.sum() == pytest.approx(1.0) and share[0] > share[1] > share[2]
    assert list(model.gate_rows(np.array([[1.0]]))[0][:2]) == [1.0, 0.0]  # alone: no margin


def test_the_cited_candidate_skips_headings_as_the_extractive_answer_does():
    features = ("cosine",)
    model = LinearModel(features, np.zeros(1), np.ones(1), np.ones(1), 0.0, np.zeros(1), 0.0, 0.5, ("logit",))
    pool = Pooled("q", np.array([[3.0], [2.0], [1.0]]), np.array([0, 1, 0], dtype=np.int8), False,
                  np.array([1.0, 0.0, 0.0]))
    inputs, right = best_of(model, [pool], [0])
    assert list(inputs[0]) == [2.0] and list(right) == [1]


def test_probabilities_never_rise_down_the_ranking():
    ranker = LearnedRanker()
    rng = np.random.default_rng(3)
    candidates = []
    for i in range(30):
        text = f"Sentence {i}."
        features = {f: float(rng.uniform(0, 1)) for f in FEATURES}
        candidates.append(Candidate(Hit(Sentence("d", "v", i, 0, len(text), text), 0.0, 0.5), features=features))
    probabilities = [r.probability for r in ranker.rerank("q", candidates)]
    assert probabilities == sorted(probabilities, reverse=True)
    logits = ranker.model.logits(ranker.model.matrix(candidates))
    assert probabilities[0] == pytest.approx(float(ranker.model.probabilities(ranker.model.matrix(candidates))[
        int(np.argmax(logits))]))


def test_a_calibration_reading_an_unknown_input_fails_clearly(tmp_path):
    body = json.loads(ARTIFACT.read_text(encoding="utf-8"))
    body["calibration"]["inputs"] = ["logit", "horoscope"] + body["calibration"]["inputs"][2:]
    path = tmp_path / "ranker.json"
    path.write_text(json.dumps(body))
    with pytest.raises(ArtifactError, match="horoscope"):
        LearnedRanker(path=path)
