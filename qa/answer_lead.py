"""Which of the best-ranked sentences leads the answer.

The ranker scores a sentence for being about the question; the short-answer scorer
(qa/short_answer.py) scores the spans inside it for being the thing asked for: a name of the
asked kind beside the question's words, a count before "how many"'s noun. A sentence the ranker
puts a little lower but that holds a far better-shaped answer is usually the one that answers
("What was the first team Peyton Manning began playing for?": the sentence naming the
Indianapolis Colts over one whose best span is "quarterback ever"). So the lead is the sentence,
among the first ``among``, with the highest ``log(probability) + weight × best span score``; the
others keep their order behind it. Only when a name, a number or a date is asked
(``asks_for_a_name``): for reasons, manners and descriptions the span scorer does not tell an
answering sentence from one about the question (it lost 4 seed questions and won 1 there).

Chosen on SQuAD dev questions 1-1000 and measured on 1001-2000 (offline on the top-5 records of
`citeqa eval`; docs/EVALUATION.md round 8): among 2 with weight 0.25, top-1 0.778 → 0.786 and
short-answer F1 0.472 → 0.480 held out; among 3 the same, a weight of 0.3 or more loses top-1.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from citeqa.index.types import Hit
from citeqa.qa.short_answer import asks_for_a_name, best_span

# The sentences the lead is chosen among, and the weight of the best span's score (0: the
# ranker's order alone).
LEAD_AMONG = 2
SHORT_ANSWER_WEIGHT = 0.25
# A probability of 0 would make the logarithm -inf: floored (no sentence that low gets here).
_FLOOR = 1e-6


def lead_score(question: str, hit: Hit, question_doc: Any, weight: float) -> float:
    """``log(probability) + weight × best span score``; -inf for a sentence with no span at
    all (it holds nothing to answer with)."""
    found = best_span(question, hit.sentence.text, hit.sentence.mentions, question_doc)
    if found is None:
        return -math.inf
    return math.log(max(hit.score, _FLOOR)) + weight * found[1]


def with_lead(question: str, hits: Sequence[Hit], question_doc: Any = None,
              weight: float = SHORT_ANSWER_WEIGHT, among: int = LEAD_AMONG) -> list[Hit]:
    """``hits`` (best first, ``score`` the ranker's probability) with the sentence that should
    lead the answer first; the rest in their order. Ties keep the ranker's order."""
    hits = list(hits)
    if weight <= 0 or len(hits) < 2 or among < 2 or not asks_for_a_name(question):
        return hits
    head = hits[:among]
    scores = [lead_score(question, h, question_doc, weight) for h in head]
    lead = max(range(len(head)), key=lambda i: (scores[i], -i))
    return [hits[lead], *hits[:lead], *hits[lead + 1:]]
