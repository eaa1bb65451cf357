# `make demo` and `make test` set everything up from nothing, the virtual
# environment included.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
READY := $(VENV)/.ready

.PHONY: demo test lint bench r-deps clean

$(READY): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check \
		-r requirements.txt -r requirements-dev.txt
	touch $@

demo: $(READY)
	$(PY) samples/demo.py

# checkov in an environment of its own: see terraform/requirements-checkov.txt.
CHECKOV_VENV := $(VENV)/checkov
CHECKOV_READY := $(CHECKOV_VENV)/.ready

$(CHECKOV_READY): terraform/requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check \
		-r terraform/requirements-checkov.txt
	touch $@

lint: $(READY) $(CHECKOV_READY)
	$(PY) -m ruff format --check .
	$(PY) -m ruff check .
	$(CHECKOV_VENV)/bin/checkov -d terraform --quiet --compact --skip-download

test: $(READY) r-deps lint
	$(PY) -m pytest -q

bench: $(READY)
	$(PY) bench/run_all.py

# R and parallelly for the tests of r/, from Debian's packages, where missing
# and where this user may install them; elsewhere those tests skip and say why.
r-deps:
	@command -v Rscript >/dev/null 2>&1 || { \
		[ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends r-base-core r-cran-parallelly >/dev/null; \
	} || echo "R is not installed: the tests of r/ will skip"

clean:
	rm -rf $(VENV) .watchdog .pytest_cache .ruff_cache
