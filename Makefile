# Two entry points for a fresh machine: `make demo` (the main job on the embedded default) and `make test`.
# Both create .venv and install the pinned requirements on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export DS_BUILD_OPS ?= 0
export TOKENIZERS_PARALLELISM ?= false

.PHONY: venv test demo folds clean-demo hub

# requirements-test.txt includes requirements-demo.txt, which includes requirements.txt: one install serves both.
$(VENV)/.installed: requirements.txt requirements-demo.txt requirements-test.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-test.txt
	touch $@

venv: $(VENV)/.installed

# One thread per process: tiny-model training on this 2-core machine is 20-100x slower with more.
test: export OMP_NUM_THREADS ?= 1
test: venv
	$(PY) -m pytest -q tests

# Fold the embedded sample data (the first step of the pipeline).
folds: venv
	$(PY) make_folds.py --train_file data/sample/train_QC.jsonl --test_file data/sample/test_QC.jsonl --output_dir outputs/demo/folds_qc
	$(PY) make_folds.py --train_file data/sample/train_QI.jsonl --test_file data/sample/test_QI.jsonl --output_dir outputs/demo/folds_qi

# The whole pipeline on the embedded default, offline: model, local Hub, folds, translation, TAPT, fold training,
# ensemble, checked submission, report (outputs/demo/report.md). Resumes when rerun; DEMO_ARGS=--fresh starts over.
# DEMO_HUB=real DEMO_HUB_NAMESPACE=you DEMO_MODEL=google/gemma-3-270m: the real Hub and a real model instead.
# Threads per process: scripts/demo.py takes the cores free when it starts (cores minus the load average: 2 threads
# on an idle 2-core machine, 1 beside another busy job) and logs why; DEMO_THREADS=N or OMP_NUM_THREADS=N forces N.
demo: venv
	$(PY) scripts/demo.py $(DEMO_ARGS)

# The local Hub server on the demo's storage, to look at what the demo pushed:
#   HF_ENDPOINT=http://127.0.0.1:8999 HF_HUB_DISABLE_XET=1 HF_TOKEN=hf_local .venv/bin/python -c "..."
HUB_PORT ?= 8999
hub: venv
	$(PY) -m tools.hub_server --storage outputs/demo/hub --host 127.0.0.1 --port $(HUB_PORT)
