# Two commands a newcomer runs (README): `make demo` and `make test`.  Both create or refresh the
# virtual environment first (tools/setup_venv.sh is idempotent and skips work already done).
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_DIR ?= work_dirs/demo
PYTEST_ARGS ?=

.PHONY: venv lint test demo clean-demo

venv:
	@VENV=$(VENV) bash tools/setup_venv.sh

# Lint (ruff, configured in pyproject.toml, version pinned in requirements/tests.txt) before the
# tests, so CI (`.ci/run` -> `make test`) enforces it.
lint: venv
	$(PY) -m ruff check mmlesion tools tests configs

test: venv lint
	$(PY) -m pytest tests -q -p no:cacheprovider $(PYTEST_ARGS)

demo: venv
	$(PY) tools/demo.py --work-dir $(DEMO_DIR)

clean-demo:
	rm -rf $(DEMO_DIR)
