# The commands the README gives. Each target sets up .venv on first use (pinned by constraints.txt).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test bench bench-full docs check lint typecheck clean

$(STAMP): pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev,bench,spark]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/ltvcast demo --out out/demo

test: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider

bench: $(STAMP)
	$(PY) bench/run.py

# bench plus the cost curve up to 10M customers (bench_scale.py --full): 55 minutes more when
# measured on 2 cores shared with other jobs, so not part of bench.
bench-full: $(STAMP)
	$(PY) bench/run.py --full

docs: demo
	$(PY) bench/docs.py out/demo

lint: $(STAMP)
	$(VENV)/bin/lint-imports
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

typecheck: $(STAMP)
	$(VENV)/bin/mypy

check: lint typecheck test

clean:
	rm -rf $(VENV) out
