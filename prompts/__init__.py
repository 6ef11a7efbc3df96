"""Prompt templates for the language-model generators: plain text with named placeholders.

Package data, read through ``importlib.resources.files("citeqa.prompts")``."""
