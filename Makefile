# Every target sets itself up on a fresh clone: `make test` and `make demo` need nothing else.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup test lint demo bench lock clean

setup: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	$(BIN)/python -m compileall -q pipeline bench
	touch $(STAMP)

test: setup
	$(BIN)/pytest -q

lint: setup
	$(BIN)/ruff check pipeline tests bench
	$(BIN)/ruff format --check pipeline tests bench
	$(BIN)/mypy

demo: setup
	$(BIN)/python -m pipeline.demo

# Bytecode compiled first, as a regular install has it: an editable install compiles the
# package at every start where PYTHONDONTWRITEBYTECODE is set (~0.06 s of each run measured).
bench: setup
	$(BIN)/python -m compileall -q pipeline bench
	$(BIN)/python -m bench

# Re-pin every dependency after editing pyproject.toml (needs network to PyPI).
lock: setup
	$(BIN)/pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 -o requirements.lock --no-header

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
