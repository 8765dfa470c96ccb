# Two commands do all the set-up on a fresh machine:
#   make run    the whole system (web + worker) on embedded defaults
#   make test   the test suite (lint, types, then the tests on SQLite and on PostgreSQL)
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt 2>/dev/null | cksum | cut -d' ' -f1)
PG_TEST_URL ?= postgresql+asyncpg://postgres@127.0.0.1:5432/test

.PHONY: install bytecode run test test-sqlite test-pg lint bench bench-smoke clean

# The first run installs for a minute or so: say so, and let pip show what it is doing (no -q).
$(STAMP): pyproject.toml constraints.txt
	@echo "make: installing the pinned dependencies into $(VENV) (first run or changed pins; about a minute)"
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --disable-pip-version-check --progress-bar on -c constraints.txt -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $(STAMP)
	@echo "make: installed; the command line is $(BIN)/heytoken (nothing to activate)"

install: $(STAMP) bytecode

# pip compiles the dependencies, but not this editable project: with PYTHONDONTWRITEBYTECODE set (many
# containers set it) every process start compiled app/ from source again (measured: ~13 % of the
# instructions of `import app.api.main`). compileall skips what is already up to date.
bytecode: $(STAMP)
	$(BIN)/python -m compileall -q app workers storage

# `heytoken run` supervises the Procfile's processes and takes the terminal's Ctrl-C for itself, so
# a Ctrl-C stops everything cleanly and make exits 0 (app/cli/runner.py: own_terminal).
run: $(STAMP) bytecode
	$(BIN)/heytoken run

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy app workers storage
	$(BIN)/lint-imports --no-cache

test-sqlite: $(STAMP)
	$(BIN)/pytest -q

test-pg: $(STAMP)
	HEYTOKEN_TEST_DATABASE_URL=$(PG_TEST_URL) $(BIN)/pytest -q

# The two passes run side by side: one pass keeps about one of the machine's two cores busy (it mostly
# waits on its gateways, workers and browser), and each has its own database, Redis prefix, ports and
# temporary directory. --output-sync prints each pass whole when it ends.
test: lint
	$(MAKE) --no-print-directory -j2 --output-sync=target test-sqlite test-pg

bench: $(STAMP) bytecode
	$(BIN)/python -m bench

bench-smoke: $(STAMP)
	$(BIN)/pytest -q tests/bench

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
