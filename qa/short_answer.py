"""Short answers: the span of one cited evidence sentence that answers the question.

"How many troops did North Korea send?" + "... dispatched approximately 11,000 to 12,000 elite
troops ..." -> offsets of "approximately 11,000 to 12,000". Deterministic: a linear score over
candidate spans, no reader model (none ships on PyPI here).

1. The question gives its coarse type (how many/much -> number, when / what year -> date, who ->
   person, where -> place, why / how -> phrase, what/which X -> the type of X or thing), the X
   of "what X" / "how many X", whether it asks for the subject ("who won?": left of the verb)
   or the object ("what did X win?": right of it), and, from its spaCy parse
   (qa/answer_types.py), the entity labels an answer would carry.
2. The sentence gives candidate spans: quantities, dates, quoted or bracketed text, runs of
   content words between function words (whole, split at question words and -ed/-ing verbs,
   their capitalised parts, "X of Y", "X and Y"), for phrase questions clauses, and, when the
   sentence's mentions are given (entities and noun chunks stored at ingest,
   index/language.py), each entity and noun chunk (without a leading article) and lists of
   them ("Moscow, Kazan, Novosibirsk, and Vladivostok").
3. A weighted sum of features (_features) scores each candidate; the best wins, ties go to the
   earliest span. Among them: an entity of the expected type, of another type, part of a
   longer entity; the share of the question's words the span repeats; closeness to the
   question's words in the sentence. The weights were fitted as a linear ranker (expected F1
   under a softmax over a question's candidates, light L2) on questions 1-1000 of
   ../shared/eval/squad_dev.jsonl only, then rounded: `python -m
   citeqa.evaluation.short_answers --fit` refits and prints them. Without mentions the rules'
   earlier weights (_RULES_*) are used: they do better there.

Measured from the gold evidence sentence, scored as SQuAD does (normalised exact match and
token F1, best over the gold answers), `python -m citeqa.evaluation.short_answers --split
dev|heldout [--rules-only]`:

                                     with entities + noun chunks   rules alone (before)
    questions 1-1000 (development):  F1 0.596  EM 0.475            F1 0.569  EM 0.437
    questions 1001-2000 (held out):  F1 0.546  EM 0.408            F1 0.507  EM 0.357
    whole sentence:                  F1 0.218 (dev), 0.253 (held out)
    about 1.6 ms of CPU per call with mentions, 0.9 ms without, on a loaded 2-core machine
    (the requirement is < 2 ms); the question's parse (once per request) is not included.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from functools import lru_cache
from itertools import pairwise
from typing import Any, NamedTuple, Sequence

from citeqa.index.types import Mention
from citeqa.qa.answer_types import QuestionType, question_type

_STOP = frozenset("""
a an the this that these those some any each every all both either neither no other such own
of in on at by for from to into onto with within without about above below over under between
among through during before after since until upon via per as than like near around across
against along toward towards behind beyond despite except throughout and or but nor so yet if
then because while whereas although though unless whether is are was were be been being am do
does did done doing has have had having will would shall should can could may might must i me
my we us our you your he him his she her it its they them their who whom whose which what when
where why how there here also not only just very more most less least many much""".split())
_WH = frozenset("what which who whom whose when where why how".split())
_COPULAS = frozenset("is are was were be been".split())
_AUXILIARIES = frozenset("do does did has have had can could will would should may might must".split())
_VERBISH = re.compile(r"(?:ed|ing|ize|ise)$")
# "what <noun>" / "how <adjective>" words that tell the expected answer type.
_TYPE_NOUNS = (
    ("date", frozenset("year years date day month decade century era period time age season".split())),
    ("number", frozenset("number amount percentage percent proportion population size length height "
                         "distance speed rate cost price value total temperature weight depth".split())),
    ("person", frozenset("person man woman people individual king queen president leader author "
                         "writer scientist player actor name emperor pope general minister".split())),
    ("place", frozenset("place city country state region area location town village continent "
                        "island river county province nation capital".split())),
)
_HOW_QUANTITY = frozenset("many much old long far large big tall high often fast deep wide".split())
_TYPE_WORDS = frozenset("type types kind kinds sort sorts form forms of".split())  # "what kind of X"

# Tokens: initials and abbreviations with their period, numbers (with separators, currency,
# suffixes, "2–0"), words with inner hyphens or apostrophes, or one other character.
_TOKEN = re.compile(r"\b(?:[A-Z]|St|Dr|Mr|Mrs|Ms|Jr|Sr|Mt|Co|Inc|Ltd|ca)\.(?=\s)"
                    r"|[$€£¥]?\d+(?:[.,:/–-]\d+)*(?:%|st|nd|rd|th|s)?|\w+(?:[-'’]\w+)*|[^\w\s]")
_NUMBER_WORDS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen "
                 "fourteen fifteen sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty "
                 "seventy eighty ninety hundreds? thousands? millions? billions? trillions? dozens? half")
_NUM = (r"(?:[$€£¥]?\d+(?:[.,:/]\d+)*(?:%|st|nd|rd|th|s)?|(?:" + _NUMBER_WORDS.replace(" ", "|")
        + r")(?:-\w+)?\b)")
_SCALE = r"(?:\s+(?:hundred|thousand|million|billion|trillion)s?)?(?:\s*(?:%|percent|per\s+cent))?"
_APPROX = (r"(?:(?:about|approximately|around|nearly|almost|over|under|some|roughly|circa|"
           r"more\s+than|less\s+than|fewer\s+than|at\s+least|up\s+to)\s+)?")
# "approximately 11,000 to 12,000", "$2.5 million", "one-third", "25 percent".
_QUANTITY = re.compile(r"(?<!\w)" + _APPROX + _NUM + _SCALE
                       + r"(?:\s*(?:to|-|–|—|and|or)\s*" + _NUM + _SCALE + r")?", re.I)
_MONTH = (r"(?:january|february|march|april|may|june|july|august|september|october|november|"
          r"december|jan|feb|mar|apr|jun|jul|aug|sept?|oct|nov|dec)\.?")
_DATE = re.compile(
    r"\b(?:(?:early|mid|late)[\s-]+)?(?:"
    + _MONTH + r"\s+\d{1,2}(?:st|nd|rd|th)?(?:,?\s+\d{3,4})?"        # February 7, 2016
    + r"|\d{1,2}(?:st|nd|rd|th)?\s+" + _MONTH + r"(?:,?\s+\d{3,4})?"  # 7 February 2016
    + r"|" + _MONTH + r",?\s+\d{3,4}"                                # February 2016
    + r"|\d{1,2}(?:st|nd|rd|th)\s+centur(?:y|ies)"                   # 19th century
    + r"|\d{3,4}s|\d{3,4}(?:\s*(?:BC|AD|BCE|CE))?)\b", re.I)         # 1990s, 1066, 44 BC
_QUOTED = re.compile(r"\(([^()]+)\)|\"([^\"]+)\"|“([^”]+)”")
_NAME_LINKS = frozenset("of & de von van del da di du la le".split())  # "University of Chicago"
_CLAUSE_BREAKS = frozenset(",;:()[]—–\"“”.!?")
_SUBORDINATORS = frozenset("because since by to so although while when as through".split())
_WINDOW = 8  # tokens either side of a candidate where question words count as its context

# Feature weights (see the module docstring for how they were set); then, per answer type, the
# weights of: is a quantity, is a date, share of capitalised words, follows in/at/from/near/to/on,
# length (tokens / 12, capped at 1).
_WEIGHTS = {
    "overlap": -6.3, "single": -3.6, "tiny": -2.4, "stop_edge": -3.3, "verbish": -4.7, "near": 8.1,
    "after_match": 1.0, "phrase_end": 1.9, "clause": 4.5, "head_next": 10.7, "direction": 1.2,
    "same_clause": 4.2, "proximity": 6.1, "typed": 4.6, "typed_inside": 1.9, "untyped": -2.2,
    "entity": 1.8, "chunk": 0.4, "list": 0.8, "list_plural": 1.3, "no_type": -0.4, "fragment": 1.1,
    "appos": -1.5,
}
_FIT_KEYS = ("num", "date", "caps", "prep", "long")
_TYPE_FIT = {
    "number": (7.9, -1.2, -3.0, -2.0, -1.0),
    "date": (5.7, 10.2, -0.2, 2.8, -0.5),
    "person": (-0.1, -0.5, 6.4, -3.9, 0.3),
    "place": (0.0, -0.7, 4.9, 5.1, -0.2),
    "thing": (-1.2, -1.3, 2.0, -3.0, 3.5),
    "phrase": (-0.7, -0.3, -1.6, 2.2, 3.3),
}
# Without entities and noun chunks (a sentence stored before the language analysis existed,
# or a caller without it) the rules' own earlier fit does better than the weights above
# (held out F1 0.507 against 0.496 for a fit of the weights above), so it stays for that case.
_RULES_WEIGHTS = {
    "overlap": -4.4, "single": -3.1, "tiny": -1.9, "stop_edge": -0.9, "verbish": -3.7,
    "near": 5.2, "after_match": 1.0, "phrase_end": 0.8, "clause": 2.7, "head_next": 7.3,
    "direction": 0.7, "same_clause": 2.9, "proximity": 3.7,
}
_RULES_TYPE_FIT = {
    "number": (6.1, -0.6, -1.7, -1.1, -0.9),
    "date": (3.3, 7.7, 0.1, 1.9, -0.5),
    "person": (-0.1, -0.3, 5.6, -2.1, -0.3),
    "place": (-0.1, -0.5, 4.0, 3.0, -0.2),
    "thing": (-0.6, -0.6, 2.4, -2.0, 1.8),
    "phrase": (-0.5, -0.3, -0.9, 1.4, 1.7),
}


@lru_cache(maxsize=16384)
def _stem(word: str) -> str:
    # Drop a possessive and one inflection, keep six letters: "played" ~ "play", "discovery" ~
    # "discovered". A real lemmatiser would need data we do not ship.
    w = re.sub(r"['’]s?$", "", word.lower())
    for suffix in ("ing", "ed", "es", "s", "e"):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            w = w[:-len(suffix)]
            break
    return w[:6]


def _is_content(word: str) -> bool:
    return (word[0].isalnum() and word.lower() not in _STOP) or word[0] in "$€£¥"


def _is_verbish(word: str) -> bool:
    # Lower-case -ed/-ing words are mostly verbs; they end noun phrases in untagged text.
    return word[:1].islower() and len(word) > 4 and _VERBISH.search(word) is not None


class _Question(NamedTuple):
    type: str  # number | date | person | place | thing | phrase (why/how: a clause)
    head: frozenset[str]  # stems of X in "what X" / "how many X"
    direction: int  # +1: the answer follows the question's words in the sentence; -1: precedes


@lru_cache(maxsize=1024)
def _question(question: str) -> _Question:
    words = re.findall(r"\w+", question.lower())
    wh = next((k for k, w in enumerate(words) if w in _WH), None)
    if wh is None:
        return _Question("thing", frozenset(), 0)
    w, after, head = words[wh], words[wh + 1:], []
    if w in ("who", "whom", "whose"):
        qtype = "person"
    elif w in ("when", "where", "why"):
        qtype = {"when": "date", "where": "place", "why": "phrase"}[w]
    elif w == "how":
        qtype = "number" if after[:1] and after[0] in _HOW_QUANTITY else "phrase"
        if after[:1] in (["many"], ["much"]):
            head = [x for x in after[1:2] if x not in _STOP]  # "how many yards"
        after = after[1 + len(head):] if qtype == "number" else after
    else:  # what/which X: X (after "kind of") names the answer's class
        after = [x for x in after if x not in _TYPE_WORDS]
        while len(head) < min(2, len(after)) and after[len(head)] not in _STOP:
            head.append(after[len(head)])
        qtype = next((t for x in after[:3] for t, nouns in _TYPE_NOUNS if x in nouns), "thing")
        after = after[len(head):]
    # "Who won X?" asks for the subject, "What did X win?" for the object, "What is X?" either.
    verb = after[0] if after else ""
    direction = 0 if verb in _COPULAS else (1 if verb in _AUXILIARIES else -1)
    return _Question(qtype, frozenset(map(_stem, head)), direction)


def _candidates(sentence: str, toks: list[tuple[int, int, str]], qstems: set[str],
                qtype: str) -> dict[tuple[int, int], set[str]]:
    """Token spans (i, j), end-exclusive, that could be the answer, each with the kinds of whole
    expression it is ("num", "date", "quote")."""
    spans: dict[tuple[int, int], set[str]] = {}
    starts, ends, words = [t[0] for t in toks], [t[1] for t in toks], [t[2] for t in toks]
    for kind, rx in (("num", _QUANTITY), ("date", _DATE), ("quote", _QUOTED)):
        for m in rx.finditer(sentence):
            g = next((k for k in range(1, len(m.groups()) + 1) if m.group(k)), 0)
            i, j = bisect_right(ends, m.start(g)), bisect_left(starts, m.end(g))
            if i < j:
                spans.setdefault((i, j), set()).add(kind)
    # Runs of content words; "of"/"&"/"de" may link capitalised words inside a name.
    runs: list[tuple[int, int]] = []
    k, n = 0, len(toks)
    while k < n:
        j = k + 1
        while _is_content(words[k]) and j < n and (_is_content(words[j]) or (
                words[j] in _NAME_LINKS and j + 1 < n and words[j + 1][:1].isupper()
                and words[j - 1][:1].isupper())):
            j += 1
        if _is_content(words[k]):
            runs.append((k, j))
        k = j
    pieces = list(runs)
    for a, b in runs:
        # Split at question words and verb-like words: the answer is usually the part the
        # question lacks, and untagged text runs "subject verb object" together.
        cuts = [k for k in range(a, b) if _stem(words[k]) in qstems or _is_verbish(words[k])]
        pieces += [(x + 1, y) for x, y in zip([a - 1] + cuts, cuts + [b], strict=True) if x + 1 < y]
        # Capitalised parts: "quarterback Cam Newton" -> "Cam Newton".
        k = a
        while k < b:
            j = k + 1
            if words[k][:1].isupper():
                while j < b and (words[j][:1].isupper() or words[j] in _NAME_LINKS):
                    j += 1
                pieces.append((k, j))
            k = j
    # "a group of scientists", "black and white".
    pieces += [(a, d) for (a, b), (c, d) in pairwise(runs)
               if c == b + 1 and words[b].lower() in ("of", "and", "or")]
    # Why/how answers are phrases: stretches between punctuation, and their tails after
    # "because", "by", "to" ...
    k = 0 if qtype == "phrase" else n
    while k < n:
        j = k
        while j < n and words[j] not in _CLAUSE_BREAKS:
            j += 1
        pieces += [(k, j)] if k < j else []
        pieces += [(m + 1, j) for m in range(k, j - 1) if words[m].lower() in _SUBORDINATORS]
        k = j + 1
    for span in pieces:
        spans.setdefault(span, set())
    return spans


_LEADING = frozenset("the a an this that these those his her its their our my your some".split())
_LIST_GLUE = frozenset({",", "and", "or", "&"})
_POSSESSIVE = re.compile(r"(?:['’]s?)?$")


def _add_mentions(spans: dict[tuple[int, int], set[str]], mentions: Sequence[Mention],
                  toks: list[tuple[int, int, str]], qt: QuestionType) -> list[tuple[int, int, str]]:
    """Entities and noun chunks (from the language pipeline) as candidates; returns the
    entities as token spans with their labels."""
    starts, ends = [t[0] for t in toks], [t[1] for t in toks]
    entities: list[tuple[int, int, str]] = []
    for m in mentions:
        i, j = bisect_right(ends, m.start), bisect_left(starts, m.end)
        if not i < j:
            continue
        if m.label == "NOUN_CHUNK":
            spans.setdefault((i, j), set()).add("chunk")
            # "the Korean language" -> "Korean language": answers rarely keep the article.
            if j - i > 1 and toks[i][2].lower() in _LEADING:
                spans.setdefault((i + 1, j), set()).add("chunk")
        else:
            # spaCy keeps the article in some names ("the Black Sea"); the name is the entity.
            if j - i > 1 and toks[i][2].lower() in _LEADING:
                spans.setdefault((i, j), set()).add("ent")
                i += 1
            kinds = spans.setdefault((i, j), set())
            kinds.add("ent")
            kinds.add("typed" if m.label in qt.labels else "untyped")
            entities.append((i, j, m.label))
    # "Moscow, Kazan, Novosibirsk, and Vladivostok": mentions joined by commas and "and"
    # (of any label: the small model calls some of those cities people).
    members = sorted({(i, j) for (i, j), kinds in spans.items() if kinds & {"ent", "chunk"}})
    runs: list[list[tuple[int, int]]] = []
    for i, j in members:
        last = runs[-1][-1] if runs else None
        if last is not None and i > last[1] and all(
                toks[x][2].lower() in _LIST_GLUE for x in range(last[1], i)):
            runs[-1].append((i, j))
        elif last is None or i >= last[1]:
            runs.append([(i, j)])
    typed = {(a, b) for a, b, label in entities if label in qt.labels}
    for run in runs:
        if len(run) > 1:
            kinds = spans.setdefault((run[0][0], run[-1][1]), set())
            kinds.add("list")
            if any(member in typed for member in run):
                kinds.add("typed_list")
    return entities


class _Tokens(NamedTuple):
    """Per-token facts of one sentence, computed once per call (prefix sums: a candidate's
    share of capitalised, question and verb-like words costs O(1))."""

    toks: list[tuple[int, int, str]]
    stems: list[str]
    content: list[bool]
    caps: list[int]  # prefix sums
    in_question: list[int]
    verbish: list[int]


def _prefix(flags: list[bool]) -> list[int]:
    out = [0]
    for f in flags:
        out.append(out[-1] + f)
    return out


def _tokens(toks: list[tuple[int, int, str]], qstems: set[str]) -> _Tokens:
    words = [t[2] for t in toks]
    stems = [_stem(w) for w in words]
    return _Tokens(toks, stems, [_is_content(w) for w in words], _prefix([w[:1].isupper() for w in words]),
                   _prefix([st in qstems for st in stems]), _prefix([_is_verbish(w) for w in words]))


def _features(i: int, j: int, tk: _Tokens, matched: list[int],
              qstems: set[str], q: _Question, kinds: set[str], qt: QuestionType,
              entities: list[tuple[int, int, str]]) -> dict[str, float]:
    toks, stems = tk.toks, tk.stems
    n = j - i
    prev = toks[i - 1][2].lower() if i > 0 else ""
    nxt = toks[j][2] if j < len(toks) else "."
    after = stems[j:j + 2]  # "63 days", "11,000 elite troops"
    after = after[:1] if j < len(toks) and not tk.content[j] else after
    outside = [m for m in matched if m < i or m >= j]  # question words around the candidate
    gaps = [i - m if m < i else m - j + 1 for m in outside]
    nearest = outside[gaps.index(min(gaps))] if outside else j
    between = toks[nearest + 1:i] if nearest < i else toks[j:nearest]
    side = (sum(m < i for m in outside) - sum(m >= j for m in outside)) / max(1, len(outside))
    near = {stems[m] for m in outside if i - _WINDOW <= m < j + _WINDOW}
    closest: dict[str, int] = {}
    for m, g in zip(outside, gaps, strict=True):
        closest[stems[m]] = min(g, closest.get(stems[m], g))
    return {
        # Type fit (weighted per answer type).
        "num": float("num" in kinds),
        "date": float("date" in kinds),
        "caps": (tk.caps[j] - tk.caps[i]) / n,
        "prep": float(prev in ("in", "at", "from", "near", "to", "on")),
        "long": min(n, 12) / 12,
        # Shape: answers rarely repeat the question, are rarely lone leftovers of a split,
        # start or end on a function word, or hold verbs.
        "overlap": (tk.in_question[j] - tk.in_question[i]) / n,
        "single": float(n == 1),
        "tiny": float(n == 1 and len(toks[i][2]) == 1),
        "stop_edge": float(not tk.content[i] or not tk.content[j - 1]),
        "verbish": (tk.verbish[j] - tk.verbish[i]) / n,
        "phrase_end": float(j >= len(toks) or not tk.content[j]),
        "clause": float(i == 0 or prev in _CLAUSE_BREAKS) * float(nxt in _CLAUSE_BREAKS),
        # Context: the answer sits among the question's other words, in the same clause, on the
        # side the question's form predicts, and right before "X" of "how many X".
        "near": len(near) / max(1, len(qstems)),
        "proximity": sum(1 / g for g in closest.values()) / max(1, len(qstems)),
        "after_match": float(nearest < i),
        "direction": q.direction * side,
        "same_clause": float(bool(outside) and not any(t[2] in _CLAUSE_BREAKS for t in between)),
        "head_next": float(any(st in q.head for st in after)),
        # "X, the Y,": an apposition right beside the question's words.
        "appos": float((prev == "," and i - 2 in matched) or (nxt == "," and j + 1 in matched)),
        # The language pipeline: an entity of the expected type (whole, or inside a longer
        # span), an entity of another type, a noun chunk, a list for a plural question.
        "typed": float("typed" in kinds and "list" not in kinds),
        "typed_inside": float("typed" not in kinds and any(
            i <= a and b <= j and label in qt.labels for a, b, label in entities)),
        "untyped": float("untyped" in kinds and bool(qt.labels)),
        "entity": float("ent" in kinds),
        "chunk": float("chunk" in kinds),
        "list": float("typed_list" in kinds),
        "fragment": float(any(a <= i and j <= b and (a, b) != (i, j) for a, b, _ in entities)),
        "list_plural": float("list" in kinds and qt.plural),
        "no_type": float(not qt.labels and bool(entities)) * float("ent" in kinds),
    }


def _weights(qtype: str, language: bool = True) -> dict[str, float]:
    """One weight per feature for this question type."""
    weights, type_fit = (_WEIGHTS, _TYPE_FIT) if language else (_RULES_WEIGHTS, _RULES_TYPE_FIT)
    return {**weights, **dict(zip(_FIT_KEYS, type_fit[qtype], strict=True))}


def _score(feats: dict[str, float], weights: dict[str, float]) -> float:
    return sum(weights.get(k, 0.0) * v for k, v in feats.items() if v)


def candidates(question: str, sentence: str, mentions: Sequence[Mention] | None = None,
               question_doc: Any = None) -> tuple[str, list[tuple[int, int, dict[str, float]]]]:
    """The question's coarse type and every candidate span (code-point offsets into
    ``sentence``) with its features, in a fixed order: what the weights were fitted on
    (evaluation/short_answers.py)."""
    toks = [(m.start(), m.end(), m.group()) for m in _TOKEN.finditer(sentence)]
    q = _question(question)
    qt = question_type(question_doc if question_doc is not None else question)
    if qt.definition:  # "who is Matsegora?": a description, not a person
        q = q._replace(type="thing")
    qstems = {_stem(w) for w in re.findall(r"\w+", question) if w.lower() not in _STOP}
    matched = [k for k, t in enumerate(toks) if t[2].lower() not in _STOP and _stem(t[2]) in qstems]
    spans = _candidates(sentence, toks, qstems, q.type)
    entities = _add_mentions(spans, mentions, toks, qt) if mentions else []
    out = []
    tk = _tokens(toks, qstems)
    for (i, j), kinds in sorted(spans.items()):
        feats = _features(i, j, tk, matched, qstems, q, kinds, qt, entities)
        end = toks[j - 1][1]
        # "the Kremlin’s characterization" -> "Kremlin", not "Kremlin’s".
        if j - i > 1 or len(toks[i][2]) > 2:
            end -= len(_POSSESSIVE.search(toks[j - 1][2]).group())  # type: ignore[union-attr]
        out.append((toks[i][0], end, feats))
    return q.type, out


def extract_short_answer(question: str, sentence: str, mentions: Sequence[Mention] | None = None,
                         question_doc: Any = None) -> tuple[int, int] | None:
    """Code-point offsets (start, end), end-exclusive, of the short answer in `sentence`, or
    None when the sentence has no candidate span. ``mentions``: the sentence's entities and
    noun chunks (offsets into ``sentence``, as stored at ingest); ``question_doc``: the
    question parsed by the same pipeline (a spaCy Doc). Without them the answer comes from
    the rules and the question's words alone."""
    if mentions:  # offsets from elsewhere: keep only those that lie inside this sentence
        mentions = [m for m in mentions if 0 <= m.start < m.end <= len(sentence)]
    qtype, cands = candidates(question, sentence, mentions, question_doc)
    weights = _weights(qtype, language=bool(mentions))
    best, best_span = float("-inf"), None
    for start, end, feats in cands:
        score = _score(feats, weights)
        if score > best:
            best, best_span = score, (start, end)
    return best_span
