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
# What each target installs (pyproject.toml's extras): the tests cover every extra, so `make test` (and
# `make venv`, the developer's environment) installs them all; `make book` the book, `make dashboard` the
# dashboard, `make bench` and `make gpu-check` the core only. One stamp per set of extras.
TEST_EXTRAS := test,book,dashboard,dlib,faiss
stamp = $(VENV)/.lrfr-installed-$(1)

.PHONY: venv book test browser dashboard bench gpu-check clean

# The environment with torch (installed before the project, so that its torch>=2.4 is already met).
$(VENV)/.torch-installed:
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@$(BIN)/python -c "import torch" 2>/dev/null || \
		$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	@touch $@

# The project with the extras named after the stamp's last dash (`core`: none).
$(VENV)/.lrfr-installed-%: pyproject.toml $(VENV)/.torch-installed
	$(BIN)/python -m pip install --quiet -e ".$(if $(filter core,$*),,[$*])"
	@touch $@

venv: $(call stamp,$(TEST_EXTRAS))

book: $(call stamp,book)
	$(BIN)/lrfr book --mode quick

test: $(call stamp,$(TEST_EXTRAS)) browser
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

dashboard: $(call stamp,dashboard)
	$(BIN)/streamlit run dashboard/app.py --server.address 127.0.0.1 --server.port $(PORT) \
		--server.headless true --browser.gatherUsageStats false -- --results $(RESULTS)

bench: $(call stamp,core)
	$(BIN)/lrfr bench train

# The GPU machine's check (README, "GPU check"): a few hundred IResNet-50 AMP steps through the trainer on
# the full synthetic preset, then `lrfr bench scale` on the GPU; JSON lines on stdout. Needs CUDA.
gpu-check: $(call stamp,core)
	PATH="$(abspath $(BIN)):$$PATH" bash scripts/gpu-check.sh

clean:
	rm -rf _build
