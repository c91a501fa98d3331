# Graph-based cross-modal hashing benchmark suite. `make help` lists the targets.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
METHOD ?= cagan
BITS ?= 64
DATASET ?= mirflickr25k_mini
SEED ?= 0
DATA_DIR ?=
ARGS ?=
METHODS ?= $(shell $(BIN)/cmhb list --names methods 2>/dev/null)
DATASETS ?= mirflickr25k_mini
SEEDS ?= 0
JOBS ?= 1
RESULTS ?= runs/results.jsonl
PYTEST_ARGS ?=
TRIALS ?=
comma := ,
SWEEP_BITS := $(if $(filter command line,$(origin BITS)),$(BITS),16,32,64,128)
PLOT_BITS := $(if $(filter command line,$(origin BITS)),--bits $(BITS))

.PHONY: help venv bench sweep reproduce tune table plot reference oracle-reference label-reference regress test test-fast perf perf-scale perf-retrieval perf-data clean clean-runs
.DEFAULT_GOAL := help

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'
	@echo "  bench variables: METHOD=$(METHOD) BITS=$(BITS) DATASET=$(DATASET) SEED=$(SEED) DATA_DIR=... ARGS='--trainer.max_epochs=3'"
	@echo "  sweep variables: METHODS=$(or $(METHODS),<every method: cmhb list>) BITS=16,32,64,128 DATASETS=$(DATASETS) SEEDS=$(SEEDS) JOBS=$(JOBS) ARGS=..."
	@echo "  user runs write to $(RESULTS) and runs/ (ignored by git); committed results change only with 'make reference'"

$(BIN)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	@# setuptools reports how it made the editable install as Python warnings (notes, not problems); errors still show
	PYTHONWARNINGS=ignore $(BIN)/pip install --quiet -c constraints.txt -e '.[test,postgres]'
	@# reads every class's options once into the schema cache, so that the first `cmhb list` or --help is instant
	$(BIN)/cmhb list > /dev/null && $(BIN)/cmhb bench --method lsh --help > /dev/null
	touch $@

venv: $(BIN)/.installed  ## create the virtual environment (torch pinned to the CPU build)

bench: $(BIN)/.installed  ## train + evaluate one run: METHOD=... BITS=... [DATASET=...] [SEED=...] [DATA_DIR=...]
	$(BIN)/cmhb bench --method $(METHOD) --bits $(BITS) --dataset $(DATASET) --seed $(SEED) \
		$(if $(DATA_DIR),--data.data_dir=$(DATA_DIR)) --results $(RESULTS) $(ARGS)

sweep: $(BIN)/.installed  ## a grid of runs, resumable: METHODS=a,b BITS=16,32 DATASETS=x,y SEEDS=0,1,2 [JOBS=2]
	$(BIN)/cmhb sweep --methods $(METHODS) --datasets $(DATASETS) --bits $(SWEEP_BITS) --seeds $(SEEDS) \
		--jobs $(JOBS) --results $(RESULTS) $(ARGS)

reproduce: $(BIN)/.installed  ## a method as its authors ran it (preset paper): METHOD=... DATASET=... [SEEDS=0,1,2]
	$(BIN)/cmhb sweep --methods $(METHOD) --datasets $(DATASET) --bits $(SWEEP_BITS) --seeds $(SEEDS) --presets paper \
		--jobs $(JOBS) --results $(RESULTS) $(ARGS)

table: $(BIN)/.installed  ## Markdown, LaTeX and CSV tables of your rows into runs/tables [ARGS='--methods=a,b --variants']
	$(BIN)/cmhb table --results $(RESULTS) --out runs/tables $(ARGS)

plot: $(BIN)/.installed  ## figures of your rows into runs/plots [BITS=64: curves at that code length only]
	$(BIN)/cmhb plot --results $(RESULTS) --out runs/plots $(PLOT_BITS) $(ARGS)

