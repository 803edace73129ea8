# courselab: every target bootstraps the virtual environment it needs.
#   make repro      create .venv if missing, then `dvc repro` (the whole embedded pipeline)
#   make test       create .venv if missing, then the whole test suite (unit, slow, e2e)
#   make dashboard  MLflow UI on http://127.0.0.1:5000 over the embedded store
#   make lint       ruff
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 5000
HOST ?= 127.0.0.1

# Keep tool side effects inside the repository; DVC stages run the venv's python.
export PATH := $(BIN):$(PATH)
export DVC_SITE_CACHE_DIR := $(CURDIR)/.dvc/site_cache
export DVC_NO_ANALYTICS := 1
export MPLCONFIGDIR := $(CURDIR)/.cache/matplotlib
export PYTHONUNBUFFERED := 1

.PHONY: venv repro test test-fast dashboard lint bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

repro: $(STAMP)
	$(BIN)/dvc repro

test: $(STAMP)
	$(BIN)/python -m pytest -m "not gpu" --durations=15

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow and not e2e and not gpu"

dashboard: $(STAMP)
	@echo "MLflow UI: http://$(HOST):$(PORT)  (store: sqlite:///$(CURDIR)/mlflow.db; Ctrl-C to stop)"
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlflow.db --host $(HOST) --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python -m bench.train_overhead

clean:
	rm -rf .ray .ray_results mlartifacts mlflow.db data models metrics plots reports
