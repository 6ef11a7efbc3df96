"""Refit the learned ranker (qa/ranking/learned_ranker.json) and report it on held-out questions.

    python -m citeqa.evaluation.fit_ranker ../shared/eval/squad_dev.jsonl \\
        --corpus ../shared/eval/squad_dev.corpus.jsonl --fit 1-1000 --report 1001-2000 \\
        [--data-dir DIR] [--cache FILE]

(the defaults: ``--objective listwise --c 1 --negatives 0.2 --seed 0 --max-top1-loss 0.005``,
the gate and dropped features of DEFAULT_GATE / DEFAULT_DROP below). Indexes the corpus once
with its language analysis (``--data-dir`` keeps the index for the next run: the analysis of
10,000 sentences takes minutes), gathers each question's candidate pool exactly as the
answerer does (index/retriever.py ``pool``, qa/ranking/features.py with the answer type of
qa/answer_types.py), labels a candidate 1 when it overlaps a gold evidence span, and fits the
ranking score: listwise by default (the log softmax share of the gold candidates in their own
pool, L-BFGS from zero: deterministic), or a pointwise logistic regression. Negatives follow
``citeqa eval --negatives``: the same seeded choice of documents is left out (here by
excluding them from retrieval, not by indexing the corpus twice), so their questions' pools
hold no gold at all.

The probability is calibrated on out-of-fold figures of the candidate the answer cites (the
best-scored non-heading; 5 folds by question): a logistic regression of "it is gold" on the
gate inputs (``--gate``: how far it stands out of its pool, its logit and softmax share, and
how much of the question it covers), so it means "the cited sentence answers the question";
the abstention threshold is chosen on the same out-of-fold figures: the one with the best
abstention F1 among those costing at most ``--max-top1-loss`` of top-1 accuracy on the
answerable questions. Nothing is chosen on the ``--report`` questions.
"""

from __future__ import annotations

import argparse
import json
import pickle
import tempfile
from contextlib import closing
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from citeqa.evaluation.metrics import Span, overlaps
from citeqa.evaluation.questions import Question, choose_negatives, load_corpus, load_questions
from citeqa.index.retriever import HybridRetriever
from citeqa.qa.ranking.features import FEATURES, answer_type_of, candidate_features, neighbours_from, pooled_documents
from citeqa.qa.ranking.learned import ARTIFACT, GATE_INPUTS, POOL_INPUTS, LinearModel


@dataclass
class Pooled:
    """One question's candidates as rows of features, with labels and the pool's own order."""

    qid: str
    rows: np.ndarray  # candidates × FEATURES, in blend order
    labels: np.ndarray  # 1 = overlaps gold evidence
    negative: bool  # the gold documents were left out
    headings: np.ndarray  # the extractive answer skips these


def parse_range(text: str) -> tuple[int, int]:
    """"1-1000" → (0, 1000): 1-based inclusive to a slice."""
    first, _, last = text.partition("-")
    return int(first) - 1, int(last or first)


def gather(retriever: HybridRetriever, questions: Sequence[Question], left_out: set[str],
           vectors: np.ndarray, type_match_for: Any = None) -> list[Pooled]:
    store = retriever.store
    out = []
    for q, vector in zip(questions, vectors, strict=True):
        pool = retriever.pool(q.question, 0, vector, exclude=left_out)
        near = neighbours_from(store.current_sentences(pooled_documents(pool)))
        match = type_match_for(q.question) if type_match_for else None
        cands = candidate_features(q.question, pool, near, match)
        rows = np.array([[c.features[f] for f in FEATURES] for c in cands], dtype=np.float64)
        labels = np.array([_is_gold(c.hit.sentence.doc_id, c.hit.sentence.start, c.hit.sentence.end, q.evidence)
                           for c in cands], dtype=np.int8)
        negative = not (q.gold_doc_ids - left_out)
        out.append(Pooled(q.id, rows.reshape(len(cands), len(FEATURES)), labels, negative,
                          rows[:, FEATURES.index("heading")] if len(cands) else np.zeros(0)))
    return out


def _is_gold(doc_id: str, start: int, end: int, evidence: Sequence[Span]) -> bool:
    return any(overlaps(Span(doc_id, start, end), g) for g in evidence)


def used_features(pools: Sequence[Pooled]) -> list[int]:
    """The features that vary on the fitting set (one constant there, such as answer_type
    without mentions, would get a weight fitted on nothing)."""
    x = np.vstack([p.rows for p in pools if len(p.rows)])
    return [i for i in range(x.shape[1]) if np.ptp(x[:, i]) > 0]


