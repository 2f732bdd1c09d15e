# Two commands on a fresh machine: `make demo` and `make test`.
# Users with GPUs: make test TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"
PYTHON     ?= python3
VENV       ?= .venv
TORCH_SPEC ?= torch==2.13.0
PYTEST_ARGS ?=
DEMO_ARGS  ?=
BIN := $(VENV)/bin

.PHONY: install install-test demo test test-slow wheel-check bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# Torch goes in first and pinned, so the package's range never pulls a CUDA build. The [demo] extra is
# what the recipe needs beyond the core (kenlm for LM decoding, a C++ build of about a minute; espeak-ng
# for the synthetic corpus; STOI; TensorBoard).
install: $(BIN)/python
	$(BIN)/pip install -q $(TORCH_SPEC)
	$(BIN)/pip install -q -e '.[demo]'

install-test: $(BIN)/python
	$(BIN)/pip install -q $(TORCH_SPEC)
	$(BIN)/pip install -q -e '.[test]'

# The whole recipe on the synthetic mini corpus (stages 0-10, under an hour on 2 CPU cores);
# DEMO_ARGS="--config conf/long.conf" for the longer runs, DEMO_ARGS="--corpus tiny" for minutes.
demo: install
	cd recipes/librispeech && ./run.sh $(DEMO_ARGS)

test: install-test
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# the wheel, installed into a fresh venv outside the repository, must run (CI runs this after the suite)
wheel-check: install-test
	PYTHON=$(PYTHON) TORCH_SPEC="$(TORCH_SPEC)" tools/wheel_check.sh

test-slow: install-test
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

bench: install-test
	$(BIN)/python tools/bench_features.py
	$(BIN)/python tools/bench_encoders.py

clean:
	rm -rf $(VENV) build *.egg-info exp
