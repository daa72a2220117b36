# The two commands a newcomer needs:  make sandbox  (try the bot)  and  make test  (run the tests).
# Everything installs into .venv; nothing is downloaded at run time.

VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: install sandbox test lint bench clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# argostranslate -> stanza -> torch: install the CPU build first, or pip pulls a multi-GB CUDA build.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

sandbox: install
	$(VENV)/bin/liaison sandbox

test: install
	scripts/ensure-chromium
	CI=$${CI:-} scripts/run-tests $(PYTEST_ARGS)

bench: install
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
