# tagship: `make demo` runs the whole flow on the local cloud; `make test` runs the suite. Both set themselves up.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test unit e2e clean

$(STAMP): requirements.txt requirements-dev.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "tagship needs $(PYTHON) on PATH"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --upgrade pip
	@$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $(STAMP)

demo: $(STAMP)
	$(PY) main.py demo

test: $(STAMP)
	$(PY) -m mypy
	$(PY) -m pytest -q

unit: $(STAMP)
	$(PY) -m pytest -q tests/unit

e2e: $(STAMP)
	$(PY) -m pytest -q tests/e2e

.PHONY: reliability
reliability: $(STAMP)
	$(PY) -m tools.reliability --full

clean:
	rm -rf $(VENV) .pytest_cache

.PHONY: bench
bench: $(STAMP)
	$(PY) -m tools.bench
	$(PY) -m tools.bench.progressive
