"""Short answers: the span of one cited evidence sentence that answers the question.

"How many troops did North Korea send?" + "... dispatched approximately 11,000 to 12,000 elite
troops ..." -> offsets of "approximately 11,000 to 12,000". Deterministic: a linear score over
candidate spans, no reader model (none ships on PyPI here), no parse of the sentence at query
time (a sentence parse costs more than the whole rest of a request on this hardware: only the
entities, noun chunks and syntactic roles stored at ingest are read).

1. The question gives its coarse type (how many/much -> number, when / what year -> date, who ->
   person, where -> place, why / how -> phrase, what/which X -> the type of X or thing), the X
   of "what X" / "how many X", whether it asks for the subject ("who won?": left of the verb)
   or the object ("what did X win?": right of it), and, from its spaCy parse
   (qa/answer_types.py), the entity labels an answer would carry. Its form also says when it
   asks for a reason ("why"), a qualifier ("what kind of troops"), what a name stands for
   ("who is Matsegora?", "what is the ISW?"), a source ("who says ...?") or yes or no.
2. The sentence gives candidate spans: quantities, dates, quoted or bracketed text, runs of
   content words between function words (whole, split at question words and -ed/-ing verbs,
   their capitalised parts, "X of Y", "X and Y"), for phrase questions clauses, for why
   questions what follows a reason cue ("to assist ...", "because ...", "due to ...", "amid
   ..."), for definitions the apposition beside the name or the words a bracketed abbreviation
   abbreviates, for "what kind of X" the words just before X, and, when the sentence's
   mentions are given (entities and noun chunks stored at ingest, index/language.py), each
   entity and noun chunk (without a leading article) and lists of them ("Moscow, Kazan,
   Novosibirsk, and Vladivostok").
3. A weighted sum of features (_features) scores each candidate; the best wins, ties go to the
   earliest span. Among them: an entity of the expected type, of another type, part of a
   longer entity; the share of the question's words the span repeats; closeness to the
   question's words in the sentence; examples of the class the question names ("cities,
   including A, B and C"); a list's lone member when a plural asks for the list; the subject
   that opens the sentence before a reporting verb. With the syntactic roles stored at ingest
   (index/language.py ``syntactic_mentions``: subjects, objects and prepositional phrases of
   verbs, appositions, as whole phrases with the offset of their head word) also: the phrase
   of the question's verb ("what is *shaping* relations?" -> the subject of "shape"), in the
   role the question's form asks for (its wh-phrase is the subject, "who revealed this?", or
   the question has a subject of its own, "what did X disclose?"; read from the question's
   tags), the noun phrase heading it, a phrase sharing a verb with the question's words,
   candidates inside those phrases, and for "who" the noun phrase an adjective entity
   modifies ("a *Russian* diplomat") rather than the adjective. The weights were fitted as a linear ranker
   (expected F1 under a softmax over a question's candidates, light L2) on questions 1-1000 of
   ../shared/eval/squad_dev.jsonl only, then rounded; they live in short_answer_weights.json
   beside this module, and `python -m citeqa.evaluation.short_answers --fit --write` refits and
   rewrites them (the features that only the question forms above switch on start from
   hand-set values; SQuAD has few such questions). Sentences stored before the roles were keep
   the weights fitted without them (level "mentions"); without mentions the rules' earlier
   weights (level "rules") are used: they do better there.
4. Yes/no questions ("was the treatment free?") get the span that repeats what they ask about,
   with its modifier ("absolutely free"), by hand-set weights (no SQuAD question is one);
   ``yes_no_verdict`` says "yes" or "no" only where the sentence holds every word of the
   question, with or without a negation before them. The verdict is not a span of the text,
   so it cannot be the short answer (whose text is a slice of the document).

Measured from the gold evidence sentence, scored as SQuAD does (normalised exact match and
token F1, best over the gold answers), `python -m citeqa.evaluation.short_answers --split
dev|heldout [--rules-only]` (--data evaluation/sets/seed_questions.jsonl --split all: the
natural questions about the seed article, never fitted on; "right": token F1 >= 0.5):

                                     + syntactic roles     entities + noun chunks   rules alone
    questions 1-1000 (development):  F1 0.624  EM 0.489   F1 0.608  EM 0.489       F1 0.574  EM 0.439
    questions 1001-2000 (held out):  F1 0.575  EM 0.435   F1 0.556  EM 0.416       F1 0.510  EM 0.361
    seed questions (66 answerable):  F1 0.709  EM 0.591   F1 0.689  EM 0.591
                                     right 0.727           right 0.697
    before the forms above:          held out F1 0.546 EM 0.408 (rules 0.507 / 0.357); seed
                                     F1 0.563, right 0.561
    whole sentence:                  F1 0.218 (dev), 0.253 (held out)
    about 1.4-1.8 ms of CPU per call with mentions, 0.8-1.3 ms without, on a loaded 2-core
    machine (the requirement is < 2 ms); the roles add ~25-40% (measured side by side on a
    machine with load average 9: 2.1-2.3 ms against 1.4-1.9); the question's parse (once per
    request) is not included.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise
from pathlib import Path
from typing import Any, NamedTuple, Sequence

from citeqa.index.language import SYNTAX_PREFIX
from citeqa.index.types import Mention
from citeqa.qa.answer_types import QuestionType, question_type, type_match

_STOP = frozenset("""
a an the this that these those some any each every all both either neither no other such own
of in on at by for from to into onto with within without about above below over under between
among through during before after since until upon via per as than like near around across
against along toward towards behind beyond despite except throughout and or but nor so yet if
then because while whereas although though unless whether is are was were be been being am do
does did done doing has have had having will would shall should can could may might must i me
my we us our you your he him his she her it its they them their who whom whose which what when
where why how there here also not only just very more most less least many much several various
numerous multiple certain""".split())
_WH = frozenset("what which who whom whose when where why how".split())
_WH_RUN_ON = {"whats": ("what", "is"), "whos": ("who", "is"), "wheres": ("where", "is"), "hows": ("how", "is")}
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
_MONTHS = "january february march april may june july august september october november december"
_MONTH = r"(?:" + _MONTHS.replace(" ", "|") + r"|jan|feb|mar|apr|jun|jul|aug|sept?|oct|nov|dec)\.?"
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
# Words after which a why-question's answer starts: "to assist in the conflict", "because of the
# rain", "due to", "amid sanctions", "for recovery", "in order to", "so that", "as a means to".
_REASONS = frozenset("because since to so for amid due owing after as given thanks".split())
_WINDOW = 8  # tokens either side of a candidate where question words count as its context

# Feature weights (see the module docstring for how they were set), a text artifact beside this
# module: for each level of analysis a sentence may have (see ``_weights``), shared weights and,
# per answer type, the weights of the features whose worth depends most on what is asked (a lone
# word is a fine "where" answer and a poor "why" one), which replace the shared ones.
WEIGHTS_FILE = Path(__file__).with_name("short_answer_weights.json")
LEVELS = ("syntax", "mentions", "rules", "yes_no")


@dataclass(frozen=True)
class LevelWeights:
    weights: dict[str, float]
    by_type: dict[str, dict[str, float]]


def load_weights(path: Path = WEIGHTS_FILE) -> dict[str, LevelWeights]:
    body = json.loads(path.read_text(encoding="utf-8"))
    return {level: LevelWeights(dict(body[level]["weights"]), {t: dict(w) for t, w in body[level]["by_type"].items()})
            for level in LEVELS}


_LEVELS = load_weights()
# The weights refitted by ``python -m citeqa.evaluation.short_answers --fit`` (sentences with roles).
_WEIGHTS = _LEVELS["syntax"].weights
_TYPE_FIT = _LEVELS["syntax"].by_type


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
    why: bool = False  # asks for a reason: the answer is a clause after "to", "because", "amid" ...
    kind: bool = False  # "what kind of X": the answer is what qualifies X ("elite" troops)
    yes_no: bool = False  # "was the treatment free?": no wh-word, led by an auxiliary
    define: bool = False  # "who is Matsegora?", "what is the ISW?", "what does SVO mean?"
    reporting: bool = False  # "who says / thinks / revealed ...": asks for a source


# Words that may open a question before its auxiliary: "and is that more ...", "so did he ...".
_LEADERS = frozenset("and so but then also ok okay well hey".split())
_YES_NO_LEADS = _COPULAS | _AUXILIARIES | frozenset("any isn aren wasn weren doesn didn don won "
                                                     "can't cannot haven hasn".split())


def _yes_no(words: Sequence[str]) -> bool:
    # "Is it A or B?" asks for A or B, not for yes or no.
    lead = next((w for w in words if w not in _LEADERS), "")
    return lead in _YES_NO_LEADS and "or" not in words


def _class_words(words: Sequence[str], verbs: frozenset[str] = frozenset()) -> list[str]:
    """The words naming the answer's class in "what X" / "how many X": up to two, up to the
    first function word ("photographic plates" in "how many photographic plates comprise")."""
    head: list[str] = []
    for k, word in enumerate(words[:2]):
        # "which outlet published the interview": the tagger's verb after the first word is the
        # question's verb, not part of the class.
        if word in _STOP or (k and word in verbs):
            break
        head.append(word)
    return head


@lru_cache(maxsize=1024)
def _question(question: str, verbs: frozenset[str] = frozenset()) -> _Question:
    """The question's form; ``verbs``: its words the tagger calls verbs, when it was parsed."""
    # "whats straining ...", "whos ...": the apostrophe left out is still a wh-word and "is".
    words = [x for w in re.findall(r"\w+", question.lower()) for x in _WH_RUN_ON.get(w, (w,))]
    wh = next((k for k, w in enumerate(words) if w in _WH), None)
    if wh is None:
        return _Question("thing", frozenset(), 0, yes_no=_yes_no(words))
    w, after, head = words[wh], words[wh + 1:], []
    kind = any(x in _TYPE_WORDS and x != "of" for x in after[:2])
    if w in ("who", "whom", "whose"):
        qtype = "person"
    elif w in ("when", "where", "why"):
        qtype = {"when": "date", "where": "place", "why": "phrase"}[w]
    elif w == "how":
        qtype = "number" if after[:1] and after[0] in _HOW_QUANTITY else "phrase"
        if after[:1] in (["many"], ["much"]):
            head = _class_words(after[1:], verbs)  # "how many yards", "how many photographic plates"
        after = after[1 + len(head):] if qtype == "number" else after
    else:  # what/which X: X (after "kind of") names the answer's class
        after = [x for x in after if x not in _TYPE_WORDS]
        head = _class_words(after, verbs)
        qtype = next((t for x in after[:3] for t, nouns in _TYPE_NOUNS if x in nouns), "thing")
        after = after[len(head):]
    # "Who won X?" asks for the subject, "What did X win?" for the object, "What is X?" either.
    verb = after[0] if after else ""
    direction = 0 if verb in _COPULAS else (1 if verb in _AUXILIARIES else -1)
    return _Question(qtype, frozenset(map(_stem, head)), direction, why=w == "why", kind=kind,
                     define=_asks_definition(w, words[wh + 1:]),
                     reporting=qtype == "person" and any(_stem(x) in _REPORTING for x in after[:3]))


