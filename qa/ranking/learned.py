"""The default reranker: a logistic regression over the features of qa/ranking/features.py,
with a logistic calibration on top (the ranking logit plus absolute evidence), applied in
plain numpy.

Its fitted parameters are a small text artifact, ``learned_ranker.json`` beside this module,
written by ``python -m citeqa.evaluation.fit_ranker`` (fitted on questions 1-1000 of SQuAD
dev with 20% negatives; figures in the artifact's ``report``). The calibrated probability
of the best candidate is the answerability gate: the artifact carries the threshold chosen
on the fitting split, which settings may override.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from citeqa.qa.ranking.types import Candidate, Ranked

ARTIFACT = Path(__file__).with_name("learned_ranker.json")
FORMAT = "citeqa-learned-ranker/1"


class ArtifactError(ValueError):
    """The artifact is missing, of another format, or names features this code lacks."""


# What the calibration reads besides the ranking logit: absolute evidence, which the ranking
# (relative within a question's pool) cannot see: how similar the sentence is at all, how
# much of the question it covers, how much of the question no candidate mentions.
GATE_INPUTS: tuple[str, ...] = ("logit", "cosine", "coverage", "missing_terms")


@dataclass(frozen=True)
class LinearModel:
    """The ranking score ``z = w · (x - mean) / scale + bias`` (a standardised logistic
    regression over candidates) and the probability ``p = sigmoid(g · (z, cosine, coverage,
    missing_terms) + c)``, a logistic calibration fitted on the best candidate of each
    question: the probability that it answers."""

    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float
    gate_weights: np.ndarray = field(default_factory=lambda: np.array([1.0, 0.0, 0.0, 0.0]))
    gate_bias: float = 0.0
    threshold: float = 0.5

    def logits(self, rows: np.ndarray) -> np.ndarray:
        return ((rows - self.mean) / self.scale) @ self.weights + self.bias

    def gate_rows(self, rows: np.ndarray) -> np.ndarray:
        z = self.logits(rows)
        return np.column_stack([z] + [rows[:, self.features.index(f)] if f in self.features else np.zeros(len(rows))
                                      for f in GATE_INPUTS[1:]])

    def probabilities(self, rows: np.ndarray) -> np.ndarray:
        return _sigmoid(self.gate_rows(rows) @ self.gate_weights + self.gate_bias)

    def matrix(self, candidates: Sequence[Candidate]) -> np.ndarray:
        return np.array([[c.features.get(f, 0.0) for f in self.features] for c in candidates],
                        dtype=np.float64).reshape(len(candidates), len(self.features))

    def to_json(self, extra: dict[str, Any] | None = None) -> str:
        """Deterministic text: fixed key order, rounded numbers (refits compare byte for byte)."""
        body = {
            "format": FORMAT,
            "features": list(self.features),
            "mean": _round(self.mean), "scale": _round(self.scale),
            "weights": _round(self.weights), "bias": round(float(self.bias), 6),
            "calibration": {"inputs": list(GATE_INPUTS), "weights": _round(self.gate_weights),
                            "bias": round(float(self.gate_bias), 6)},
            "threshold": round(self.threshold, 4),
            **(extra or {}),
        }
        return json.dumps(body, indent=1, sort_keys=False, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "LinearModel":
        body = json.loads(text)
        if body.get("format") != FORMAT:
            raise ArtifactError(f"not a {FORMAT} artifact (format {body.get('format')!r})")
        n = len(body["features"])
        arrays = {k: np.asarray(body[k], dtype=np.float64) for k in ("mean", "scale", "weights")}
        if any(a.shape != (n,) for a in arrays.values()):
            raise ArtifactError("mean, scale and weights must have one value per feature")
        calibration = body["calibration"]
        if tuple(calibration["inputs"]) != GATE_INPUTS or len(calibration["weights"]) != len(GATE_INPUTS):
            raise ArtifactError(f"the calibration must read {', '.join(GATE_INPUTS)}")
        return cls(tuple(body["features"]), arrays["mean"], arrays["scale"], arrays["weights"], float(body["bias"]),
                   np.asarray(calibration["weights"], dtype=np.float64), float(calibration["bias"]),
                   float(body["threshold"]))


def load_model(path: Path | None = None) -> LinearModel:
    from citeqa.qa.ranking.features import FEATURES

    path = path or ARTIFACT
    try:
        model = LinearModel.from_json(path.read_text(encoding="utf-8"))
    except (OSError, KeyError, TypeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"cannot read the learned ranker at {path}: {exc}") from exc
    unknown = set(model.features) - set(FEATURES)
    if unknown:
        raise ArtifactError(f"{path} uses features this version does not compute: {', '.join(sorted(unknown))}")
    return model


class LearnedRanker:
    """Reorders candidates by the fitted model's calibrated probability (best first)."""

    name = "learned"

    def __init__(self, *, path: Path | str | None = None, threshold: float | None = None):
        self.model = load_model(Path(path) if path else None)  # a few hundred bytes of JSON
        # Abstain below this probability of the best candidate (the artifact's unless given).
        self.threshold = self.model.threshold if threshold is None else threshold

    def rerank(self, question: str, candidates: Sequence[Candidate]) -> list[Ranked]:
        if not candidates:
            return []
        p = self.model.probabilities(self.model.matrix(candidates))
        order = sorted(range(len(candidates)), key=lambda i: (-p[i], i))  # ties keep retrieval order
        return [Ranked(candidates[i].hit, float(p[i])) for i in order]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -50, 50)))


def _round(values: np.ndarray) -> list[float]:
    return [round(float(v), 6) for v in values]
