"""The question batcher (index/embed_batcher.py): callers that overlap share one encode and
each gets its own row, equal to a lone encode up to padding noise; a lone caller is encoded
at once; a failed encode reaches every caller in it; close drains the queue. Overlap is made
certain with a gate on the first encode, never with sleeps; speed lives in ``citeqa bench``."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

import numpy as np
import pytest

from citeqa.index.embed_batcher import EmbedBatcher
from citeqa.index.scope import DEFAULT_SCOPE
from citeqa.index.types import Embedder
from tests.support.vectors import min_cosine

QUESTIONS = [
    "Which NFL team represented the AFC at Super Bowl 50?",
    "Where did Super Bowl 50 take place?",
    "Who won?",
    "What color was used to emphasize the 50th anniversary of the Super Bowl, and why was that color chosen?",
    "What is the name of the stadium where the game was played in 2016?",
    "How many points did the Broncos defence allow?",
    "Who was the most valuable player?",
    "In what city's Levi's Stadium was Super Bowl 50 played, and which teams met there?",
]


class Gated:
    """An embedder whose first encode waits for ``release`` (so that other callers queue up
    behind it), recording every batch it is asked to encode."""

    def __init__(self, inner: Embedder, fail: bool = False):
        self.inner = inner
        self.name = inner.name
        self.dimension = inner.dimension
        self.fail = fail
        self.release = threading.Event()
        self.entered = threading.Event()
        self.batches: list[list[str]] = []
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            first = not self.batches
            self.batches.append(list(texts))
        if first:
            self.entered.set()
            assert self.release.wait(30), "the test never released the first encode"
        if self.fail:
            raise RuntimeError("model on fire")
        return self.inner.encode(texts)


def _queued(batcher: EmbedBatcher, n: int) -> bool:
    with batcher._cond:
        return len(batcher._queue) >= n


def _wait_queued(batcher: EmbedBatcher, n: int) -> None:
    """Until ``n`` callers are queued behind the gated encode (a condition, not a duration)."""
    event = threading.Event()
    for _ in range(3000):
        if _queued(batcher, n):
            return
        event.wait(0.01)
    raise AssertionError(f"{n} callers never queued")


def _queued_behind_one(embedder, max_batch: int):
    """The first question held inside the model while the others queue behind it; then
    released: the wrapped embedder's batches, and each caller's rows in question order."""
    gated = Gated(embedder)
    with EmbedBatcher(gated, max_wait_s=0.0, max_batch=max_batch) as batcher, \
            ThreadPoolExecutor(len(QUESTIONS)) as pool:
        first = pool.submit(batcher.encode, [QUESTIONS[0]])
        assert gated.entered.wait(30)
        rest = [pool.submit(batcher.encode, [q]) for q in QUESTIONS[1:]]
        _wait_queued(batcher, len(rest))
        gated.release.set()
        rows = [first.result(30)] + [f.result(30) for f in rest]
    return gated, rows


def test_overlapping_callers_share_one_encode_and_each_gets_its_own_row(embedder):
    gated, rows = _queued_behind_one(embedder, max_batch=32)

    assert gated.batches[0] == [QUESTIONS[0]]
    assert sorted(gated.batches[1]) == sorted(QUESTIONS[1:])  # the rest in one encode
    assert len(gated.batches) == 2
    lone = np.stack([embedder.encode([q])[0] for q in QUESTIONS])
    for i, row in enumerate(rows):
        assert row.shape == (1, embedder.dimension) and row.dtype == np.float32
        assert float(row[0] @ lone[i]) >= min_cosine(embedder), QUESTIONS[i]
        # and not a neighbour's row: closer to its own question than to any other
        assert int(np.argmax(lone @ row[0])) == i


def test_batched_rows_equal_lone_encodes_within_the_measured_tolerance(embedder):
    """Texts of very different lengths in one batch: padding may move floats, not meaning."""
    lone = np.stack([embedder.encode([q])[0] for q in QUESTIONS])
    batched = embedder.encode(QUESTIONS)
    cosines = np.sum(lone * batched, axis=1)
    assert cosines.min() >= min_cosine(embedder)


def test_a_lone_caller_is_encoded_at_once_without_waiting_for_company(embedder):
    gated = Gated(embedder)
    gated.release.set()
    # A wait far longer than the test may take: were a lone caller held for company, it would show.
    with EmbedBatcher(gated, max_wait_s=600.0, max_batch=32) as batcher:
        done = threading.Event()
        result: list[np.ndarray] = []
        worker = threading.Thread(target=lambda: (result.append(batcher.encode([QUESTIONS[1]])), done.set()))
        worker.start()
        assert done.wait(60), "a lone question was held back for company"
        again = batcher.encode([QUESTIONS[2]])  # one after another, still no company: no wait either
    assert gated.batches == [[QUESTIONS[1]], [QUESTIONS[2]]]
    assert float(result[0][0] @ embedder.encode([QUESTIONS[1]])[0]) >= min_cosine(embedder)
    assert again.shape == (1, embedder.dimension)


def test_a_batch_is_never_larger_than_max_batch(embedder):
    gated, rows = _queued_behind_one(embedder, max_batch=3)
    assert max(len(b) for b in gated.batches) == 3
    assert sorted(q for b in gated.batches for q in b) == sorted(QUESTIONS)
    lone = np.stack([embedder.encode([q])[0] for q in QUESTIONS])
    assert all(float(row[0] @ lone[i]) >= min_cosine(embedder) for i, row in enumerate(rows))


def test_several_texts_are_the_callers_own_batch_and_go_straight_through(embedder):
    gated = Gated(embedder)
    gated.release.set()
    with EmbedBatcher(gated) as batcher:
        vectors = batcher.encode(QUESTIONS[:3])
        assert batcher._thread is None  # no drainer was needed
        assert batcher.encode([]).shape == (0, embedder.dimension)
    assert gated.batches[0] == QUESTIONS[:3]
    assert np.array_equal(vectors, embedder.encode(QUESTIONS[:3]))


def test_a_failed_encode_reaches_every_caller_in_it_and_the_batcher_goes_on(embedder):
    gated = Gated(embedder, fail=True)
    with EmbedBatcher(gated, max_wait_s=0.0) as batcher, ThreadPoolExecutor(4) as pool:
        first = pool.submit(batcher.encode, [QUESTIONS[0]])
        assert gated.entered.wait(30)
        rest = [pool.submit(batcher.encode, [q]) for q in QUESTIONS[1:4]]
        _wait_queued(batcher, 3)
        gated.release.set()
        for future in [first, *rest]:
            with pytest.raises(RuntimeError, match="model on fire"):
                future.result(30)
        gated.fail = False
        assert float(batcher.encode([QUESTIONS[5]])[0] @ embedder.encode([QUESTIONS[5]])[0]) >= min_cosine(embedder)


def test_close_encodes_what_is_queued_then_later_callers_run_unbatched(embedder):
    gated = Gated(embedder)
    batcher = EmbedBatcher(gated, max_wait_s=0.0)
    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(batcher.encode, [QUESTIONS[0]])
        assert gated.entered.wait(30)
        rest = [pool.submit(batcher.encode, [q]) for q in QUESTIONS[1:4]]
        _wait_queued(batcher, 3)
        closing = pool.submit(batcher.close)
        gated.release.set()
        closing.result(30)
        assert all(f.result(30).shape == (1, embedder.dimension) for f in [first, *rest])
    assert batcher._thread is not None and not batcher._thread.is_alive()
    after = batcher.encode([QUESTIONS[6]])  # no drainer any more: encoded on the caller's thread
    assert gated.batches[-1] == [QUESTIONS[6]]
    assert float(after[0] @ embedder.encode([QUESTIONS[6]])[0]) >= min_cosine(embedder)


class RecordingParser:
    """The real question parser, recording each call's texts; ``fail`` makes it raise."""

    def __init__(self, analyzer, fail: bool = False):
        self.analyzer = analyzer
        self.fail = fail
        self.calls: list[list[str]] = []

    def __call__(self, texts: Sequence[str]) -> list:
        self.calls.append(list(texts))
        if self.fail:
            raise RuntimeError("parser on fire")
        return self.analyzer.question_docs(texts)


