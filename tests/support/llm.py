"""Whether the llamacpp generator can run here (the [llm] extra and the packaged model)."""

from __future__ import annotations

import pytest


def llm_missing() -> str | None:
    import importlib.util

    from citeqa.qa.generators.llamacpp import INSTALL_HINT, packaged_gguf_path

    if importlib.util.find_spec("llama_cpp") is None or packaged_gguf_path() is None:
        return f"needs the [llm] extra and the packaged model: {INSTALL_HINT}"
    return None


requires_llm = pytest.mark.skipif(llm_missing() is not None, reason=str(llm_missing()))