def _asks_definition(wh: str, after: Sequence[str]) -> bool:
    """"who/what is X" with X a short name, or "what does X mean / stand for"."""
    if wh not in ("who", "what"):
        return False
    if after[:1] and after[0] in ("is", "are", "was", "were", "s"):
        rest = [w for w in after[1:] if w not in ("the", "a", "an")]
        # "what is straining russia's workforce": a verb and its object, not a name.
        progressive = len(rest) > 1 and rest[0].endswith("ing")
        return 1 <= len(rest) <= 3 and not set(rest) & _STOP and not progressive
    return wh == "what" and after[:1] == ["does"] and after[-1:] in (["mean"], ["stand"], ["for"]) \
        and len(after) <= 6


def _candidates(sentence: str, toks: list[tuple[int, int, str]], qstems: set[str],
                q: _Question) -> dict[tuple[int, int], set[str]]:
    """Token spans (i, j), end-exclusive, that could be the answer, each with the kinds of whole
    expression it is ("num", "date", "quote"; "reason", "appos", "modifier" for why, definition and
    "what kind of" questions)."""
    qtype = q.type
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
        if q.why:
            # A reason follows its cue ("to assist ...", "because ...", "amid sanctions"), up
            # to the clause's end or the next cue; the cue's own "to" belongs to the answer.
            cues = [c for c in range(k, j - 1) if words[c].lower() in _REASONS]
            for c, nxt in zip(cues, cues[1:] + [j][:len(cues)], strict=True):
                for end in {nxt, j}:
                    if c + 1 < end:
                        spans.setdefault((c + 1, end), set()).add("reason")
                        if words[c].lower() == "to":
                            spans.setdefault((c, end), set()).add("reason")
        k = j + 1
    for span in pieces:
        spans.setdefault(span, set())
    if q.define:
        _definitions(spans, words, qstems)
    if q.kind:
        # "what kind of troops" -> "elite" in "12,000 elite troops": the words just before X.
        for h in range(1, n):
            if _stem(words[h]) in q.head:
                for a in (h - 1, h - 2):
                    if a >= 0 and all(_is_content(w) and not w[0].isdigit() and _stem(w) not in qstems
                                      for w in words[a:h]):
                        spans.setdefault((a, h), set()).add("modifier")
    return spans


