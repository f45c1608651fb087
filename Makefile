VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test bench clean node-deps

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/bandwidth-emulator $(ARGS)

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

# Bandwidth's Node SDKs for tests/test_sdk_node.py (the test also installs them on first use).
node-deps:
	cd tests/node && npm ci --no-audit --no-fund

clean:
	rm -rf $(VENV) build *.egg-info
