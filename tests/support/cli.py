"""The real ``citeqa`` console script, run as a user runs it."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from tests.support.servers import CITEQA


def cli_env(seeds: Path) -> dict[str, str]:
    """Our environment without CITEQA_* settings, offline, seeding from ``seeds``, and UTF-8
    output whatever the locale (the CLI prints quotes, dashes and arrows)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITEQA_")}
    env.update(HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", CITEQA_SEEDS_DIR=str(seeds),
               PYTHONIOENCODING="utf-8")
    return env


def run_cli(ws_root: Path, seeds: Path, *args: str | Path) -> subprocess.CompletedProcess:
    """``citeqa ARGS`` in ``ws_root`` (so no stray .env is read), its output as text."""
    return subprocess.run(
        [str(CITEQA), *map(str, args)], capture_output=True, text=True, encoding="utf-8",
        env=cli_env(seeds), cwd=ws_root, timeout=180, stdin=subprocess.DEVNULL,
    )


def flat(text: str) -> str:
    """Rich wraps lines to the terminal width; compare with white space collapsed."""
    return " ".join(text.split())


def unboxed(text: str) -> str:
    """Rich's tables and panels as a reader reads them, whatever the terminal width: the
    vertical borders dropped and white space collapsed, so that a cell wrapped over several
    rows reads as one line."""
    return flat(text.replace("│", " ").replace("┃", " "))


def assert_no_traceback(result: subprocess.CompletedProcess) -> None:
    both = result.stdout + result.stderr
    assert "Traceback" not in both and not re.search(r"\b[A-Z]\w*(Error|Exception):", both), both
