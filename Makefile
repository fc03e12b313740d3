# Set-up is part of every target: a fresh clone needs only `make demo` or `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup demo test clean prerequisites

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# CPU build of torch; on a GPU node install the CUDA build first (see README).
	$(PY) -m pip install -q "torch==2.13.0"
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

setup: $(STAMP)

demo: setup
	bin/demo

# The test suite checks docker-compose.yml with a real Compose client (no engine is needed).
prerequisites:
	@docker compose version >/dev/null 2>&1 || docker-compose version >/dev/null 2>&1 || { \
	  echo "make test: needs a Docker Compose client to check docker-compose.yml; on Debian:" \
	       "apt-get install --no-install-recommends docker-compose (the client alone)" >&2; exit 2; }

test: prerequisites setup
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) var
