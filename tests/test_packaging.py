"""The wheel a user installs: one top-level package, ``citeqa``, carrying its prompts, seeds
and playground, so an installed citeqa serves with no ``CITEQA_*_DIR`` override."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from typing import Iterator

import pytest

from tests.support.corpus import PROJECT_ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Iterator[zipfile.ZipFile]:
    out = tmp_path_factory.mktemp("wheel")
    # A copy of the source: setuptools builds in the source tree, and a build/ left in the
    # checkout would be a leftover of this run.
    source = out / "source"
    shutil.copytree(PROJECT_ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "data", "__pycache__", "*.egg-info", ".*_cache", ".hypothesis", "docs"))
    # --no-build-isolation: setuptools comes from this environment (no index needed).
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(source)],
        capture_output=True, text=True, timeout=300, cwd=out,
    )
    assert result.returncode == 0, result.stderr
    [path] = out.glob("citeqa-*.whl")
    with zipfile.ZipFile(path) as whl:
        yield whl


def _names(whl: zipfile.ZipFile) -> list[str]:
    return [n for n in whl.namelist() if not n.split("/")[0].endswith(".dist-info")]


def test_the_wheel_installs_one_top_level_package(wheel):
    assert {name.split("/")[0] for name in _names(wheel)} == {"citeqa"}
    # Nothing lands as a bare api/, index/ or qa/ package beside other distributions' code.
    assert not [n for n in _names(wheel) if n.split("/")[0] in {"api", "index", "qa", "tests"}]


def test_the_wheel_carries_seeds_prompts_and_the_playground(wheel):
    names = set(_names(wheel))
    seeds = sorted(p.name for p in (PROJECT_ROOT / "seeds").iterdir() if p.suffix in {".txt", ".json"})
    assert seeds and all(f"citeqa/seeds/{name}" in names for name in seeds)
    prompts = sorted(p.name for p in (PROJECT_ROOT / "prompts").glob("*.txt"))
    assert prompts and all(f"citeqa/prompts/{name}" in names for name in prompts)
    assert {"citeqa/api/static/index.html", "citeqa/api/static/app.js"} <= names


def test_the_wheel_carries_the_fitted_weights(wheel):
    # Loaded at import: a wheel without them could not even start.
    assert {"citeqa/qa/short_answer_weights.json", "citeqa/qa/ranking/learned_ranker.json"} <= set(_names(wheel))


def test_the_wheel_ships_no_test_infrastructure(wheel):
    assert not [n for n in _names(wheel) if "local_postgres" in n or "/tests/" in n]


def test_entry_points_name_the_namespace(wheel):
    [entry_points] = [n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt")]
    text = wheel.read(entry_points).decode()
    assert "citeqa = citeqa.api.cli:main" in text
    targets = [line.split("=", 1)[1].strip() for line in text.splitlines() if "=" in line]
    assert targets and all(t.startswith("citeqa.") for t in targets)


def test_no_bare_folder_is_importable_from_an_installed_citeqa(tmp_path):
    """Run outside the checkout (no source folder on sys.path): only citeqa.* resolves."""
    names = ("citeqa.api", "citeqa.qa", "api", "index", "qa")
    code = f"import importlib.util as u, json; print(json.dumps([u.find_spec(n) is not None for n in {names!r}]))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[true, true, false, false, false]"

