# The two commands of the README: `make demo` and `make test`. Both install first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
MTL := $(VENV)/bin/mtl
STAMP := $(VENV)/.installed
DEMO_ROWS ?= 50000

.PHONY: install demo test test-fast bench clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(MTL) data synth fraud_signals --rows $(DEMO_ROWS) --out data/fraud_signals/raw --files 4 --malformed 0.002
	$(MTL) run recipes/fraud_signals.yaml

# One test process per core (pytest-xdist), each file's tests in one process so that module
# fixtures are built once.
test: install
	$(PY) -m pytest -q -ra --timeout 900 --durations=20 -n auto --dist loadfile

test-fast: install
	$(PY) -m pytest -q -ra -m "not slow"

bench: install
	$(PY) bench/trainer_overhead.py
	$(PY) bench/input_pipeline.py
	$(PY) bench/image_input.py
	$(PY) bench/beam_preprocess.py

clean:
	rm -rf artifacts data/fraud_signals mlflow.db mlruns