def _definitions(spans: dict[tuple[int, int], set[str]], words: list[str], qstems: set[str]) -> None:
    """What a name stands for: the apposition beside it ("Alexander Matsegora, Russia's
    ambassador to Pyongyang,") or the words a parenthesised abbreviation abbreviates
    ("the Institute for the Study of War (ISW)")."""
    n = len(words)
    named = [k for k, w in enumerate(words) if w.lower() not in _STOP and _stem(w) in qstems]
    for k in named:
        if k + 1 < n and words[k + 1] == ",":  # "X, the Y,"
            j = k + 2
            while j < n and words[j] not in _CLAUSE_BREAKS:
                j += 1
            if j - (k + 2) >= 1 and j - (k + 2) <= 12:
                spans.setdefault((k + 2, j), set()).add("appos")
        if k >= 2 and words[k - 1] == ",":  # "the Y, X,"
            i = k - 2
            while i > 0 and words[i - 1] not in _CLAUSE_BREAKS:
                i -= 1
            if 1 <= k - 1 - i <= 12:
                spans.setdefault((i, k - 1), set()).add("appos")
        if k >= 2 and words[k - 1] == "(" and k + 1 < n and words[k + 1] == ")":  # "Y (X)"
            i = k - 1
            while i > 0 and (words[i - 1][:1].isupper() or words[i - 1].lower() in _NAME_LINKS | {"the", "for"}):
                i -= 1
            while i < k - 1 and words[i].lower() in _LEADING:
                i += 1
            if i < k - 1:
                spans.setdefault((i, k - 1), set()).add("appos")


_LEADING = frozenset("the a an this that these those his her its their our my your some".split())
# Nouns that name a name: in "The term X means Y" they are X, never what X is.
_NAMING_NOUNS = frozenset("term terms word words phrase phrases expression expressions name names acronym "
                          "acronyms abbreviation abbreviations".split())


def _titles(spans: dict[tuple[int, int], set[str]], toks: list[tuple[int, int, str]], qstems: set[str],
            entities: Sequence[tuple[int, int, str]]) -> None:
    """For "who is X": the title a noun phrase puts before the name ("North Korean leader"
    of "North Korean leader Kim Jong Un"), as a definition: the phrase's words before the
    name that ends it (the question's words, and the rest of a person's name around them:
    "Vladimir" of "who is Putin"), without a leading article; words only."""
    people = [(a, b) for a, b, label in entities if label == "PERSON"]
    for (i, j), kinds in list(spans.items()):
        if "chunk" not in kinds:
            continue
        k = j
        while k > i and _stem(toks[k - 1][2]) in qstems and toks[k - 1][2].lower() not in _STOP:
            k -= 1
        if k == j:
            continue  # the phrase does not end on the name asked about
        k = min([a for a, b in people if a < k < b or (a <= k - 1 < b and b >= j)] + [k])
        while i < k and toks[i][2].lower() in _LEADING:
            i += 1
        if i < k and all(t[2][:1].isalpha() for t in toks[i:k]):
            spans.setdefault((i, k), set()).add("appos")


