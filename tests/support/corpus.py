"""The seed article and the questions the tests ask of it; where public evaluation data lives."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]  # the checkout (packaging tests, ../shared)
# The seeds as installed (package data of citeqa.seeds): what a server indexes by default.
SEEDS_DIR = Path(str(files("citeqa.seeds")))
# The natural questions about the seed article (evaluation/sets/, run by tests/evaluation).
SEED_QUESTIONS = Path(str(files("citeqa.evaluation").joinpath("sets/seed_questions.jsonl")))
# ../shared beside the checkout: benchmarks and evaluation only; tests that read it skip without it.
SHARED_EVAL = PROJECT_ROOT.parent / "shared" / "eval"
TROOPS_QUESTION = "How many troops did North Korea send?"
UNSUPPORTED_QUESTION = "What is the boiling point of tungsten?"
