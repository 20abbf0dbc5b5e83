# Two commands do all set-up on a fresh machine with only Python:
#   make demo   the main job on the embedded default
#   make test   the test suite
# Each creates .venv on first use and installs what it needs.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.priorl-installed

.PHONY: demo bench-demo test lint bench install clean

install: $(STAMP)

# PyTorch is installed as exactly torch==2.13.0: on these machines that resolves to a local CPU
# wheel, while any other spec pulls gigabytes of CUDA packages.
$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev,plot]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/priorl train -c configs/demo.yaml

bench-demo: $(STAMP)
	$(BIN)/priorl bench sampler
	$(BIN)/priorl bench replay
	$(BIN)/priorl bench simulate

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

bench: $(STAMP)
	$(BIN)/priorl bench sampler --json > benchmarks/sampler.json
	$(BIN)/priorl bench replay --json > benchmarks/replay.json

clean:
	rm -rf $(VENV) build dist .pytest_cache .hypothesis
