"""The same model through ONNX Runtime, weights quantised to int8: a faster embedder.

On first use the packaged sentence-transformers model is exported to ONNX with mean
pooling and L2 normalisation inside the graph (torch and transformers, already installed
for the default embedder), quantised with ``onnxruntime.quantization.quantize_dynamic``,
and cached under ``cache_dir``: nothing is downloaded. Vectors differ slightly from the
torch model's (cosine ≥ 0.96 between the two on the same text), so a data directory
should be indexed with one embedder: switching means re-ingesting. Dynamic quantisation
scales activations per batch, so a text's vector also varies a little (cosine > 0.98)
with the texts batched beside it.
Quality and speed against the torch embedder: docs/EVALUATION.md ("Faster embedder").
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from citeqa.index.embedder import packaged_embedding_model_path

MAX_TOKENS = 256  # all-MiniLM-L6-v2's max_seq_length in sentence-transformers


def export_int8(model_path: Path, target: Path) -> Path:
    """Write ``target`` (an int8 ONNX model of ``model_path``) atomically; returns it."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModel, AutoTokenizer

    class Pooled(torch.nn.Module):
        def __init__(self, bert: torch.nn.Module):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):
            hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                               token_type_ids=token_type_ids).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2, dim=1)

    target.parent.mkdir(parents=True, exist_ok=True)
    full = target.with_name(f"{target.stem}.fp32.{os.getpid()}.onnx")
    tmp = target.with_name(f"{target.stem}.{os.getpid()}.tmp.onnx")
    tokenizer = AutoTokenizer.from_pretrained(str(model_path))
    model = Pooled(AutoModel.from_pretrained(str(model_path))).eval()
    sample = tokenizer(["an example", "a slightly longer example sentence"], padding=True, return_tensors="pt")
    names = ["input_ids", "attention_mask", "token_type_ids"]
    try:
        torch.onnx.export(model, tuple(sample[n] for n in names), str(full), input_names=names,
                          output_names=["embedding"], opset_version=17, dynamo=False,
                          dynamic_axes={**{n: {0: "batch", 1: "tokens"} for n in names}, "embedding": {0: "batch"}})
        quantize_dynamic(str(full), str(tmp), weight_type=QuantType.QInt8)
        os.replace(tmp, target)
    finally:
        for leftover in (full, tmp):
            leftover.unlink(missing_ok=True)
    return target


class OnnxInt8Embedder:
    """An :class:`citeqa.index.types.Embedder`: all-MiniLM-L6-v2, int8, on ONNX Runtime."""

    def __init__(self, cache_dir: Path, model_path: Path | None = None, batch_size: int = 64,
                 threads: int | None = None):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        path = Path(model_path or packaged_embedding_model_path())
        # One cached export per model file: a different model never reuses another's graph.
        weights = path / "model.safetensors"
        tag = hashlib.sha256(f"{weights.stat().st_size}:{weights.stat().st_mtime_ns}".encode()).hexdigest()[:12] \
            if weights.exists() else "model"
        onnx_file = cache_dir / f"{path.name}-{tag}-int8.onnx"
        if not onnx_file.exists():
            export_int8(path, onnx_file)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or os.cpu_count() or 1
        self._session = ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
        self._tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        self._tokenizer.enable_truncation(MAX_TOKENS)
        self._tokenizer.enable_padding()
        self._batch_size = batch_size
        self.name = f"{path.name if model_path else 'all-MiniLM-L6-v2'} (onnx int8)"
        width = self._session.get_outputs()[0].shape[1]
        self.dimension = width if isinstance(width, int) else int(self.encode_one("probe").shape[0])

    def encode_one(self, text: str) -> np.ndarray:
        encoding = self._tokenizer.encode(text)
        feed = {"input_ids": np.array([encoding.ids], dtype=np.int64),
                "attention_mask": np.array([encoding.attention_mask], dtype=np.int64),
                "token_type_ids": np.array([encoding.type_ids], dtype=np.int64)}
        return self._session.run(None, feed)[0][0]

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        # Sorting by length pads less (sentence-transformers does the same).
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for start in range(0, len(order), self._batch_size):
            chunk = order[start:start + self._batch_size]
            encodings = self._tokenizer.encode_batch([texts[i] for i in chunk])
            feed = {
                "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
                "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
            }
            out[chunk] = self._session.run(None, feed)[0]
        return np.ascontiguousarray(out)