def _tags(doc) -> list[tuple[str, str, str]]:
    return [(t.text, t.pos_, t.tag_) for t in doc]


def test_questions_queued_together_are_parsed_together_each_as_it_is_parsed_alone(embedder, analyzer):
    """Asks queued behind a held encode are parsed in one call with their batch; a search
    (a plain encode) in the same batch is not parsed; each caller gets its own question's
    parse, tagged as the question alone is."""
    gated, parse = Gated(embedder), RecordingParser(analyzer)
    with EmbedBatcher(gated, max_wait_s=0.0, parse=parse) as batcher, ThreadPoolExecutor(len(QUESTIONS)) as pool:
        first = pool.submit(batcher.encode_and_parse, QUESTIONS[0])
        assert gated.entered.wait(30)
        asks = [pool.submit(batcher.encode_and_parse, q) for q in QUESTIONS[1:5]]
        searches = [pool.submit(batcher.encode, [q]) for q in QUESTIONS[5:7]]
        _wait_queued(batcher, 6)
        gated.release.set()
        results = [f.result(30) for f in [first, *asks]]
        assert all(f.result(30).shape == (1, embedder.dimension) for f in searches)
    assert parse.calls[0] == [QUESTIONS[0]]
    assert sorted(parse.calls[1]) == sorted(QUESTIONS[1:5])  # the batch's asks, and no search
    for question, (vector, doc) in zip(QUESTIONS[:5], results, strict=True):
        assert doc.text == question
        assert _tags(doc) == _tags(analyzer.question_doc(question))
        assert float(vector @ embedder.encode([question])[0]) >= min_cosine(embedder)


