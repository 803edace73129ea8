# courselab: every target bootstraps the virtual environment it needs.
#   make repro      create .venv if missing, then `dvc repro` (the embedded pipeline: the models params.yaml's
#                   pipeline section lists, each family's headline ones)
#   make repro-all  the same with every model of every family listed (`dvc exp run -S pipeline.<family>=[...]`;
#                   needs a git identity, and writes the lists into params.yaml as any `dvc exp run -S` does)
#   make test       create .venv if missing, then the whole test suite (unit, slow, e2e, browser), in
#                   TEST_WORKERS pytest-xdist processes (2; 0 = one process), one test file per process
#   make dvc-yaml   regenerate dvc.yaml from the family descriptors (after adding a model or a family)
#   make dashboard  MLflow UI on http://127.0.0.1:5000 over the embedded store (PORT, HOST, MLFLOW_DB,
#                   ALLOWED_HOSTS, DASHBOARD_WORKERS, MLFLOW_JOBS); the comparison report is
#                   reports/index.html (`dvc repro report`)
#   make browser    install chromium + chromium-driver for the browser tests (apt-get, as root; else skip)
#   make lint       ruff
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 5000
# make test: pytest-xdist processes, each running whole test files (--dist loadfile: a module's
# fixtures, e.g. the e2e repository, are built once) with one torch/OpenMP thread, so two processes
# share 2 cores without oversubscribing them. The e2e module is the largest piece (~9 min of ~20).
TEST_WORKERS ?= 2
XDIST = $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile)
HOST ?= 127.0.0.1
MLFLOW_DB ?= $(CURDIR)/mlflow.db
MLFLOW_STORE = sqlite:///$(abspath $(MLFLOW_DB))
# Host headers the MLflow server accepts besides localhost and private IPs (its DNS-rebinding guard
# answers 403 otherwise): set it with a non-loopback HOST, e.g. ALLOWED_HOSTS=myhost.example.org:5000
ALLOWED_HOSTS ?=
# The UI's server processes. MLflow's defaults (4 uvicorn workers, and its job runner with huey consumers
# for the GenAI judges and trace roll-ups, which nothing here uses) took ~14 s and ~34 s of CPU to
# answer on 2 cores; one worker without jobs, 6.4 s and 6.6 s (bench/dashboard_start.py, BENCHMARKS.md).
# A dashboard a team shares can take more workers: make dashboard DASHBOARD_WORKERS=4
DASHBOARD_WORKERS ?= 1
MLFLOW_JOBS ?= false
# The address to open: the bound one, or loopback when bound to every interface
DASHBOARD_URL = http://$(if $(filter 0.0.0.0 ::,$(HOST)),127.0.0.1,$(HOST)):$(PORT)

# Keep tool side effects inside the repository; DVC stages run the venv's python.
export PATH := $(BIN):$(PATH)
export DVC_SITE_CACHE_DIR := $(CURDIR)/.dvc/site_cache
export DVC_NO_ANALYTICS := 1
export MPLCONFIGDIR := $(CURDIR)/.cache/matplotlib
export PYTHONUNBUFFERED := 1

.PHONY: venv repro repro-all test test-fast dvc-yaml dashboard browser lint bench clean

venv: $(STAMP)

# torchattacks (the reference the adversarial family's attacks are tested against) pins requests~=2.25.1,
# which DVC's dulwich cannot run with; it never imports requests, so it is installed without its dependencies
# (torch, torchvision, scipy, numpy and tqdm are there already).
TORCHATTACKS := torchattacks==3.5.1
# lightly (the reference SimCLR's NT-Xent loss is tested against) requires pytorch_lightning, which nothing
# here uses; lightly.loss imports without it, so it too is installed without its dependencies.
LIGHTLY := lightly==1.6.0

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pip install --quiet --no-deps $(TORCHATTACKS) $(LIGHTLY)
	touch $(STAMP)

repro: $(STAMP)
	$(BIN)/dvc repro

repro-all: $(STAMP)
	$(BIN)/dvc exp run $$($(BIN)/python -m tools.all_models)

test: $(STAMP) browser
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest $(XDIST) -m "not gpu" --durations=15

test-fast: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest $(XDIST) -m "not slow and not e2e and not gpu and not browser"

# dvc.yaml is generated from the family descriptors (components/families/*/family.py)
dvc-yaml: $(STAMP)
	$(BIN)/python -m tools.dvc_yaml

# The browser tests (tests/browser) drive Debian's chromium through its chromedriver; without them
# they skip. Installs only when missing, only as root, and never fails the build.
browser:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "browser tests: installing chromium chromium-driver (apt-get)"; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; } \
	    >/dev/null 2>&1 || echo "browser tests: apt-get install chromium chromium-driver failed; they will skip"; \
	else echo "browser tests: no /usr/bin/chromium (as root: apt-get install chromium chromium-driver); they will skip"; fi

dashboard: $(STAMP)
	@echo "MLflow UI: $(DASHBOARD_URL)  (store: $(MLFLOW_STORE); report: $(CURDIR)/reports/index.html; Ctrl-C to stop)"
	@$(BIN)/python -m components.tracking_view $(MLFLOW_STORE) $(DASHBOARD_URL)
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=$(MLFLOW_JOBS) $(BIN)/mlflow ui --backend-store-uri $(MLFLOW_STORE) \
	  --host $(HOST) --port $(PORT) --workers $(DASHBOARD_WORKERS) $(if $(ALLOWED_HOSTS),--allowed-hosts '$(ALLOWED_HOSTS)')

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python -m bench.train_overhead

clean:
	rm -rf .ray .ray_results mlartifacts mlflow.db data models metrics plots reports
