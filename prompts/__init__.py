"""Prompt templates for the language-model generators, plain text with named placeholders (package data)."""
