# gnomon — `make run` starts the server on SQLite; `make test` runs the whole suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test quick lint services browser bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

run: install
	$(BIN)/gnomon serve

services:
	bash scripts/services.sh

browser:
	bash scripts/browser.sh

lint: install
	$(BIN)/ruff check src tests bench

test: install services browser lint
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# While iterating: SQLite only, no browser and no container build (add PYTEST_ARGS to narrow).
quick: install services lint
	$(BIN)/python -m pytest -q -x -k "not postgresql" --ignore=tests/ui --ignore=tests/deploy $(PYTEST_ARGS)

bench: install services
	bash bench/run_all.sh

clean:
	rm -rf $(VENV) gnomon-data .pytest_cache
