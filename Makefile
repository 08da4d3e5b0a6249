# rnnkit — `make demo` runs the main job; `make test` runs the tests.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.rnnkit-installed
PIP_FLAGS ?= --disable-pip-version-check -q

.PHONY: test demo bench lint format clean help js-test

help:
	@echo "make test   - create .venv, install rnnkit[train,data,dev] (torch pinned), run the tests"
	@echo "make demo   - train, export and run the models on the built-in corpus (~10 min on 2 cores)"
	@echo "make bench  - benchmarks against torch and raw onnxruntime; writes bench-out/results.json"
	@echo "make lint   - ruff"
	@echo "make js-test - goldens from the Python runtime, then the JavaScript tests in Node and headless Chromium"

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

# The JavaScript runtime (js/): goldens made by the Python runtime, npm ci when js/node_modules is
# missing, the shared cases in Node and Chromium (/usr/bin/chromium), then Python restores JS's snapshots.
js-test: $(STAMP)
	$(PY) js/tools/goldens.py --out js/test/goldens
	test -d js/node_modules || (cd js && ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund)
	cd js && npm test
	$(PY) js/tools/check_js_snapshots.py

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache demo-out bench-out
