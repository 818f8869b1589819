# Two commands for a fresh clone: `make demo` and `make test`. Both install what they need.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# checkov lives in its own tool venv: beside pulumi's pins pip backtracks it through dozens of releases.
CHECKOV_VENV  := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
# vLLM + LMCache at the engine image's versions (stack_components/versions.py), in their own tool
# venv: the suite checks every rendered engine command and LMCache setting with their own code.
# About 10 GB and several minutes on a fresh clone, so `install` builds the venvs in parallel.
ENGINE_VENV  := .venv-engine
ENGINE_STAMP := $(ENGINE_VENV)/.installed
JOBS ?= 4

.PHONY: install test demo lint render-golden clean promtool

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

$(CHECKOV_STAMP):
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install -q --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install -q 'checkov>=3.2,<4'
	touch $(CHECKOV_STAMP)

$(ENGINE_STAMP): stack_components/versions.py
	test -x $(ENGINE_VENV)/bin/python || $(PYTHON) -m venv $(ENGINE_VENV)
	$(ENGINE_VENV)/bin/python -m pip install -q --upgrade pip
	$(ENGINE_VENV)/bin/python -m pip install -q $$($(PYTHON) stack_components/versions.py)
	touch $(ENGINE_STAMP)

install:
	$(MAKE) -j$(JOBS) $(STAMP) $(CHECKOV_STAMP) $(ENGINE_STAMP) promtool

# promtool checks every PromQL expression we render; install Debian's prometheus when missing.
promtool:
	@command -v promtool >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1; then \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq prometheus >/dev/null; \
	  else echo "promtool not found and apt-get unavailable: PromQL tests will fail" >&2; fi; }

test: install
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

demo: $(STAMP) promtool   # the demo needs neither checkov nor the engine-check venv
	$(BIN)/llm-stack demo --out demo-out

render-golden: $(STAMP)
	for env in dev staging prod; do $(BIN)/llm-stack render --stack $$env --out tests/golden/$$env; done

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) $(ENGINE_VENV) .pytest_cache .ruff_cache demo-out
