"""Short answers cut from one evidence sentence: known cases, offset safety, SQuAD F1.

Most cases run twice: with the sentence's entities and noun chunks and the parsed question (real
spaCy, as the query path gets them) and with the rules alone (a sentence stored without them)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from citeqa.evaluation.short_answers import Case, analysed, evaluate, load
from citeqa.index.language import shared_analyzer
from citeqa.index.types import Hit, Mention, Sentence
from citeqa.qa.answer import short_answer
from citeqa.qa.short_answer import (
    asks_count_or_date,
    could_hold_count_or_date,
    extract_short_answer,
    holds_expected_type,
    yes_no_verdict,
)
from citeqa.qa.types import Citation, Passage
from tests.support.corpus import SEEDS_DIR, SHARED_EVAL

SQUAD_DEV = SHARED_EVAL / "squad_dev.jsonl"
# Held-out half (questions 1001-2000, never used to set the rules or weights) measured F1 0.510
# with the rules alone and 0.556 with entities and noun chunks (whole sentence: 0.253); the
# floors leave room for harmless changes, not for a regression.
HELD_OUT_F1_FLOOR = 0.49
HELD_OUT_LANGUAGE_F1_FLOOR = 0.53

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
     "The king died in his palace at the age of 64.", {"64", "age of 64"}),
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
     "The iPhone is a line of smartphones designed and marketed by Apple Inc.", {"Apple Inc", "Apple Inc.", "Apple"}),
    ("What is the capital of Australia?",
     "Canberra is the capital of Australia, although Sydney is its largest city.", {"Canberra"}),
    ("What did the committee approve?",
     "After a long debate the committee approved a new budget for the museum.",
     {"new budget", "a new budget", "a new budget for the museum", "new budget for the museum"}),
    ("Why was the match postponed?",
     "The match was postponed because heavy rain had flooded the pitch.",
     {"heavy rain", "heavy rain had flooded the pitch"}),
    # The question's form asks for a reason, a qualifier, a description, an expansion, a source
    # or examples of a class (sentences written for these tests, not taken from any eval set).
    ("Why did the city close the bridge?",
     "The city closed the old bridge in March to repair its cracked supports, reopening it in June.",
     {"to repair its cracked supports", "repair its cracked supports"}),
    ("Why did North Korea send troops?", TROOPS, {"to assist in the conflict", "assist in the conflict"}),
    ("What type of engine does the car use?", "The car uses a small electric engine mounted under the rear seats.",
     {"small electric", "electric"}),
    ("Who is Jane Doe?", "The plan was announced by Jane Doe, the chief engineer of the project, on Monday.",
     {"the chief engineer of the project", "chief engineer of the project", "chief engineer"}),
    ("What is the WHO?", "The report was published by the World Health Organization (WHO) in Geneva last year.",
     {"World Health Organization", "the World Health Organization"}),
    ("Who says the bridge is unsafe?",
     "Engineers from the city council say that the bridge is unsafe for heavy lorries.",
     {"Engineers", "Engineers from the city council"}),
]

# Needs the sentence's noun chunks (the list's members) or entities: language analysis only.
LANGUAGE_CASES = [
    ("What kind of troops did North Korea send?", TROOPS, {"elite", "elite troops"}),
    ("Why was the launch delayed?", "The launch was delayed by two days due to strong winds over the Atlantic.",
     {"strong winds over the Atlantic", "strong winds"}),
    ("Which fruits does the farm grow?",
     "The farm grows several fruits, including apples, pears, and plums, on its northern slopes.",
     {"apples, pears, and plums"}),
    ("Which cities will get North Korean teachers?",
     "Matsegora also disclosed plans for North Korean educators to be stationed in key Russian "
     "cities—including Moscow, Kazan, Novosibirsk, and Vladivostok—where they would teach the "
     "Korean language and engage in joint educational endeavors.",
     {"Moscow, Kazan, Novosibirsk, and Vladivostok"}),
]

# Right answers still missed: they need syntax (the subject of a relative clause, an
# appositive, the noun a list is apposed to) or word meaning (a violin is an instrument, a
# school orchestra is not) that neither the rules nor entities and noun chunks give.
KNOWN_MISSES = [
    ("Which river flows through the city?",
     "The city lies on both banks of the Danube, which flows east to the Black Sea.", {"Danube"}),
    ("What is the tallest mountain in Africa?",
     "Kilimanjaro, a dormant volcano in Tanzania, is the tallest mountain in Africa.", {"Kilimanjaro"}),
    ("What instrument did she play?",
     "As a child she played the violin in the school orchestra.", {"violin"}),
]


@pytest.fixture(scope="module")
def analyzer():
    return shared_analyzer()




def answer_text(question: str, sentence: str, analyzer=None) -> str | None:
    if analyzer is None:
        span = extract_short_answer(question, sentence)
    else:
        span = extract_short_answer(question, sentence, analyzer.mentions([sentence])[0],
                                    analyzer.question_doc(question))
    return None if span is None else sentence[span[0]:span[1]]


@pytest.mark.parametrize(("question", "sentence", "expected"), CASES, ids=[c[0] for c in CASES])
def test_known_answers_with_the_rules_alone(question, sentence, expected):
    assert answer_text(question, sentence) in expected


# Right with entities and noun chunks alone, wrong with the syntactic roles: "in 1928" is a
# phrase of the question's verb "discovered", and the weights favour it over the place.
ROLE_MISSES = {"Where was penicillin discovered?"}


@pytest.mark.parametrize(("question", "sentence", "expected"), CASES, ids=[c[0] for c in CASES])
def test_known_answers_with_entities_and_noun_chunks(request, analyzer, question, sentence, expected):
    if question in ROLE_MISSES:
        request.applymarker(pytest.mark.xfail(reason="a phrase of the question's verb wins", strict=True))
    assert answer_text(question, sentence, analyzer) in expected


def test_known_answers_with_entities_and_noun_chunks_without_roles(analyzer):
    # Sentences stored before the syntactic roles were answer as they did.
    for question, sentence, expected in CASES:
        found = [m for m in analyzer.mentions([sentence])[0] if not m.label.startswith("syn:")]
        span = extract_short_answer(question, sentence, found, analyzer.question_doc(question))
        assert span is not None and sentence[span[0]:span[1]] in expected, question


@pytest.mark.parametrize(("question", "sentence", "expected"), LANGUAGE_CASES, ids=[c[0] for c in LANGUAGE_CASES])
def test_known_answers_that_need_entities_and_noun_chunks(analyzer, question, sentence, expected):
    assert answer_text(question, sentence, analyzer) in expected


@pytest.mark.parametrize(("question", "sentence", "expected"), KNOWN_MISSES,
                         ids=[c[0] for c in KNOWN_MISSES])
@pytest.mark.xfail(reason="needs syntax or word meaning the language features do not have", strict=True)
def test_known_misses(analyzer, question, sentence, expected):
    assert answer_text(question, sentence, analyzer) in expected


def seed_sentence(words: str) -> str:
    text = next(SEEDS_DIR.glob("*.txt")).read_text(encoding="utf-8")
    return next(line for line in text.splitlines() if words in line)


# Questions about the seed article the way people type them (issue 14's failures among them).
SEED_CASES = [
    ("Who is the Russian ambassador?", "Alexander Matsegora, Russia", {"Alexander Matsegora"}),
    ("how many troops?", "11,000 to 12,000", {"approximately 11,000 to 12,000", "11,000 to 12,000"}),
    ("where is the institute for the study of war based", "Institute for the Study", {"Washington"}),
    ("who is the president of russia", "Vladimir Putin", {"Vladimir Putin", "Russian President Vladimir Putin"}),
    ("when were there over 13,000 crossings", "13,000 crossings", {"2024"}),
]


@pytest.mark.parametrize(("question", "words", "expected"), SEED_CASES, ids=[c[0] for c in SEED_CASES])
def test_seed_article_questions(analyzer, question, words, expected):
    assert answer_text(question, seed_sentence(words), analyzer) in expected


def test_how_many_reads_the_counted_noun_after_an_adjective(analyzer):
    # "how many photographic plates": the count is of "plates", not of the first word after
    # "many"; "photographs" after the name must not pass for the counted noun.
    sentence = ("One of the more unusual collections is that of Eadweard Muybridge's photographs of "
                "Animal Locomotion of 1887, this consists of 781 plates.")
    assert answer_text("How many photographic plates comprise the Animal Locomotion collection?",
                       sentence, analyzer) == "781"


def test_the_answer_is_not_the_question_repeated(analyzer):
    # Both entities are people; the one the question names is not the answer.
    sentence = "Putin met Kim Jong Un in Pyongyang, where Kim praised the alliance."
    assert answer_text("Who met Putin?", sentence, analyzer) == "Kim Jong Un"
    assert answer_text("Who met Kim Jong Un?", sentence, analyzer) == "Putin"


def test_possessive_is_not_part_of_the_answer(analyzer):
    sentence = "The term refers to the Kremlin’s characterization of the war as an operation."
    assert answer_text("Who characterizes the war as an operation?", sentence, analyzer) == "Kremlin"


def test_mentions_outside_the_sentence_are_ignored():
    sentence = "The treaty was signed in Paris in 1815."
    stray = [Mention(40, 55, "GPE"), Mention(-3, 2, "PERSON"), Mention(5, 5, "ORG")]
    span = extract_short_answer("Where was the treaty signed?", sentence, stray)
    assert span is not None and sentence[span[0]:span[1]] == "Paris"


@pytest.mark.parametrize("sentence", ["", "   ", "\n\t", "...", "—", "(  )"])
def test_sentences_without_words(sentence):
    span = extract_short_answer("How many troops did North Korea send?", sentence)
    assert span is None or sentence[span[0]:span[1]].strip()


def test_offsets_count_code_points_not_bytes():
    sentence = "Die Brücke über die Mosel in Koblenz wurde 1864 fertiggestellt — 🌉 schön."
    span = extract_short_answer("In what year was the bridge finished?", sentence)
    assert span is not None and sentence[span[0]:span[1]] == "1864"


WORDS = ["How", "many", "who", "when", "where", "which", "what", "year", "the", "of", "in",
         "why", "was", "did", "and", "kind", "is", "says", "including", "to", "because", "not", "(ISW)",
         "Paris", "1,200", "$3.5", "million", "May", "4", "1999", "(", ")", '"', ",", ".", "—",
         "troops", "sent", "about", "New", "York", "é", "🙂", "\u00a0", "\u2009", "-", "'s"]
phrases = st.lists(st.sampled_from(WORDS), max_size=30).map(" ".join)


mentions = st.lists(st.builds(Mention, st.integers(-5, 80), st.integers(-5, 80),
                              st.sampled_from(["PERSON", "GPE", "CARDINAL", "DATE", "NOUN_CHUNK", "syn:subj:3",
                                               "syn:prep:0", "syn:obj:90", "syn:appos:x", "syn:"])),
                    max_size=8)


@settings(max_examples=300, deadline=None)
@given(question=st.one_of(st.text(), phrases), sentence=st.one_of(st.text(), phrases),
       found=st.one_of(st.none(), mentions))
def test_span_is_inside_the_sentence_and_stripped(question, sentence, found):
    # Mentions with any offsets (overlapping, empty, reversed, past the end) and labels.
    span = extract_short_answer(question, sentence, found)
    if span is not None:
        start, end = span
        assert 0 <= start < end <= len(sentence)
        text = sentence[start:end]
        assert text.strip() and text == text.strip()
    assert extract_short_answer(question, sentence, found) == span  # deterministic


@pytest.mark.parametrize("question", ["Who is the Russian ambassador?", "how many troops?", "why?", ""])
def test_span_is_inside_the_sentence_with_real_mentions(analyzer, question):
    for sentence in next(SEEDS_DIR.glob("*.txt")).read_text(encoding="utf-8").splitlines():
        span = extract_short_answer(question, sentence, analyzer.mentions([sentence])[0],
                                    analyzer.question_doc(question))
        assert span is None or (0 <= span[0] < span[1] <= len(sentence)
                                and sentence[span[0]:span[1]] == sentence[span[0]:span[1]].strip())


# --- SQuAD v1.1 dev from the gold sentence, scored the SQuAD way (evaluation/short_answers.py).

def held_out() -> list[Case]:
    return load(SQUAD_DEV, "heldout")


@pytest.mark.skipif(not SQUAD_DEV.exists(), reason=f"evaluation data not found at {SQUAD_DEV}")
def test_squad_held_out_f1_with_the_rules_alone():
    report = evaluate(held_out(), language=False)
    assert report["f1"] >= HELD_OUT_F1_FLOOR, report


@pytest.mark.slow
@pytest.mark.skipif(not SQUAD_DEV.exists(), reason=f"evaluation data not found at {SQUAD_DEV}")
def test_squad_held_out_f1_with_entities_and_noun_chunks(analyzer):
    report = evaluate(analysed(held_out(), analyzer))
    assert report["f1"] >= HELD_OUT_LANGUAGE_F1_FLOOR, report
    assert report["f1"] > evaluate(held_out(), language=False)["f1"], report


@pytest.mark.skipif(not SQUAD_DEV.exists(), reason=f"evaluation data not found at {SQUAD_DEV}")
def test_the_answer_service_passes_the_cited_sentences_mentions(analyzer):
    # qa/answer.py short_answer(): the cited sentence's stored mentions reach the extractor,
    # and the short answer keeps the citation contract (document offsets, exact text).
    prefix = "Some earlier sentence. "
    sentence = "In remarks made by Alexander Matsegora, Russia’s ambassador to Pyongyang, it was disclosed."
    text = prefix + sentence
    question = "Who is the Russian ambassador?"
    found = tuple(analyzer.mentions([sentence])[0])
    stored = Sentence("doc", "v1", 1, len(prefix), len(text), sentence, mentions=found, analysed=True)
    citation = Citation(1, stored.id, "doc", "v1", stored.start, stored.end, sentence, 0, 1, 1.0, 1.0)
    passages = [Passage(number=1, hit=Hit(stored, 1.0), title="")]
    short = short_answer(question, citation, passages, analyzer.question_doc(question))
    expected = extract_short_answer(question, sentence, found, analyzer.question_doc(question))
    assert short is not None and expected is not None
    assert (short.start, short.end) == (len(prefix) + expected[0], len(prefix) + expected[1])
    assert text[short.start:short.end] == short.text == "Alexander Matsegora"


# --- yes/no questions: the span that says so, and a verdict only where the sentence is plain.

YES_NO = [
    ("Was the concert free?", "Tickets were not needed: the concert was completely free for residents.",
     {"completely free"}, "yes"),
    ("was the concert free", "The concert was not free: tickets cost ten euros.", {"free", "not free"}, "no"),
    ("Did the company hire new engineers?", "Last year the company hired forty new engineers for its Berlin office.",
     {"forty new engineers", "new engineers", "company hired forty new engineers"}, "yes"),
    ("and did they refuse the offer?", "The union never refused the offer, its leaders said on Friday.",
     {"offer", "the offer"}, "no"),
    # A word of the question missing from the sentence ("open" / "closed"): no verdict.
    ("Is the museum open on Mondays?", "The museum is closed on Mondays and public holidays.",
     {"Mondays", "Mondays and public holidays"}, None),
]


@pytest.mark.parametrize(("question", "sentence", "expected", "verdict"), YES_NO, ids=[c[0] for c in YES_NO])
def test_yes_no_questions_get_the_words_that_answer_them(analyzer, question, sentence, expected, verdict):
    assert answer_text(question, sentence, analyzer) in expected
    assert answer_text(question, sentence) in expected
    assert yes_no_verdict(question, sentence) == verdict


def test_only_yes_no_questions_get_a_verdict():
    sentence = "The concert was completely free for residents."
    assert yes_no_verdict("Why was the concert free?", sentence) is None
    assert yes_no_verdict("Was the concert free or paid?", sentence) is None  # a choice, not yes/no
    assert yes_no_verdict("Was the concert free?", sentence) == "yes"


def test_a_yes_no_question_the_sentence_does_not_repeat_falls_back_to_the_usual_choice(analyzer):
    sentence = "The treaty was signed in Paris in 1815."
    span = extract_short_answer("Did they agree on anything?", sentence)
    assert span is not None and sentence[span[0]:span[1]].strip()


# --- several cited sentences: the short answer comes from the first that holds what is asked.

def test_expected_type_in_a_sentence(analyzer):
    numbers = "Over 13,000 workers crossed the border in 2024."
    words = "The intelligence service reported that the workers were sent to building sites."
    question = "How many workers went to Russia?"
    q = analyzer.question_doc(question)
    assert holds_expected_type(question, numbers, analyzer.mentions([numbers])[0], q)
    assert not holds_expected_type(question, words, analyzer.mentions([words])[0], q)
    assert not holds_expected_type(question, words)  # the rules alone see no number either
    # A number the question itself gives is not an answer to it.
    assert not holds_expected_type("How many of the 13,000 workers went home?", "Of the 13,000 workers, most stayed.")
    # Questions without an expected kind hold in any sentence.
    assert holds_expected_type("Why did they go?", words)


def cited(doc_text: str, sentence: str, marker: int, analyzer) -> tuple[Citation, Passage]:
    start = doc_text.index(sentence)
    stored = Sentence("doc", "v1", marker, start, start + len(sentence), sentence,
                      mentions=tuple(analyzer.mentions([sentence])[0]), analysed=True)
    citation = Citation(marker, stored.id, "doc", "v1", stored.start, stored.end, sentence, 0, 1, 1.0, 1.0)
    return citation, Passage(number=marker, hit=Hit(stored, 1.0), title="")


def test_the_short_answer_comes_from_the_first_citation_that_can_give_one(analyzer):
    first = "The intelligence service reported that the workers were sent to building sites."
    second = "Over 13,000 workers crossed the border in 2024."
    text = first + " " + second
    (c1, p1), (c2, p2) = cited(text, first, 1, analyzer), cited(text, second, 2, analyzer)
    question = "How many workers went to Russia?"
    short = short_answer(question, [c1, c2], [p1, p2], analyzer.question_doc(question))
    assert short is not None and text[short.start:short.end] == short.text == "Over 13,000"
    # One citation (the old call) that holds no count: no short answer rather than a phrase
    # of another kind; a question any sentence answers: the first citation.
    assert short_answer(question, c1, [p1, p2], analyzer.question_doc(question)) is None
    where = short_answer("Where were the workers sent?", [c1, c2], [p1, p2])
    assert where is not None and c1.start <= where.start < where.end <= c1.end
    assert short_answer(question, [], [p1, p2]) is None


@pytest.mark.parametrize("question, asked", [
    ("How many troops did North Korea send?", True),
    ("how much are workers paid", True),
    ("When did the first soldiers arrive?", True),
    ("In what year was the UMC founded?", True),
    ("When do chloroplasts spread out flat?", False),  # a condition, not a date
    ("When many people are arrested, what is a common tactic?", False),  # opens with a clause
    ("Who is the ambassador?", False),
    ("how old is he", False),
])
def test_only_counts_and_dates_are_asked_for_strictly(question, asked):
    assert asks_count_or_date(question) is asked


@pytest.mark.parametrize("question, sentence, holds", [
    ("How many teachers are sent?", "Pyongyang and Moscow are manipulating student visa programs.", False),
    ("How many teachers are sent?", "Hundreds of teachers are sent.", True),
    ("How many outputs are expected for each input?", "A single output is expected for every input.", True),
    ("How much has a Lama agreed to be reborn?", "He is reborn, often many times.", True),
    ("When did he admit it?", "Toward the end of his life, he told a reporter so.", True),
    ("When did he admit it?", "He told a reporter so in 1921.", True),
    ("When did he admit it?", "He told a reporter so.", False),
    # A number the question already holds is no answer to it.
    ("How many of the 12,000 troops were hurt?", "The 12,000 troops went to Kursk.", False),
])
def test_a_sentence_could_hold_the_count_or_date_asked(question, sentence, holds):
    assert could_hold_count_or_date(question, sentence) is holds


@pytest.mark.parametrize(("question", "names"), [
    ("what is the NIS", False), ("who is Matsegora?", False), ("what does SVO stand for", False),
    ("why are soldiers sent north?", False), ("how are workers sent to russia secretly", False),
    ("did pyongyang want money?", False),
    # A progressive verb after "is" asks what does something, not what a name means.
    ("whats straining russias workforce", True), ("what is shaping relations between them", True),
    ("which cities will get teachers?", True), ("how many troops?", True), ("when did it start?", True),
])
def test_which_questions_ask_for_a_name_a_number_or_a_date(question, names):
    from citeqa.qa.short_answer import asks_for_a_name

    assert asks_for_a_name(question) is names
