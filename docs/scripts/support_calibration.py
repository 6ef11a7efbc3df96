"""How well does a support score tell a claim's true source sentence from a near miss?

Claims are built from SQuAD dev: the gold answer followed by the question without its
wh-word ("Carolina Panthers represented the NFC at Super Bowl 50"), the way a generator
restates an answer. The positive is the gold paragraph's sentence that contains the
answer; the negative is the same paragraph's most word-overlapping sentence that does not
(a hard near miss). Prints ROC AUC and the best-accuracy threshold for lexical recall,
cosine similarity and their blends.

    python docs/scripts/support_calibration.py ../shared/eval/squad_dev.jsonl --limit 1500
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np

from citeqa.index.embedder import SentenceTransformerEmbedder
from citeqa.index.sentences import split_sentences
from citeqa.qa.citations import SupportScorer, lexical_support

WH = re.compile(r"^\s*(what|which|who|whom|whose|when|where|why|how many|how much|how)\b"
                r"\s*(is|are|was|were|did|does|do)?\s*", re.I)


def claims(path: Path, limit: int):
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            q = json.loads(line)
            if not q["answers"] or not q["documents"]:
                continue
            answer = q["answers"][0]
            text = q["documents"][0]["text"]
            spans = split_sentences(text)
            sents = [text[s.start:s.end] for s in spans]
            gold = [s for s in sents if answer in s]
            others = [s for s in sents if answer not in s]
            if not gold or not others:
                continue
            claim = f"{answer} {WH.sub('', q['question']).rstrip('?').strip()}."
            negative = max(others, key=lambda s: lexical_support(claim, s))
            yield claim, gold[0], negative, q["question"]
            limit -= 1
            if limit == 0:
                return


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    scores = np.concatenate([pos, neg])
    ranks = scores.argsort().argsort() + 1
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def best_threshold(pos: np.ndarray, neg: np.ndarray) -> tuple[float, float]:
    best = (0.0, 0.0)
    for t in np.linspace(0, 1, 101):
        acc = ((pos >= t).sum() + (neg < t).sum()) / (len(pos) + len(neg))
        best = max(best, (float(acc), float(t)))
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("questions", type=Path)
    ap.add_argument("--limit", type=int, default=1500)
    args = ap.parse_args()
    rows = list(claims(args.questions, args.limit))
    emb = SentenceTransformerEmbedder()
    c = emb.encode([r[0] for r in rows])
    p = emb.encode([r[1] for r in rows])
    n = emb.encode([r[2] for r in rows])
    lex_p = np.array([lexical_support(r[0], r[1]) for r in rows])
    lex_n = np.array([lexical_support(r[0], r[2]) for r in rows])
    cos_p, cos_n = (c * p).sum(1), (c * n).sum(1)
    print(f"{len(rows)} claims")
    for w in (1.0, 0.75, 0.5, 0.25, 0.0):
        sp, sn = w * lex_p + (1 - w) * cos_p, w * lex_n + (1 - w) * cos_n
        acc, t = best_threshold(sp, sn)
        print(f"lexical weight {w:.2f}: AUC {auc(sp, sn):.3f}  best accuracy {acc:.3f} at {t:.2f}"
              f"  positives kept at 0.5: {(sp >= 0.5).mean():.3f}  negatives kept at 0.5: {(sn >= 0.5).mean():.3f}")
    # What qa/citations.py uses: the 0.75 blend and the numbers rule.
    sp = np.array([SupportScorer(emb, r[3])(r[0], r[1]) for r in rows])
    sn = np.array([SupportScorer(emb, r[3])(r[0], r[2]) for r in rows])
    acc, t = best_threshold(sp, sn)
    print(f"SupportScorer (blend + numbers rule): AUC {auc(sp, sn):.3f}  best accuracy {acc:.3f} at {t:.2f}"
          f"  positives kept at 0.5: {(sp >= 0.5).mean():.3f}  negatives kept at 0.5: {(sn >= 0.5).mean():.3f}")


if __name__ == "__main__":
    main()