_LIST_GLUE = frozenset({",", "and", "or", "&"})
_POSSESSIVE = re.compile(r"(?:['’]s?)?$")
_POSSESSIVE_END = re.compile(r"['’]s?$")


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
        if m.label.startswith(SYNTAX_PREFIX):
            continue  # syntactic roles: _roles reads them
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
            for member in run:
                spans[member].add("member")
            kinds = spans.setdefault((run[0][0], run[-1][1]), set())
            kinds.add("list")
            if any(member in typed for member in run):
                kinds.add("typed_list")
    return entities


class _Role(NamedTuple):
    """A phrase in a syntactic role (index/language.py ``syntactic_mentions``), as tokens."""

    i: int
    j: int
    role: str  # subj | subjpass | obj | attr | prep | agent | appos
    head: int  # the token it depends on (a verb; a noun for "appos")


# The roles that answer a question asking for the subject ("who revealed ...?", "what is
# shaping ...?") or for an object ("what did X win?", "where were they sent?").
_SUBJECT_ROLES = frozenset({"subj", "agent"})
_OBJECT_ROLES = frozenset({"obj", "attr", "prep", "subjpass"})


def _roles(spans: dict[tuple[int, int], set[str]], mentions: Sequence[Mention],
           toks: list[tuple[int, int, str]]) -> list[_Role]:
    """The stored syntactic roles as token spans, each also a candidate (whole, and without
    its article)."""
    starts, ends = [t[0] for t in toks], [t[1] for t in toks]
    roles = []
    for m in mentions:
        if not m.label.startswith(SYNTAX_PREFIX):
            continue
        role, _, at = m.label[len(SYNTAX_PREFIX):].partition(":")
        i, j = bisect_right(ends, m.start), bisect_left(starts, m.end)
        head = bisect_right(ends, int(at)) if at.isdigit() else len(toks)
        if not i < j or head >= len(toks) or i <= head < j:
            continue
        roles.append(_Role(i, j, role, head))
        spans.setdefault((i, j), set()).add("role")
        # Without its article and an opening quote ("a “special military operation"): the
        # parse hangs the closing quote elsewhere.
        k = i
        while k < j - 1 and (toks[k][2].lower() in _LEADING or not toks[k][2][0].isalnum()):
            k += 1
        if k > i:
            roles.append(_Role(k, j, role, head))
            spans.setdefault((k, j), set()).add("role")
    return roles


def _role_features(roles: list[_Role], tk: _Tokens, asks: str, qtype: str,
                   spans: dict[tuple[int, int], set[str]]) -> dict[tuple[int, int], dict[str, float]]:
    """Per candidate span, what its syntactic role says: it is what the question's verb does
    or undergoes ("what is *shaping* relations?" -> the subject of "shape"), in the role the
    question asks for; or the noun phrase heading such a phrase ("the tension" of "the tension
    from the ongoing conflict"); or it shares a verb with a phrase holding the question's
    words ("where are the *soldiers* sent?" -> "to construction sites")."""
    out: dict[tuple[int, int], dict[str, float]] = {}
    asked = {"subj": _SUBJECT_ROLES, "obj": _OBJECT_ROLES}.get(asks, frozenset())
    # Where and when questions ask for adverbials ("in London", "on Sunday"), which are the
    # prepositional phrases of a verb, not its subject or object; why and how questions ask
    # for clauses, which the parse often hangs elsewhere ("delayed by two days due to ...").
    adverbial = qtype in ("place", "date")
    by_head: dict[int, list[_Role]] = {}
    for r in roles:
        if r.role != "appos":
            by_head.setdefault(r.head, []).append(r)
    chunks = [(i, j) for (i, j), kinds in spans.items() if "chunk" in kinds]
    for head, args in by_head.items():
        verb_asked = tk.in_question[head + 1] > tk.in_question[head]
        holders = [r for r in args if tk.in_question[r.j] > tk.in_question[r.i]]
        for r in args:
            f = out.setdefault((r.i, r.j), {})
            f["role_arg"] = 1.0
            # The role asked for, of any verb (the question's verb is often another word:
            # "who won?" of "X defeated Y"), when the phrase repeats none of the question.
            if r.role in asked and tk.in_question[r.j] == tk.in_question[r.i]:
                f["role_any_asked"] = 1.0
            fits = r.role == "prep" if adverbial else qtype != "phrase"
            if verb_asked and fits:
                f["role_verb"] = 1.0
                f["role_asked"] = max(f.get("role_asked", 0.0), float(r.role in asked))
                for c in chunks:  # the noun phrase that heads the argument
                    if c[0] in (r.i, r.i + 1) and c[1] < r.j:
                        out.setdefault(c, {})["role_head"] = 1.0
            if fits and any(h.i != r.i and (h.j <= r.i or h.i >= r.j) for h in holders) \
                    and tk.in_question[r.j] == tk.in_question[r.i]:
                f["role_sibling"] = 1.0
    for r in roles:
        if r.role == "appos" and tk.in_question[r.head + 1] > tk.in_question[r.head]:
            out.setdefault((r.i, r.j), {})["role_appos"] = 1.0
    # Inside a phrase of the question's verb: "Who won?" of "X defeated the champion Y" is in
    # the subject, not the object, though both hold a team.
    verbs = [r for r in roles if r.role != "appos" and tk.in_question[r.head + 1] > tk.in_question[r.head]]
    if verbs:
        for i, j in spans:
            for r in verbs:
                if r.i <= i and j <= r.j and (r.i, r.j) != (i, j):
                    f = out.setdefault((i, j), {})
                    f["in_verb_role"] = 1.0
                    if r.role in asked:
                        f["in_asked_role"] = 1.0
                    elif asked:
                        f["in_other_role"] = 1.0
    return out


