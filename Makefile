# make run: set up and start the demo. make test: set up and run every test.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed-requirements

.PHONY: run test bench bench-quick nginx test-packages typecheck clean

$(INSTALLED): requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || { echo "error: python3 -m venv failed (on Debian: apt-get install python3-venv)"; exit 1; }
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $@

nginx:
	@bash scripts/install-system-packages.sh

test-packages:
	@bash scripts/install-system-packages.sh --test

typecheck: $(INSTALLED)
	$(PY) -m mypy --strict signing

# Every test on SQLite, then every database test again on a PostgreSQL cluster the suite starts.
test: $(INSTALLED) test-packages typecheck
	$(PY) -m pytest
	$(PY) -m pytest --database=postgresql

run: $(INSTALLED) nginx
	$(PY) -m harness.demo

BENCH_INSTALLED := $(VENV)/.installed-bench

$(BENCH_INSTALLED): $(INSTALLED) benchmarks/requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r benchmarks/requirements.txt
	@touch $@

# The whole benchmark (about 10 minutes; rewrites benchmarks/results.md and results.png), or a
# two-minute smoke run of every section (var/bench-quick/, no verdicts).
bench: $(BENCH_INSTALLED)
	@bash scripts/install-system-packages.sh --bench
	$(PY) -m benchmarks

bench-quick: $(BENCH_INSTALLED)
	@bash scripts/install-system-packages.sh --bench
	$(PY) -m benchmarks --quick

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache
