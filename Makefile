# Set-up and everyday commands. `make demo` and `make test` each do the whole set-up on a fresh
# machine: a virtual environment in .venv, the CPU build of torch first (an unpinned torch would
# pull several GB of CUDA packages), then atomlens with its [dev] extra.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH := torch==2.13.0

.PHONY: install demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/atomlens demo --output demo_output --overwrite

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

test: lint
	$(BIN)/pytest tests --doctest-modules src/atomlens -q

bench: install
	$(BIN)/python benchmarks/ronchigram_throughput.py

clean:
	rm -rf $(VENV) demo_output .pytest_cache .ruff_cache
