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

.PHONY: help venv bench test perf clean
.DEFAULT_GOAL := help

help:  ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-7s %s\n", $$1, $$2}'
	@echo "  bench variables: METHOD=$(METHOD) BITS=$(BITS) DATASET=$(DATASET) SEED=$(SEED) DATA_DIR=... ARGS='--trainer.max_epochs=3'"

$(BIN)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

venv: $(BIN)/.installed  ## create the virtual environment (torch pinned to the CPU build)

bench: $(BIN)/.installed  ## train + evaluate one run: METHOD=... BITS=... [DATASET=...] [SEED=...] [DATA_DIR=...]
	WANDB_SILENT=true $(BIN)/cmhb bench --method $(METHOD) --bits $(BITS) --dataset $(DATASET) --seed $(SEED) \
		$(if $(DATA_DIR),--data.data_dir=$(DATA_DIR)) $(ARGS)

test: $(BIN)/.installed  ## run the test suite
	WANDB_MODE=offline WANDB_SILENT=true $(BIN)/python -m pytest

perf: $(BIN)/.installed  ## evaluator speed at NUS-WIDE scale (2,100 x 186,577 x 64 bits)
	$(BIN)/python benchmarks/perf/evaluator.py

clean:  ## remove the virtual environment and run logs
	rm -rf $(VENV) runs wandb lightning_logs
