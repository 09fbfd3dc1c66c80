# Everything runs from a local virtual environment that the targets create themselves:
# a fresh machine needs only python3 (>= 3.11).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo demo-sesv2 test test-lowest check bench soak clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -qq --upgrade pip
	$(BIN)/pip install -qq -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	rm -f samples/tenants.csv.ledger.jsonl
	$(BIN)/bulk provision samples/tenants.csv --emulator --region us-east-1 --emulator-rate 20 --emulator-burst 5 --rate 40 --burst 5 || [ $$? -eq 1 ]

# SES v2: each row a tenant's whole set-up (tenant, set, event destinations, association).
demo-sesv2: $(STAMP)
	rm -f samples/ses-tenants.csv.ledger.jsonl
	$(BIN)/bulk provision samples/ses-tenants.csv --service sesv2 --event-destinations samples/event-destinations.json --emulator --region us-east-1 --emulator-rate 20 --emulator-burst 5 --rate 40 --burst 5 || [ $$? -eq 1 ]

test: $(STAMP)
	$(BIN)/pytest -q

# The suite on the lowest versions pyproject.toml allows (constraints/lowest.txt), in a venv of
# its own, made afresh when either file changes. Not part of `make test` or CI.
LOWEST := .venv-lowest
$(LOWEST)/.installed: pyproject.toml constraints/lowest.txt
	rm -rf $(LOWEST)
	$(PYTHON) -m venv $(LOWEST)
	$(LOWEST)/bin/pip install -qq --upgrade pip
	$(LOWEST)/bin/pip install -qq -c constraints/lowest.txt -e '.[test]'
	touch $@

test-lowest: $(LOWEST)/.installed
	$(LOWEST)/bin/pytest -q

check: $(STAMP)
	$(BIN)/ruff check bulk tests benchmarks
	$(BIN)/ruff format --check bulk tests benchmarks
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m benchmarks

soak: $(STAMP)
	$(BIN)/pytest -q -m soak -o addopts=''

clean:
	rm -rf $(VENV) $(LOWEST) .pytest_cache .mypy_cache .ruff_cache
