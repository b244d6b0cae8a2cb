# gitopsim: `make up` starts the stack, `make test` runs what CI runs.
# Everything a target needs (Go modules, control-plane binaries) it fetches
# or builds itself; nothing is assumed installed besides Go and make.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
GO ?= go
BIN := bin
GITOPSIM := $(BIN)/gitopsim
# Flags for `make up`, e.g. make up UP_FLAGS="--time-scale 60"; STATE_DIR
# keeps what is created across restarts and make clean (--state-dir).
UP_FLAGS ?=
STATE_DIR ?=
# Flags for the e2e suite, e.g. make e2e GINKGO_FLAGS="--label-filter=envtest -v".
GINKGO_FLAGS ?=
BENCH_COUNT ?= 5
# Fuzzing time per target for `make fuzz`.
FUZZ_TIME ?= 30s
# Unit tests and the e2e suite together stay well under this on 2 cores.
TEST_TIMEOUT ?= 15m

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: deps
deps: system-deps
	@$(GO) mod download

# The git server's tests drive the real git and ssh clients.
.PHONY: system-deps
system-deps:
	@command -v git >/dev/null && command -v ssh >/dev/null || { \
	  echo "installing git and openssh-client (needed by the git server tests)" >&2; \
	  apt-get update -qq && apt-get install -y -qq git openssh-client >/dev/null; }

# The azcli e2e spec drives Debian's Azure CLI (2.45). Installing it is best
# effort: without az the spec skips and says why.
.PHONY: azure-cli
azure-cli:
	@command -v az >/dev/null || { \
	  echo "installing azure-cli with apt (for the azcli e2e spec, which skips without it)" >&2; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq azure-cli >/dev/null; } \
	  || echo "could not install azure-cli; the azcli e2e spec will be skipped" >&2; }

# The web view's browser spec drives Debian's chromium headless. Installing
# it is best effort: without a browser the spec skips and says why.
.PHONY: chromium
chromium:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || { \
	  echo "installing chromium with apt (for the web view's browser spec, which skips without it)" >&2; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
	  || echo "could not install chromium; the browser spec will be skipped" >&2; }

.PHONY: tools
tools: ## Build kube-apiserver, etcd, kube-controller-manager into bin/k8s and Flux's kubectl into bin/kubectl (once; ~7 min cold)
	@tools/controlplane/build.sh
	@tools/fluxkubectl/build.sh

# The kind node image `make kind-image` builds; e2e-kind uses it unless
# KIND_IMAGE names another (a stock kindest/node where one can be pulled).
KIND_LOCAL_IMAGE := gitopsim/kind-node:$(shell sed -n 's/^const KubernetesVersion = "\(.*\)"/\1/p' sim/cluster/assets.go)
KIND_IMAGE ?=

.PHONY: kind-image
kind-image: deps ## Build the kind node image gitopsim/kind-node:<k8s version> offline, starting Docker if needed (once; ~5 min cold after make tools)
	@tools/kindnode/build.sh

.PHONY: e2e-kind
e2e-kind: tools deps ## The e2e suite on a kind cluster from that image (built if missing) or KIND_IMAGE, with the kind-only specs
	@tools/kindnode/docker.sh ensure
	@if [ -z "$(KIND_IMAGE)" ]; then tools/kindnode/build.sh; fi
	GITOPSIM_E2E_CLUSTER=kind GITOPSIM_E2E_KIND_IMAGE='$(or $(KIND_IMAGE),$(KIND_LOCAL_IMAGE))' \
	  $(GO) test -v -count=1 -timeout 30m ./e2e/ -args -ginkgo.v -ginkgo.label-filter='!envtest' $(GINKGO_FLAGS)

.PHONY: build
build: deps ## Build bin/gitopsim
	$(GO) build -o $(GITOPSIM) ./cmd/gitopsim

.PHONY: up
up: tools build ## Start the whole stack (envtest) until Ctrl-C; endpoints in .gitopsim/endpoints.json
	$(GITOPSIM) up $(if $(STATE_DIR),--state-dir "$(STATE_DIR)") $(UP_FLAGS)

