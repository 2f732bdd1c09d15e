# Two commands on a fresh machine: `make demo` and `make test`.
# Users with GPUs: make test TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"
PYTHON     ?= python3
VENV       ?= .venv
TORCH_SPEC ?= torch==2.13.0
PYTEST_ARGS ?= --durations=30
DEMO_ARGS  ?=
BIN := $(VENV)/bin

.PHONY: install install-test demo test test-slow wheel-check bench refs crosscheck lint format clean

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

# ruff (pyproject.toml: pyflakes, pycodestyle, isort, bugbear, pyupgrade; line length 120): `make lint` checks the rule
# set and the formatting (CI runs it before the tests), `make format` formats the tree (docs/contributing.md)
LINT_PATHS = speechssl tests tools hubconf.py
lint: install-test
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)

format: install-test
	$(BIN)/ruff format $(LINT_PATHS)
	$(BIN)/ruff check --fix $(LINT_PATHS)

test-slow: install-test
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

bench: install-test
	$(BIN)/python tools/bench_features.py
	$(BIN)/python tools/bench_encoders.py

# The cross-check against the reference code (fairseq, torchaudio, s3prl) in its own venv, never a dependency:
# `make refs` builds it offline from the package registry (about 6 minutes), `make crosscheck` runs
# tests/crosscheck from it against this checkout (docs/crosscheck.md says what is compared).
REFS_VENV ?= .refs/venv
refs:
	PYTHON=$(PYTHON) REFS_VENV=$(REFS_VENV) TORCH_SPEC="$(TORCH_SPEC)" tools/refs/build.sh

crosscheck:
	@test -x $(REFS_VENV)/bin/python || { echo "no reference venv at $(REFS_VENV): run make refs first"; exit 2; }
	$(REFS_VENV)/bin/python -m pytest tests/crosscheck -p no:cacheprovider -m "slow or not slow" $(PYTEST_ARGS)
	$(REFS_VENV)/bin/python tools/refs/bench_vs_fairseq.py --size tiny
	$(REFS_VENV)/bin/python tools/refs/bench_superb_head_vs_s3prl.py --steps 5 --repeats 1

clean:
	rm -rf $(VENV) build *.egg-info exp .refs
