"""Generators are entry-point plugins: creating them, describing them, parsing their options."""

from __future__ import annotations

import pytest

from citeqa.qa import registry
from citeqa.qa.generators.extractive import ExtractiveGenerator
from citeqa.qa.generators.llamacpp import LlamaCppGenerator
from citeqa.qa.generators.openai_compat import OpenAICompatGenerator
from citeqa.qa.types import GeneratorError


def test_built_ins_register_through_entry_points():
    assert {"extractive", "llamacpp", "openai"} <= set(registry.available())
    assert isinstance(registry.create("extractive"), ExtractiveGenerator)
    assert isinstance(registry.create("llamacpp"), LlamaCppGenerator)  # cheap: no model loaded yet
    assert isinstance(registry.create("openai"), OpenAICompatGenerator)
    with pytest.raises(registry.UnknownGenerator, match="installed: .*extractive.*llamacpp.*openai"):
        registry.create("gpt-17")
    with pytest.raises(TypeError, match="no setting"):
        registry.create("llamacpp", temperature=0.3)


def test_pool_lists_what_is_installed_and_why_something_cannot_answer():
    pool = registry.GeneratorPool("extractive",
                                  lambda name: {"model_path": "/nowhere.gguf"} if name == "llamacpp" else {})
    infos = {i.name: i for i in pool.describe()}
    assert infos["extractive"].default and infos["extractive"].available
    assert not infos["openai"].available and "CITEQA_OPENAI_BASE_URL" in infos["openai"].reason
    assert not infos["llamacpp"].available and "/nowhere.gguf" in infos["llamacpp"].reason
    assert "temperature" in infos["openai"].options and infos["extractive"].options == {}
    with pytest.raises(GeneratorError) as err:
        pool.get("openai", {"temperature": 0.1})
    assert err.value.kind == "unavailable" and "CITEQA_OPENAI_BASE_URL" in err.value.message


def test_options_are_validated_with_the_valid_ones_listed():
    gen = registry.create("openai")
    assert registry.parse_options(gen, {"temperature": 0.5}).temperature == 0.5
    with pytest.raises(registry.InvalidGeneratorOptions, match="Valid options: temperature .*max_tokens"):
        registry.parse_options(gen, {"temprature": 0.5})
    with pytest.raises(registry.InvalidGeneratorOptions, match="max_tokens"):
        registry.parse_options(gen, {"max_tokens": -1})
    with pytest.raises(registry.InvalidGeneratorOptions, match="Valid options: none"):
        registry.parse_options(registry.create("extractive"), {"temperature": 0})
