"""Pruned top-k BM25 for the PostgreSQL store: which query terms must be read in full.

PostgresStore scores a row ``sum(idf of the query words it holds) * (k1 + 1) / (1 + k1 *
(1 - b + b * len / avglen))`` (term frequency taken as 1). Reading every row that holds a
common word is what made a lexical search slow at scale, so a search follows MaxScore:

1. the words are ordered rarest first (highest IDF);
2. the *seed* words are a prefix of that order; every row holding a seed word is a
   candidate and is scored exactly, over all the query's words (a test of its own tsvector,
   not a walk of the other words' posting lists);
3. a row holding none of the seed words scores at most the sum of the other words' upper
   bounds, ``idf * (k1 + 1) / (1 + k1 * (1 - b))`` (the length factor at length 0). When
   that sum is below the k-th candidate's score, no such row can enter the top k and the
   candidates' top k is the exact answer;
4. otherwise the next search adds, instead of every row of the words still needed, only the
   rows holding *two* of the other words, one of them needed (:func:`pair_queries`: "nfl &
   (super | bowl | team)", one GIN scan each, which walks the rarer word's list). A row
   holding one of the other words alone scores at most that word's bound, so when the new
   k-th score is above the largest of those bounds the top k is exact. When it is not, the
   words whose bound alone reaches it become seeds, and the search runs again (the k-th
   score can only rise). A question's common words ("come", "differ", "many") are mostly
   held alone, so most of their rows are never read: at 1M sentences, 10,843 rows read for
   one question instead of 59,625.
   Whole documents hold too many words for pairs to cut rows: a document search adds the
   next word as a seed instead, one word per pass, and each pass reads only the rows that
   hold none of the words read before (:func:`unread_rows`), so every row is scored once
   and every pass may raise the k-th score. At 1M sentences (125k documents), document
   BM25 p95 on 100 SQuAD questions: 102-104 ms jumping to every needed word, 60-77 ms
   word by word.

The first prefix holds the rarest words whose rows together stay within a budget, so a
question with one rare word touches a few thousand rows instead of every row holding
"year". The answer is the same as scoring every match (tests/index/test_postgres_lexical.py).

Document frequencies come from ``citeqa_terms`` (one row per lexeme: how many searchable
sentences and live versions hold it), kept by the write transactions themselves
(:class:`TermDelta`), so a query reads a word's frequency instead of counting its rows.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Sequence

# Rows the first seed words may hold together (at least the rarest word is always a seed).
# Measured at 100k sentences, 300 SQuAD questions, k=50 (same run, load ~9-14): 300 rows
# p50/p95 44.7/97.7 ms, 1,000 rows 37.3/83.9 ms, 3,000 rows 52.3/160 ms (scoring all: 70-128 / 175-299).
SEED_BUDGET_ROWS = 1_000


def upper_bound(idf: float, k1: float, b: float) -> float:
    """The most one word can add to a row's score: its IDF at the shortest length."""
    return idf * (k1 + 1) / (1 + k1 * (1 - b))


def first_prefix(frequencies: Sequence[int], budget: int = SEED_BUDGET_ROWS) -> int:
    """How many of the words (rarest first, by their document ``frequencies``) seed the
    first search: the longest prefix whose rows fit ``budget``, at least one word."""
    total, prefix = 0, 0
    for df in frequencies:
        total += df
        if prefix and total > budget:
            break
        prefix += 1
    return prefix


def needed_prefix(bounds: Sequence[float], threshold: float | None) -> int:
    """The shortest prefix of words (rarest first, with their score ``bounds``) such that a
    row holding none of them scores below ``threshold`` (the k-th best score found so far;
    None when fewer than k rows were found: then every word is needed)."""
    if threshold is None:
        return len(bounds)
    rest = 0.0
    for i in range(len(bounds) - 1, -1, -1):
        if rest + bounds[i] >= threshold:
            return i + 1
        rest += bounds[i]
    return 0


def pair_queries(queries: Sequence[str], start: int, stop: int) -> list[str]:
    """For each word ``i`` in ``[start, stop)`` (tsqueries rarest first): "word i and a rarer-
    ranked-after word" — rows holding two of the words from ``start`` on whose first (rarest)
    one is needed (before ``stop``). A row whose two rarest such words both lie past ``stop``
    holds only words whose bounds together stay below the k-th score."""
    return [f"({queries[i]}) & ({' | '.join(f'({q})' for q in queries[i + 1:])})"
            for i in range(start, stop) if i + 1 < len(queries)]


def unread_rows(queries: Sequence[str], read: int, prefix: int) -> str:
    """The tsquery of the rows holding one of the words ``[read, prefix)`` and none of the
    first ``read`` words, whose rows an earlier pass scored already: a search adding seed
    words reads each row once."""
    new = " | ".join(f"({q})" for q in queries[read:prefix])
    if not read:
        return new
    return f"({new}) & !({' | '.join(f'({q})' for q in queries[:read])})"


def reaching_alone(bounds: Sequence[float], start: int, threshold: float) -> int:
    """How many of the words from ``start`` on (bounds falling, rarest first) could lift a row
    to ``threshold`` on their own: these must be read in full."""
    return sum(1 for bound in bounds[start:] if bound >= threshold)


@dataclass
class TermDelta:
    """What one write transaction changes in ``citeqa_terms``: per lexeme, the change in
    searchable sentences and live versions holding it. Written once, as the transaction's
    last statement, in lexeme order: concurrent writers then lock the rows of shared
    lexemes in one order (no deadlock) and hold them only until their commit."""

    sentences: Counter[str] = field(default_factory=Counter)
    versions: Counter[str] = field(default_factory=Counter)

    def add(self, counts: Sequence[tuple[str, int]], sign: int, *, versions: bool) -> None:
        target = self.versions if versions else self.sentences
        for lexeme, n in counts:
            target[lexeme] += sign * n

    def rows(self) -> tuple[list[str], list[int], list[int]]:
        """(lexemes, sentence changes, version changes) in lexeme order, zero changes left out."""
        lexemes = sorted(k for k in self.sentences.keys() | self.versions.keys()
                         if self.sentences[k] or self.versions[k])
        return lexemes, [self.sentences[k] for k in lexemes], [self.versions[k] for k in lexemes]
