"""Fixtures of the API tests."""

from __future__ import annotations

import os

import pytest

from citeqa.api.settings import Settings


@pytest.fixture(autouse=True)
def _settings_come_from_the_test_alone(monkeypatch):
    """No CITEQA_* variable of the shell running pytest, and no .env file in its cwd, may
    change what a test's Settings() holds."""
    for name in [n for n in os.environ if n.startswith("CITEQA_")]:
        monkeypatch.delenv(name)
    monkeypatch.setitem(Settings.model_config, "env_file", None)
