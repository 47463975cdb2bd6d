# tailings-parity: the two commands of README.md, and a few more.
#   make demo   set up, then the default parity run (smoke preset on synthetic tiles)
#   make test   set up, then the test suite
VENV ?= $(CURDIR)/.venv
export VENV
TP := $(VENV)/bin/tailings-parity
PY := $(VENV)/bin/python

.PHONY: setup demo test test-fast test-slow test-all test-ci mutation doctor clean

setup:
	@bash parity/setup.sh

demo: setup
	$(TP) run

doctor: setup
	$(TP) doctor

test: setup
	$(PY) -m pytest

test-fast: setup  # no TensorFlow, no R, no worker: enforced by parity/testing.py
	TAILINGS_PARITY_FAST_TIER=1 $(PY) -m pytest -m 'not heavy and not ci and not slow'

test-slow: setup  # the system tests of a minute or more (CI runs them after `make test`)
	$(PY) -m pytest -m 'slow and not ci'

test-all: test test-slow

test-ci: setup  # only the ci-marked tests (the real tiles)
	$(PY) -m pytest -m ci

# The mutation score of the comparison, the metrics and the config against the fast tier (parity/mutation.py: mutmut
# in a copy of the project under /tmp, never this folder; [tool.mutmut] of pyproject.toml). Minutes; CI does not run it.
mutation: setup
	$(PY) -c "import mutmut" 2>/dev/null || $(PY) -m pip install -q -e ".[dev]"
	$(PY) -m parity.mutation --min 0.9

clean:
	rm -rf .pytest_cache build *.egg-info
