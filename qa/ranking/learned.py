"""The default reranker: a linear score over the features of qa/ranking/features.py (fitted
listwise), with a logistic calibration on top (how far the best candidate stands out of its
pool, plus how much of the question it covers), applied in plain numpy.

Its fitted parameters are a small text artifact, ``learned_ranker.json`` beside this module,
written by ``python -m citeqa.evaluation.fit_ranker`` (fitted on questions 1-1000 of SQuAD
dev with 20% negatives; figures in the artifact's ``report``). The calibrated probability
of the best candidate is the answerability gate: the artifact carries the threshold chosen
on the fitting split, which settings may override.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from citeqa.qa.ranking.types import Candidate, Ranked

ARTIFACT = Path(__file__).with_name("learned_ranker.json")
FORMAT = "citeqa-learned-ranker/1"


class ArtifactError(ValueError):
    """The artifact is missing, of another format, or names features this code lacks."""


# What the calibration may read of a candidate: its ranking logit, how far it stands out of
# its own pool ("margin": its logit minus the best other one; "share": its softmax share of
# the pool), or any feature by name (absolute evidence such as coverage, which a ranking
# relative within one pool cannot see). The artifact names the ones it was fitted on.
POOL_INPUTS: tuple[str, ...] = ("logit", "margin", "share")
GATE_INPUTS: tuple[str, ...] = ("logit", "cosine", "coverage", "missing_terms")  # the first artifact's


@dataclass(frozen=True)
class LinearModel:
    """The ranking score ``z = w · (x - mean) / scale + bias`` (a standardised linear model
    over candidates) and the probability ``p = sigmoid(g · gate_inputs + c)``, a logistic
    calibration fitted on the best candidate of each question: the probability that it
    answers."""

    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float
    gate_weights: np.ndarray = field(default_factory=lambda: np.array([1.0, 0.0, 0.0, 0.0]))
    gate_bias: float = 0.0
    threshold: float = 0.5
    gate_inputs: tuple[str, ...] = GATE_INPUTS

    def logits(self, rows: np.ndarray) -> np.ndarray:
        return ((rows - self.mean) / self.scale) @ self.weights + self.bias

    def gate_rows(self, rows: np.ndarray) -> np.ndarray:
        """Per candidate (a row of one question's pool), the calibration's inputs."""
        z = self.logits(rows)
        columns = []
        for name in self.gate_inputs:
            if name == "logit":
                columns.append(z)
            elif name == "margin":
                columns.append(z - _best_other(z))
            elif name == "share":
                e = np.exp(z - z.max()) if len(z) else z
                columns.append(e / e.sum() if len(z) else z)
            else:
                columns.append(rows[:, self.features.index(name)] if name in self.features else np.zeros(len(rows)))
        return np.column_stack(columns) if columns else np.zeros((len(rows), 0))

    def probabilities(self, rows: np.ndarray) -> np.ndarray:
        return _sigmoid(self.gate_rows(rows) @ self.gate_weights + self.gate_bias)

    def matrix(self, candidates: Sequence[Candidate]) -> np.ndarray:
        """Candidates × features; a feature a candidate lacks (an answer type of a sentence
        never analysed) is the fitting average: it moves the score neither way."""
        # One dict merge per candidate (the defaults' key order is the features' order; a
        # feature the model does not read comes after them and is cut off) instead of a
        # lookup per feature: the same numbers, a third of the time.
        defaults = self._defaults
        n = len(self.features)
        return np.array([list({**defaults, **c.features}.values())[:n] for c in candidates],
                        dtype=np.float64).reshape(len(candidates), n)

    @cached_property
    def _defaults(self) -> dict[str, float]:
        return {f: float(m) for f, m in zip(self.features, self.mean, strict=True)}

    def to_json(self, extra: dict[str, Any] | None = None) -> str:
        """Deterministic text: fixed key order, rounded numbers (refits compare byte for byte)."""
        body = {
            "format": FORMAT,
            "features": list(self.features),
            "mean": _round(self.mean), "scale": _round(self.scale),
            "weights": _round(self.weights), "bias": round(float(self.bias), 6),
            "calibration": {"inputs": list(self.gate_inputs), "weights": _round(self.gate_weights),
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
        from citeqa.qa.ranking.features import FEATURES

        unknown_features = ", ".join(sorted(set(body["features"]) - set(FEATURES)))
        if unknown_features:
            raise ArtifactError(f"it uses features this version does not compute: {unknown_features}")
        calibration = body["calibration"]
        inputs = tuple(calibration["inputs"])
        if len(calibration["weights"]) != len(inputs):
            raise ArtifactError("the calibration needs one weight per input")
        unknown = [name for name in inputs if name not in POOL_INPUTS and name not in body["features"]]
        if unknown:
            raise ArtifactError(f"the calibration reads what the model does not compute: {', '.join(unknown)}")
        return cls(tuple(body["features"]), arrays["mean"], arrays["scale"], arrays["weights"], float(body["bias"]),
                   np.asarray(calibration["weights"], dtype=np.float64), float(calibration["bias"]),
                   float(body["threshold"]), inputs)


def load_model(path: Path | None = None) -> LinearModel:
    path = path or ARTIFACT
    try:
        return LinearModel.from_json(path.read_text(encoding="utf-8"))
    except (OSError, KeyError, TypeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"cannot read the learned ranker at {path}: {exc}") from exc
    except ArtifactError as exc:
        raise ArtifactError(f"{path}: {exc}") from exc


class LearnedRanker:
    """Reorders candidates by the fitted model's calibrated probability (best first)."""

    name = "learned"

    def __init__(self, *, path: Path | str | None = None, threshold: float | None = None):
        self.model = load_model(Path(path) if path else None)  # a few hundred bytes of JSON
        # Abstain below this probability of the best candidate (the artifact's unless given).
        self.threshold = self.model.threshold if threshold is None else threshold

    def rerank(self, question: str, candidates: Sequence[Candidate]) -> list[Ranked]:
        """Ordered by the ranking score; each candidate's probability is the calibrated one,
        capped by those above it (the calibration also reads absolute evidence, so a lower
        candidate could otherwise look surer than the one cited before it)."""
        if not candidates:
            return []
        rows = self.model.matrix(candidates)
        z, p = self.model.logits(rows), self.model.probabilities(rows)
        order = sorted(range(len(candidates)), key=lambda i: (-z[i], i))  # ties keep retrieval order
        capped = np.minimum.accumulate(p[order])
        return [Ranked(candidates[i].hit, float(q)) for i, q in zip(order, capped, strict=True)]


def _best_other(z: np.ndarray) -> np.ndarray:
    """For each entry, the largest of the others (itself when alone: a margin of 0)."""
    if len(z) < 2:
        return z.copy()
    order = np.argsort(-z, kind="stable")
    best = np.full(len(z), z[order[0]])
    best[order[0]] = z[order[1]]
    return best


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -50, 50)))


def _round(values: np.ndarray) -> list[float]:
    return [round(float(v), 6) for v in values]