reference: $(BIN)/.installed  ## re-run the committed reference (studies, runs, tables, figures; hours; on purpose only)
	for dataset in mirflickr25k_mini wikipedia; do for method in $(subst $(comma), ,$(METHODS)); do \
		$(BIN)/cmhb tune --method $$method --dataset $$dataset --storage results/tuned/studies.log --tuned results/tuned --workers $(JOBS) \
		|| exit 1; done; done
	$(BIN)/cmhb sweep --methods $(METHODS) --datasets mirflickr25k_mini --bits 16,32,64 --seeds 0,1 --split_seeds 0,1 \
		--presets common,tuned --tuned results/tuned --jobs $(JOBS) --results results/runs.jsonl.gz $(ARGS)
	$(BIN)/cmhb sweep --methods $(METHODS) --datasets wikipedia --bits 16,32,64 --seeds 0 \
		--presets common,tuned --tuned results/tuned --jobs $(JOBS) --results results/runs.jsonl.gz $(ARGS)
	$(BIN)/cmhb sweep --methods $(METHODS) --datasets toy --bits 16,32,64 --seeds 0 \
		--jobs $(JOBS) --results results/runs.jsonl.gz $(ARGS)
	$(BIN)/cmhb table --results results/runs.jsonl.gz --out results --readme results/README.md
	$(BIN)/cmhb plot --results results/runs.jsonl.gz --out results/plots --bits 64

oracle-reference: $(BIN)/.installed  ## the oracle diagnostic of every method into results/oracle (hours; resumable; on purpose only)
	$(BIN)/python -m benchmarks.campaigns.oracle $(if $(filter command line,$(origin METHODS)),--methods $(METHODS))

label-reference: $(BIN)/.installed  ## the label protocols' reference: unseen classes, noisy labels, their report (hours; resumable; on purpose only)
	$(BIN)/python -m benchmarks.campaigns.label_reference --jobs $(JOBS) $(if $(filter command line,$(origin METHODS)),--methods $(METHODS))

tune: $(BIN)/.installed  ## tune a method on validation data (Optuna): METHOD=... DATASET=... [BITS=32] [TRIALS=...]
	$(BIN)/cmhb tune --method $(METHOD) --dataset $(DATASET) $(if $(filter command line,$(origin BITS)),--bits $(BITS)) \
		$(if $(TRIALS),--trials $(TRIALS)) $(ARGS)

regress: $(BIN)/.installed  ## re-run the CI regression baselines (results/regression) and compare their mAP
	WANDB_MODE=offline $(BIN)/cmhb regress

test: $(BIN)/.installed  ## every test: the fast, slow (training, processes, regression baselines) and reference tiers
	WANDB_MODE=offline WANDB_SILENT=true exec $(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: $(BIN)/.installed  ## the fast tier: unit tests, seconds-long runs of lsh and cca_itq; about a minute
	WANDB_MODE=offline WANDB_SILENT=true exec $(BIN)/python -m pytest -m "not slow and not reference" $(PYTEST_ARGS)

perf: $(BIN)/.installed  ## evaluator speed at NUS-WIDE scale: Hamming (64 bits) and cosine (1,024-d)
	$(BIN)/python benchmarks/perf/evaluator.py

perf-scale: $(BIN)/.installed  ## every method at the benchmarks' sizes (synthetic shapes): epoch, evaluation, memory
	$(BIN)/python benchmarks/perf/scale.py --markdown runs/perf-scale.md

perf-retrieval: $(BIN)/.installed  ## what the codes buy: search cost at 1e5-1e8 items, binary indexes beside float [ARGS=--quick]
	$(BIN)/python benchmarks/perf/retrieval.py --csv runs/perf-retrieval.csv --markdown runs/perf-retrieval.md $(ARGS)

perf-data: $(BIN)/.installed  ## the real datasets' annotations at their real sizes (generated files): parse, cache, split, memory
	$(BIN)/python benchmarks/perf/data.py --markdown runs/perf-data.md

clean:  ## remove the virtual environment, logs and wandb runs (never your results: see clean-runs)
	rm -rf $(VENV) runs/sweep-logs runs/wandb wandb lightning_logs

clean-runs:  ## DELETE your results: runs/ (results.jsonl, saved runs, tables, plots, studies)
	@echo "deleting runs/: your result rows, saved runs, tables, plots and studies"
	rm -rf runs
