# Two entry points on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
MIN_VENV := .venv-min
# The oldest versions we support; `make test` runs the storage tests against them too.
MIN_PINS := "numpy==1.26.*" "pandas==2.2.*" "tables==3.9.*"
LINTED := pytraj tests examples benchmarks

.PHONY: demo test lint typecheck pytest test-min bench bench-large bench-compare bench-smoke clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml setup.py | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

# A real study on the pool, then what a user does next, each from a fresh process.
demo: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e ".[report]"
	$(BIN)/python examples/oscillator.py
	$(BIN)/pytraj info out/oscillator.h5
	@echo "--- the five largest amplitudes among the lightly damped oscillators:"
	$(BIN)/pytraj runs out/oscillator.h5 --where "damping <= 0.1 and status == 'completed'" \
		--columns damping,drive,amplitude,phase --sort amplitude --desc --limit 5
	$(BIN)/pytraj report out/oscillator.h5 -o out/oscillator-report.html
	@echo "open $$(pwd)/out/oscillator-report.html in a browser"

test: lint typecheck pytest test-min

lint: $(VENV)/.installed
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)

typecheck: $(VENV)/.installed
	$(BIN)/mypy

pytest: $(VENV)/.installed
	$(BIN)/python -m pytest -m "not crash"

test-crash: $(VENV)/.installed
	$(BIN)/python -m pytest -m crash -p no:cacheprovider -q

$(MIN_VENV)/.installed: pyproject.toml setup.py
	$(PYTHON) -m venv $(MIN_VENV)
	$(MIN_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(MIN_VENV)/bin/python -m pip install --quiet $(MIN_PINS) -e . pytest pytest-timeout hypothesis "h5py<3.12"
	touch $@

test-min: $(MIN_VENV)/.installed
	$(MIN_VENV)/bin/python -c "import numpy, pandas, tables; print('minimum versions:', numpy.__version__, pandas.__version__, tables.__version__)"
	$(MIN_VENV)/bin/python -m pytest -m storage -p no:cacheprovider -q --ignore=tests/test_dask.py

bench: $(VENV)/.installed
	$(BIN)/python -m benchmarks

# At scale (20-40 min on 2 cores): W1 and W5 at 1,000,000 runs, the 2 x 1 GB array merge,
# continuing a finished and a half-finished 1,000,000-run study; beside the floor, 3 repetitions.
bench-large: $(VENV)/.installed
	$(BIN)/python -m benchmarks --large

bench-smoke: $(VENV)/.installed
	$(BIN)/python -m benchmarks --smoke

# pytraj beside pypet 0.6.1 and psweep, each in its own virtual environment (.venv-compare).
bench-compare: $(VENV)/.installed
	$(BIN)/python -m benchmarks.compare

clean:
	rm -rf $(VENV) $(MIN_VENV) .venv-compare .venv-compare-psweep out build *.egg-info .pytest_cache .mypy_cache .ruff_cache
