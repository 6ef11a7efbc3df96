"""A tiny corpus and its questions in the project's eval format, for bench and eval tests."""

from __future__ import annotations

import json
from pathlib import Path

DOCS = [
    {"doc_id": "tambora", "title": "Mount Tambora",
     "text": "Mount Tambora is a stratovolcano on Sumbawa, Indonesia. Its eruption in April 1815 killed at least "
             "71,000 people. The ash cloud caused the Year Without a Summer in 1816."},
    {"doc_id": "forth", "title": "Forth Bridge",
     "text": "The Forth Bridge is a cantilever railway bridge in Scotland. It opened on 4 March 1890. "
             "The bridge spans 2,467 metres across the Firth of Forth."},
    {"doc_id": "bell-rock", "title": "Bell Rock Lighthouse",
     "text": "The Bell Rock Lighthouse stands off the coast of Angus. Robert Stevenson built it between 1807 "
             "and 1810. Its light can be seen from 35 nautical miles away."},
    {"doc_id": "kelp", "title": "Kelp forests",
     "text": "Kelp forests grow in cold, nutrient-rich water. Giant kelp can grow half a metre in a day. "
             "Sea otters protect the forests by eating sea urchins."},
    {"doc_id": "ada", "title": "Ada Lovelace",
     "text": "Ada Lovelace wrote the first published algorithm for a machine. She worked with Charles Babbage "
             "on the Analytical Engine. Her notes appeared in 1843."},
]
QUESTIONS = [
    ("How many people did the Tambora eruption kill?", "tambora", "at least 71,000"),
    ("When did the Forth Bridge open?", "forth", "4 March 1890"),
    ("How far away can the Bell Rock light be seen?", "bell-rock", "35 nautical miles"),
    ("What do sea otters eat?", "kelp", "sea urchins"),
    ("When did Ada Lovelace's notes appear?", "ada", "1843"),
]


def write_eval_files(tmp_path: Path) -> Path:
    """tiny.corpus.jsonl and its questions, tiny.jsonl, in the eval format (../shared/eval); returns the corpus."""
    corpus = tmp_path / "tiny.corpus.jsonl"
    corpus.write_text("".join(json.dumps(d) + "\n" for d in DOCS), encoding="utf-8")
    by_id = {d["doc_id"]: d for d in DOCS}
    rows = []
    for n, (question, doc_id, answer) in enumerate(QUESTIONS):
        doc = by_id[doc_id]
        start = doc["text"].index(answer)
        rows.append({"id": f"q{n}", "question": question, "answers": [answer], "documents": [doc],
                     "evidence": [{"doc_id": doc_id, "start": start, "end": start + len(answer)}]})
    (tmp_path / "tiny.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return corpus
