"""What an abbreviation stands for: whether a question asks it, and whether a sentence spells
it out.

"What does DPRK stand for?" is answered by a sentence that spells the letters out
("Democratic People's Republic of Korea") or says what the abbreviation means ("The term
“SVO” refers to ... a “special military operation”", whose letters are Russian's). A sentence
that merely uses "DPRK" scores high on every ranking feature (it holds the rarest word of the
question) and was cited with a confident nonsense short answer. So such a question is refused
when none of the best sentences does either (qa/answer.py), as a count is refused by
sentences without a number.

Spelling out is read leniently, since a false "spells it out" only keeps today's answer: the
letters are the initials of consecutive words, of any case ("LGM": "the last glacial
maximum"), and the little words of names ("of", "the", "for", "and"...) may give a letter or
be passed over ("FOTA": "Festival of the Arts"; "DPRK": "Democratic People's Republic of
Korea").
"""

from __future__ import annotations

import re

from citeqa.index.text import STOPWORDS

# "what does X stand for", "what is X short for", "what's X an abbreviation of". Not "what
# does X mean": an apposition answers that ("the NIS, South Korea's spy agency,"), and a
# sentence that merely uses X is punctuated the same way ("in the DPRK, all this was free").
_STANDS_FOR = re.compile(
    r"\bwhat(?:\s+does|\s+do|\s+did|\s+is|['’]?s)\s+(?:the\s+)?(?P<x>[\w&.]{2,12})\s+"
    r"(?:stand(?:s)?\s+for|short\s+for|an?\s+(?:abbreviation|acronym)\s+(?:of|for))\b", re.I)
_WORD = re.compile(r"\w+(?:['’]\w+)?")
# Words a name's initials may pass over.
_LINKS = frozenset("of the for and on de du la in to a an & s".split())
MIN_LETTERS, MAX_LETTERS = 2, 8
# A word typed in lower case is taken for an abbreviation only when it is this short and no
# common word ("what do they stand for", "what does labour stand for" ask about values).
MAX_LOWER_LETTERS = 5
# Words that say what a term means, beside it.
_DEFINING = re.compile(r"\b(?:refer(?:s|red)?\s+to|stand(?:s|ing)?\s+for|short\s+for|mean(?:s|ing)?|"
                       r"abbreviat\w*|acronym|known\s+as|called|i\.\s?e\.)", re.I)


def asked_abbreviation(question: str) -> str | None:
    """The abbreviation a question asks to be spelled out, lower-cased letters only; None when
    it asks no such thing."""
    found = _STANDS_FOR.search(question)
    if found is None:
        return None
    written = found.group("x")
    letters = _letters(written)
    if not MIN_LETTERS <= len(letters) <= MAX_LETTERS:
        return None
    capitals = sum(ch.isupper() for ch in written) >= 2
    return letters if capitals or (len(letters) <= MAX_LOWER_LETTERS and letters not in STOPWORDS) else None


def _letters(written: str) -> str:
    """An abbreviation as compared: its letters, lower-cased ("D.P.R.K." -> "dprk")."""
    return "".join(ch for ch in written.lower() if ch.isalpha())


def explains(letters: str, text: str) -> bool:
    """Whether ``text`` spells the abbreviation out, or names it beside words that say what a
    term means ("refers to", "stands for", "known as" ...)."""
    if spells_out(letters, text):
        return True
    named = any(_letters(w) == letters for w in re.findall(r"[\w&.]+", text))
    return named and _DEFINING.search(text) is not None


def spells_out(letters: str, text: str) -> bool:
    """Whether consecutive words of ``text`` have ``letters`` as their initials (little words
    may be passed over), starting on a word that is not a little one."""
    words = [w.lower() for w in _WORD.findall(text)]
    return any(words[i][0] == letters[0] and words[i] not in _LINKS and _spells(letters, 1, words, i + 1)
               for i in range(len(words)))


def _spells(letters: str, k: int, words: list[str], i: int) -> bool:
    if k == len(letters):
        return True
    if i == len(words):
        return False
    word = words[i]
    if word[0] == letters[k] and _spells(letters, k + 1, words, i + 1):
        return True
    return word in _LINKS and _spells(letters, k, words, i + 1)
