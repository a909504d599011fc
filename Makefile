# The two commands a newcomer types: `make demo` (train the DCGAN on digits) and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

# torch first, from the CPU wheel pip finds on this machine, so nothing else drags in a CUDA build.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q -c constraints.txt torch
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	# The independent Inception the exactness tests compare with, beside the code (see pyproject).
	$(BIN)/pip install -q --no-deps --target .test-deps -c constraints.txt torch-fidelity
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/gankit train --data digits --out runs/digits

test: $(STAMP)
	$(BIN)/ruff check src tests examples benchmarks
	$(BIN)/mypy
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/overhead.py

clean:
	rm -rf $(VENV) runs
