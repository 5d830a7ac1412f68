# `make run` and `make test` bootstrap everything they need on a fresh machine:
# a virtualenv with the package and its dev tools, socket.io-client for the
# JS client test, Debian's redis-server if missing, and Debian's postgresql
# only if neither the pgserver wheel nor the system has its binaries; Debian's
# pgTAP and pg_prove for the SQL tests, and Deno (npm, pinned in
# tests/deno) for the edge function tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml tests/js/package.json tests/deno/package.json | cksum | cut -d' ' -f1)

.PHONY: run test lint bench bench-send clean

$(STAMP): pyproject.toml tests/js/package.json tests/deno/package.json
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	@./scripts/ensure-services
	cd tests/js && npm install --no-audit --no-fund --loglevel=error
	cd tests/deno && npm ci --no-audit --no-fund --loglevel=error
	@rm -f $(VENV)/.installed-*
	@touch $@

run: $(STAMP)
	$(BIN)/bridge run

test: $(STAMP)
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check bridge tests bench
	$(BIN)/ruff format --check bridge tests bench
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/outbox_insert_tps.py

# The socket send path, the bridge against the seed guide's Node server
# (bench/peer; the script runs `npm ci` there when needed). Options in ARGS,
# e.g. make bench-send ARGS="--sockets 200 --rates 100 --seconds 5".
bench-send: $(STAMP)
	$(BIN)/python bench/send_path.py $(ARGS)

clean:
	rm -rf $(VENV) .data .cache .pytest_cache .mypy_cache .ruff_cache
