"""Short answers measured from the gold evidence sentence, and the command that refits their weights.

    python -m citeqa.evaluation.short_answers --split heldout            # questions 1001-2000
    python -m citeqa.evaluation.short_answers --split dev --rules-only   # 1-1000, no spaCy
    python -m citeqa.evaluation.short_answers --data evaluation/sets/seed_questions.jsonl
    python -m citeqa.evaluation.short_answers --fit [--write]            # refit on 1-1000
    python -m citeqa.evaluation.short_answers --no-syntax                # as sentences stored before the roles

Each answerable question's first gold evidence sentence goes to ``extract_short_answer`` with
that sentence's entities and noun chunks and the parsed question (as the query path gets them:
mentions stored at ingest, the question parsed once), and the span is scored the SQuAD way
(normalised exact match and token F1, best over the gold answers). The time per call excludes
the spaCy parses, which happen at ingest (sentences) and once per request (the question), and
is CPU time (the machine is shared). "right": the share with token F1 >= 0.5.

``--fit`` fits the linear weights of qa/short_answer.py on questions 1-1000 only: expected F1
of the chosen span under a softmax over each question's candidates, with light L2 towards the
current weights, and prints them; ``--write`` also writes them into qa/short_answer_weights.json
(level "syntax": the weights used for sentences with syntactic roles; the levels of sentences
stored before the roles, "mentions" and "rules", stay as they were fitted). Yes/no questions
and sentences without roles are left out of the fit (yes/no weights are set by hand: SQuAD has
none to learn them from). A tool, not runtime code.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from citeqa.evaluation.metrics import exact_match, token_f1
from citeqa.index.language import SYNTAX_PREFIX, Analyzer, SpacyAnalyzer, shared_analyzer
from citeqa.index.types import Mention
from citeqa.qa import short_answer
from citeqa.qa.short_answer import candidates, extract_short_answer

# A short answer is "right" at token F1 >= 0.5 (as tests/evaluation/test_seed_questions.py counts).
RIGHT_F1 = 0.5
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "eval" / "squad_dev.jsonl"


@dataclass(frozen=True)
class Case:
    question: str
    sentence: str
    answers: list[str]
    mentions: tuple[Mention, ...] = ()
    question_doc: Any = None


def load(path: Path, split: str) -> list[Case]:
    """Answerable questions with their first gold sentence; ``split``: dev (the first half of
    the file: questions 1-1000 of squad_dev), heldout (the second half) or all."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    half = len(rows) // 2
    rows = {"dev": rows[:half], "heldout": rows[half:], "all": rows}[split]
    cases = []
    for row in rows:
        if not row.get("evidence") or not row.get("answers"):
            continue
        texts = {d["doc_id"]: d["text"] for d in row["documents"]}
        ev = row["evidence"][0]
        cases.append(Case(row["question"], texts[ev["doc_id"]][ev["start"]:ev["end"]], row["answers"]))
    return cases


def analysed(cases: Sequence[Case], analyzer: Analyzer) -> list[Case]:
    """The cases with their sentences' mentions (as ingest stores them) and parsed questions
    (as a request parses them)."""
    sentences = analyzer.mentions([c.sentence for c in cases])
    if isinstance(analyzer, SpacyAnalyzer):  # batched: the same parse, faster
        questions = list(analyzer.docs([c.question for c in cases]))
    else:
        questions = [analyzer.question_doc(c.question) for c in cases]
    return [Case(c.question, c.sentence, c.answers, tuple(m), q)
            for c, m, q in zip(cases, sentences, questions, strict=True)]


def without_syntax(mentions: Sequence[Mention]) -> tuple[Mention, ...]:
    """The entities and noun chunks alone, as stored before the syntactic roles were."""
    return tuple(m for m in mentions if not m.label.startswith(SYNTAX_PREFIX))


def evaluate(cases: Sequence[Case], language: bool = True) -> dict[str, float]:
    f1 = em = whole = right = 0.0
    t0 = time.process_time()
    spans = [extract_short_answer(c.question, c.sentence, c.mentions if language else None,
                                  c.question_doc if language else None) for c in cases]
    elapsed = time.process_time() - t0
    for c, span in zip(cases, spans, strict=True):
        prediction = "" if span is None else c.sentence[span[0]:span[1]]
        score = token_f1(prediction, c.answers)
        f1 += score
        right += score >= RIGHT_F1
        em += exact_match(prediction, c.answers)
        whole += token_f1(c.sentence, c.answers)
    n = max(1, len(cases))
    return {"questions": len(cases), "f1": round(f1 / n, 4), "em": round(em / n, 4), "right": round(right / n, 4),
            "whole_sentence_f1": round(whole / n, 4), "ms_per_call": round(elapsed * 1000 / n, 3)}


