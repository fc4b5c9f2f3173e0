# Entry points: `make book`, `make test`, `make dashboard` (PORT=...). Each creates .venv when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch is installed before the project so that pip never pulls a CUDA build on a CPU machine; the
# project's own requirement (torch>=2.4) is then already met. GPU users: see the README.
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
PORT ?= 8501
RESULTS ?= results
STAMP := $(VENV)/.lrfr-installed

.PHONY: venv book test browser dashboard bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@$(BIN)/python -c "import torch" 2>/dev/null || \
		$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/python -m pip install --quiet -e ".[test,dlib]"
	@touch $(STAMP)

venv: $(STAMP)

book: $(STAMP)
	$(BIN)/lrfr book --mode quick

test: $(STAMP) browser
	$(BIN)/python -m pytest

# Debian's chromium for the dashboard's browser test (tests/test_dashboard_browser.py drives it with
# Playwright; no browser is ever downloaded by a test tool). Installed with apt-get when missing and we
# are root; otherwise says how, and the browser test is skipped.
browser:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian's chromium for the browser test"; \
		{ DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null || \
		  { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; }; } || \
		echo "make browser: apt-get could not install chromium; the browser test will be skipped"; \
	else \
		echo "make browser: /usr/bin/chromium is missing; run 'sudo apt-get install chromium' (Debian/Ubuntu)" \
		     "to run the dashboard's browser test (skipped until then)"; \
	fi

dashboard: $(STAMP)
	$(BIN)/streamlit run dashboard/app.py --server.address 127.0.0.1 --server.port $(PORT) \
		--server.headless true --browser.gatherUsageStats false -- --results $(RESULTS)

bench: $(STAMP)
	$(BIN)/lrfr bench train

clean:
	rm -rf _build
