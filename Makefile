# Two commands a newcomer runs (README): `make demo` and `make test`.  Both create or refresh the
# virtual environment first (tools/setup_venv.sh is idempotent and skips work already done).
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_DIR ?= work_dirs/demo
PYTEST_ARGS ?=

.PHONY: venv test demo clean-demo

venv:
	@VENV=$(VENV) bash tools/setup_venv.sh

test: venv
	$(PY) -m pytest tests -q -p no:cacheprovider $(PYTEST_ARGS)

demo: venv
	$(PY) tools/demo.py --work-dir $(DEMO_DIR)

clean-demo:
	rm -rf $(DEMO_DIR)
