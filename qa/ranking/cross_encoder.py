"""A cross-encoder reranker: a sentence-transformers ``CrossEncoder`` read from a local
directory (never a model hub) scores each (question, passage) pair.

No cross-encoder ships in a package here, so this is for deployments that have one on disk
(e.g. ms-marco-MiniLM-L-6-v2): ``CITEQA_RERANKER=cross-encoder
CITEQA_CROSS_ENCODER_PATH=/models/...``. The model loads in the constructor, which the
composition root calls once at start, so a wrong path fails at start, not on a question.

Probability: one output (the usual reranker) is a logit, mapped through a sigmoid; two
outputs are read as [irrelevant, relevant] classes (softmax, the second); more outputs (an
NLI model, say) need ``label`` to say which class means "answers it" (softmax, that class).
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from citeqa.qa.ranking.types import Candidate, Ranked


class CrossEncoderUnavailable(RuntimeError):
    """The configured cross-encoder cannot be used here (no path, not a model, …)."""


class CrossEncoderReranker:
    name = "cross-encoder"

    def __init__(self, *, path: str | Path | None = None, batch_size: int = 16, max_length: int | None = None,
                 title: bool = True, label: int | str | None = None, device: str = "cpu"):
        """``path``: a local CrossEncoder directory (a ``*ForSequenceClassification`` model
        with its tokenizer). ``title``: score "title. sentence" instead of the bare sentence
        (a sentence often leaves its subject to the title). ``max_length``: tokens per pair,
        default the model's own. ``label``: the class (index or name) that means relevant,
        for models with more than two outputs."""
        if batch_size < 1:
            raise ValueError(f"cross-encoder batch_size must be at least 1, got {batch_size}")
        self.path = _model_dir(path)
        config = _model_config(self.path)
        self._label = _relevant_class(config, label, self.path)
        self.batch_size = batch_size
        self.title = title
        self._model = _load(self.path, max_length, device)
        # predict() shares the torch module; one batch at a time keeps the threads of a
        # server from multiplying torch's own intra-op threads on a small machine.
        self._lock = threading.Lock()

    def rerank(self, question: str, candidates: Sequence[Candidate]) -> list[Ranked]:
        if not candidates:
            return []
        pairs = [(question, self.passage(c)) for c in candidates]
        with self._lock:
            logits = self._logits(pairs)
        probabilities = self._probabilities(logits)
        order = sorted(range(len(candidates)), key=lambda i: -probabilities[i])  # stable: ties keep retrieval order
        return [Ranked(candidates[i].hit, float(probabilities[i])) for i in order]

    def passage(self, candidate: Candidate) -> str:
        text = candidate.hit.sentence.text
        title = candidate.title.strip()
        if not self.title or not title or text.startswith(title):
            return text
        return f"{title}. {text}"

    def _logits(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        import torch

        # Raw outputs, whatever activation the model's config asks for: the mapping to a
        # probability is ours (module docstring), the same for every model.
        scores = self._model.predict(pairs, batch_size=self.batch_size, activation_fn=torch.nn.Identity(),
                                     convert_to_numpy=True, show_progress_bar=False)
        logits = np.asarray(scores, dtype=np.float64)
        return logits.reshape(len(pairs), -1)

    def _probabilities(self, logits: np.ndarray) -> np.ndarray:
        if logits.shape[1] == 1:
            out: np.ndarray = 1.0 / (1.0 + np.exp(-logits[:, 0]))
            return out
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        softmax = shifted / shifted.sum(axis=1, keepdims=True)
        return softmax[:, self._label if self._label is not None else 1]


def _model_dir(path: str | Path | None) -> Path:
    if path is None or not str(path).strip():
        raise CrossEncoderUnavailable(
            "the cross-encoder reranker needs a local model directory: set CITEQA_CROSS_ENCODER_PATH")
    directory = Path(path).expanduser()
    if not directory.is_dir():
        # Deliberately no hub fallback: a hub id such as cross-encoder/ms-marco-MiniLM-L-6-v2
        # is just a path that does not exist here.
        raise CrossEncoderUnavailable(
            f"cross-encoder path {str(directory)!r} is not a directory; CITEQA_CROSS_ENCODER_PATH must name a "
            "local model directory (models are never downloaded)")
    return directory


def _model_config(directory: Path) -> dict[str, Any]:
    """The transformers config.json: at the top, or in the folder of the first module of a
    sentence-transformers layout (modules.json)."""
    candidates = [directory / "config.json"]
    modules = directory / "modules.json"
    if modules.is_file():
        try:
            first = json.loads(modules.read_text())[0].get("path", "")
            candidates.append(directory / first / "config.json")
        except (ValueError, IndexError, AttributeError):
            pass
    for file in candidates:
        if file.is_file():
            try:
                config: dict[str, Any] = json.loads(file.read_text())
            except ValueError as exc:
                raise CrossEncoderUnavailable(f"{file} is not valid JSON: {exc}") from None
            return config
    raise CrossEncoderUnavailable(f"{str(directory)!r} is not a model directory (no config.json)")


def _relevant_class(config: dict[str, Any], label: int | str | None, directory: Path) -> int | None:
    """Which output means "relevant" (None: a single logit), checked against the config so a
    wrong model fails now rather than scoring with a random head."""
    architectures = config.get("architectures") or []
    if architectures and not any(a.endswith("ForSequenceClassification") for a in architectures):
        raise CrossEncoderUnavailable(
            f"{str(directory)!r} is not a cross-encoder: its model is {', '.join(architectures)}, a cross-encoder "
            "is a *ForSequenceClassification model (an embedding model cannot rerank)")
    id2label = {int(k): str(v) for k, v in (config.get("id2label") or {}).items()}
    # transformers leaves id2label out of config.json when it is its default, two classes.
    outputs = len(id2label) or int(config.get("num_labels") or 2)
    names = ", ".join(f"{i}={n}" for i, n in sorted(id2label.items())) or "unnamed"
    if label is None:
        if outputs > 2:
            raise CrossEncoderUnavailable(
                f"the cross-encoder in {str(directory)!r} has {outputs} outputs ({names}): set its 'label' "
                "setting to the class that means relevant")
        return None if outputs == 1 else 1
    if outputs == 1:
        raise CrossEncoderUnavailable("'label' is for cross-encoders with several outputs; this one has one")
    if isinstance(label, str) and not label.lstrip("-").isdigit():
        by_name = {n.lower(): i for i, n in id2label.items()}
        if label.lower() not in by_name:
            raise CrossEncoderUnavailable(f"the cross-encoder has no class {label!r}; its classes: {names}")
        return by_name[label.lower()]
    index = int(label)
    if not 0 <= index < outputs:
        raise CrossEncoderUnavailable(f"cross-encoder label {index} is out of range; its classes: {names}")
    return index


def _load(directory: Path, max_length: int | None, device: str) -> Any:
    # Belt and braces with local_files_only: nothing below may reach for a hub.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        from sentence_transformers import CrossEncoder
    except ImportError as exc:  # pragma: no cover - a dependency of citeqa
        raise CrossEncoderUnavailable(f"sentence-transformers is not installed: {exc}") from None
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    try:
        return CrossEncoder(str(directory), local_files_only=True, max_length=max_length, device=device)
    except (OSError, ValueError, KeyError) as exc:
        raise CrossEncoderUnavailable(f"cannot load a cross-encoder from {str(directory)!r}: {exc}") from None
