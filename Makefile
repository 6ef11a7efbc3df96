# The two commands of the quick start. Each creates .venv and installs what is missing
# (CPU torch first: a bare `torch` would pull the multi-GB CUDA build), then runs.
VENV   ?= .venv
PYTHON ?= python3
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.citeqa-installed

.PHONY: install serve test
install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

serve: $(STAMP)
	$(VENV)/bin/citeqa serve

test: $(STAMP)
	$(PY) -m pytest
