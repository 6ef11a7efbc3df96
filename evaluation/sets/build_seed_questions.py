"""Writes seed_questions.jsonl beside this file: natural questions about the seed article
(``citeqa.seeds``), in the eval format of ../shared/eval/README.md.

The questions and their answers are written by hand below. Each names its evidence by a
phrase of the sentence(s) that answer it; the offsets are computed here from the document
exactly as citeqa ingests it (index/ingest.py ``read_inputs``: the .txt bytes as they are,
title and doc_id from the .json beside it) and cut by citeqa's own splitter
(index/sentences.py), so ``text[start:end]`` is one stored sentence. A phrase that is not
in exactly one sentence stops the script.

    python evaluation/sets/build_seed_questions.py        # rewrites the file, prints counts
    python evaluation/sets/build_seed_questions.py --check  # exits 1 if the file is stale
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from importlib.resources import files
from pathlib import Path
from typing import Any

from citeqa.index.ingest import read_inputs
from citeqa.index.sentences import split_sentences

OUT = Path(__file__).with_name("seed_questions.jsonl")

# (id, kind, question, answers, evidence phrases, semantics). Kinds: who, what, where, when,
# how_many, why, how, yes_no, vague (follow-up style or no question word).
# "any": each evidence sentence alone answers; "all": the answer needs every one of them.
ANSWERABLE: list[tuple[str, str, str, list[str], list[str], str]] = [
    # -- the lead: who, where, why ----------------------------------------------------------
    ("s01", "why", "why are russian soldiers going to north korea",
     ["for recovery", "recovery", "medical care", "for medical care", "to recover", "rehabilitation"],
     ["for recovery.", "for Medical Care"], "any"),
    ("s02", "where", "where are the wounded soldiers treated?",
     ["North Korean medical facilities", "in North Korean medical facilities", "North Korea",
      "Korean sanatoriums and hospitals", "sanatoriums and hospitals"],
     ["North Korean medical facilities", "Korean sanatoriums and hospitals", "for Medical Care"], "any"),
    ("s03", "where", "where did they get injured",
     ["Ukraine", "in Ukraine", "the conflict in Ukraine", "during the conflict in Ukraine", "war in Ukraine"],
     ["injured during the conflict in Ukraine"], "any"),
    ("s04", "who", "who revealed this?",
     ["Alexander Matsegora", "Matsegora", "a Russian diplomat", "Russian diplomat",
      "Russia's ambassador to Pyongyang", "Russia’s ambassador to Pyongyang"],
     ["In remarks made by Alexander Matsegora", "Recent statements from a Russian diplomat"], "any"),
    ("s05", "who", "whos russias ambasador in pyongyang",
     ["Alexander Matsegora", "Matsegora"], ["In remarks made by Alexander Matsegora"], "any"),
    ("s06", "who", "who is matsegora",
     ["Russia's ambassador to Pyongyang", "Russia’s ambassador to Pyongyang", "ambassador to Pyongyang",
      "Russian ambassador", "ambassador", "the Russian ambassador to North Korea", "a Russian diplomat"],
     ["In remarks made by Alexander Matsegora", "Ambassador Matsegora emphasized"], "any"),
    ("s07", "how_many", "how many wounded soldiers",
     ["hundreds", "hundreds of wounded soldiers", "hundreds of troops"],
     ["involves “hundreds” of troops", "rehabilitation of hundreds of wounded soldiers"], "any"),
    ("s08", "how_many", "how many troops?",
     ["hundreds", "11,000 to 12,000", "approximately 11,000 to 12,000", "11,000-12,000", "about 11,000 to 12,000"],
     ["involves “hundreds” of troops", "approximately 11,000 to 12,000 elite troops"], "all"),
    # -- the interview ----------------------------------------------------------------------
    ("s09", "where", "where was the interview published",
     ["Rossiyskaya Gazeta", "in Rossiyskaya Gazeta", "the state-run outlet Rossiyskaya Gazeta"],
     ["state-run outlet Rossiyskaya Gazeta"], "any"),
    ("s10", "what", "what kind of outlet is rossiyskaya gazeta",
     ["state-run", "state run", "a state-run outlet", "state-run outlet", "state media"],
     ["state-run outlet Rossiyskaya Gazeta"], "any"),
    ("s11", "yes_no", "did he say it in an interview?",
     ["yes", "a comprehensive interview", "comprehensive interview published by the state-run outlet"],
     ["during a comprehensive interview"], "any"),
    ("s12", "what", "what does SVO mean",
     ["special military operation", "a special military operation", "the war in Ukraine"],
     ["The term “SVO” refers to"], "any"),
    ("s13", "what", "what does the kremlin call the war in ukraine?",
     ["special military operation", "a special military operation", "SVO"],
     ["The term “SVO” refers to"], "any"),
    ("s14", "who", "who calls it a special military operation",
     ["the Kremlin", "Kremlin", "Russia"], ["The term “SVO” refers to"], "any"),
    ("s15", "what", "what kind of places are the soldiers recovering in",
     ["sanatoriums and hospitals", "Korean sanatoriums and hospitals", "sanatoriums", "hospitals",
      "North Korean medical facilities", "medical facilities"],
     ["Korean sanatoriums and hospitals", "North Korean medical facilities"], "any"),
    ("s16", "what", "what attitude did the ambassador say it shows",
     ["brotherly", "a brotherly attitude", "brotherly attitude"], ["such a brotherly attitude"], "any"),
    # -- money -------------------------------------------------------------------------------
    ("s17", "yes_no", "was the treatment free?",
     ["yes", "absolutely free", "free", "all this was absolutely free"], ["absolutely free"], "any"),
    ("s18", "yes_no", "does russia have to pay for it",
     ["no", "absolutely free", "free", "opted against requesting any form of compensation"],
     ["absolutely free"], "any"),
    ("s19", "yes_no", "did pyongyang want money for the care",
     ["no", "opted against requesting any form of compensation", "absolutely free"],
     ["opted against requesting any form of compensation"], "any"),
    ("s20", "vague", "compensaton?",
     ["none", "no compensation", "opted against requesting any form of compensation", "absolutely free",
      "North Korea has opted against requesting any form of compensation from Russia"],
     ["opted against requesting any form of compensation"], "any"),
    # -- perception and education -------------------------------------------------------------
    ("s21", "what", "what do north koreans think of russians",
     ["favorable", "favourable", "a favorable perception", "favorable perception", "favorably", "they like them"],
     ["a favorable perception of Russians"], "any"),
    ("s22", "yes_no", "any internships?",
     ["yes", "students and internships", "internships",
      "ongoing collaborative educational programs involving students and internships"],
     ["involving students and internships"], "any"),
    ("s23", "what", "what educational programs are there between the two countries",
     ["students and internships", "collaborative educational programs involving students and internships",
      "North Korean educators teaching the Korean language in Russian cities", "teaching the Korean language",
      "joint educational endeavors"],
     ["involving students and internships", "where they would teach the Korean language"], "all"),
    # -- leaders and alliance -------------------------------------------------------------------
    ("s24", "who", "who is the president of russia", ["Vladimir Putin", "Putin", "President Vladimir Putin"],
     ["Russian President Vladimir Putin"], "any"),
    ("s25", "who", "whos the leader of north korea", ["Kim Jong Un", "Kim Jong-un", "Kim"],
     ["North Korean leader Kim Jong Un"], "any"),
    ("s26", "yes_no", "are russia and north korea allies?",
     ["yes", "alliance", "strengthening alliance", "a strengthening alliance"],
     ["the strengthening alliance between Russian President"], "any"),
    ("s27", "what", "besides the battlefield where does the alliance matter",
     ["humanitarian and educational contexts", "broader humanitarian and educational contexts",
      "humanitarian and educational", "humanitarian", "educational"],
     ["broader humanitarian and educational contexts"], "any"),
    # -- North Korean troops -----------------------------------------------------------------
    ("s28", "how_many", "how many soldiers did kim send",
     ["approximately 11,000 to 12,000", "11,000 to 12,000", "11,000-12,000", "about 11,000 to 12,000",
      "11000 to 12000", "approximately 11,000 to 12,000 elite troops"],
     ["approximately 11,000 to 12,000 elite troops"], "any"),
    ("s29", "what", "what kind of troops did north korea send",
     ["elite", "elite troops"], ["approximately 11,000 to 12,000 elite troops"], "any"),
    ("s30", "why", "why did north korea send troops",
     ["to assist in the conflict", "assist in the conflict", "to help Russia in the war", "to assist Russia"],
     ["approximately 11,000 to 12,000 elite troops"], "any"),
    ("s31", "why", "why is the west worried",
     ["battlefield experience", "invaluable battlefield experience",
      "North Korean forces could gain invaluable battlefield experience"],
     ["raising concerns in Western nations"], "any"),
    ("s32", "who", "who is concerned about the north korean troops",
     ["Western nations", "the West", "western countries", "the Western nations"],
     ["raising concerns in Western nations"], "any"),
    # -- ISW -------------------------------------------------------------------------------------
    ("s33", "what", "what is the ISW",
     ["Institute for the Study of War", "the Institute for the Study of War"],
     ["Institute for the Study of War (ISW)"], "any"),
    ("s34", "where", "where is the institute for the study of war based?",
     ["Washington", "in Washington", "Washington DC", "Washington, D.C."],
     ["Institute for the Study of War (ISW)"], "any"),
    ("s35", "what", "what could north korea learn from the wounded russians",
     ["military knowledge", "combat experience", "transfer military knowledge to North Korean forces",
      "battlefield experience"],
     ["transfer military knowledge to North Korean forces"], "any"),
    ("s36", "who", "who thinks the soldiers could pass on military knowlege",
     ["analysts from the Institute for the Study of War", "Institute for the Study of War", "ISW",
      "the Institute for the Study of War (ISW)", "analysts"],
     ["transfer military knowledge to North Korean forces"], "any"),
    # -- educators ---------------------------------------------------------------------------------
    ("s37", "what", "wich russian cities will get north korean teachers",
     ["Moscow, Kazan, Novosibirsk, and Vladivostok", "Moscow, Kazan, Novosibirsk and Vladivostok",
      "Moscow Kazan Novosibirsk Vladivostok"],
     ["including Moscow, Kazan, Novosibirsk, and Vladivostok"], "any"),
    ("s38", "yes_no", "are north korean teachers going to moscow",
     ["yes", "Moscow", "key Russian cities—including Moscow",
      "North Korean educators to be stationed in key Russian cities"],
     ["including Moscow, Kazan, Novosibirsk, and Vladivostok"], "any"),
    ("s39", "what", "what will the teachers teach",
     ["the Korean language", "Korean", "Korean language"], ["where they would teach the Korean language"], "any"),
    ("s40", "vague", "and besides teaching korean?",
     ["engage in joint educational endeavors", "joint educational endeavors"],
     ["engage in joint educational endeavors"], "any"),
    ("s41", "what", "what's the point of sending the educators",
     ["foster stronger ties", "stronger ties", "further North Korean support",
      "to foster stronger ties and facilitate the potential for further North Korean support",
      "enhancing Russia’s manpower options", "manpower"],
     ["may serve to foster stronger ties"], "any"),
    ("s42", "how", "how could the education initiative help russia",
     ["enhancing Russia’s manpower options", "enhancing Russia's manpower options", "manpower options",
      "more manpower", "further North Korean support"],
     ["enhancing Russia’s manpower options"], "any"),
    # -- workers -------------------------------------------------------------------------------------
    ("s43", "how_many", "how many north koreans went to russia for work in 2024",
     ["over 13,000", "13,000", "more than 13,000", "13000", "over 13,000 crossings"],
     ["over 13,000 crossings in 2024"], "any"),
    ("s44", "when", "when were there over 13,000 crossings", ["2024", "in 2024"],
     ["over 13,000 crossings in 2024"], "any"),
    ("s45", "yes_no", "and is that more than in previous years?",
     ["yes", "a substantial increase compared to prior years", "substantial increase", "a significant rise"],
     ["substantial increase compared to prior years", "a significant rise in the number of North Koreans"], "any"),
    ("s46", "why", "why did the number go up",
     ["a rebound from pandemic-related restrictions", "rebound from pandemic-related restrictions",
      "pandemic-related restrictions", "pandemic", "the end of pandemic restrictions"],
     ["rebound from pandemic-related restrictions"], "any"),
    ("s47", "how_many", "how many north koreans are in russia",
     ["11,000 to 12,000 troops and over 13,000 workers", "over 13,000", "approximately 11,000 to 12,000",
      "11,000 to 12,000", "13,000"],
     ["approximately 11,000 to 12,000 elite troops", "over 13,000 crossings in 2024"], "all"),
    ("s48", "where", "where do the north korean workers end up",
     ["construction sites", "at construction sites", "to construction sites"],
     ["being sent to construction sites"], "any"),
    ("s49", "who", "who says they are sent to construction sites",
     ["the South Korean National Intelligence Service", "South Korean National Intelligence Service",
      "National Intelligence Service", "NIS", "South Korea's intelligence service", "South Korean intelligence"],
     ["being sent to construction sites"], "any"),
    ("s50", "why", "why does russia need workers",
     ["labor shortages", "labour shortages", "to address labor shortages",
      "Russian efforts to recruit soldiers continue to strain the workforce",
      "recruiting soldiers strains the workforce"],
     ["addressing labor shortages"], "any"),
    ("s51", "what", "whats straining russias workforce",
     ["Russian efforts to recruit soldiers", "recruiting soldiers", "efforts to recruit soldiers",
      "the war", "military recruitment"],
     ["addressing labor shortages"], "any"),
    ("s52", "what", "what is the NIS",
     ["South Korean National Intelligence Service", "the South Korean National Intelligence Service",
      "National Intelligence Service", "South Korea's intelligence agency"],
     ["The South Korean National Intelligence Service has reported"], "any"),
    ("s53", "what", "what does the nis allege",
     ["Pyongyang and Moscow are manipulating student visa programs",
      "manipulating student visa programs as a means to covertly send workers to Russia",
      "manipulating student visa programs", "misusing student visas to send workers"],
     ["There are allegations from the NIS"], "any"),
    ("s54", "how", "how are workers sent to russia secretly",
     ["student visa programs", "student visas", "through student visa programs", "on student visas",
      "manipulating student visa programs"],
     ["manipulating student visa programs"], "any"),
    ("s55", "why", "why use student visas",
     ["evading scrutiny from the international community", "to evade scrutiny", "evade scrutiny",
      "to covertly send workers to Russia", "avoid international scrutiny", "sanctions"],
     ["evading scrutiny from the international community"], "any"),
    ("s56", "yes_no", "are both countries under sanctions",
     ["yes", "strict sanctions against both countries", "international sanctions"],
     ["strict sanctions against both countries", "layers of international sanctions"], "any"),
    ("s57", "what", "what is shaping relations between north korea and russia",
     ["the tension from the ongoing conflict in Ukraine", "tension from the ongoing conflict in Ukraine",
      "the conflict in Ukraine", "the war in Ukraine", "the ongoing conflict in Ukraine"],
     ["its reverberations in regional geopolitics"], "any"),
    ("s58", "what", "what are the two countries trying to navigate",
     ["layers of international sanctions and military challenges", "international sanctions and military challenges",
      "sanctions and military challenges", "sanctions"],
     ["layers of international sanctions"], "any"),
    # -- the page around the article --------------------------------------------------------------
    ("s59", "who", "who published the original article",
     ["Business Insider"], ["Read the original article on Business Insider"], "any"),
    ("s60", "what", "photo credit?", ["www.yahoo.com", "yahoo.com", "Yahoo"], ["Photo credit:"], "any"),
    # -- more phrasings ----------------------------------------------------------------------------
    ("s61", "yes_no", "do the soldiers go to south korea?",
     ["no", "North Korea", "North Korean medical facilities"],
     ["North Korean medical facilities", "for Medical Care"], "any"),
    ("s62", "vague", "russia north korea wounded soldiers",
     ["Russian soldiers injured during the conflict in Ukraine are being sent to North Korean medical facilities",
      "Russia sends wounded soldiers to North Korea for medical care",
      "sent to North Korean medical facilities for recovery"],
     ["for recovery.", "for Medical Care"], "any"),
    ("s63", "what", "what country is the war in", ["Ukraine", "in Ukraine"],
     ["injured during the conflict in Ukraine", "The term “SVO” refers to", "its reverberations in regional"],
     "any"),
    ("s64", "what", "what two things did matsegora disclose",
     ["hundreds of wounded Russian troops are treated in North Korea",
      "North Korean educators will be stationed in Russian cities",
      "hundreds of troops", "plans for North Korean educators"],
     ["In remarks made by Alexander Matsegora", "Matsegora also disclosed plans"], "all"),
    ("s65", "what", "what does the nis say about north koreans in russia",
     ["they are sent to construction sites", "construction sites",
      "manipulating student visa programs to covertly send workers"],
     ["being sent to construction sites", "There are allegations from the NIS"], "all"),
    ("s66", "how_many", "number of north korean troops sent to help russia??",
     ["approximately 11,000 to 12,000", "11,000 to 12,000", "11,000-12,000", "about 11,000 to 12,000"],
     ["approximately 11,000 to 12,000 elite troops"], "any"),
]

# (id, question): about the article's subject, not answered anywhere in it (checked by
# reading: no hospital, author, date of the interview, casualty figure, ... is given).
UNANSWERABLE: list[tuple[str, str]] = [
    ("u01", "What is the name of the hospital treating the soldiers?"),
    ("u02", "how many russian soldiers have died in ukraine"),
    ("u03", "when did the first wounded soldiers arrive in north korea"),
    ("u04", "how long do the soldiers stay for treatment"),
    ("u05", "what does DPRK stand for"),
    ("u06", "when was the interview with matsegora published?"),
    ("u07", "how many north korean soldiers have been killed"),
    ("u08", "who is the president of south korea"),
    ("u09", "how much are north korean workers paid in russia"),
    ("u10", "how many teachers is north korea sending"),
    ("u11", "which north korean city are the sanatoriums in"),
    ("u12", "what kind of injuries do the soldiers have"),
    ("u13", "who wrote this article"),
    ("u14", "how many north koreans crossed into russia in 2023"),
    ("u15", "who is north korea's foreign minister"),
    ("u16", "when did north korea send its troops"),
    ("u17", "how are the wounded flown to pyongyang"),
    ("u18", "which sanctions did the un impose on north korea"),
    ("u19", "where in russia are the north korean troops fighting"),
    ("u20", "how old is matsegora"),
]


def seed_document() -> dict[str, Any]:
    """The seed article as the eval will ingest it: the same doc_id, title, text and metadata
    as the first start of a data directory, so its version is the seeded one too."""
    (doc,) = read_inputs([Path(str(files("citeqa.seeds")))])
    return {"doc_id": doc.doc_id, "title": doc.title, "text": doc.text, "metadata": doc.metadata}


def evidence_span(doc: dict[str, Any], phrase: str) -> dict[str, Any]:
    spans = [s for s in split_sentences(doc["text"]) if phrase in doc["text"][s.start:s.end]]
    if len(spans) != 1:
        raise SystemExit(f"phrase {phrase!r} is in {len(spans)} sentences, not one")
    return {"doc_id": doc["doc_id"], "start": spans[0].start, "end": spans[0].end}


def rows() -> list[dict[str, Any]]:
    doc = seed_document()
    out: list[dict[str, Any]] = []
    for qid, kind, question, answers, phrases, semantics in ANSWERABLE:
        evidence = [evidence_span(doc, p) for p in phrases]
        if len({(e["start"], e["end"]) for e in evidence}) != len(evidence):
            raise SystemExit(f"{qid}: two phrases name one sentence")
        out.append({"id": f"seed-{qid}", "question": question, "answers": answers, "documents": [doc],
                    "evidence": sorted(evidence, key=lambda e: e["start"]),
                    "meta": {"evidence_semantics": semantics, "kind": kind, "set": "seed_questions"}})
    for qid, question in UNANSWERABLE:
        # The article is what it is asked against; nothing in it answers.
        out.append({"id": f"seed-{qid}", "question": question, "answers": [], "answerable": False,
                    "documents": [doc], "evidence": [],
                    "meta": {"evidence_semantics": "any", "kind": "unanswerable", "set": "seed_questions"}})
    ids = [r["id"] for r in out]
    if len(set(ids)) != len(ids):
        raise SystemExit("duplicate question ids")
    return out


def main() -> None:
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows())
    if "--check" in sys.argv[1:]:
        stale = not OUT.exists() or OUT.read_text(encoding="utf-8") != text
        print(f"{OUT.name}: {'stale' if stale else 'up to date'}")
        raise SystemExit(1 if stale else 0)
    OUT.write_text(text, encoding="utf-8")
    kinds = Counter(kind for _, kind, *_ in ANSWERABLE)
    semantics = Counter(s for *_, s in ANSWERABLE)
    print(f"wrote {OUT}: {len(ANSWERABLE)} answerable {dict(sorted(kinds.items()))} "
          f"{dict(semantics)}, {len(UNANSWERABLE)} unanswerable")


if __name__ == "__main__":
    main()
