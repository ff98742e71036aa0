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
	$(PY) -m pytest -q -p no:cacheprovider

bench: install
	$(PY) bench/connector.py

clean:
	rm -rf $(VENV) build *.egg-info