.PHONY: test
test: tools deps azure-cli chromium ## Unit tests with -race, the wall-clock check, and the e2e suite on envtest
	GITOPSIM_E2E_LABELS='!corpus' $(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...
	@# The repo-layout corpus starts two API servers per fixture; under -race
	@# it alone would take most of the budget, so it runs without.
	GITOPSIM_E2E_LABELS='corpus' $(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./e2e/
	@# The kind node image's scripts: the runc wrapper and kind's manifests.
	cd tools/kindnode && $(GO) test -count=1 ./...

.PHONY: e2e
e2e: tools deps azure-cli chromium ## Only the Ginkgo e2e suite (GITOPSIM_E2E_CLUSTER=envtest|kind|kubeconfig)
	$(GO) test -v -count=1 -timeout $(TEST_TIMEOUT) ./e2e/ -args -ginkgo.v $(GINKGO_FLAGS)

.PHONY: bench
bench: tools deps ## Benchmarks against same-run baselines, summarised by benchstat (out/bench.txt)
	@mkdir -p out
	$(GO) test -run '^$$' -bench Startup -benchtime 3x -count $(BENCH_COUNT) ./e2e/bench/ | tee out/bench.txt
	$(GO) test -run '^$$' -bench ARM -benchtime 20000x -count $(BENCH_COUNT) ./e2e/bench/ | tee -a out/bench.txt
	$(GO) test -run '^$$' -bench GitClone -benchtime 20x -count $(BENCH_COUNT) ./e2e/bench/ | tee -a out/bench.txt
	$(GO) test -run '^$$' -bench GitBigRepo -benchtime 3x -count 3 -timeout 30m ./e2e/bench/ | tee -a out/bench.txt
	$(GO) test -run '^$$' -bench PushToCompliance -benchtime 20x -count $(BENCH_COUNT) ./e2e/bench/ | tee -a out/bench.txt
	$(GO) test -run '^$$' -bench HelmReleaseDeploy -benchtime 20x -count $(BENCH_COUNT) ./e2e/bench/ | tee -a out/bench.txt
	$(GO) test -run '^$$' -bench CredentialExpiry -benchtime 5x -count $(BENCH_COUNT) ./e2e/bench/ | tee -a out/bench.txt
	$(GO) test -run '^$$' -bench WebView -benchtime 5x -count $(BENCH_COUNT) -timeout 30m ./e2e/bench/ | tee -a out/bench.txt
	$(GO) test -run '^$$' -bench ScenarioLibrary -benchtime 1x -count $(BENCH_COUNT) -timeout 30m ./e2e/bench/ | tee -a out/bench.txt
	$(GO) test -run '^$$' -bench PolicyFleet -benchtime 1x -count $(BENCH_COUNT) -timeout 30m ./e2e/bench/ | tee -a out/bench.txt
	$(GO) test -run '^$$' -bench FleetDedicated -benchtime 1x -count $(BENCH_COUNT) -timeout 30m ./e2e/bench/ | tee -a out/bench.txt
	$(GO) test -run '^$$' -bench '^BenchmarkLoad$$' -benchtime 1x -count 3 -timeout 30m ./e2e/bench/ | tee -a out/bench.txt
	@# Skips, saying why, without Docker or the image make kind-image builds.
	$(GO) test -run '^$$' -bench '^BenchmarkKind$$' -benchtime 1x -count 3 -timeout 30m ./e2e/bench/ | tee -a out/bench.txt
	$(GO) tool benchstat out/bench.txt

.PHONY: fuzz
fuzz: deps ## Fuzz the ARM router and bodies, git pkt-lines, requests and pack decoding, policy rules, OData filters, remediation requests, scenario files, the web view's API and prepared changes, sealed state files (FUZZ_TIME each; seeds run in make test)
	$(GO) test -run '^$$' -fuzz '^FuzzRouter$$' -fuzztime $(FUZZ_TIME) ./sim/arm/
	$(GO) test -run '^$$' -fuzz '^FuzzConfigBody$$' -fuzztime $(FUZZ_TIME) ./sim/arm/
	$(GO) test -run '^$$' -fuzz '^FuzzPktLine$$' -fuzztime $(FUZZ_TIME) ./sim/gitserver/
	$(GO) test -run '^$$' -fuzz '^FuzzUploadRequest$$' -fuzztime $(FUZZ_TIME) ./sim/gitserver/
	$(GO) test -run '^$$' -fuzz '^FuzzUploadPackV2$$' -fuzztime $(FUZZ_TIME) ./sim/gitserver/
	$(GO) test -run '^$$' -fuzz '^FuzzReceivePack$$' -fuzztime $(FUZZ_TIME) ./sim/gitserver/
	$(GO) test -run '^$$' -fuzz '^FuzzApplyDelta$$' -fuzztime $(FUZZ_TIME) ./sim/gitserver/internal/odb/
	$(GO) test -run '^$$' -fuzz '^FuzzEntryHeader$$' -fuzztime $(FUZZ_TIME) ./sim/gitserver/internal/odb/
	$(GO) test -run '^$$' -fuzz '^FuzzInflate$$' -fuzztime $(FUZZ_TIME) ./sim/gitserver/internal/odb/
	$(GO) test -run '^$$' -fuzz '^FuzzObjectLinks$$' -fuzztime $(FUZZ_TIME) ./sim/gitserver/internal/odb/
	$(GO) test -run '^$$' -fuzz '^FuzzExpression$$' -fuzztime $(FUZZ_TIME) ./sim/policy/engine/
	$(GO) test -run '^$$' -fuzz '^FuzzParseDefinition$$' -fuzztime $(FUZZ_TIME) ./sim/policy/engine/
	$(GO) test -run '^$$' -fuzz '^FuzzODataFilter$$' -fuzztime $(FUZZ_TIME) ./sim/policy/
	$(GO) test -run '^$$' -fuzz '^FuzzRemediationRequest$$' -fuzztime $(FUZZ_TIME) ./sim/policy/
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZ_TIME) ./sim/scenario/
	$(GO) test -run '^$$' -fuzz '^FuzzControls$$' -fuzztime $(FUZZ_TIME) ./sim/ui/
	$(GO) test -run '^$$' -fuzz '^FuzzChangeTxtar$$' -fuzztime $(FUZZ_TIME) ./sim/ui/
	$(GO) test -run '^$$' -fuzz '^FuzzOpen$$' -fuzztime $(FUZZ_TIME) ./sim/internal/sealed/

# The soak and fault suite: SOAK_HOURS of virtual time on SOAK_CLUSTERS
# clusters, with random work and faults (e2e/soak). The seed is printed;
# SOAK_SEED repeats a run, e.g. make soak SOAK_SEED=123. Its files stay in a
# temporary dir, named when it fails (SOAK_DIR keeps them anywhere). Under
# the race detector (SOAK_RACE=-race) a virtual hour takes about 15 s of
# wall time on 4 clusters, without it about 9 s: make soak SOAK_RACE= SOAK_HOURS=72.
SOAK_HOURS ?= 24
SOAK_CLUSTERS ?= 4
SOAK_SEED ?= 0
SOAK_DIR ?=
SOAK_RACE ?= -race

.PHONY: soak
soak: tools deps ## Soak and fault suite: SOAK_HOURS (24) of virtual time with random work, faults and restarts, under -race
	GITOPSIM_SOAK=1 GITOPSIM_SOAK_HOURS=$(SOAK_HOURS) GITOPSIM_SOAK_CLUSTERS=$(SOAK_CLUSTERS) \
	GITOPSIM_SOAK_SEED=$(SOAK_SEED) GITOPSIM_SOAK_DIR=$(SOAK_DIR) \
	  $(GO) test $(SOAK_RACE) -count=1 -v -timeout 6h -run '^TestSoak$$' ./e2e/soak/

# Random repositories for the git server's differential suite (make test
# runs a fixed handful); GITDIFF_SEED repeats a run, e.g.
# make soak-git GITDIFF_SEEDS=1 GITDIFF_SEED=123.
GITDIFF_SEEDS ?= 100
GITDIFF_SEED ?= 0

.PHONY: soak-git
soak-git: system-deps deps ## Git server vs git itself on GITDIFF_SEEDS random repositories (seed printed; ~5 s each)
	GITOPSIM_GITDIFF_SEEDS=$(GITDIFF_SEEDS) GITOPSIM_GITDIFF_SEED=$(GITDIFF_SEED) \
	  $(GO) test -count=1 -timeout 6h -run '^TestDifferential$$' ./sim/gitserver/

.PHONY: verify
verify: deps ## gofmt, go vet, shell syntax, and go.mod/go.sum tidy in every module
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) mod tidy -diff
	cd tools/controlplane && $(GO) mod tidy -diff
	cd tools/fluxkubectl && $(GO) mod tidy -diff
	cd tools/kindnode && $(GO) mod tidy -diff && $(GO) vet ./...
	@for f in tools/*/*.sh tools/kindnode/runc-wrap .ci/run; do bash -n "$$f" || exit 1; done

.PHONY: scenarios
scenarios: tools build ## Run the scenario library (timeline on stdout, JUnit in out/junit.xml)
	@mkdir -p out
	$(GITOPSIM) run -p 2 --golden --junit out/junit.xml scenarios/

.PHONY: clean
clean: ## Remove bin/gitopsim, out/ and .gitopsim/ (keeps the control-plane build)
	rm -rf $(GITOPSIM) out .gitopsim