_FINITE_VERB_TAGS = frozenset({"VBD", "VBP", "VBZ"})


def _verbs(question_doc: Any) -> frozenset[str]:
    """The lower-cased words of a parsed question that its tagger calls finite verbs
    ("published", "enroll"; not "sensing" of "what style of sensing"); none unparsed."""
    if question_doc is None:
        return frozenset()
    try:
        return frozenset(t.lower_ for t in question_doc if t.tag_ in _FINITE_VERB_TAGS)
    except (AttributeError, TypeError):
        return frozenset()


def _asked_role(question_doc: Any, q: _Question) -> str:
    """"subj" when the question's wh-phrase is the subject of its verb ("who revealed this?",
    "what is shaping relations?", "which team won?"), "obj" when the question has a subject
    of its own ("what did Matsegora disclose?"), "" when it cannot tell. From the question's
    tags when given (the tagger runs on every question), else from its words."""
    if question_doc is None:
        return {-1: "subj", 1: "obj"}.get(q.direction, "")
    tags: list[tuple[str, str, str]] = []
    try:  # one array read: a Token object per word costs more than the rest of this
        from spacy.attrs import LOWER, POS, TAG

        strings = question_doc.vocab.strings
        rows = question_doc.to_array([LOWER, POS, TAG]).tolist()
    except (AttributeError, ImportError, TypeError, ValueError):
        rows = []
    for lower, pos, tag in rows:
        word = strings[lower]
        if tags or word in _WH or word in _WH_RUN_ON:
            tags.append((word, strings[pos], strings[tag]))
            if len(tags) == 8:
                break
    if not tags:
        return {-1: "subj", 1: "obj"}.get(q.direction, "")
    wh, rest = tags[0][0], [t for t in tags[1:] if t[1] != "PUNCT"]
    if wh in ("what", "which", "whose", "how"):  # "which team won", "how many troops did"
        while rest and rest[0][1] in ("NOUN", "PROPN", "ADJ", "ADV", "NUM") and rest[0][2] != "WRB":
            rest = rest[1:]
    if wh in _WH_RUN_ON:
        rest = [("is", "AUX", "VBZ")] + rest
    if not rest:
        return ""
    if rest[0][1] == "VERB":
        return "subj"
    if rest[0][1] == "AUX":
        nxt = rest[1] if len(rest) > 1 else ("", "", "")
        if nxt[1] == "VERB" or nxt[2] in ("VBG", "VBN"):
            return "subj"
        return "obj" if nxt[1] in ("NOUN", "PROPN", "PRON", "DET", "ADJ", "NUM") else ""
    return ""


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
        # A list's member is its own clause between commas, but a plural question wants the list.
        "member_plural": float("member" in kinds and qt.plural),
        # Reasons, definitions and qualifiers (the question's form asks for them).
        "reason": float("reason" in kinds),
        "definition": float("appos" in kinds),
        "modifier": float("modifier" in kinds and "num" not in kinds),
        # "cities—including Moscow, Kazan ...", "rivers such as the Danube": examples of the
        # class the question names; "the Danube, which flows ...": the subject of the
        # question's verb, introduced by a relative pronoun.
        # "what stadium" -> "Levi's Stadium": a name that ends with the class noun.
        "named_class": float(bool(q.head) and n > 1 and stems[j - 1] in q.head and toks[j - 1][2][:1].isupper()
                             and toks[i][2][:1].isupper()),
        # "what gorge" -> "Rhine Gorge", "what theorem" -> "the prime number theorem": a phrase
        # ending on the class noun, capitalised or not (the class noun alone is no answer).
        "class_end": float(bool(q.head) and n > 1 and stems[j - 1] in q.head and tk.content[i]),
        "example": float(bool(q.head) and q.type not in ("number", "date") and _after_class(i, tk, q.head)),
        # "who says / thinks / revealed X?": the subject that opens the sentence, when a
        # reporting verb follows it in the same clause ("Analysts ... suggest that ...").
        "speaker": float(q.reporting and i <= 1 and _reported_after(j, tk)),
        "relative": float(j + 2 < len(toks) and toks[j][2] == "," and toks[j + 1][2].lower() in ("which", "who")
                          and tk.in_question[min(j + 4, len(toks))] > tk.in_question[j + 2]),
        "no_type": float(not qt.labels and bool(entities)) * float("ent" in kinds),
    }


def _said(question: str) -> dict[str, float]:
    """The content words of a yes/no question (stems), weighted by position: its last words
    are usually what is asked about ("was the treatment *free*?")."""
    stems = [_stem(w) for w in re.findall(r"\w+", question) if w.lower() not in _STOP and w.lower() not in _LEADERS]
    return {st: (k + 1) / len(stems) for k, st in enumerate(stems)}


