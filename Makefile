# Developer targets. The normal test run is `.venv/bin/python -m pytest` (see README).
PYTHON ?= .venv/bin/python
FUZZ_EXAMPLES ?= 25000

.PHONY: test fuzz lint

test:
	$(PYTHON) -m pytest

# The long fuzzing run: FUZZ_EXAMPLES cases for each of the 4 fuzz tests (gRPC and HTTP,
# structured OTLP and raw / bit-flipped bytes), 100k cases by default, against one real
# receiver. Record the outcome in README "Operations" when it changes.
fuzz:
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PYTHON) -m pytest tests/test_fuzz.py -k "not docker" \
		-p no:cacheprovider -q --durations=0

lint:
	$(PYTHON) -m ruff check receiver tests
	$(PYTHON) -m ruff format --check receiver tests
