"""Coarse part-of-speech tags (``token.pos_``) from the fine ones, without spaCy's Matcher.

In ``en_core_web_sm`` the tagger predicts fine tags (``NN``, ``VBZ``...) and the
``attribute_ruler`` turns them into coarse ones (``NOUN``, ``AUX``...) with 179 Matcher
patterns: a tag map plus exceptions by word and dependency ("that" tagged ``WDT`` is a
``PRON``, "do" heading a clause is a ``VERB``). The stored analysis (index/language.py) reads
only the coarse tags, through noun chunks and the verbs of syntactic roles, yet the Matcher cost
15% of the analysis (0.6 CPU-s per 1,285 SQuAD sentences, as much as the parser). The same
patterns looked up by tag cost ~0.05 s and give the same tag to every token: checked on the
10,330 sentences of SQuAD dev and in tests/index/test_part_of_speech.py.

Only the patterns that set ``POS`` are kept, with their precedence (the ruler applies matches
in pattern order, so the last matching pattern wins). A pipeline whose patterns use anything
else (other token attributes or operators, patterns longer than two tokens) is left to its
own ruler: :func:`compile_rules` returns None.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

# The token attributes the rules read: columns of ``Doc.to_array``, where strings are hashes.
_COLUMNS = ("TAG", "LOWER", "DEP", "IS_SPACE")
MAX_TOKENS = 2

Test = Callable[[np.ndarray], np.ndarray]  # the token table -> which rows satisfy it


@dataclass(frozen=True)
class _Rule:
    tests: tuple[tuple[Test, ...], ...]  # per token of the pattern, what that token must satisfy
    target: int  # which of the pattern's tokens gets the tag
    pos: int  # the coarse tag's symbol id (spacy.parts_of_speech)

    def matches(self, table: np.ndarray, same_doc: np.ndarray) -> np.ndarray:
        """Which tokens of ``table`` (one row per token, docs one after the other) the rule
        tags; ``same_doc[k]``: tokens k and k + 1 are of one doc (a pattern never spans two)."""
        n, width = len(table), len(self.tests)
        starts = np.ones(n - width + 1, dtype=bool)
        for k, tests in enumerate(self.tests):
            part = table[k:n - width + 1 + k]
            for test in tests:
                starts &= test(part)
        for k in range(width - 1):
            starts &= same_doc[k:n - width + 1 + k]
        found = np.zeros(n, dtype=bool)
        found[self.target:self.target + len(starts)] = starts
        return found


def _id(value: object) -> int:
    from spacy.strings import get_string_id

    return int(value) if isinstance(value, bool) else int(get_string_id(str(value)))


def _test(attribute: str, value: object) -> Test | None:
    if attribute not in _COLUMNS:
        return None
    column = _COLUMNS.index(attribute)
    if isinstance(value, (str, bool)):
        wanted = np.uint64(_id(value))
        return lambda table: table[:, column] == wanted
    if isinstance(value, dict) and len(value) == 1:
        (op, values), = value.items()
        if op in ("IN", "NOT_IN") and isinstance(values, list):
            allowed = np.array(sorted({_id(v) for v in values}), dtype=np.uint64)
            invert = op == "NOT_IN"
            return lambda table: np.isin(table[:, column], allowed, invert=invert)
    return None


class PartOfSpeech:
    """An attribute ruler's ``POS`` patterns, applied in its order to many docs at once."""

    def __init__(self, rules: Sequence[_Rule]):
        self._rules = list(rules)  # in the ruler's order: a later rule overrides an earlier one

    def apply(self, docs: Sequence[Any]) -> None:
        """Set each token's coarse tag as the ruler would. All tokens of ``docs`` are one
        table (rows: tokens; columns: their tag, word, dependency, whether white space), so
        each rule is a few array operations whatever the number of docs. A rule reads tags,
        words and dependencies, never the coarse tags the rules set: each token is decided on
        the docs as the tagger and parser left them, as the Matcher does."""
        docs = [doc for doc in docs if len(doc)]
        if not docs:
            return
        table = np.concatenate([doc.to_array(list(_COLUMNS)) for doc in docs])
        pos = np.concatenate([doc.to_array(["POS"]) for doc in docs]).astype(np.uint64)
        lengths = [len(doc) for doc in docs]
        owner = np.repeat(np.arange(len(docs)), lengths)
        same_doc = owner[:-1] == owner[1:]
        for rule in self._rules:
            pos[rule.matches(table, same_doc)] = rule.pos
        for doc, part in zip(docs, np.split(pos, np.cumsum(lengths)[:-1]), strict=True):
            doc.from_array(["POS"], part)


def compile_rules(patterns: Iterable[Mapping[str, Any]]) -> PartOfSpeech | None:
    """The ``POS`` rules of an attribute ruler's ``patterns`` (``AttributeRuler.patterns``),
    or None when one of them is of a shape this module does not read."""
    from spacy.parts_of_speech import IDS

    rules: list[_Rule] = []
    for pattern in patterns:
        pos = pattern.get("attrs", {}).get("POS")
        if pos is None:
            continue
        if pos not in IDS:
            return None
        target = int(pattern.get("index", 0))
        for alternative in pattern["patterns"]:
            if not 1 <= len(alternative) <= MAX_TOKENS:
                return None
            tests: list[tuple[Test, ...]] = []
            for spec in alternative:
                compiled = [_test(attribute, value) for attribute, value in spec.items()]
                if any(test is None for test in compiled):
                    return None
                tests.append(tuple(t for t in compiled if t is not None))
            target_at = target if target >= 0 else len(alternative) + target
            if not 0 <= target_at < len(alternative):
                return None
            rules.append(_Rule(tuple(tests), target_at, IDS[pos]))
    return PartOfSpeech(rules)
