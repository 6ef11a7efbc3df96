"""The kind of thing a question asks for, in spaCy's entity labels, and whether a sentence holds one.

"Who is the Russian ambassador?" expects a PERSON (or an ORG / NORP: "who" also asks for
groups), "how many troops?" a CARDINAL or QUANTITY, "what year ..." a DATE, "which cities ..."
a GPE. The rules read the question's wh-word and, for "what/which X" and "how many X", the head
noun X (through "kind/type/name of"), looked up in a small lexicon of classes. An empty set
means "no expectation" (why / how / yes-no questions and "what" with an unknown head): the
answer is then a phrase, not an entity.

Given a spaCy ``Doc`` of the question, the head noun is the first noun the tagger finds after
the wh-word (skipping adjectives: "what famous city"); given plain text, the first content word
after it. Both paths give the same answer on ordinary questions; the Doc path is steadier on
unusual word order. Nothing here loads a pipeline: the caller parses (index/language.py).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

from citeqa.index.types import Mention

PEOPLE = frozenset({"PERSON", "ORG", "NORP"})
NUMBERS = frozenset({"CARDINAL", "QUANTITY", "MONEY", "PERCENT"})
DATES = frozenset({"DATE", "TIME"})
PLACES = frozenset({"GPE", "LOC", "FAC"})

_WH = ("what", "which", "who", "whom", "whose", "when", "where", "why", "how")
# Contractions and a common misspelling, as people type them.
_WH_VARIANTS = ("who's", "whos", "what's", "whats", "where's", "wheres", "how's", "hows", "wich")
# Words between the wh-word and the noun that names the class: "what kind of X", "which one of".
_SKIP = frozenset("kind kinds type types sort sorts form forms name names one ones of the a an "
                  "two three four main first last other specific particular exact".split())
_STOP = frozenset("is are was were be been do does did has have had can could will would should "
                  "may might must the a an this that these those it its to in on at of for by".split())

# Head noun -> expected labels. Lemma forms; plurals are reduced before the lookup.
_CLASSES: dict[str, frozenset[str]] = {}
for _labels, _nouns in (
    (frozenset({"PERSON"}), "person man woman individual king queen president leader author writer "
     "scientist player actor actress emperor pope general minister ambassador artist composer singer "
     "poet philosopher architect coach founder chancellor governor senator official physicist "
     "chemist mathematician inventor explorer saint prophet ruler monarch prince princess duke lord "
     "father mother son daughter wife husband brother sister chef judge quarterback pitcher "
     "commander diplomat general mayor premier candidate director manager owner engineer designer "
     "painter sculptor musician economist historian novelist playwright student teacher"),
    (frozenset({"PERSON", "NORP", "ORG"}), "people group tribe family dynasty"),
    (frozenset({"ORG"}), "company team organization organisation band university college school "
     "institution agency party club firm corporation business newspaper network church league "
     "association institute government army navy committee council court bank airline publisher "
     "label station channel magazine outlet service union brand manufacturer ministry department "
     "faction"),
    (frozenset({"GPE", "LOC"}), "city country state region area location town village continent "
     "county province nation capital place district neighborhood neighbourhood borough territory "
     "kingdom empire republic colony suburb municipality"),
    (frozenset({"LOC"}), "river mountain lake sea ocean island desert valley peninsula bay coast "
     "forest range"),
    (frozenset({"FAC", "ORG"}), "building stadium airport bridge street road hospital museum "
     "church cathedral temple palace castle tower venue arena theatre theater station"),
    (frozenset({"NORP"}), "nationality religion ethnicity"),
    (frozenset({"LANGUAGE"}), "language"),
    (frozenset({"DATE", "TIME"}), "year date day month decade century era period time age season"),
    (frozenset({"CARDINAL", "QUANTITY"}), "number amount population size length height distance "
     "speed total temperature weight depth area width count"),
    (frozenset({"PERCENT"}), "percentage percent proportion share"),
    (frozenset({"MONEY"}), "cost price value salary fee budget revenue income wage sum"),
    (frozenset({"EVENT"}), "war battle event game tournament election championship"),
    (frozenset({"WORK_OF_ART"}), "book novel film movie song album play painting poem opera show "
     "series"),
    (frozenset({"LAW"}), "law act treaty amendment"),
):
    for _noun in _nouns.split():
        _CLASSES[_noun] = _CLASSES.get(_noun, frozenset()) | _labels

# "how <adjective>" questions and the labels their answers carry.
_HOW: dict[str, frozenset[str]] = {
    "many": frozenset({"CARDINAL", "QUANTITY", "MONEY", "PERCENT"}),
    "much": frozenset({"MONEY", "QUANTITY", "CARDINAL", "PERCENT"}),
    "long": frozenset({"DATE", "TIME", "QUANTITY", "CARDINAL"}),
    "old": frozenset({"DATE", "CARDINAL"}),
    "often": frozenset({"DATE", "TIME", "CARDINAL"}),
    "far": frozenset({"QUANTITY", "CARDINAL"}),
}
for _adjective in "tall high deep wide big large heavy fast large small".split():
    _HOW[_adjective] = frozenset({"QUANTITY", "CARDINAL"})
# "how many", "how long": the adjective asks for a measure; it is no word of the subject, and
# the answer seldom holds it ("many of the North Koreans arriving ..." does not say how many).
_HOW_PHRASE = re.compile(r"\b(how)\s+(?:" + "|".join(sorted(_HOW)) + r")\b", re.IGNORECASE)
_COPULAS = frozenset("is are was were".split())
_WORD = re.compile(r"[A-Za-z]+(?:['’][a-z]+)?")


# Verbs people put in a question's frame ("why are soldiers *going* to Korea", "what
# *happened* at Kursk", "what does the NIS *say*", "what do they *think* of", "what does SVO
# *mean*") that a sentence answering it seldom repeats ("reported", "a favorable perception",
# "refers to"): absent from every candidate, they weighed as the rarest words and pulled every
# candidate's coverage down. Lower case only ("Gotten" may be a name); not "means" (a noun).
_FRAME_VERBS = re.compile(r"\b(?:go|goes|going|went|gone|get|gets|getting|got|gotten|"
                          r"happen|happens|happened|happening|say|says|said|saying|"
                          r"think|thinks|thinking|mean|meant)\b")


def subject_text(question: str) -> str:
    """The question without the words of its frame that name nothing asked about: the measure
    word of a "how <adjective>" phrase ("how many troops did they send" → "how troops did
    they send") and light verbs ("go", "get", "happen"). What the ranker matches sentences
    against."""
    return _FRAME_VERBS.sub("", _HOW_PHRASE.sub(r"\1", question))


class _Token(Protocol):
    """What is read of a spaCy token (duck-typed, so this module never imports spaCy)."""

    lower_: str
    pos_: str


@dataclass(frozen=True)
class QuestionType:
    """``labels``: the expected entity labels (empty: no expectation); ``wh``: the wh-word
    ("" for none); ``head``: the class noun of "what X" / "how many X" ("" for none);
    ``plural``: the head is plural ("which cities": a list is welcome); ``definition``: "who
    is Matsegora?" asks what a name stands for (a description), not for another name."""

    labels: frozenset[str]
    wh: str
    head: str
    plural: bool
    definition: bool = False


def _singular(word: str) -> str:
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("ses", "xes", "ches", "shes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word


def _classify(words: Sequence[str], nouns: Sequence[bool] | None) -> QuestionType:
    """``words``: the question's lower-case words; ``nouns``: which of them the tagger calls
    nouns (None without a tagger)."""
    wh_at = next((k for k, w in enumerate(words) if w in _WH or w in _WH_VARIANTS),
                 None)
    if wh_at is None:
        # "number of north korean troops?", "name of the hospital?": the class noun leads.
        lead = [w for w in words[:3] if w not in _SKIP]
        head = _singular(lead[0]) if lead else ""
        labels = _CLASSES.get(head, frozenset()) if words[:1] and words[0] in ("number", "name", "year") \
            or head in ("number", "year", "date") else frozenset()
        return QuestionType(labels, "", head if labels else "", False)
    wh = words[wh_at].replace("'", "").replace("’", "")
    wh = {"whos": "who", "whats": "what", "wheres": "where", "hows": "how", "wich": "which"}.get(wh, wh)
    after = list(words[wh_at + 1:])
    after_nouns = list(nouns[wh_at + 1:]) if nouns is not None else None
    if wh in ("who", "whom", "whose"):
        # "who is Matsegora" / "who was Genghis Khan": a bare name after the copula, no "the".
        rest = after[1:] if after[:1] and after[0] in _COPULAS else []
        if rest and len(rest) <= 3 and not set(rest) & _STOP and not any("'" in w or "’" in w for w in rest):
            return QuestionType(frozenset(), wh, "", False, definition=True)
        return QuestionType(PEOPLE, wh, "", False)
    if wh == "when":
        return QuestionType(DATES, wh, "", False)
    if wh == "where":
        return QuestionType(PLACES, wh, "", False)
    if wh == "why":
        return QuestionType(frozenset(), wh, "", False)
    if wh == "how":
        adjective = after[0] if after else ""
        labels = _HOW.get(adjective, frozenset())
        head = ""
        if adjective in ("many", "much") and len(after) > 1 and after[1] not in _STOP:
            head = after[1]
            if _CLASSES.get(_singular(head), frozenset()) & DATES:  # "how many years"
                labels = frozenset({"DATE", "TIME", "CARDINAL"})
            elif _singular(head) in ("dollar", "euro", "pound"):
                labels = frozenset({"MONEY"})
            elif _singular(head) in ("percent", "percentage"):
                labels = frozenset({"PERCENT"})
        return QuestionType(labels, wh, _singular(head), head.endswith("s"))
    # what / which: the noun phrase after the wh-word names the class ("which NFL team": the
    # phrase's last noun, or the first of its words the lexicon knows).
    run: list[str] = []
    for k, w in enumerate(after):
        # "what is the capital of ...": past a copula, its subject's noun names the class.
        if (w in _SKIP and not run) or (k == 0 and w in _COPULAS):
            continue
        if w in _STOP or w in _SKIP or len(run) == 3:
            break
        if after_nouns is not None and not after_nouns[k]:
            if run:
                break
            continue  # an adjective before the noun: "what famous city"
        run.append(w)
    head = next((w for w in run if _singular(w) in _CLASSES), run[-1] if run else "")
    labels = _CLASSES.get(_singular(head), frozenset())
    if not labels and "year" in after[:3]:
        labels = DATES
    return QuestionType(labels, wh, _singular(head), head.endswith("s") and not head.endswith("ss"))


@lru_cache(maxsize=4096)
def _from_text(question: str) -> QuestionType:
    return _classify([w.lower() for w in _WORD.findall(question)], None)


def question_type(question: str | Sequence[_Token]) -> QuestionType:
    """The question's expected answer type, from its text or its spaCy Doc."""
    if isinstance(question, str):
        return _from_text(question)
    tokens = [t for t in question if any(c.isalpha() for c in t.lower_)]
    return _classify([t.lower_ for t in tokens], [t.pos_ in ("NOUN", "PROPN") for t in tokens])


def expected_types(question: str | Sequence[_Token]) -> frozenset[str]:
    """spaCy entity labels an answer to ``question`` would carry; empty when it expects none."""
    return question_type(question).labels


def _content(text: str) -> set[str]:
    words = (re.sub(r"['’]s$", "", w.lower()) for w in _WORD.findall(text))  # "Russia's" ~ "Russia"
    return {w for w in words if w not in _STOP}


@lru_cache(maxsize=4096)
def _question_content(question: str) -> frozenset[str]:
    # A ranker asks type_match of each candidate of one question: its words are read once.
    return frozenset(_content(question))


def type_match(expected: frozenset[str], mentions: Sequence[Mention], sentence: str,
               question: str = "") -> float:
    """1.0 when ``sentence`` holds a mention labelled with an expected type whose words are not
    all in ``question`` (the question's own "Russia" does not answer "which country"); 0.5 when
    its only such mentions repeat the question; 0.0 otherwise, and when nothing is expected."""
    if not expected:
        return 0.0
    asked = _question_content(question)
    found = 0.0
    for m in mentions:
        if m.label in expected:
            words = _content(sentence[m.start:m.end])
            if not words or not words <= asked:
                return 1.0
            found = 0.5
    return found