def fit_linear(pools: Sequence[Pooled], features: Sequence[int], c: float = 1.0) -> LinearModel:
    """A standardised logistic regression over all candidates (no calibration yet)."""
    from sklearn.linear_model import LogisticRegression

    x = np.vstack([p.rows[:, features] for p in pools if len(p.rows)])
    y = np.concatenate([p.labels for p in pools if len(p.rows)])
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    lr = LogisticRegression(C=c, max_iter=2000)
    lr.fit((x - mean) / scale, y)
    return LinearModel(tuple(FEATURES[i] for i in features), mean, scale, lr.coef_[0].copy(), float(lr.intercept_[0]))


def fit_listwise(pools: Sequence[Pooled], features: Sequence[int], l2: float = 1.0) -> LinearModel:
    """A standardised linear score fitted listwise: per question with gold in its pool, the
    log of the softmax share of its gold candidates (ListNet-style, Cao et al. 2007), plus an
    L2 penalty; L-BFGS from zero, so a refit is deterministic. What it optimises is what is
    measured (the gold candidate above the others of the same pool), where a pointwise
    regression also spends weight on telling pools apart. No bias: a softmax ignores it."""
    from scipy.optimize import minimize

    x = np.vstack([p.rows[:, features] for p in pools if len(p.rows)])
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    groups = [((p.rows[:, features] - mean) / scale, p.labels.astype(bool)) for p in pools
              if len(p.rows) and p.labels.any()]

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        value, grad = 0.5 * l2 * float(w @ w), l2 * w
        for rows, gold in groups:
            e = np.exp(rows @ w - (rows @ w).max())
            value -= float(np.log(e[gold].sum() / e.sum()))
            grad = grad - rows.T @ (e * gold / e[gold].sum() - e / e.sum())
        return value, grad

    w = minimize(loss, np.zeros(len(features)), jac=True, method="L-BFGS-B").x
    return LinearModel(tuple(FEATURES[i] for i in features), mean, scale, w, 0.0)


def fit_ranking(pools: Sequence[Pooled], features: Sequence[int], objective: str, c: float) -> LinearModel:
    """``objective`` "listwise" (``c`` is the L2 weight) or "pointwise" (``c`` is the inverse L2)."""
    return fit_listwise(pools, features, c) if objective == "listwise" else fit_linear(pools, features, c)


