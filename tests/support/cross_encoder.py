"""A tiny cross-encoder built on the spot, offline: no cross-encoder ships in any package
here, so tests of the reranker slot make their own. A word-level WordPiece vocabulary, a
2-layer BERT with 32-wide hidden states, and (optionally) a thousand small steps of training
on (question, sentence) pairs so that it prefers the sentence about the question's topic.
It is a stand-in for the plumbing, not a model of anything."""

from __future__ import annotations

import atexit
import functools
import itertools
import random
import shutil
import tempfile
from pathlib import Path

TOPICS = {
    "fruit": ["apple", "banana", "cherry", "mango"],
    "music": ["piano", "violin", "guitar", "drum"],
    "sport": ["soccer", "tennis", "hockey", "golf"],
    "water": ["river", "ocean", "lake", "rain"],
    "space": ["moon", "star", "planet", "comet"],
    "city": ["paris", "tokyo", "berlin", "rome"],
}
GLUE = ["what", "about", "the", "and", "is", "near", "of", "a", "Topics"]
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def question(word: str) -> str:
    return f"what about the {word}?"


def sentence(first: str, second: str) -> str:
    return f"the {first} and the {second}."


def _pairs(rng: random.Random) -> list[tuple[str, str, float]]:
    """Every question word against a sentence of its own topic that contains it (1.0) and a
    sentence of another topic (0.0)."""
    pairs = []
    topics = list(TOPICS)
    for topic, words in TOPICS.items():
        for word, other in itertools.permutations(words, 2):
            pairs.append((question(word), sentence(word, other), 1.0))
            pairs.append((question(word), sentence(other, word), 1.0))
            far = TOPICS[rng.choice([t for t in topics if t != topic])]
            for _ in range(2):
                pairs.append((question(word), sentence(*rng.sample(far, 2)), 0.0))
    return pairs


def build_tiny_cross_encoder(directory: Path, num_labels: int = 1, train_steps: int = 0) -> Path:
    """Save a tiny cross-encoder (a BertForSequenceClassification and its tokenizer) in
    ``directory`` and return it. ``train_steps`` > 0 (num_labels 1) fits it to prefer the
    sentences of the question's topic; 0 leaves the seeded random weights."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    words = [w.lower() for w in GLUE] + [w for ws in TOPICS.values() for w in ws] + ["?", "."]
    vocab = {w: i for i, w in enumerate(dict.fromkeys(SPECIAL + words))}
    tokenizer = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    fast = BertTokenizerFast(tokenizer_object=tokenizer, model_max_length=64)

    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, num_labels=num_labels,
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = BertForSequenceClassification(config)
    if train_steps:
        _train(model, fast, train_steps)
    model.eval()
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    fast.save_pretrained(directory)
    return directory


@functools.cache
def trained_tiny_cross_encoder(steps: int = 1000) -> Path:
    """One trained tiny cross-encoder per test process (training takes seconds), shared by
    every test module that asks for it."""
    directory = Path(tempfile.mkdtemp(prefix="tiny-cross-encoder-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    return build_tiny_cross_encoder(directory, train_steps=steps)


def _train(model, tokenizer, steps: int) -> None:  # type: ignore[no-untyped-def]
    import torch

    rng = random.Random(0)
    pairs = _pairs(rng)
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a model this small trains fastest on one thread, and CI shares its cores
    model.train()
    try:
        for _ in range(steps):
            batch = rng.sample(pairs, 32)
            encoded = tokenizer([q for q, _, _ in batch], [s for _, s, _ in batch], padding=True,
                                return_tensors="pt")
            loss = loss_fn(model(**encoded).logits[:, 0], torch.tensor([y for _, _, y in batch]))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    finally:
        torch.set_num_threads(threads)
