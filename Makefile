# Graph-based cross-modal hashing benchmark suite. `make help` lists the targets.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
METHOD ?= cca_itq
BITS ?= 64
DATASET ?= mirflickr25k
SEED ?= 0
DATA_DIR ?=
ARGS ?=
METHODS ?= lsh,cca_itq,cagan,sgrn,egath,dagnn
DATASETS ?= mirflickr25k_real730
SEEDS ?= 0
JOBS ?= 1

.PHONY: help venv bench sweep table plot regress test perf clean
.DEFAULT_GOAL := help

help:  ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-7s %s\n", $$1, $$2}'
	@echo "  bench variables: METHOD=$(METHOD) BITS=$(BITS) DATASET=$(DATASET) SEED=$(SEED) DATA_DIR=... ARGS='--trainer.max_epochs=3'"
	@echo "  sweep variables: METHODS=$(METHODS) BITS=16,32,64,128 DATASETS=$(DATASETS) SEEDS=$(SEEDS) JOBS=$(JOBS) ARGS=..."

$(BIN)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

venv: $(BIN)/.installed  ## create the virtual environment (torch pinned to the CPU build)

bench: $(BIN)/.installed  ## train + evaluate one run: METHOD=... BITS=... [DATASET=...] [SEED=...] [DATA_DIR=...]
	WANDB_SILENT=true $(BIN)/cmhb bench --method $(METHOD) --bits $(BITS) --dataset $(DATASET) --seed $(SEED) \
		$(if $(DATA_DIR),--data.data_dir=$(DATA_DIR)) $(ARGS)

sweep: $(BIN)/.installed  ## a grid of runs, resumable: METHODS=a,b BITS=16,32 DATASETS=x,y SEEDS=0,1,2 [JOBS=2]
	WANDB_SILENT=true $(BIN)/cmhb sweep --methods $(METHODS) --datasets $(DATASETS) \
		--bits $(if $(filter command line,$(origin BITS)),$(BITS),16,32,64,128) --seeds $(SEEDS) --jobs $(JOBS) $(ARGS)

table: $(BIN)/.installed  ## Markdown (results/README.md), LaTeX and CSV tables from results/runs.jsonl
	$(BIN)/cmhb table

plot: $(BIN)/.installed  ## PNG plots from results/runs.jsonl into results/plots [BITS=64]
	$(BIN)/cmhb plot --bits $(BITS)

regress: $(BIN)/.installed  ## re-run the CI regression baselines (results/regression) and compare
	WANDB_MODE=offline WANDB_SILENT=true $(BIN)/cmhb regress

test: $(BIN)/.installed  ## run the test suite, then the regression baselines
	WANDB_MODE=offline WANDB_SILENT=true $(BIN)/python -m pytest
	$(MAKE) --no-print-directory regress

perf: $(BIN)/.installed  ## evaluator speed at NUS-WIDE scale (2,100 x 186,577 x 64 bits)
	$(BIN)/python benchmarks/perf/evaluator.py

clean:  ## remove the virtual environment and run logs
	rm -rf $(VENV) runs wandb lightning_logs
