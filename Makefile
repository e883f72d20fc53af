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

# The demo's real chest CTs (README, Set-up): when a local copy is known ($MMLESION_REAL_CT_SOURCE,
# else ../shared/data/real_ct) and mmlesion does not find them yet, they are copied into
# <cache>/real_ct first (SHA-256 checked).  Never downloaded here: without them the demo uses CT
# phantoms and says how to fetch them (tools/fetch_real_ct.py).
REAL_CT_SOURCE ?= $(or $(MMLESION_REAL_CT_SOURCE),$(wildcard ../shared/data/real_ct))

demo: venv
	@if [ -n "$(REAL_CT_SOURCE)" ]; then \
		$(PY) tools/fetch_real_ct.py --if-available --from "$(REAL_CT_SOURCE)"; fi
	$(PY) tools/demo.py --work-dir $(DEMO_DIR)

clean-demo:
	rm -rf $(DEMO_DIR)