def _same_word(a: str, b: str) -> bool:
    # Stems are crude ("allies" -> "alli", "alliance" -> "allian"): a shared prefix of 4 will do.
    return a == b or (min(len(a), len(b)) >= 4 and (a.startswith(b) or b.startswith(a)))


def _confirming(i: int, j: int, tk: _Tokens, said: dict[str, float]) -> dict[str, float]:
    """How well span [i, j) holds what a yes/no question asks about: the question's (later)
    words, with a word or two of the sentence's own ("*absolutely* free", "*strict* sanctions")."""
    found: dict[str, float] = {}
    extra = 0
    for k in range(i, j):
        if not tk.content[k]:
            continue
        hit = next((w for st, w in said.items() if _same_word(tk.stems[k], st)), None)
        if hit is None:
            extra += 1
        else:
            found[tk.stems[k]] = max(hit, found.get(tk.stems[k], 0.0))
    # The best word, not the sum: a long span gathering the question's subject is not the point.
    return {"yn_match": max(found.values(), default=0.0), "yn_extra": min(extra, 2) / 2 if found else 0.0}


_REPORTING = frozenset(map(_stem, "say said says think thinks thought believe believes suggest suggests "
                      "report reported reports reveal revealed claim claimed argue argued state stated "
                      "note noted warn warned allege alleged disclose disclosed announce announced "
                      "insist insisted estimate estimated conclude concluded indicate indicated "
                      "predict predicted".split()))


def _reported_after(j: int, tk: _Tokens) -> bool:
    for k in range(j, len(tk.toks)):
        if tk.toks[k][2] in _CLAUSE_BREAKS and tk.toks[k][2] not in "()":
            return False
        if tk.stems[k] in _REPORTING:
            return True
    return False


_EXAMPLE_CUES = frozenset("including include includes such as like namely especially particularly notably — –".split())


def _after_class(i: int, tk: _Tokens, head: frozenset[str]) -> bool:
    """Span starting at ``i`` follows the class noun and an example cue ("cities—including",
    "rivers such as", "cities like")."""
    k, cues = i - 1, 0
    while k >= 0 and i - k <= 3 and tk.toks[k][2].lower() in _EXAMPLE_CUES | {",", ":"}:
        cues += tk.toks[k][2] not in ",:"
        k -= 1
    return cues > 0 and k >= 0 and tk.stems[k] in head


def _weights(qtype: str, level: str = "syntax") -> dict[str, float]:
    """One weight per feature for this question type, for what the sentence's analysis holds:
    "syntax" (entities, noun chunks and syntactic roles), "mentions" (entities and noun chunks
    alone: stored before the roles were) or "rules" (no analysis)."""
    if qtype == "yes_no":
        return _LEVELS["yes_no"].weights
    chosen = _LEVELS[level]
    return {**chosen.weights, **chosen.by_type[qtype]}


def _level(mentions: Sequence[Mention] | None) -> str:
    if not mentions:
        return "rules"
    return "syntax" if any(m.label.startswith(SYNTAX_PREFIX) for m in mentions) else "mentions"


def _score(feats: dict[str, float], weights: dict[str, float]) -> float:
    return sum(weights.get(k, 0.0) * v for k, v in feats.items() if v)


def candidates(question: str, sentence: str, mentions: Sequence[Mention] | None = None,
               question_doc: Any = None) -> tuple[str, list[tuple[int, int, dict[str, float]]]]:
    """The question's coarse type and every candidate span (code-point offsets into
    ``sentence``) with its features, in a fixed order: what the weights were fitted on
    (evaluation/short_answers.py)."""
    toks = [(m.start(), m.end(), m.group()) for m in _TOKEN.finditer(sentence)]
    q = _question(question, _verbs(question_doc))
    qt = question_type(question_doc if question_doc is not None else question)
    if qt.definition:  # "who is Matsegora?": a description, not a person
        q = q._replace(type="thing")
    qstems = {_stem(w) for w in re.findall(r"\w+", question) if w.lower() not in _STOP}
    matched = [k for k, t in enumerate(toks) if t[2].lower() not in _STOP and _stem(t[2]) in qstems]
    spans = _candidates(sentence, toks, qstems, q)
    entities = _add_mentions(spans, mentions, toks, qt) if mentions else []
    if q.define and mentions and qt.wh == "who":
        _titles(spans, toks, qstems, entities)
    roles = _roles(spans, mentions, toks) if mentions else []
    out = []
    tk = _tokens(toks, qstems)
    by_role = _role_features(roles, tk, _asked_role(question_doc, q), q.type, spans) if roles else {}
    # "a Russian diplomat" answers "who?", not its adjective "Russian": an entity that only
    # modifies the noun its phrase ends on.
    chunks = [span for span, kinds in spans.items() if "chunk" in kinds] if roles else []
    # Not a count or date ("11,000 troops" answers "how many") nor a possessor ("the
    # Kremlin’s view" answers "whose").
    modifiers = {(a, b) for a, b, label in entities if any(c <= a and b < d for c, d in chunks)
                 and label not in _NUMBER_LABELS | _TIME_LABELS and not _POSSESSIVE_END.search(toks[b - 1][2])}
    # ... and the noun phrase such an entity of the expected type modifies.
    modified = [(a, b, label) for a, b, label in entities if (a, b) in modifiers]
    said = _said(question) if q.yes_no else {}
    for (i, j), kinds in sorted(spans.items()):
        if q.define and all(t[2].lower() in _LEADING | _NAMING_NOUNS for t in toks[i:j]):
            continue  # "The term" of "The term “SVO” refers to ...": X itself, not what it is
        feats = _features(i, j, tk, matched, qstems, q, kinds, qt, entities)
        if roles:
            feats.update(by_role.get((i, j), {}))
            feats["modifier_entity"] = float((i, j) in modifiers)
            feats["modified_chunk"] = float("chunk" in kinds and any(
                i <= a and b < j and label in qt.labels for a, b, label in modified))
            # "North Korean leader Kim Jong Un" for "who runs north korea": an entity of the
            # asked type that ends a noun phrase holding the question's words, which describe it.
            feats["described"] = float("typed" in kinds and tk.in_question[j] == tk.in_question[i] and any(
                c < i and j == d and tk.in_question[i] > tk.in_question[c] for c, d in chunks))
        if q.yes_no:
            feats.update(_confirming(i, j, tk, said))
        end = toks[j - 1][1]
        # "the Kremlin’s characterization" -> "Kremlin", not "Kremlin’s".
        if j - i > 1 or len(toks[i][2]) > 2:
            end -= len(_POSSESSIVE.search(toks[j - 1][2]).group())  # type: ignore[union-attr]
        out.append((toks[i][0], end, feats))
    return ("yes_no" if q.yes_no else q.type), out


