# Set-up is part of every target: a fresh clone needs only `make demo` or `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup demo test clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# CPU build of torch; on a GPU node install the CUDA build first (see README).
	$(PY) -m pip install -q "torch==2.13.0"
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

setup: $(STAMP)

demo: setup
	bin/demo

test: setup
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) var
