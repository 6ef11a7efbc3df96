"""Short answers cut from one evidence sentence: known cases, offset safety, SQuAD F1."""

from __future__ import annotations

import json
import re
import string
import time
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from citeqa.qa.short_answer import extract_short_answer
from tests.support.corpus import SHARED_EVAL

SQUAD_DEV = SHARED_EVAL / "squad_dev.jsonl"
# Held-out half (questions 1001-2000, never used to set the rules or weights) measured F1 0.509
# (whole sentence: 0.253); the floor leaves room for harmless changes, not for a regression.
HELD_OUT_F1_FLOOR = 0.49

TROOPS = ("Kim Jong Un’s leadership has reportedly dispatched approximately 11,000 to 12,000 "
          "elite troops to assist in the conflict, raising concerns in Western nations that North "
          "Korean forces could gain invaluable battlefield experience as a result.")
PENICILLIN = "Penicillin was discovered in 1928 by Alexander Fleming at St Mary's Hospital in London."

# (question, sentence, acceptable answers)
CASES = [
    ("How many troops did North Korea send?", TROOPS,
     {"approximately 11,000 to 12,000", "11,000 to 12,000"}),
    ("How many people live in the town?",
     "The town has a population of 4,500 people and lies on the river.", {"4,500", "4,500 people"}),
    ("How much did the bridge cost?",
     "The new bridge cost $2.5 million and opened two years later.", {"$2.5 million"}),
    ("How many moons does Mars have?",
     "Mars has two small moons, Phobos and Deimos, which may be captured asteroids.", {"two"}),
    ("How old was the king when he died?",
     "The king died in his palace at the age of 64.", {"64"}),
    ("What percentage of the land is forest?",
     "About 37 percent of the land is covered by forest.", {"37", "About 37 percent", "37 percent"}),
    ("What year was the university founded?",
     "The university was founded in 1891 by a group of merchants.", {"1891"}),
    ("In what year did the war end?", "The war ended in 1945 with the surrender of Japan.", {"1945"}),
    ("When did the ship sink?",
     "The ship sank on April 15, 1912, after striking an iceberg.", {"April 15, 1912"}),
    ("When was the castle built?",
     "The castle was built in the 12th century on a hill above the village.", {"12th century"}),
    ("When was penicillin discovered?", PENICILLIN, {"1928"}),
    ("Who discovered penicillin?", PENICILLIN, {"Alexander Fleming"}),
    ("Where was penicillin discovered?", PENICILLIN, {"St Mary's Hospital", "London"}),
    ("Who painted the ceiling of the chapel?",
     "The ceiling of the chapel was painted by Michelangelo between 1508 and 1512.", {"Michelangelo"}),
    ("Who wrote the novel?",
     "The novel was written by Jane Austen and published anonymously.", {"Jane Austen"}),
    ("Where was the treaty signed?",
     "The treaty was signed in Paris after months of negotiation.", {"Paris"}),
    ("Where is the headquarters of the bank?",
     "The bank has its headquarters in Frankfurt, the largest city in Hesse.", {"Frankfurt"}),
    ("Which company makes the iPhone?",
     "The iPhone is a line of smartphones designed and marketed by Apple Inc.", {"Apple Inc", "Apple"}),
    ("What is the capital of Australia?",
     "Canberra is the capital of Australia, although Sydney is its largest city.", {"Canberra"}),
    ("What did the committee approve?",
     "After a long debate the committee approved a new budget for the museum.",
     {"new budget", "a new budget", "a new budget for the museum"}),
    ("Why was the match postponed?",
     "The match was postponed because heavy rain had flooded the pitch.",
     {"heavy rain", "heavy rain had flooded the pitch"}),
]

# Right answers these rules miss: they need syntax (the subject of a relative clause, an
# appositive) or word meaning (a violin is an instrument, a school orchestra is not).
KNOWN_MISSES = [
    ("Which river flows through the city?",
     "The city lies on both banks of the Danube, which flows east to the Black Sea.", {"Danube"}),
    ("What is the tallest mountain in Africa?",
     "Kilimanjaro, a dormant volcano in Tanzania, is the tallest mountain in Africa.", {"Kilimanjaro"}),
    ("What instrument did she play?",
     "As a child she played the violin in the school orchestra.", {"violin"}),
]


