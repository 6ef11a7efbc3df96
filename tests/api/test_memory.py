"""api/memory.py: the malloc arena cap is set on glibc, and left alone when the environment
already decided it or the cap is off."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from citeqa.api.memory import limit_malloc_arenas

_PROBE = "from citeqa.api.memory import limit_malloc_arenas as f; import sys; print(f(int(sys.argv[1])))"


def _probe(arenas: int, env: dict[str, str]) -> str:
    # A fresh process: mallopt changes the process it runs in.
    return subprocess.run([sys.executable, "-c", _PROBE, str(arenas)], capture_output=True, text=True, env=env,
                          check=True, timeout=60).stdout.strip()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt is a Linux matter")
def test_the_cap_is_set_unless_the_environment_decided_it(monkeypatch):
    import os

    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    assert _probe(2, env) == "True"
    assert _probe(0, env) == "False"  # 0: glibc's default
    assert _probe(2, {**env, "MALLOC_ARENA_MAX": "4"}) == "False"
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas(2) is False


def test_memory_is_given_back_once_the_server_has_been_idle(settings, embedder):
    # A real app: requests are counted in flight, and the trim runs only after they end.
    from fastapi.testclient import TestClient

    from citeqa.api.app import create_app

    app = create_app(settings.model_copy(update={"seeds_dir": None}), embedder=embedder)
    with TestClient(app) as client:
        trim = app.state.idle_trim
        trim.idle_s, trim.check_every_s = 0.3, 0.05
        assert not trim.due()  # nothing ran yet: nothing to give back
        assert client.get("/healthz").status_code == 200
        assert trim.in_flight == 0
        deadline = time.monotonic() + 10
        while trim.trims == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        if sys.platform.startswith("linux"):
            assert trim.trims == 1  # once after the request, not again while nothing happens
            time.sleep(0.5)
            assert trim.trims == 1
