"""The figures of a ``citeqa eval`` run over all its questions: citation precision and
recall, search hit rates, answer scores, abstention, latency, what the generator cost, and
what each abstention threshold would have given."""

from __future__ import annotations

from typing import Any, Sequence

from citeqa.bench.percentiles import Method, percentile
from citeqa.evaluation.metrics import f1_of

# The nearest-rank percentile: always a measured latency (see bench/percentiles.py).
PERCENTILE: Method = "inverted_cdf"


def _mean(values: Sequence[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def _round(value: float | None) -> float | None:
    return round(value, 2) if value is not None else None


def _p(values: Sequence[float], q: float) -> float | None:
    return _round(percentile(values, q, PERCENTILE))


def summarise(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The report's figures from the per-question records of evaluation.run."""
    pos = [r for r in records if r["positive"]]
    neg = [r for r in records if r["negative"]]
    returned = sum(r["citations_returned"] for r in pos)
    precision = sum(r["citations_correct"] for r in pos) / returned if returned else 0.0
    recall = sum(r["citation_recall"] for r in pos) / len(pos) if pos else 0.0
    all_returned = sum(r["citations_returned"] for r in records)
    abstained = [r for r in records if r["abstained"]]
    correct_abstentions = sum(r["negative"] for r in abstained)
    chars = [c for r in records for c in r["citation_chars"]]
    ranks = [r["search_rank"] for r in pos]
    return {
        "questions": len(records),
        "questions_with_gold_indexed": len(pos),
        "negative_questions": len(neg),
        "quote_valid_rate": round(sum(r["citations_valid"] for r in records) / all_returned, 4)
        if all_returned else 1.0,
        "citation_precision": round(precision, 4),
        "citation_recall": round(recall, 4),
        "citation_f1": round(f1_of(precision, recall), 4),
        "top1_citation_accuracy": _mean([r["top1"] for r in pos]),
        "search_hit_at_1": _mean([float(k is not None and k <= 1) for k in ranks]),
        "search_hit_at_5": _mean([float(k is not None and k <= 5) for k in ranks]),
        "search_hit_at_10": _mean([float(k is not None and k <= 10) for k in ranks]),
        "search_mrr": _mean([1.0 / k if k else 0.0 for k in ranks]),
        "answer_em": _mean([r["answer_em"] for r in pos]),
        "answer_f1": _mean([r["answer_f1"] for r in pos]),
        "short_answer_em": _mean([r["short_em"] for r in pos]),
        "short_answer_f1": _mean([r["short_f1"] for r in pos]),
        "answered_rate": _mean([float(not r["abstained"]) for r in pos]),
        "abstain_precision": round(correct_abstentions / len(abstained), 4) if abstained else None,
        "abstain_recall": round(correct_abstentions / len(neg), 4) if neg else None,
        "mean_citation_chars": round(sum(chars) / len(chars), 1) if chars else None,
        "ask_p50_ms": _p([r["ask_ms"] for r in records], 50),
        "ask_p95_ms": _p([r["ask_ms"] for r in records], 95),
        "search_p50_ms": _p([r["search_ms"] for r in records], 50),
        **_generation_figures(records, all_returned),
        "abstain_f1": _abstain_f1(records),
        "threshold_curve": threshold_curve(records),
        "reliability": reliability(records),
    }


def _abstain_f1(records: Sequence[dict[str, Any]]) -> float | None:
    negatives = sum(r["negative"] for r in records)
    abstained = [r for r in records if r["abstained"]]
    if not negatives or not abstained:
        return None if not negatives else 0.0
    right = sum(r["negative"] for r in abstained)
    return round(f1_of(right / len(abstained), right / negatives), 4)


def reliability(records: Sequence[dict[str, Any]], bins: int = 10) -> list[dict[str, float]]:
    """The gate's reliability: questions binned by the predicted probability that the best
    sentence answers (the first search hit's score), against the observed rate at which it
    does (it is gold evidence; never for a question whose gold is not indexed)."""
    counts = [[0, 0.0, 0] for _ in range(bins)]  # questions, summed probability, answered
    for r in records:
        p = min(max(float(r.get("probability", 0.0)), 0.0), 1.0)
        b = counts[min(int(p * bins), bins - 1)]
        b[0] += 1
        b[1] += p
        b[2] += int(bool(r["positive"]) and r["search_rank"] == 1)
    return [{"low": round(i / bins, 3), "high": round((i + 1) / bins, 3), "questions": n,
             "predicted": round(total / n, 4), "observed": round(answered / n, 4)}
            for i, (n, total, answered) in enumerate(counts) if n]


def _generation_figures(records: Sequence[dict[str, Any]], returned: int) -> dict[str, Any]:
    """What the generator cost and how often the verifier had to step in."""
    made = [r.get("generation", {}) for r in records if r.get("generation", {}).get("generate_ms") is not None]
    generators = sorted({r.get("generation", {}).get("generator") for r in records} - {None})
    return {
        "generator": ", ".join(generators) or None,
        "generate_p50_ms": _p([g["generate_ms"] for g in made], 50),
        "generate_p95_ms": _p([g["generate_ms"] for g in made], 95),
        "first_token_p50_ms": _p([g["first_token_ms"] for g in made if "first_token_ms" in g], 50),
        "tokens_per_s_p50": _p([g["tokens_per_s"] for g in made if "tokens_per_s" in g], 50),
        "completion_tokens_mean": _mean([g["completion_tokens"] for g in made if "completion_tokens" in g]),
        "dropped_citations": sum(r.get("dropped_citations", 0) for r in records),
        "verifier_citation_rate": round(sum(r.get("verifier_citations", 0) for r in records) / returned, 4)
        if returned else None,
    }


def threshold_curve(records: Sequence[dict[str, Any]], steps: int = 41) -> list[dict[str, float]]:
    """What abstaining below each threshold of the gate's signal (the ranker's probability
    when the records carry it, else the best cosine) would give, from the same run:
    accuracy = (correct first citations + correct abstentions) / questions. A question the
    run abstained on counts, where the sweep would answer it, as right when its top search
    hit is gold (the sentence the answer would most likely have cited)."""
    negatives = sum(r["negative"] for r in records)
    signal = "probability" if records and all("probability" in r for r in records) else "support"
    curve = []
    for i in range(steps):
        t = round(i / (steps - 1), 3)
        right = answered = abstained_right = abstained = 0
        for r in records:
            if r[signal] >= t:
                answered += 1
                top1 = r["top1"] if not r["abstained"] else float(r["search_rank"] == 1)
                right += bool(r["positive"] and top1 == 1.0)
            else:
                abstained += 1
                abstained_right += r["negative"]
        n = len(records) or 1
        curve.append({
            "threshold": t,
            "accuracy": round((right + abstained_right) / n, 4),
            "answered_rate": round(answered / n, 4),
            "answered_precision": round(right / answered, 4) if answered else 0.0,
            "abstain_precision": round(abstained_right / abstained, 4) if abstained else 0.0,
            "abstain_recall": round(abstained_right / negatives, 4) if negatives else 0.0,
        })
    return curve


def best_threshold(curve: Sequence[dict[str, float]], tolerance: float = 0.002) -> dict[str, float]:
    """The threshold with the best accuracy; among those within ``tolerance`` of it (run
    noise), the lowest, which answers the most questions."""
    best = max(point["accuracy"] for point in curve)
    return min((p for p in curve if p["accuracy"] >= best - tolerance), key=lambda p: p["threshold"])
