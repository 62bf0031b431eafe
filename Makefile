# The two commands a user needs: `make run` and `make test`. Everything installs into .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test lint unit integration e2e faults bench bench-ledger soak clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

run: install
	$(BIN)/blo-exchange demo

LINTED := src tests $(wildcard bench)

lint: install
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/mypy
	$(BIN)/bandit -q -c pyproject.toml -r src
	$(BIN)/pip-audit --disable-pip --no-deps --progress-spinner off -r constraints.txt

test: lint
	scripts/ensure-chromium
	$(BIN)/pytest

unit: install
	$(BIN)/pytest tests/unit

integration: install
	$(BIN)/pytest tests/integration

e2e: install
	scripts/ensure-chromium
	$(BIN)/pytest tests/e2e

# The fault-injection suite in its long form (more alerts, longer load, repeated kill -9s);
# `make test` runs its short form. Prints one FAULTS line of counts per scenario.
faults: install
	BLO_FAULTS_LONG=1 $(BIN)/pytest tests/faults -s

# Benchmarks (bench/README.md): own servers on loopback, a table, bench/results.json. < 15 min.
SOAK_SECONDS ?= 60

bench: install
	$(BIN)/python -m bench --soak-seconds $(SOAK_SECONDS)

# The ledger alone (issue 3): append throughput with a checkpoint a second, proofs at 10k-1M.
bench-ledger: install
	$(BIN)/python -m bench.ledger_log

# The long soak alone (10 min by default), after a short accept run that sets the rate.
soak: install
	$(BIN)/python -m bench --only soak --soak-seconds $(or $(SOAK),600) --out bench/soak-results.json

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
