"""Candidates analysed before they are ranked, whether or not the backfill has reached them.

With ``CITEQA_MENTION_ANALYSIS=background`` a document is searchable before its sentences'
entities, noun chunks and roles are stored (index/mention_backfill.py analyses them soon
after). The answer path reads those mentions (the ranker's answer-type features, the "how
many / when" check, the short answer), so an answer would otherwise depend on how far the
backfill had got when the question came. Here the candidates of a pool that were stored
without analysis are analysed on the spot, in one batch, by the service's analyzer: the
same pipeline, the same components, so the same mentions the backfill will store.

They are not written back: the read path never waits for the store's writer (an ingest
holds it), and the backfill stores them shortly. A small cache keeps the latest analyses,
so questions asked while the backfill catches up do not analyse the same sentence again.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import replace
from typing import Sequence

from citeqa.index.language import Analyzer
from citeqa.index.retriever import CandidatePool
from citeqa.index.types import Mention, Sentence

CACHED = 4096  # sentence texts (a pool holds ~100 candidates); ~1-2 MB of mentions


class _Recent:
    """The latest analyses by (pipeline, text), bounded; shared by every request thread."""

    def __init__(self, size: int):
        self.size = size
        self._found: OrderedDict[tuple[str, str], tuple[Mention, ...]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str]) -> tuple[Mention, ...] | None:
        with self._lock:
            found = self._found.get(key)
            if found is not None:
                self._found.move_to_end(key)
            return found

    def put(self, key: tuple[str, str], mentions: tuple[Mention, ...]) -> None:
        with self._lock:
            self._found[key] = mentions
            self._found.move_to_end(key)
            while len(self._found) > self.size:
                self._found.popitem(last=False)


_recent = _Recent(CACHED)


def analysed(sentences: Sequence[Sentence], analyzer: Analyzer) -> dict[str, tuple[Mention, ...]]:
    """The mentions of each distinct text of the ``sentences`` not analysed yet, by text."""
    texts = list(dict.fromkeys(s.text for s in sentences if not s.analysed))
    found: dict[str, tuple[Mention, ...]] = {}
    todo = []
    for text in texts:
        cached = _recent.get((analyzer.name, text))
        if cached is None:
            todo.append(text)
        else:
            found[text] = cached
    for text, mentions in zip(todo, analyzer.mentions(todo) if todo else [], strict=True):
        found[text] = tuple(mentions)
        _recent.put((analyzer.name, text), found[text])
    return found


def with_mentions(pool: CandidatePool, analyzer: Analyzer | None) -> CandidatePool:
    """``pool`` with every candidate analysed: those stored without mentions get them now.
    Unchanged without an analyzer (tools and tests that answer from rules alone)."""
    if analyzer is None or all(p.hit.sentence.analysed for p in pool.items):
        return pool
    found = analysed([p.hit.sentence for p in pool.items], analyzer)
    items = [
        p if p.hit.sentence.analysed else replace(p, hit=replace(p.hit, sentence=replace(
            p.hit.sentence, mentions=found[p.hit.sentence.text], analysed=True)))
        for p in pool.items
    ]
    return replace(pool, items=items)
