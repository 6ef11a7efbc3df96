"""What ``citeqa bench`` ingests and asks: an evaluation corpus and the questions beside it."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path

from citeqa.bench.environment import CHECKOUT
from citeqa.bench.errors import BenchError
from citeqa.index.ingest import DocumentInput, InvalidDocument, read_inputs

# The evaluation data lives beside the checkout (../shared/eval), never in the package.
SHARED_EVAL = CHECKOUT.parent / "shared" / "eval"
DEFAULT_CORPUS = SHARED_EVAL / "squad_dev.corpus.jsonl"
DEFAULT_QUESTIONS = SHARED_EVAL / "squad_dev.jsonl"


@dataclass(frozen=True)
class Questions:
    path: Path
    texts: list[str]

    def sample(self, n: int) -> list[str]:
        """The first ``n`` questions (repeated in order when there are fewer)."""
        return list(itertools.islice(itertools.cycle(self.texts), n))

    def warmup(self, n: int) -> list[str]:
        """``n`` questions to warm up with: the sample backwards, so that the timed ones are not all cached."""
        return self.sample(n)[::-1]


def load_inputs(corpus: Path, questions: Path | None) -> tuple[list[DocumentInput], Questions]:
    """The corpus's documents and the questions (default: ``NAME.jsonl`` beside ``NAME.corpus.jsonl``)."""
    if not corpus.exists():
        raise BenchError(f"corpus {corpus} not found "
                         "(pass --corpus; the default is ../shared/eval/squad_dev.corpus.jsonl)")
    if questions is None:
        guess = corpus.with_name(corpus.name.replace(".corpus.jsonl", ".jsonl"))
        if guess == corpus or not guess.exists():
            raise BenchError(f"no questions file beside {corpus} (looked for {guess.name}); pass --questions")
        questions = guess
    if not questions.exists():
        raise BenchError(f"questions file {questions} not found")
    try:
        items = read_inputs([corpus])
    except (InvalidDocument, UnicodeDecodeError, ValueError) as exc:
        raise BenchError(f"cannot read the corpus: {exc}") from exc
    if not items:
        raise BenchError(f"{corpus} holds no documents")
    texts = []
    with open(questions, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if line.strip():
                try:
                    texts.append(str(json.loads(line)["question"]))
                except (ValueError, KeyError, TypeError) as exc:
                    raise BenchError(f"{questions}:{number}: not a question object ({exc})") from exc
    if not texts:
        raise BenchError(f"{questions} holds no questions")
    return items, Questions(questions, texts)
