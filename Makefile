# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test install bench workers clean spec-json spec-full

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# The market demo starts from a fresh state directory every time.
demo: $(STAMP)
	rm -rf .demo-home
	$(BIN)/memjit demo --home .demo-home

# The explorer's browser tests drive Debian's chromium (Playwright's own download is not used).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

test: $(STAMP)
	command -v chromium >/dev/null || ($(SUDO) apt-get update && $(SUDO) apt-get install -y chromium)
	$(BIN)/python -m pytest

# The WebAssembly spec testsuite: every provable call proven and verified (make test proves a
# sample); spec-json rebuilds tests/spec/json/ from the vendored .wast (needs Debian's wabt).
spec-full: $(STAMP)
	$(BIN)/python tests/spec_suite.py --prove all

spec-json: $(STAMP)
	$(BIN)/python tests/spec/regenerate.py

bench: $(STAMP)
	$(BIN)/memjit bench stark --air fibonacci --log-rows 16

# Rebuild the example workers from C (needs Debian's clang and lld); the .wasm files are committed.
workers:
	$(MAKE) -C memjit/workers

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .demo-home
