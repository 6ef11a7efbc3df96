"""What answering passes around: the generator error's kinds, draft streams, and the
Generator contract kept by the smallest generator there is (a script)."""

from __future__ import annotations

from typing import get_args

import pytest

from citeqa.qa.types import DraftStream, GeneratorError, GeneratorErrorKind, drain
from tests.contracts.generator import GeneratorContract
from tests.support.scripted import ScriptedGenerator


def test_a_generator_error_carries_a_kind_and_a_message_not_an_http_status():
    assert set(get_args(GeneratorErrorKind)) == {"upstream_error", "unavailable", "timeout"}
    err = GeneratorError("timeout", "upstream did not answer within 5 s")
    assert (err.kind, err.message, str(err)) == ("timeout", "upstream did not answer within 5 s",
                                                 "upstream did not answer within 5 s")
    assert not hasattr(err, "status") and not hasattr(err, "code")  # HTTP is chosen in api/


def test_a_draft_stream_skips_empty_pieces_and_drain_closes_it():
    closed = []

    def pieces():
        try:
            yield from ["Paris ", "", "is big [1]."]
        finally:
            closed.append(True)

    stream = DraftStream(pieces(), shown=2)
    stream.usage["completion_tokens"] = 3
    draft = drain(stream)
    assert (draft.text, draft.shown, draft.declined, draft.usage) == ("Paris is big [1].", 2, False,
                                                                      {"completion_tokens": 3})
    assert closed == [True]


class TestScripted(GeneratorContract):
    """The test suite's scripted generator keeps the contract it stands in for."""

    has_context_window = False

    @pytest.fixture
    def generator(self):
        return ScriptedGenerator(pieces=["Kim Jong Un sent ", "11,000 to 12,000 ", "troops [1]."])

    def test_no_passages_is_declined_without_calling_a_model(self, generator):
        pytest.skip("a script writes what it is told, passages or not")
