# finetune-automl — `make help` lists the targets.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
# The torch requirement, installed before the project so nothing else pulls a different build.
# The exact release resolves to a local CPU wheel where one is on disk (as on the dev/CI machines)
# and to PyPI's CUDA build on a Linux GPU box. Other choices, e.g.:
#   make install TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# pip's notes about index folders that lack a package are noise here. Braced: unbraced, `|| true`
# covered the whole pipe, so a failed pip went on to write the stamp.
QUIET_PIP := { grep -v "is ignored: it is neither a file nor a directory" || true; }

.PHONY: help install test test-fast test-gpu sweep train bench race race-full ui mlflow-server lint clean

help: ## Show this help
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}'

install: $(STAMP) ## Create .venv and install the project (editable, dev extras); quick when nothing changed

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --upgrade pip 2>&1 | $(QUIET_PIP)
	@echo "installing $(TORCH_SPEC) and the project into $(VENV) ..."
	@$(BIN)/python -m pip install -q $(TORCH_SPEC) 2>&1 | $(QUIET_PIP)
	@$(BIN)/python -m pip install -q -e '.[dev]' 2>&1 | $(QUIET_PIP)
	@# -P: not from the source folder, so a failed install of the project is not hidden by it
	@$(BIN)/python -P -c "import torch, automl, pytest; print('installed: torch', torch.__version__)"
	@touch $@

# Test workers (pytest-xdist): the slow tests mostly wait on process and Ray start-up, so two
# workers share 2 cores well. TEST_WORKERS=0 runs the tests in this process, one at a time.
TEST_WORKERS ?= 2
PYTEST := $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal

test: install ## Run the test suite (what CI runs)
	$(PYTEST)

test-fast: install ## Run the tests without the slow end-to-end ones
	$(PYTEST) -m "not slow"

test-gpu: install ## Run the GPU tests (tests/gpu; each skips when no CUDA device is visible, said first)
	@$(BIN)/python -c "import sys, torch; torch.cuda.is_available() or print('test-gpu: torch sees no CUDA device (a CPU build of torch? CUDA_VISIBLE_DEVICES?): every GPU test will be skipped', file=sys.stderr)"
	$(BIN)/python -m pytest -m gpu tests/gpu

train: install ## One trial on the embedded default (MiniLM + chatterbot topics)
	$(BIN)/automl-train

sweep: install ## The quick sweep on the embedded default (< 10 min on 2 CPU cores)
	$(BIN)/automl-sweep experiment=default

bench: install ## Throughput (a) and orchestration overhead (b), side by side -> benchmarks/results/
	$(BIN)/python -m benchmarks.run

race: install ## The search race of issue #10 on 1,000 examples (~13 min a seed at 180 s each; SEEDS=0,1,2; ADD=1 merges; DATA_SEED=1 another subsample and split) -> benchmarks/results/race_per_epoch_reports[_data_seed_N]/
	$(BIN)/python -m benchmarks.race --size subsample --seeds $(or $(SEEDS),0$(comma)1$(comma)2) --budget-s 180 \
		--data-seed $(or $(DATA_SEED),0) \
		$(if $(ADD),--add-to,--out) benchmarks/results/race_per_epoch_reports$(if $(filter-out 0,$(DATA_SEED)),_data_seed_$(DATA_SEED))

race-full: install ## The race on the whole task at make sweep's 420 s (~30 min a seed; seed 0 unless SEEDS=0,1,2; ADD=1 merges) -> benchmarks/results/race_full_per_epoch_reports/
	$(BIN)/python -m benchmarks.race --size full --seeds $(or $(SEEDS),0) --budget-s 420 \
		$(if $(ADD),--add-to,--out) benchmarks/results/race_full_per_epoch_reports

ui: install ## MLflow UI on http://127.0.0.1:5000 against ./mlflow.db
	$(BIN)/mlflow ui --backend-store-uri sqlite:///mlflow.db --host 127.0.0.1 --port 5000

# A tracking server every node can reach (`tracking.uri=http://HOST:PORT`); loopback by default,
# so exposing it (MLFLOW_HOST=0.0.0.0) is a deliberate choice: the server has no authentication.
MLFLOW_HOST ?= 127.0.0.1
MLFLOW_PORT ?= 5000
# MLflow's server (3.17 here) answers requests addressed to localhost and private IPs only (others:
# HTTP 403). MLFLOW_ALLOWED_HOSTS=head-node:5000: Host headers it answers besides MLflow's own list
MLFLOW_ALLOWED_HOSTS ?=
MLFLOW_DEFAULT_HOSTS = $(shell $(BIN)/python -c "from mlflow.server.security_utils import get_default_allowed_hosts as d; print(','.join(d()))" 2>/dev/null)
comma := ,
mlflow-server: install ## Tracking server for clusters on MLFLOW_HOST:MLFLOW_PORT (default 127.0.0.1:5000)
	$(if $(MLFLOW_ALLOWED_HOSTS),@test -n "$(MLFLOW_DEFAULT_HOSTS)" || { echo "MLFLOW_ALLOWED_HOSTS: this MLflow has no host check to extend (no mlflow.server.security_utils)"; exit 2; })
	$(BIN)/mlflow server --backend-store-uri sqlite:///mlflow.db --artifacts-destination ./mlartifacts \
		--host $(MLFLOW_HOST) --port $(MLFLOW_PORT) \
		$(if $(MLFLOW_ALLOWED_HOSTS),--allowed-hosts "$(MLFLOW_DEFAULT_HOSTS)$(comma)$(MLFLOW_ALLOWED_HOSTS)")

lint: install ## ruff + mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check automl tests
	$(BIN)/mypy automl

clean: ## Remove generated output (./mlflow.db store and mlartifacts, outputs/ with sweeps and Ray results) but keep .venv
	rm -rf outputs mlruns mlartifacts mlflow.db mlflow.db-wal mlflow.db-shm