def extract_short_answer(question: str, sentence: str, mentions: Sequence[Mention] | None = None,
                         question_doc: Any = None) -> tuple[int, int] | None:
    """Code-point offsets (start, end), end-exclusive, of the short answer in `sentence`, or
    None when the sentence has no candidate span. ``mentions``: the sentence's entities and
    noun chunks (offsets into ``sentence``, as stored at ingest); ``question_doc``: the
    question parsed by the same pipeline (a spaCy Doc). Without them the answer comes from
    the rules and the question's words alone.

    A question asking for a count or a date ("how many", "when did", "what year") gets no
    short answer rather than a phrase of another kind: "when was the interview published?"
    of a sentence without a date is not answered "light", nor "how many teachers?" "workers"
    (the answer still cites the sentence; docs/EVALUATION.md round 12)."""
    found = best_span(question, sentence, mentions, question_doc)
    if found is None:
        return None
    (start, end), _ = found
    if asks_count_or_date(question) and not _of_asked_kind(question, sentence, start, end, mentions):
        return None
    return start, end


def _of_asked_kind(question: str, sentence: str, start: int, end: int, mentions: Sequence[Mention] | None) -> bool:
    """Whether ``sentence[start:end]`` is a count or a date as the question asks: the marks
    ``could_hold_count_or_date`` reads, here of the answer itself (and of the entities it is
    part of), so a word the question holds counts too ("how many of the three drives …?" →
    "three")."""
    return _count_or_date_marked(question, re.findall(r"\w+", sentence[start:end].lower()),
                                 [m for m in mentions or () if m.start < end and start < m.end])


def best_span(question: str, sentence: str, mentions: Sequence[Mention] | None = None,
              question_doc: Any = None) -> tuple[tuple[int, int], float] | None:
    """``extract_short_answer``'s span with its score: how answer-shaped the best span is (a
    typed entity beside the question's words scores high; the lead sentence is chosen with it,
    qa/answer_lead.py)."""
    return _best_span(question, sentence, tuple(mentions) if mentions else None, question_doc)


# One request asks twice of its lead sentence (choosing the lead, then its short answer), with
# the same parsed question (a spaCy Doc, hashed by identity: the cache keeps the few it holds
# alive, and a Doc is the parse of the question beside it in the key).
@lru_cache(maxsize=64)
def _best_span(question: str, sentence: str, mentions: tuple[Mention, ...] | None,
               question_doc: Any) -> tuple[tuple[int, int], float] | None:
    # Offsets from elsewhere: keep only those that lie inside this sentence.
    inside = [m for m in mentions if 0 <= m.start < m.end <= len(sentence)] if mentions else None
    qtype, cands = candidates(question, sentence, inside, question_doc)
    if qtype == "yes_no" and not any(feats["yn_match"] for _, _, feats in cands):
        qtype = "thing"  # the sentence does not repeat what is asked: the usual choice
    weights = _weights(qtype, _level(inside))
    # "How many X?" is answered by a count: where the sentence holds one, a phrase beside the
    # question's words ("a significant rise") is no answer.
    if _COUNT_ASKED.search(question) and any(feats["num"] for _, _, feats in cands):
        cands = [c for c in cands if c[2]["num"]]
    best, span = float("-inf"), None
    for start, end, feats in cands:
        score = _score(feats, weights)
        if score > best:
            best, span = score, (start, end)
    return None if span is None else (span, best)


def asks_for_a_name(question: str) -> bool:
    """Whether the short answer is a name, a number or a date ("what X", "who", "where",
    "when", "how many"), not a reason, a manner, a description or a yes or no ("why", "how",
    "what is X", "did ..."): only the former's best span tells a sentence that answers from
    one that is merely about the question (qa/answer_lead.py)."""
    q = _question(question)
    return not (q.yes_no or q.define or q.why or q.type == "phrase")


