"""Fixtures of the index tests: the real English pipeline, loaded once per session."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def analyzer():
    from citeqa.index.language import SpacyAnalyzer

    return SpacyAnalyzer.load()
