# Daily commands. `make help` lists them.
SHELL     := /bin/bash
GO        ?= go
BIN       ?= bin/domination
PKGS      ?= ./...
TESTFLAGS ?= -race -count=1 -timeout 30m

.PHONY: help build up down run test test-unit test-reliability deploy-check vet lint fuzz bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## build bin/domination
	$(GO) build -o $(BIN) ./cmd/domination

# TOPOLOGY=cluster: three Kafka brokers, a ZooKeeper and two ClickHouse replicas
# on their own ports (README, "Running on a cluster").
TOPOLOGY ?= single

up: ## start Kafka and ClickHouse (Docker if an engine answers, else plain processes; TOPOLOGY=cluster for the cluster)
	TOPOLOGY=$(TOPOLOGY) bash scripts/services/up.sh

down: ## stop what `make up` started (same TOPOLOGY)
	TOPOLOGY=$(TOPOLOGY) bash scripts/services/down.sh

run: build up ## start the services, migrate ClickHouse, run a worker
	$(BIN) migrate up
	$(BIN) worker -l info

vet: ## go vet and gofmt
	$(GO) vet $(PKGS)
	@out="$$(gofmt -l $$(git ls-files '*.go'))"; if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

lint: vet ## alias of vet

# Every decoder of package wire has a fuzz test; each runs FUZZTIME in turn
# (go test -fuzz takes one target at a time). The default is a count of
# inputs, not a duration: with a duration, Go 1.26's fuzz coordinator can
# report its own deadline as a failure ("context deadline exceeded", no
# input written) when a busy machine makes a worker late at the end
# (go.dev/issue/75804, fixed in Go 1.27). A count has no deadline to race.
# 60000 inputs take 7-30 s a target on 2 cores. FUZZTIME=30s works too.
FUZZTIME ?= 60000x
FUZZ_TARGETS = $(shell grep -ho '^func Fuzz[A-Za-z0-9_]*' wire/*_test.go | cut -c6-)
fuzz: ## run each fuzz test of package wire for FUZZTIME (default 60000 inputs each)
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "$$t"; $(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) ./wire/; \
	done

test: up ## start the services, then vet and run every test (with the race detector) against them
	bash scripts/test-deps.sh
	$(MAKE) vet
	$(MAKE) fuzz
	set -o pipefail; $(GO) test -json $(TESTFLAGS) $(PKGS) | python3 scripts/test-report.py

# The reliability suite (internal/e2e/reliability_*_test.go, build tag
# "reliability", and the kfake faults of internal/stream) breaks the pipeline on
# purpose and reconciles every input; each scenario prints one line, gathered
# at the end because go test hides the output of passing packages. Measured on
# 2 cores: 30 to 46 minutes.
RELIABILITY_TIMEOUT ?= 55m
test-reliability: up ## faults, restarts and hostile input, reconciled: one line per scenario (30 to 46 min on 2 cores)
	$(GO) vet -tags reliability ./internal/e2e/ ./internal/stream/
	@report="$$(mktemp)"; status=0; \
	DOMINATION_RELIABILITY_REPORT="$$report" $(GO) test -tags reliability -race -count=1 -timeout $(RELIABILITY_TIMEOUT) \
		-run Reliability ./internal/stream/ ./internal/e2e/ || status=$$?; \
	echo "reliability scenarios:"; cat "$$report"; rm -f "$$report"; exit $$status

deploy-check: up ## lint, render and validate the Helm chart, test the alert rules, check every metric they and the dashboard name on a real worker
	GO="$(GO)" bash scripts/deploy-check.sh

test-unit: ## the tests that need no service (fast)
	$(GO) test -race -count=1 ./wire/ ./agents/ ./internal/stream/ ./internal/tlsconfig/ ./internal/backoff/

bench: ## benchmark domination against Faust, Goka and a pass-through on the real services (bench/README.md; BENCH_RUNS=3 BENCH_RATINGS=1000000 ...)
	GO="$(GO)" bash bench/run.sh

clean: ## remove build output (not service data: see `make down`)
	rm -rf bin
