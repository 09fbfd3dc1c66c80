# Everything runs from a local virtual environment that the targets create themselves:
# a fresh machine needs only python3 (>= 3.11).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test check bench soak clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -qq --upgrade pip
	$(BIN)/pip install -qq -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	rm -f samples/tenants.csv.ledger.jsonl
	$(BIN)/bulk provision samples/tenants.csv --emulator --region us-east-1 --emulator-rate 20 --emulator-burst 5 --rate 40 --burst 5 || [ $$? -eq 1 ]

test: $(STAMP)
	$(BIN)/pytest -q

check: $(STAMP)
	$(BIN)/ruff check bulk tests benchmarks
	$(BIN)/ruff format --check bulk tests benchmarks
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m benchmarks

soak: $(STAMP)
	$(BIN)/pytest -q -m soak -o addopts=''

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