def test_a_failed_parse_reaches_only_the_callers_that_asked_for_one(embedder, analyzer):
    gated, parse = Gated(embedder), RecordingParser(analyzer, fail=True)
    with EmbedBatcher(gated, max_wait_s=0.0, parse=parse) as batcher, ThreadPoolExecutor(4) as pool:
        first = pool.submit(batcher.encode, [QUESTIONS[0]])
        assert gated.entered.wait(30)
        ask = pool.submit(batcher.encode_and_parse, QUESTIONS[1])
        search = pool.submit(batcher.encode, [QUESTIONS[2]])
        _wait_queued(batcher, 2)
        gated.release.set()
        with pytest.raises(RuntimeError, match="parser on fire"):
            ask.result(30)
        assert first.result(30).shape == search.result(30).shape == (1, embedder.dimension)
        parse.fail = False
        vector, doc = batcher.encode_and_parse(QUESTIONS[3])
    assert _tags(doc) == _tags(analyzer.question_doc(QUESTIONS[3]))


def test_without_a_parser_or_batching_a_question_still_gets_its_vector_and_parse(embedder, analyzer):
    with EmbedBatcher(embedder) as plain:
        vector, doc = plain.encode_and_parse(QUESTIONS[0])
        assert doc is None and vector.shape == (embedder.dimension,)
    with EmbedBatcher(embedder, max_batch=1, parse=analyzer.question_docs) as unbatched:
        vector, doc = unbatched.encode_and_parse(QUESTIONS[1])
        assert unbatched._thread is None
    assert _tags(doc) == _tags(analyzer.question_doc(QUESTIONS[1]))
    np.testing.assert_array_equal(vector, embedder.encode([QUESTIONS[1]])[0])


def test_bad_bounds_are_refused(embedder):
    with pytest.raises(ValueError):
        EmbedBatcher(embedder, max_batch=0)
    with pytest.raises(ValueError):
        EmbedBatcher(embedder, max_wait_s=-1)


# -- the settings that shape it (api/settings.py -> api/services.py) --------------------------


def test_settings_reach_the_batcher(monkeypatch, embedder):
    from citeqa.api.services import query_embedder
    from citeqa.api.settings import Settings

    monkeypatch.setenv("CITEQA_QUERY_BATCH_MAX", "7")
    monkeypatch.setenv("CITEQA_QUERY_BATCH_WAIT_MS", "3.5")
    batcher = query_embedder(Settings(), embedder)
    assert (batcher.max_batch, batcher.max_wait_s) == (7, 0.0035)
    assert batcher.inner is embedder and batcher.dimension == embedder.dimension
    defaults = Settings()
    monkeypatch.delenv("CITEQA_QUERY_BATCH_MAX")
    assert Settings().query_batch_max >= 2 and defaults.query_batch_wait_ms <= 5  # batching on by default, bounded
    with pytest.raises(ValueError):
        Settings(query_batch_max=0)
    with pytest.raises(ValueError):
        Settings(query_batch_wait_ms=-1)


def test_services_embed_questions_through_the_batcher_and_ingest_without_it(tmp_path, embedder):
    import torch

    from citeqa.api.services import Services
    from citeqa.api.settings import Settings

    threads = torch.get_num_threads()
    settings = Settings(data_dir=tmp_path / "data", seeds_dir=None, query_batch_max=5, torch_threads=1)
    services = Services.open(settings, embedder)
    try:
        assert isinstance(services.questions, EmbedBatcher) and services.questions.max_batch == 5
        assert services.retriever.embedder is services.questions
        assert services.answerer.embedder is services.questions
        assert services.answerer_for(DEFAULT_SCOPE).retriever.embedder is services.questions  # a request's
        assert services.ingestor.embedder is embedder  # ingest keeps its own batches
        assert torch.get_num_threads() == 1
    finally:
        services.close()
        torch.set_num_threads(threads)
    assert services.questions._thread is None or not services.questions._thread.is_alive()


class CountingParses:
    """The real analyzer, counting questions parsed alone and in batches."""

    def __init__(self, inner):
        self.inner = inner
        self.name = inner.name
        self.alone = 0
        self.batched: list[str] = []

    def mentions(self, texts):
        return self.inner.mentions(texts)

    def question_doc(self, text):
        self.alone += 1
        return self.inner.question_doc(text)

    def question_docs(self, texts):
        self.batched += texts
        return self.inner.question_docs(texts)


def test_an_answer_reads_its_question_parse_from_the_batch(tmp_path, embedder, analyzer):
    from citeqa.api.services import Services
    from citeqa.api.settings import Settings

    counting = CountingParses(analyzer)
    services = Services.open(Settings(data_dir=tmp_path / "data"), embedder, analyzer=counting)
    try:
        services.seed()
        question = "Who is the Russian ambassador to North Korea?"
        answer = services.answerer.ask(question, 3)
    finally:
        services.close()
    assert services.questions is not None and services.questions.parse == counting.question_docs
    assert answer.status != "unsupported" and answer.short_answer is not None  # the parse was read
    assert counting.batched == [question] and counting.alone == 0
