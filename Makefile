VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
RUN_STAMP := $(VENV)/.installed-run

.PHONY: run test test-fast check bench soak clean node-deps

# What running needs (aiohttp, pydantic, PyYAML, Faker): all `make run` installs.
$(RUN_STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e .
	touch $(RUN_STAMP)

# Everything the tests and `make check` need on top (the `test` extra in pyproject.toml).
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP) $(RUN_STAMP)

run: $(RUN_STAMP)
	$(VENV)/bin/bandwidth-emulator $(ARGS)

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

# The edit-test loop: everything but the slow tiers (markers in pyproject.toml), on two workers.
test-fast: $(STAMP)
	$(PY) -m pytest -n 2 -m "not (browser or node or wheel or soak or property or slow)" $(PYTEST_ARGS)

# Types (mypy, strict, with the pydantic plugin) and lint (ruff); configured in pyproject.toml.
check: $(STAMP)
	$(VENV)/bin/mypy
	$(VENV)/bin/ruff check

# Benchmarks against bare aiohttp baselines; prints a table and writes bench/RESULTS.md.
# The accept path is loaded with wrk (installed here from Debian when possible), or else with
# an aiohttp client in its own process.
bench: $(STAMP)
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		apt-get install -y -qq wrk >/dev/null 2>&1; } || echo "wrk not available: using the aiohttp load generator"
	$(PY) bench/run.py $(BENCH_ARGS)

# The load-without-loss tests at ten times the size (50,000 concurrent sends).
soak: $(STAMP)
	BWE_SOAK_MESSAGES=50000 $(PY) -m pytest tests/test_reliability.py -k "concurrent" $(PYTEST_ARGS)

# Bandwidth's Node SDKs for tests/test_sdk_node.py (the test also installs them on first use).
node-deps:
	cd tests/node && npm ci --no-audit --no-fund

clean:
	rm -rf $(VENV) build *.egg-info
