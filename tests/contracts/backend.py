"""What a store backend's test class provides to the contracts: ``open_store``.

``open_store()`` opens a store on the test's own place (a data directory, a database),
the same place every time it is called within one test, so a test can close a store and
open it again; every store it opened is closed after the test. The contracts' ``store``
is the first one opened. ``stored_originals()`` counts the original files the test's
place holds (each stored once per SHA-256), read behind the store's back.
"""

from __future__ import annotations

from typing import Callable, Protocol

import pytest

from citeqa.index.types import Store
from tests.contracts.samples import DIMENSION


class OpenStore(Protocol):
    def __call__(self, dimension: int = DIMENSION) -> Store: ...


class BackendFixtures:
    @pytest.fixture
    def open_store(self) -> OpenStore:
        raise NotImplementedError("a backend's test class provides the open_store fixture")

    @pytest.fixture
    def store(self, open_store: OpenStore) -> Store:
        return open_store()

    @pytest.fixture
    def stored_originals(self) -> Callable[[], int]:
        raise NotImplementedError("a backend's test class provides the stored_originals fixture")
