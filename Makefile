# Entry points. `make lab` and `make test` are the two commands in the README.
.PHONY: deps lab lab-down test lint

PYTHON := .venv/bin/python

deps:
	scripts/install-deps.sh

lab: deps
	$(PYTHON) -m lab up

lab-down:
	$(PYTHON) -m lab down

test: deps
	scripts/test.sh

lint:
	scripts/test.sh --lint-only
