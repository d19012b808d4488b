# portcensus: every target sets up .venv itself (a fresh clone needs nothing else).
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
WEEK   ?= 2013-W37
RAW    ?= data/raw
OUT    ?= data/out
BENCH_N ?= 2000000

.PHONY: help setup run demo test bench clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

setup: $(STAMP)  ## create .venv and install portcensus with its test tools

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (Python 3.11) on PATH, or make PYTHON=/path/to/python3.11"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,bench]'
	@touch $@

demo: $(STAMP)  ## write the synthetic demo week into data/raw (if absent)
	$(BIN)/portcensus demo --raw $(RAW) --week $(WEEK)

run: demo  ## process the demo week and print the summary
	@$(BIN)/portcensus run --week $(WEEK) --raw $(RAW) --out $(OUT); rc=$$?; \
	  if [ $$rc -eq 3 ]; then echo "(exit 3: done; some demo files are damaged on purpose)"; \
	  elif [ $$rc -ne 0 ]; then exit $$rc; fi

test: $(STAMP)  ## run the whole test suite
	$(BIN)/pytest -q -n 2

bench: $(STAMP)  ## benchmark the pipeline against DuckDB and sort|uniq (BENCH_N records)
	$(BIN)/python -m pipelines.bench --records $(BENCH_N)

clean:  ## remove generated data and the venv
	rm -rf $(VENV) data .bench
	find site -mindepth 1 ! -name README.md -exec rm -rf {} +