def holds_expected_type(question: str, sentence: str, mentions: Sequence[Mention] | None = None,
                        question_doc: Any = None) -> bool:
    """Whether ``sentence`` holds something of the kind the question asks for (a number for
    "how many", a date for "when", an entity of the expected label that the question does not
    name itself); True when the question expects no particular kind. Lets a caller holding
    several cited sentences take the short answer from the first that can give one."""
    q = _question(question)
    qt = question_type(question_doc if question_doc is not None else question)
    if q.yes_no or qt.definition or q.define or not (qt.labels or q.type in ("number", "date")):
        return True
    if mentions:
        inside = [m for m in mentions if 0 <= m.start < m.end <= len(sentence)]
        if qt.labels and type_match(qt.labels, inside, sentence, question) == 1.0:
            return True
    asked = set(re.findall(r"\w+", question.lower()))
    pattern = {"number": _QUANTITY, "date": _DATE}.get(q.type)
    return pattern is not None and any(not set(re.findall(r"\w+", m.group().lower())) <= asked
                                       for m in pattern.finditer(sentence))


# "How many / how much" and past or future "when" questions ("when did / was / were / will"):
# their answer is a count or a date. Present-tense "when do chloroplasts spread out?" asks for
# a condition, and "When X, what ...?" opens with a clause: neither is checked.
_COUNT_ASKED = re.compile(r"^\W*(?:and\s+|so\s+)?how\s+(?:many|much)\b", re.IGNORECASE)
_DATE_ASKED = re.compile(r"^\W*(?:and\s+|so\s+)?(?:when\s+(?:did|was|were|will|had)|(?:in\s+)?(?:what|which)\s+year)\b",
                         re.IGNORECASE)
# The number words of _QUANTITY ("hundreds?": both forms) and vaguer counts ("many times").
_COUNT_WORDS = frozenset(
    [form for w in _NUMBER_WORDS.split() for form in ((w[:-2], w[:-1]) if w.endswith("s?") else (w,))]
    + "hundred thousand million billion score scores several many few numerous multiple single couple double "
      "twice thrice once none all every most some".split())
_TIME_WORDS = frozenset(
    "year years decade decades century centuries month months week weeks day days today yesterday tomorrow "
    "morning evening night spring summer autumn fall winter era age ages period time times ago later earlier "
    "before after during since until recently recent early late end beginning start now then once monday "
    "tuesday wednesday thursday friday saturday sunday".split() + _MONTHS.split())
_NUMBER_LABELS = frozenset({"CARDINAL", "QUANTITY", "MONEY", "PERCENT", "ORDINAL"})
_TIME_LABELS = frozenset({"DATE", "TIME", "EVENT"})


def asks_count_or_date(question: str) -> bool:
    """Whether the question asks for a count ("how many / how much") or a date ("when did /
    was / were / will", "what year"), the only kinds whose mark in a sentence is reliable
    enough to refuse an answer without it (qa/answer.py ``_lacks_asked_kind``)."""
    return bool(_COUNT_ASKED.search(question) or _DATE_ASKED.search(question))


def could_hold_count_or_date(question: str, sentence: str, mentions: Sequence[Mention] | None = None) -> bool:
    """Whether ``sentence`` could answer a count or date question: a digit, a number or time
    word, or an entity of a number or time label, that the question does not already hold.
    Deliberately lenient ("many times", "a single output", "toward the end of his life" pass),
    since a False makes the answer unsupported; it is the sentences with nothing of the kind
    (a count asked of a sentence about visas) that it exists to catch."""
    asked = set(re.findall(r"\w+", question.lower()))
    return _count_or_date_marked(
        question, [w for w in re.findall(r"\w+", sentence.lower()) if w not in asked],
        [m for m in mentions or () if not set(re.findall(r"\w+", sentence[m.start:m.end].lower())) <= asked])


def _count_or_date_marked(question: str, words: Sequence[str], mentions: Sequence[Mention]) -> bool:
    """Whether ``words`` or ``mentions`` mark a count or a date, as the question asks: a digit,
    a number or time word, or an entity of a number or time label."""
    date = _DATE_ASKED.search(question) is not None
    if any(any(ch.isdigit() for ch in w) for w in words):
        return True
    if any(w in (_TIME_WORDS if date else _COUNT_WORDS) for w in words):
        return True
    labels = _TIME_LABELS if date else _NUMBER_LABELS
    return any(m.label in labels for m in mentions)


_NEGATIONS = frozenset("not no never without against neither nor none nothing nobody denied denies deny "
                       "refused refuses declined declines rejected rejects".split())


def yes_no_verdict(question: str, sentence: str) -> str | None:
    """"yes" or "no" for a yes/no question the sentence plainly speaks to, else None.

    Plainly: every content word of the question (or a word sharing its stem) is in the sentence;
    then a negation in the sentence ("not", "never", "opted against", "without" ...) says no.
    Deliberately timid: word overlap cannot tell "North Korea" from "South Korea" unless every
    word must be found, and there is no entailment model here. The words are not a span of the
    sentence, so a verdict needs a field of its own beside the short answer (it is not one)."""
    if not _question(question).yes_no:
        return None
    said = _said(question)
    words = [m.group() for m in _TOKEN.finditer(sentence)]
    stems = [_stem(w) if _is_content(w) else "" for w in words]
    found = [k for k, st in enumerate(stems) if st and any(_same_word(st, x) for x in said)]
    if not said or not all(any(_same_word(stems[k], x) for k in found) for x in said):
        return None
    # A negation counts where it governs the question's words: within three words before
    # one of them, in the same clause ("was *not* free", "opted *against* requesting").
    for k in found:
        for w in reversed(words[max(0, k - 3):k]):
            if w in _CLAUSE_BREAKS:
                break
            if w.lower() in _NEGATIONS or w.lower().endswith(("n't", "n’t")):
                return "no"
    return "yes"
