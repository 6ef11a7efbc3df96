"""Ranking the retrieved sentences: features, the learned ranker and answerability gate,
and the Reranker slot (entry-point group ``citeqa.rerankers``) for plugged models."""
