"""The seed article and the questions the tests ask of it; where public evaluation data lives."""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SEEDS_DIR = PROJECT_ROOT / "seeds"
# ../shared beside the checkout: benchmarks and evaluation only; tests that read it skip without it.
SHARED_EVAL = PROJECT_ROOT.parent / "shared" / "eval"
TROOPS_QUESTION = "How many troops did North Korea send?"
UNSUPPORTED_QUESTION = "What is the boiling point of tungsten?"
