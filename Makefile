# singerid: the two commands a fresh machine needs are `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv demo test test-all test-gpu bench clean

# (Re)create the virtual environment whenever the dependency pins change.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
	# Resemblyzer's wheel ships the GE2E weights we load (never importing it); --no-deps
	# because it names webrtcvad, which must compile and which we do not use.
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -c constraints.txt resemblyzer
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" bash scripts/demo.sh

test: $(STAMP)
	$(PY) -m pytest -q

test-all: $(STAMP)
	$(PY) -m pytest -q -m ""

# On a machine with a CUDA GPU (and torch built for it; faiss-gpu for the FAISS tests): the gpu
# tests, then the device benchmarks, in one go. `make test` runs the gpu tests there too.
test-gpu: $(STAMP)
	$(PY) -m pytest -q -m gpu
	$(PY) scripts/bench_embed.py --quick
	$(PY) scripts/bench_separate.py --quick --device cuda

bench: $(STAMP)
	$(PY) scripts/bench_features.py --quick
	$(PY) scripts/bench_embed.py --quick
	$(PY) scripts/bench_index.py --quick

clean:
	rm -rf $(VENV) build *.egg-info demo-out