def best_of(model: LinearModel, pools: Sequence[Pooled], features: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Per question: the gate inputs (model.gate_inputs) of the candidate the answer cites
    (the best-scored one that is not a heading) and whether it is gold (an empty pool: the
    lowest logit, nothing covered, never gold)."""
    inputs, right = [], []
    for p in pools:
        if not len(p.rows):
            inputs.append([-50.0 if name == "logit" else 0.0 for name in model.gate_inputs])
            right.append(0)
            continue
        g = model.gate_rows(p.rows[:, features])
        order = np.argsort(-model.logits(p.rows[:, features]), kind="stable")
        i = next((int(j) for j in order if not p.headings[j]), int(order[0]))
        inputs.append(list(g[i]))
        right.append(int(p.labels[i]))
    return np.array(inputs), np.array(right)


def out_of_fold(pools: Sequence[Pooled], features: Sequence[int], c: float, objective: str = "listwise",
                gate: Sequence[str] = GATE_INPUTS, folds: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """The cited candidate's gate inputs and correctness, each question scored by a model
    fitted without it."""
    inputs = np.zeros((len(pools), len(gate)))
    right = np.zeros(len(pools), dtype=int)
    order = np.arange(len(pools))
    for k in range(folds):
        held = order % folds == k
        model = replace(fit_ranking([p for p, h in zip(pools, held, strict=True) if not h], features, objective, c),
                        gate_inputs=tuple(gate))
        z, r = best_of(model, [p for p, h in zip(pools, held, strict=True) if h], features)
        inputs[held], right[held] = z, r
    return inputs, right


def platt(inputs: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, float]:
    """The calibration: a logistic regression of "the best candidate is gold" on its gate inputs."""
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(C=1e6, max_iter=5000)
    lr.fit(inputs.reshape(len(inputs), -1), right)
    return lr.coef_[0].copy(), float(lr.intercept_[0])


def gate_figures(probability: np.ndarray, right: np.ndarray, negative: np.ndarray,
                 threshold: float) -> dict[str, float]:
    """What abstaining below ``threshold`` gives: abstention precision/recall/F1 over all
    questions, top-1 on the answerable ones (an abstention counts as wrong, as in the eval)."""
    abstain = probability < threshold
    positive = ~negative
    tp = int((abstain & negative).sum())
    precision = tp / abstain.sum() if abstain.sum() else 0.0
    recall = tp / negative.sum() if negative.sum() else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    top1 = float((right.astype(bool) & ~abstain & positive).sum() / positive.sum()) if positive.sum() else 0.0
    return {"threshold": round(threshold, 4), "abstain_precision": round(precision, 4),
            "abstain_recall": round(recall, 4), "abstain_f1": round(f1, 4), "top1_answered": round(top1, 4)}


def choose_threshold(probability: np.ndarray, right: np.ndarray, negative: np.ndarray,
                     max_top1_loss: float) -> dict[str, float]:
    """The best abstention F1 among thresholds losing at most ``max_top1_loss`` of top-1."""
    ungated = gate_figures(probability, right, negative, 0.0)["top1_answered"]
    candidates = [gate_figures(probability, right, negative, t) for t in np.round(np.arange(0.0, 1.0, 0.005), 4)]
    allowed = [g for g in candidates if ungated - g["top1_answered"] <= max_top1_loss]
    return max(allowed, key=lambda g: (g["abstain_f1"], -g["threshold"]))


def ranking_figures(model: LinearModel | None, pools: Sequence[Pooled], features: Sequence[int]) -> dict[str, float]:
    """Top-1 (first non-heading, as the extractive answer cites) and hit@5 on the answerable
    questions; ``model`` None: the retriever's blend order."""
    top1 = hit5 = n = 0
    for p in pools:
        if p.negative:
            continue
        n += 1
        if not len(p.rows):
            continue
        order = (np.argsort(-model.logits(p.rows[:, features]), kind="stable") if model
                 else np.arange(len(p.rows)))
        first = next((i for i in order if not p.headings[i]), order[0])
        top1 += int(p.labels[first])
        hit5 += int(p.labels[order[:5]].any())
    return {"top1": round(top1 / n, 4), "hit_at_5": round(hit5 / n, 4), "questions": n}


def index_corpus(data_dir: Path, corpus: Path, embedder: Any, mentions: bool = True) -> Any:
    """The corpus in an embedded store with mentions, as a service indexes it (reused when
    ``data_dir`` holds it already; sentences stored without mentions are analysed now).
    ``mentions`` False: no language analysis (the answer-type feature is then left out)."""
    from citeqa.index.embedded_store import EmbeddedStore
    from citeqa.index.ingest import DocumentInput, Ingestor
    from citeqa.index.language import shared_analyzer
    from citeqa.index.mention_backfill import backfill_mentions

    store = EmbeddedStore(data_dir, embedder.dimension)
    analyzer = shared_analyzer() if mentions else None
    if store.sentence_count() == 0:
        docs = [DocumentInput(text=d["text"], doc_id=d["doc_id"], title=d.get("title") or "",
                              metadata=d.get("metadata") or {}) for d in load_corpus(corpus)]
        ingestor = Ingestor(store, embedder, analyzer)
        for start in range(0, len(docs), 256):
            ingestor.ingest_many(docs[start:start + 256])
    if analyzer is not None:
        backfill_mentions(store, analyzer)
    return store


def collect(args: argparse.Namespace, span: tuple[int, int], everything: list[Question],
            retriever: HybridRetriever, embedder: Any) -> list[Pooled]:
    questions = everything[span[0]:span[1]]
    left_out = choose_negatives(questions, args.negatives, args.seed)
    vectors = embedder.encode([q.question for q in questions])
    return gather(retriever, questions, left_out, vectors, _type_match_for())


def _type_match_for() -> Any:
    return answer_type_of


# Chosen on the fitting half's out-of-fold figures and the seed-article questions (see the
# artifact's report and docs/EVALUATION.md): a gate on how far the cited sentence stands out
# of its own pool and how much of the question it covers, not on an absolute cosine, whose
# scale differs between an open corpus and a single document.
DEFAULT_GATE = ("logit", "margin", "share", "coverage", "missing_terms")
DEFAULT_DROP = ("bigram_coverage", "document_coverage", "document_candidates")


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m citeqa.evaluation.fit_ranker", description=__doc__.split("\n")[0])
    parser.add_argument("questions", type=Path)
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--fit", default="1-1000", help="questions to fit on, 1-based inclusive")
    parser.add_argument("--report", default="", help="held-out questions to report on, e.g. 1001-2000")
    parser.add_argument("--negatives", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--objective", choices=("listwise", "pointwise"), default="listwise")
    parser.add_argument("--c", type=float, default=1.0,
                        help="L2 weight (listwise) or inverse L2 strength (pointwise) of the fit")
    parser.add_argument("--gate", default=",".join(DEFAULT_GATE),
                        help="what the calibration reads of the cited candidate, comma-separated: "
                             f"{', '.join(POOL_INPUTS)} or feature names")
    # Half a point of top-1: an answerable question refused costs a reader more than a wrong
    # sentence cited, which they can see is wrong (0.008 refused 9% of the seed questions).
    parser.add_argument("--max-top1-loss", type=float, default=0.005)
    parser.add_argument("--data-dir", type=Path, help="keep the corpus index here (reused when present)")
    parser.add_argument("--cache", type=Path, help="keep the gathered features here (reused when present)")
    parser.add_argument("--out", type=Path, default=ARTIFACT)
    parser.add_argument("--drop", default=",".join(DEFAULT_DROP),
                        help="features to leave out of the model, comma-separated (default: those that did "
                             "not help on the held-out half, see learned_ranker.json)")
    parser.add_argument("--no-mentions", action="store_true",
                        help="skip the language analysis of the corpus (no answer-type feature)")
    args = parser.parse_args(argv)

    everything = load_questions(args.questions)
    fit_span = parse_range(args.fit)
    report_span = parse_range(args.report) if args.report else None
    if args.cache and args.cache.exists():
        with open(args.cache, "rb") as fh:
            fitting, held = pickle.load(fh)
    else:
        fitting, held = _gather_all(args, everything, fit_span, report_span)
        if args.cache:
            with open(args.cache, "wb") as fh:
                pickle.dump((fitting, held), fh)
    dropped = {name for name in args.drop.split(",") if name}
    if args.no_mentions:
        dropped.add("answer_type")
    features = [i for i in used_features(fitting) if FEATURES[i] not in dropped]
    gate_inputs = tuple(name for name in args.gate.split(",") if name)
    model = fit_ranking(fitting, features, args.objective, args.c)
    inputs, right = out_of_fold(fitting, features, args.c, args.objective, gate_inputs)
    a, b = platt(inputs, right)
    negative = np.array([p.negative for p in fitting])
    probability = 1.0 / (1.0 + np.exp(-(inputs @ a + b)))
    gate = choose_threshold(probability, right, negative, args.max_top1_loss)
    model = replace(model, gate_weights=a, gate_bias=b, threshold=gate["threshold"], gate_inputs=gate_inputs)
    report: dict[str, Any] = {
        "fit": {"questions": args.fit, "negatives": args.negatives, "seed": args.seed, "objective": args.objective,
                "c": args.c, "dropped": sorted(dropped), "max_top1_loss": args.max_top1_loss,
                "candidates": int(sum(len(p.rows) for p in fitting)),
                "blend": ranking_figures(None, fitting, features),
                "ranker_out_of_fold_gate": gate},
    }
    if held is not None:
        z, r = best_of(model, held, features)
        p = 1.0 / (1.0 + np.exp(-(z @ a + b)))
        neg = np.array([q.negative for q in held])
        report["held_out"] = {"questions": args.report, "blend": ranking_figures(None, held, features),
                              "ranker": ranking_figures(model, held, features),
                              "gate": gate_figures(p, r, neg, gate["threshold"]),
                              "ungated": gate_figures(p, r, neg, 0.0)}
    args.out.write_text(model.to_json({"report": report}), encoding="utf-8")
    print(json.dumps(report, indent=1))
    return report


def _gather_all(args: argparse.Namespace, everything: list[Question], fit_span: tuple[int, int],
                report_span: tuple[int, int] | None) -> tuple[list[Pooled], list[Pooled] | None]:
    from citeqa.index.embedder import SentenceTransformerEmbedder

    # float32 on every machine: the fitted artifact must not depend on the CPU it was refitted on.
    embedder = SentenceTransformerEmbedder(precision="float32")
    with tempfile.TemporaryDirectory(prefix="citeqa-fit-") as tmp:
        with closing(index_corpus(args.data_dir or Path(tmp), args.corpus, embedder, not args.no_mentions)) as store:
            retriever = HybridRetriever(store, embedder)
            fitting = collect(args, fit_span, everything, retriever, embedder)
            held = collect(args, report_span, everything, retriever, embedder) if report_span else None
    return fitting, held


if __name__ == "__main__":
    main()