def _weight_keys() -> list[str]:
    keys = list(short_answer._WEIGHTS)
    keys += [f"{k}@{t}" for t, fitted in short_answer._TYPE_FIT.items() for k in fitted]
    return keys


def _current_weights(keys: Sequence[str]) -> np.ndarray:
    w = []
    for k in keys:
        if "@" in k:
            name, qtype = k.split("@")
            w.append(short_answer._TYPE_FIT[qtype][name])
        else:
            w.append(short_answer._WEIGHTS[k])
    return np.array(w, dtype=np.float64)


def fit(cases: Sequence[Case], l2: float = 0.002, rounds: int = 400) -> dict[str, float]:
    """Weights maximising the mean expected F1 under a softmax over each question's candidates."""
    from scipy.optimize import minimize

    keys = _weight_keys()
    index = {k: n for n, k in enumerate(keys)}
    problems = []
    for c in cases:
        qtype, cands = candidates(c.question, c.sentence, c.mentions, c.question_doc)
        if not cands or qtype not in short_answer._TYPE_FIT:  # yes/no: hand-set weights
            continue
        if short_answer._level(c.mentions) != "syntax":  # answered with the older weights
            continue
        x = np.zeros((len(cands), len(keys)))
        f = np.zeros(len(cands))
        for r, (start, end, feats) in enumerate(cands):
            for name, value in feats.items():
                if name in short_answer._TYPE_FIT[qtype]:
                    x[r, index[f"{name}@{qtype}"]] = value
                elif name in index:
                    x[r, index[name]] = value
            f[r] = token_f1(c.sentence[start:end], c.answers)
        problems.append((x, f))
    prior = _current_weights(keys)

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        total, grad = 0.0, np.zeros_like(w)
        for x, f in problems:
            s = x @ w
            p = np.exp(s - s.max())
            p /= p.sum()
            expected = p @ f
            total += expected
            grad += x.T @ (p * (f - expected))
        n = len(problems)
        d = w - prior
        return -total / n + l2 * d @ d, -grad / n + 2 * l2 * d

    result = minimize(loss, prior, jac=True, method="L-BFGS-B", options={"maxiter": rounds})
    return {k: round(float(v), 1) for k, v in zip(keys, result.x, strict=True)}


def _apply(weights: dict[str, float]) -> None:
    """Use fitted weights in this process (to measure them before pasting them in)."""
    for k, v in weights.items():
        if "@" not in k:
            short_answer._WEIGHTS[k] = v
    for qtype, fitted in short_answer._TYPE_FIT.items():
        for k in fitted:
            fitted[k] = weights[f"{k}@{qtype}"]
    short_answer._best_span.cache_clear()  # spans scored with the weights before


def write_weights(path: Path) -> None:
    """Rewrite the "syntax" level of the weights file with the weights now in use (the other
    levels and the file's notes unchanged)."""
    body = json.loads(path.read_text(encoding="utf-8"))
    body["syntax"] = {"weights": short_answer._WEIGHTS, "by_type": short_answer._TYPE_FIT}
    path.write_text(json.dumps(body, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--split", choices=("dev", "heldout", "all"), default="heldout")
    parser.add_argument("--rules-only", action="store_true", help="no entities, noun chunks or question parse")
    parser.add_argument("--no-syntax", action="store_true",
                        help="entities and noun chunks only (as sentences stored before the syntactic roles)")
    parser.add_argument("--fit", action="store_true", help="refit the weights on the dev split and print them")
    parser.add_argument("--write", action="store_true",
                        help=f"with --fit: write the refitted weights into {short_answer.WEIGHTS_FILE.name}")
    args = parser.parse_args(argv)

    analyzer = shared_analyzer()
    if args.fit:
        weights = fit(analysed(load(args.data, "dev"), analyzer))
        print(json.dumps(weights))
        _apply(weights)
        if args.write:
            write_weights(short_answer.WEIGHTS_FILE)
        args.split = "dev"
    cases = load(args.data, args.split)
    if not args.rules_only:
        cases = analysed(cases, analyzer)
    if args.no_syntax:
        cases = [replace(c, mentions=without_syntax(c.mentions)) for c in cases]
    report = evaluate(cases, language=not args.rules_only)
    print(json.dumps({"data": str(args.data), "split": args.split, "rules_only": args.rules_only,
                      "no_syntax": args.no_syntax, **report}))


if __name__ == "__main__":
    main()
