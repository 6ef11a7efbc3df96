"""The composition root (api/services.py): the flat Settings become each part's own settings,
the parts are opened once, and the seeds are indexed on a data directory's first start only."""

from __future__ import annotations

from dataclasses import fields

import pytest

from citeqa.api.services import Services, answer_settings, open_store, retrieval_settings
from citeqa.api.settings import Settings
from citeqa.index.retriever import RetrievalSettings
from citeqa.qa.answer import AnswerSettings
from tests.support.corpus import SEEDS_DIR

CHANGED = {"fusion": "rrf", "candidates": 7, "rrf_k": 11, "dense_weight": 0.1, "lexical_weight": 0.3,
           "document_weight": 0.6, "documents": 2, "min_similarity": 0.3, "min_support": 0.9,
           "attribute_uncited": False, "min_probability": 0.4, "rerank_candidates": 20,
           "require_asked_kind": False, "lead_short_answer_weight": 0.7}

# Not settings: what the store is decides them.
FROM_THE_STORE = {"parallel_searches"}


@pytest.mark.parametrize("build, domain", [(retrieval_settings, RetrievalSettings), (answer_settings, AnswerSettings)])
def test_every_domain_setting_comes_from_the_setting_of_its_name(tmp_path, build, domain):
    settings = Settings(data_dir=tmp_path, **CHANGED)
    built = build(settings)
    assert isinstance(built, domain)
    for field in fields(domain):
        if field.name in FROM_THE_STORE:
            continue
        assert getattr(built, field.name) == getattr(settings, field.name) == CHANGED[field.name], field.name


def test_the_defaults_agree_with_the_domain_s_own(tmp_path):
    settings = Settings(data_dir=tmp_path)
    assert retrieval_settings(settings) == RetrievalSettings()
    assert answer_settings(settings) == AnswerSettings()


def test_a_store_searched_in_a_database_server_gets_parallel_searches(tmp_path):
    class ServerStore:
        searches_run_elsewhere = True

    settings = Settings(data_dir=tmp_path)
    assert retrieval_settings(settings, ServerStore()).parallel_searches
    assert not retrieval_settings(settings, object()).parallel_searches


def test_services_are_built_from_the_settings_and_seed_once(tmp_path, embedder):
    settings = Settings(data_dir=tmp_path / "data", seeds_dir=SEEDS_DIR, fusion="rrf", min_support=0.75)
    services = Services.open(settings, embedder)
    try:
        assert services.retriever.settings.fusion == "rrf" and services.answerer.settings.min_support == 0.75
        assert services.seed() == 1 and services.seed() == 0
        seeded = services.store.sentence_count()
        assert seeded > 0
    finally:
        services.close()
    reopened = Services.open(settings, embedder)  # a restart: the seeds are not indexed again
    try:
        assert reopened.seed() == 0 and reopened.store.sentence_count() == seeded
    finally:
        reopened.close()


def test_no_seeds_when_seeding_is_off(tmp_path, embedder):
    services = Services.open(Settings(data_dir=tmp_path / "data", seeds_dir=None), embedder)
    try:
        assert services.seed() == 0 and services.store.sentence_count() == 0
    finally:
        services.close()


def test_an_unknown_default_generator_fails_at_start(tmp_path, embedder):
    with pytest.raises(LookupError, match="gpt-17"):
        Services.open(Settings(data_dir=tmp_path / "data", generator="gpt-17"), embedder)


def test_a_store_url_that_is_not_postgresql_is_refused(tmp_path):
    with pytest.raises(ValueError, match="CITEQA_STORE") as refused:
        open_store(Settings(data_dir=tmp_path, store="mysql://root:secret@db/x"), 384)
    assert "secret" not in str(refused.value)
