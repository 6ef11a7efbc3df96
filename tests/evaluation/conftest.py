"""Fixtures of the evaluation tests: questions over the seed article in the eval format, and
a citeqa in process with nothing indexed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from citeqa.index.ingest import read_inputs
from citeqa.index.sentences import split_sentences
from tests.support.corpus import SEEDS_DIR

SEED = read_inputs([SEEDS_DIR])[0]
CASES = [
    ("How many troops did North Korea send?", "11,000 to 12,000", ["approximately 11,000 to 12,000"]),
    ("Who is Russia's ambassador to Pyongyang?", "Alexander Matsegora", ["Alexander Matsegora"]),
    ("Did North Korea ask Russia for compensation?", "compensation", ["no"]),
    ("How many North Koreans crossed into Russia in 2024?", "13,000 crossings", ["over 13,000"]),
]
OTHER = {"doc_id": "tungsten", "title": "Tungsten",
         "text": "Tungsten has the highest melting point of all metals. It boils at 5,555 degrees Celsius."}


def span_of(phrase: str) -> dict:
    """The gold evidence: the seed sentence that contains ``phrase``."""
    for s in split_sentences(SEED.text):
        if phrase in SEED.text[s.start:s.end]:
            return {"doc_id": SEED.doc_id, "start": s.start, "end": s.end}
    raise AssertionError(phrase)


@pytest.fixture
def questions_file(tmp_path) -> Path:
    """Four questions about the seed article and one whose only document is about tungsten."""
    doc = {"doc_id": SEED.doc_id, "title": SEED.title, "text": SEED.text}
    rows = [
        {"id": f"q{i}", "question": q, "answers": answers, "documents": [doc], "evidence": [span_of(phrase)],
         "meta": {"evidence_semantics": "any"}}
        for i, (q, phrase, answers) in enumerate(CASES)
    ]
    rows.append({"id": "neg", "question": "What is the boiling point of tungsten?",
                 "answers": ["5,555 degrees Celsius"], "documents": [OTHER],
                 "evidence": [{"doc_id": "tungsten", "start": 54, "end": 89}], "meta": {"evidence_semantics": "any"}})
    path = tmp_path / "questions.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def services(tmp_path, embedder):
    from citeqa.api.services import Services
    from citeqa.api.settings import Settings

    s = Services.open(Settings(data_dir=tmp_path / "eval-data", seeds_dir=None), embedder=embedder)
    yield s
    s.close()
