"""Configuration (api/settings.py): one object that imports nothing of the domain, whose
seeds and prompts default to the installed package's data, wherever citeqa runs from."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

import pytest

from citeqa.api.settings import Settings


def _modules_after(code: str, cwd: Path) -> list[str]:
    """The citeqa modules a fresh interpreter has loaded after ``code`` (isolated mode: no
    PYTHON* variables, no cwd on sys.path; no CITEQA_* variables either)."""
    script = f"import json, sys\n{code}\nprint(json.dumps(sorted(m for m in sys.modules if m.startswith('citeqa'))))"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITEQA_")}
    result = subprocess.run([sys.executable, "-I", "-c", script], capture_output=True, text=True, cwd=cwd, env=env,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def test_settings_import_nothing_of_the_domain(tmp_path):
    assert _modules_after("import citeqa.api.settings", tmp_path) == ["citeqa", "citeqa.api", "citeqa.api.settings"]
    # Nor does building them: the defaults only locate the package data.
    assert _modules_after("from citeqa.api.settings import Settings; Settings()", tmp_path) == [
        "citeqa", "citeqa.api", "citeqa.api.settings", "citeqa.prompts", "citeqa.seeds"]


def test_settings_need_no_web_framework_or_model(tmp_path):
    heavy = ["fastapi", "starlette", "numpy", "torch", "faiss", "sentence_transformers", "prometheus_client"]
    code = f"import citeqa.api.settings\nloaded = set({heavy!r}) & set(sys.modules)\nassert not loaded, loaded"
    _modules_after(code, tmp_path)


def test_seeds_and_prompts_default_to_the_package_data(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a cwd with no seeds/ or prompts/ in it
    settings = Settings()
    assert settings.seeds_dir == files("citeqa.seeds") and settings.seeds_dir.is_absolute()
    assert sorted(p.suffix for p in settings.seeds_dir.iterdir() if p.suffix in {".txt", ".json"}) == [
        ".json", ".txt"]
    assert settings.prompts_dir == files("citeqa.prompts") and settings.prompts_dir.is_absolute()
    for generator in ("llamacpp", "openai"):  # the templates the built-in generators are configured with
        prompt = settings.generator_config(generator)["prompt"]
        assert prompt.parent == settings.prompts_dir and prompt.is_file(), prompt


def test_the_directories_can_be_overridden_and_seeding_turned_off(tmp_path, monkeypatch):
    monkeypatch.setenv("CITEQA_SEEDS_DIR", str(tmp_path / "my-seeds"))
    monkeypatch.setenv("CITEQA_PROMPTS_DIR", str(tmp_path / "my-prompts"))
    settings = Settings()
    assert (settings.seeds_dir, settings.prompts_dir) == (tmp_path / "my-seeds", tmp_path / "my-prompts")
    assert settings.generator_config("openai")["prompt"] == tmp_path / "my-prompts" / "cited_answer.txt"
    for empty in ("", "  "):
        monkeypatch.setenv("CITEQA_SEEDS_DIR", empty)
        assert Settings().seeds_dir is None  # no seeds, not the current directory
    assert Settings(seeds_dir=None).seeds_dir is None


def test_a_generator_gets_its_own_settings_and_secrets_in_clear(monkeypatch):
    monkeypatch.setenv("CITEQA_OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("CITEQA_GENERATOR_SETTINGS", '{"mine": {"depth": 3, "prompt": "/abs/p.txt"}}')
    settings = Settings(openai_base_url="http://127.0.0.1:9/v1")
    openai = settings.generator_config("openai")
    assert openai["api_key"] == "sk-test" and openai["base_url"] == "http://127.0.0.1:9/v1"
    assert "context" in openai and not any(key.startswith("openai_") for key in openai)
    assert settings.generator_config("mine") == {"depth": 3, "prompt": "/abs/p.txt"}  # a path stays a path


@pytest.mark.parametrize("field, value", [
    ("max_top_k", 0), ("request_timeout_s", 0), ("fusion", "best"), ("max_query_chars", 0),
    ("max_chat_messages", 0), ("max_chat_chars", 0), ("max_metadata_bytes", 1), ("max_upload_bytes", 100),
    ("max_pdf_pages", 0), ("max_text_chars", 0)])
def test_invalid_values_are_refused_at_start(field, value):
    with pytest.raises(ValueError, match=field):
        Settings(**{field: value})


def test_every_input_that_costs_work_has_a_limit_by_default():
    settings = Settings()
    assert (settings.max_question_chars, settings.max_query_chars) == (2_000, 2_000)
    assert (settings.max_chat_messages, settings.max_chat_chars) == (50, 20_000)
    assert settings.max_metadata_bytes == 65_536
    assert (settings.max_upload_bytes, settings.max_decompressed_bytes, settings.max_pdf_pages) == (
        25_000_000, 200_000_000, 2_000)


def test_the_limits_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("CITEQA_MAX_QUERY_CHARS", "500")
    monkeypatch.setenv("CITEQA_MAX_CHAT_MESSAGES", "8")
    assert (Settings().max_query_chars, Settings().max_chat_messages) == (500, 8)
