"""Rerankers are entry-point plugins: the built-ins and a third-party one load by name with
their settings, and a wrong name or setting fails at once, saying what would be valid."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from citeqa.api.settings import Settings
from citeqa.index.types import Hit, Sentence
from citeqa.qa.ranking import registry
from citeqa.qa.ranking.cross_encoder import CrossEncoderReranker, CrossEncoderUnavailable
from citeqa.qa.ranking.registry import InvalidRerankerSettings, UnknownReranker, load_reranker
from citeqa.qa.ranking.types import Candidate
from tests.support.cross_encoder import build_tiny_cross_encoder, question, sentence


def candidates(*texts: str) -> list[Candidate]:
    return [Candidate(Hit(Sentence("doc", "v1", i, 0, len(t), t), score=0.0)) for i, t in enumerate(texts)]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return build_tiny_cross_encoder(tmp_path_factory.mktemp("tiny-cross-encoder"))


@pytest.fixture
def plugin(tmp_path, monkeypatch) -> str:
    """A third-party distribution on sys.path, as ``pip install`` would leave it: a module
    and a dist-info whose entry_points.txt registers a reranker named ``shortest``."""
    (tmp_path / "citeqa_shortest_reranker.py").write_text(textwrap.dedent('''
        from citeqa.qa.ranking.types import Ranked

        class ShortestFirst:
            """Prefers short sentences: a stand-in for any third-party model."""
            name = "shortest"

            def __init__(self, *, scale: float = 100.0):
                self.scale = scale

            def rerank(self, question, candidates):
                scored = [(c.hit, 1 / (1 + len(c.hit.sentence.text) / self.scale)) for c in candidates]
                return [Ranked(h, p) for h, p in sorted(scored, key=lambda s: -s[1])]
        '''))
    dist = tmp_path / "citeqa_shortest_reranker-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: citeqa-shortest-reranker\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[citeqa.rerankers]\nshortest = citeqa_shortest_reranker:ShortestFirst\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return "shortest"


def test_the_built_ins_register_through_entry_points(tiny):
    assert {"learned", "cross-encoder"} <= set(registry.available())
    # The default resolves through the same door (building it is tests of the learned ranker).
    from citeqa.qa.ranking.learned import LearnedRanker
    from citeqa.qa.registry import plugin_factory

    assert plugin_factory(registry.GROUP, registry.DEFAULT, "reranker") is LearnedRanker
    reranker = load_reranker("cross-encoder", {"path": tiny, "batch_size": 3, "max_length": 32})
    assert isinstance(reranker, CrossEncoderReranker) and reranker.name == "cross-encoder"
    ranked = reranker.rerank(question("apple"), candidates(sentence("apple", "mango"), sentence("moon", "star")))
    assert len(ranked) == 2 and ranked[0].probability >= ranked[1].probability


def test_settings_choose_and_configure_the_reranker(tiny, monkeypatch):
    defaults = Settings(_env_file=None)
    assert defaults.reranker == "learned"
    assert not {"path", "batch_size", "max_length"} & set(defaults.reranker_config("learned"))
    # Only the built-ins own a field prefix: a plugin named "max" does not get the max_* limits.
    assert defaults.reranker_config("max") == {}

    monkeypatch.setenv("CITEQA_RERANKER", "cross-encoder")
    monkeypatch.setenv("CITEQA_CROSS_ENCODER_PATH", str(tiny))
    monkeypatch.setenv("CITEQA_CROSS_ENCODER_BATCH_SIZE", "4")
    settings = Settings(_env_file=None)
    assert settings.reranker_config(settings.reranker) == {"path": tiny, "batch_size": 4}
    reranker = load_reranker(settings.reranker, settings.reranker_config(settings.reranker))
    assert isinstance(reranker, CrossEncoderReranker) and reranker.batch_size == 4 and reranker.path == tiny

    monkeypatch.setenv("CITEQA_RERANKER_SETTINGS", '{"cross-encoder": {"title": false}}')
    assert Settings(_env_file=None).reranker_config("cross-encoder")["title"] is False


def test_unknown_names_settings_and_missing_models_fail_fast(tmp_path):
    with pytest.raises(UnknownReranker, match="unknown reranker 'colbert'; installed: .*cross-encoder.*learned"):
        load_reranker("colbert")
    with pytest.raises(InvalidRerankerSettings,
                       match=r"reranker 'cross-encoder' has no setting 'model'; its settings: path, batch_size, "):
        load_reranker("cross-encoder", {"model": "/models/x"})
    with pytest.raises(CrossEncoderUnavailable, match="set CITEQA_CROSS_ENCODER_PATH"):
        load_reranker("cross-encoder")
    with pytest.raises(CrossEncoderUnavailable, match="not a directory"):
        load_reranker("cross-encoder", {"path": tmp_path / "missing"})
    for problem in (UnknownReranker, InvalidRerankerSettings, CrossEncoderUnavailable):
        assert issubclass(problem, registry.RERANKER_PROBLEMS)


def test_a_third_party_reranker_is_found_by_its_entry_point(plugin):
    assert plugin in registry.available()
    reranker = load_reranker(plugin, {"scale": 10.0})
    long, short = "the apple and the banana and the cherry.", "the moon."
    ranked = reranker.rerank(question("moon"), candidates(long, short))
    assert [r.hit.sentence.text for r in ranked] == [short, long]
    assert all(0 <= r.probability <= 1 for r in ranked)
    with pytest.raises(InvalidRerankerSettings, match="no setting 'temperature'; its settings: scale"):
        load_reranker(plugin, {"temperature": 0.3})
    assert Settings(_env_file=None, reranker_settings={plugin: {"scale": 5}}).reranker_config(plugin) == {"scale": 5}
    with pytest.raises(UnknownReranker, match="installed: .*shortest"):
        load_reranker("longest")
