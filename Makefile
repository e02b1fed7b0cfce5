# Linkup: `make demo` serves the demo, `make test` runs everything. Both set themselves up.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint audit serve bench bench-smoke messages clean

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c requirements.lock -e '.[dev,bench]'
	touch $(STAMP)

demo: $(STAMP)
	exec $(BIN)/python -m linkup_server demo

serve: $(STAMP)
	exec $(BIN)/python -m linkup_server serve

test: $(STAMP)
	$(BIN)/python tests/run_suite.py

# The benchmark opens 10,000 sockets on each side: raise the open-file limit for this run.
bench: $(STAMP)
	ulimit -n $$(ulimit -Hn) && $(BIN)/python -m bench.run $(BENCH_ARGS)
	$(BIN)/python -m bench.files
	$(BIN)/python -m bench.search --out docs/bench

bench-smoke: $(STAMP)
	$(BIN)/python -m bench.run --smoke $(BENCH_ARGS)

# ruff, mypy, and the layer contract (pyproject.toml [tool.importlinter]: a wrong import
# fails with the contract's name and the import chain).
lint: $(STAMP)
	$(BIN)/ruff check linkup linkup_server tests bench
	$(BIN)/mypy linkup linkup_server
	$(BIN)/lint-imports

# Every locked dependency against the advisories PyPI publishes (OSV's data): fails on a known
# vulnerability, and (--strict) on a package it could not look up.
audit: $(STAMP)
	$(BIN)/pip-audit --strict --no-deps --disable-pip --progress-spinner off -r requirements.lock

# The translations (linkup/locale): extract what the templates, views and web client mark, then
# compile; needs GNU gettext. tests/test_i18n.py checks both are current and complete.
messages: $(STAMP)
	cd linkup && PYTHONPATH=.. DJANGO_SETTINGS_MODULE=tests.settings ../$(BIN)/python -m django makemessages --no-obsolete -l es -d django --ignore='static/*'
	cd linkup && PYTHONPATH=.. DJANGO_SETTINGS_MODULE=tests.settings ../$(BIN)/python -m django makemessages --no-obsolete -l es -d djangojs
	cd linkup && PYTHONPATH=.. DJANGO_SETTINGS_MODULE=tests.settings ../$(BIN)/python -m django compilemessages -l es

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache
