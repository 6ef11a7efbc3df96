"""The llamacpp generator: the packaged SmolLM2 GGUF in process keeps the generator contract."""

from __future__ import annotations

import pytest

from citeqa.qa import registry
from citeqa.qa.generators.llamacpp import LlamaCppGenerator, packaged_gguf_path
from citeqa.qa.types import GeneratorError
from tests.contracts.generator import GeneratorContract, passages_for
from tests.support.corpus import TROOPS_QUESTION
from tests.support.llm import requires_llm


@pytest.fixture(scope="module")
def llamacpp_generator():
    return registry.create("llamacpp", context=2048)  # the model loads once, on first use


@requires_llm
class TestLlamaCpp(GeneratorContract):
    @pytest.fixture
    def generator(self, llamacpp_generator):
        return llamacpp_generator


@requires_llm
def test_the_default_model_is_the_packaged_gguf():
    path = packaged_gguf_path()
    assert path is not None and path.suffix == ".gguf" and path.is_file()
    assert LlamaCppGenerator().model_path == path


def test_a_missing_model_is_unavailable_with_the_reason(tmp_path, generator_corpus):
    generator = LlamaCppGenerator(model_path=tmp_path / "nowhere.gguf")
    reason = generator.unavailable()  # no GGUF there (or no llama-cpp-python at all)
    assert reason
    with pytest.raises(GeneratorError) as err:
        generator.generate(TROOPS_QUESTION, passages_for(generator_corpus, TROOPS_QUESTION))
    assert (err.value.kind, err.value.message) == ("unavailable", reason)
