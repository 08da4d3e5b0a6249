# rnnkit — `make demo` runs the main job; `make test` runs the tests.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.rnnkit-installed
PIP_FLAGS ?= --disable-pip-version-check -q

.PHONY: test demo bench lint format clean help

help:
	@echo "make test   - create .venv, install rnnkit[train,data,dev] (torch pinned), run the tests"
	@echo "make demo   - train, export and run the models on the built-in corpus (~10 min on 2 cores)"
	@echo "make bench  - benchmarks against torch and raw onnxruntime; writes bench-out/results.json"
	@echo "make lint   - ruff"

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install $(PIP_FLAGS) --upgrade "pip>=23.1"
	$(PY) -m pip install $(PIP_FLAGS) -c constraints.txt -e '.[train,data,dev]'
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

demo: $(STAMP)
	$(PY) examples/demo.py --out demo-out

bench: $(STAMP)
	$(PY) -m benchmarks.run --out bench-out

lint: $(STAMP)
	$(VENV)/bin/ruff check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache demo-out bench-out