def answer_text(question: str, sentence: str) -> str | None:
    span = extract_short_answer(question, sentence)
    return None if span is None else sentence[span[0]:span[1]]


@pytest.mark.parametrize(("question", "sentence", "expected"), CASES, ids=[c[0] for c in CASES])
def test_known_answers(question, sentence, expected):
    assert answer_text(question, sentence) in expected


@pytest.mark.parametrize(("question", "sentence", "expected"), KNOWN_MISSES,
                         ids=[c[0] for c in KNOWN_MISSES])
@pytest.mark.xfail(reason="needs syntax or word meaning the rules do not have", strict=False)
def test_known_misses(question, sentence, expected):
    assert answer_text(question, sentence) in expected


@pytest.mark.parametrize("sentence", ["", "   ", "\n\t", "...", "—", "(  )"])
def test_sentences_without_words(sentence):
    span = extract_short_answer("How many troops did North Korea send?", sentence)
    assert span is None or sentence[span[0]:span[1]].strip()


def test_offsets_count_code_points_not_bytes():
    sentence = "Die Brücke über die Mosel in Koblenz wurde 1864 fertiggestellt — 🌉 schön."
    span = extract_short_answer("In what year was the bridge finished?", sentence)
    assert span is not None and sentence[span[0]:span[1]] == "1864"


WORDS = ["How", "many", "who", "when", "where", "which", "what", "year", "the", "of", "in",
         "Paris", "1,200", "$3.5", "million", "May", "4", "1999", "(", ")", '"', ",", ".", "—",
         "troops", "sent", "about", "New", "York", "é", "🙂", "\u00a0", "\u2009", "-", "'s"]
phrases = st.lists(st.sampled_from(WORDS), max_size=30).map(" ".join)


@settings(max_examples=300, deadline=None)
@given(question=st.one_of(st.text(), phrases), sentence=st.one_of(st.text(), phrases))
def test_span_is_inside_the_sentence_and_stripped(question, sentence):
    span = extract_short_answer(question, sentence)
    if span is not None:
        start, end = span
        assert 0 <= start < end <= len(sentence)
        text = sentence[start:end]
        assert text.strip() and text == text.strip()
    assert extract_short_answer(question, sentence) == span  # deterministic


# --- SQuAD evaluation: normalise as the official script does (lower case, no punctuation, no
# articles, single spaces), then exact match and token F1, best over the gold answers.

def normalize(text: str) -> str:
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", text).split())


def token_f1(prediction: str, gold: str) -> float:
    pred, ref = normalize(prediction).split(), normalize(gold).split()
    same = sum((Counter(pred) & Counter(ref)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(ref)
    return 2 * precision * recall / (precision + recall)


def held_out() -> list[tuple[str, str, list[str]]]:
    rows = [json.loads(line) for line in SQUAD_DEV.read_text(encoding="utf-8").splitlines() if line]
    out = []
    for row in rows[len(rows) // 2:]:
        texts = {d["doc_id"]: d["text"] for d in row["documents"]}
        ev = row["evidence"][0]
        out.append((row["question"], texts[ev["doc_id"]][ev["start"]:ev["end"]], row["answers"]))
    return out


@pytest.mark.skipif(not SQUAD_DEV.exists(), reason=f"evaluation data not found at {SQUAD_DEV}")
def test_squad_held_out_f1():
    data = held_out()
    f1 = whole = 0.0
    for question, sentence, answers in data:
        prediction = answer_text(question, sentence) or ""
        f1 += max(token_f1(prediction, a) for a in answers)
        whole += max(token_f1(sentence, a) for a in answers)
    f1, whole = f1 / len(data), whole / len(data)
    assert f1 >= HELD_OUT_F1_FLOOR, f"short-answer F1 {f1:.3f} (whole sentence {whole:.3f})"


@pytest.mark.skipif(not SQUAD_DEV.exists(), reason=f"evaluation data not found at {SQUAD_DEV}")
def test_fast_enough_for_every_request():
    pairs = [(q, s) for q, s, _ in held_out()[:500]]
    best = float("inf")
    for _ in range(3):  # best of three: a busy machine should not fail the test
        t0 = time.perf_counter()
        for question, sentence in pairs:
            extract_short_answer(question, sentence)
        best = min(best, (time.perf_counter() - t0) / len(pairs))
    assert best < 0.002, f"{best * 1000:.2f} ms per call"
