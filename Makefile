# `make run` and `make test` do all the set-up themselves on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test test-fast lint sample-data clean

install: $(STAMP)

# torch==2.13.0 is pinned through constraints.txt: a plain 'torch' would fetch the multi-GB CUDA build
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt torch==2.13.0
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

run: install
	$(BIN)/glselect fit sample_data/friedman.csv --target y --groups sample_data/groups.csv --out sample_data/friedman.glselect

# one worker per core (at most 4), each test file whole on one worker: module fixtures are built once
XDIST := -n auto --maxprocesses 4 --dist loadfile

# the tests, then the lint: CI (.ci/run) runs this
test: install
	$(BIN)/python -m pytest $(XDIST)
	$(MAKE) --no-print-directory lint

# each line runs alone too (from the repository root, after `make install`); settings in pyproject.toml
lint: install
	$(BIN)/ruff check glselect tests benchmarks
	$(BIN)/ruff format --check glselect tests benchmarks
	$(BIN)/mypy glselect

test-fast: install
	$(BIN)/python -m pytest $(XDIST) -m "not slow"

sample-data: install
	$(BIN)/python sample_data/make_sample_data.py

clean:
	rm -rf $(VENV) sample_data/*.glselect .pytest_cache .hypothesis .ruff_cache .mypy_cache
