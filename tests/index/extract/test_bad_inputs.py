"""Every bad upload of the catalogue gets its status and a message saying what is wrong."""

from __future__ import annotations

import pytest

from citeqa.index.extract import ExtractionError, extract
from tests.index.extract.bad_inputs import CATALOGUE, BadInput


@pytest.mark.parametrize("bad", CATALOGUE, ids=lambda bad: bad.name)
def test_bad_input_is_refused_with_its_status_and_reason(bad: BadInput):
    with pytest.raises(ExtractionError) as err:
        extract(bad.make(), bad.declared_type, limits=bad.limits)
    assert err.value.status == bad.status, err.value.message
    for words in bad.says:
        assert words in err.value.message
    assert str(err.value) == err.value.message
