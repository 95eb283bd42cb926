# The two commands a user needs: `make demo` and `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
SNAKEMAKE := $(VENV)/bin/snakemake
PYTHON ?= python3

# Never reach the model hub from the demo or the tests.
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export HF_HUB_DISABLE_PROGRESS_BARS := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: venv comet-env demo test lint bench clean

venv: $(VENV)/.installed

# torch is installed first, pinned: an unpinned resolve would pull a multi-GB CUDA build.
$(VENV)/.installed: envs/requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade --quiet pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -r envs/requirements.lock
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

# The COMET environment (unbabel-comet needs transformers<5 and numpy<2): the comet rule finds
# .venv-comet/bin/python by itself when Snakemake runs without --sdm conda. torch first, pinned
# (the CPU build on local disk here); then every package pinned by envs/comet.lock.
comet-env: .venv-comet/.installed

.venv-comet/.installed: envs/comet.lock
	$(PYTHON) -m venv .venv-comet
	.venv-comet/bin/python -m pip install --quiet torch==2.13.0
	.venv-comet/bin/python -m pip install --quiet -r envs/comet.lock
	.venv-comet/bin/python -m pip check
	touch $@

# At most one GPU job at a time on a workstation with one GPU (the embedded default needs none).
demo: venv
	$(SNAKEMAKE) --cores 2 --resources gpu=1

test: venv comet-env
	$(PY) -m pytest -q

lint: venv
	$(PY) -m ruff check src tests workflow_scripts bench
	$(VENV)/bin/snakefmt --check Snakefile rules
	$(SNAKEMAKE) --lint

bench: venv
	$(PY) bench/demo_run.py

clean:
	rm -rf results logs benchmarks .snakemake
