# Two commands do all the set-up on a fresh machine:
#   make demo   – installs everything, then runs the main job (a small RAG index + queries)
#   make test   – installs everything, then runs the test suite
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: demo test benchmarks report seed-reproduction lint install

install: $(STAMP)

# the framework adapters: one distribution each, as LlamaIndex and LangChain publish integrations
INTEGRATIONS := $(sort $(dir $(wildcard integrations/*/pyproject.toml)))

# the exact versions tested (the pyproject.toml files declare compatible ranges)
CONSTRAINTS := constraints.txt
# torch first and alone, at the constraints' version. PyPI's Linux torch is the multi-GB CUDA build: online, pass
# TORCH_INDEX=https://download.pytorch.org/whl/cpu for the CPU one (its 2.13.0+cpu outranks PyPI's 2.13.0)
TORCH_INDEX ?=

$(STAMP): pyproject.toml $(wildcard integrations/*/pyproject.toml) $(CONSTRAINTS)
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet -c $(CONSTRAINTS) --upgrade pip
	$(BIN)/pip install --quiet -c $(CONSTRAINTS) $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX)) torch
	$(BIN)/pip install --quiet -c $(CONSTRAINTS) -e ".[all]" $(addprefix -e ,$(INTEGRATIONS))
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m jepa_rag.demo

test: $(STAMP)
	$(BIN)/python -m pytest -q tests

benchmarks: $(STAMP)
	$(BIN)/python -m pytest -q benchmarks

# the explicit step that regenerates the committed benchmarks/results/ and its REPORT.md (a plain run writes
# runs/benchmarks/); the report is rendered even when a benchmark fails, and make still fails then
report: $(STAMP)
	JEPA_RAG_BENCH_OUT=benchmarks/results $(BIN)/python -m pytest -q benchmarks; status=$$?; \
	$(BIN)/python -m experiments.report benchmarks/results && exit $$status

# the lab (experiments/README.md): the research note's variants, 3 seeds; rows in runs/experiments/
seed-reproduction: $(STAMP)
	$(BIN)/python -m experiments.run experiments/candidates/seed_reproduction.yaml
	$(BIN)/python -m experiments.table runs/experiments/seed_reproduction.jsonl \
		--out benchmarks/results/seed_reproduction.md --json benchmarks/results/seed_reproduction.json

lint: $(STAMP)
	$(BIN)/ruff check jepa_rag train integrations tests benchmarks experiments
