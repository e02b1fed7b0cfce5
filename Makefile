# Linkup: `make demo` serves the demo, `make test` runs everything. Both set themselves up.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint serve clean

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c requirements.lock -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	exec $(BIN)/python -m linkup_server demo

serve: $(STAMP)
	exec $(BIN)/python -m linkup_server serve

test: $(STAMP)
	$(BIN)/python tests/run_suite.py

lint: $(STAMP)
	$(BIN)/ruff check linkup linkup_server tests
	$(BIN)/mypy linkup linkup_server


clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache
