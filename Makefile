# The README's two set-up commands are `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test install bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

install: $(PY)
	$(PY) -m pip install -q -e '.[test]'

demo: install
	$(VENV)/bin/mxproxy demo

test: install
	$(PY) -m pytest -q -p no:cacheprovider -n auto

# Every benchmark in turn (a few minutes; figures and what they mean: docs/benchmarks.md).
bench: install
	$(PY) bench/connector.py
	$(PY) bench/sessions.py --n 1000
	$(PY) bench/api.py
	$(PY) bench/push.py
	$(PY) bench/resume.py --n 1000 --n 10000
	$(PY) bench/import.py
	$(PY) bench/event_bus.py
	$(PY) bench/events.py

clean:
	rm -rf $(VENV) build *.egg-info
