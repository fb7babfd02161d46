# Latchkey: a Kubernetes-native OAuth 2.0 / OpenID Connect authorization server.
# `make` or `make help` lists the targets. Every tool is built into bin/ (git-ignored) on first
# use, from the Go module proxy, at the version pinned below.

SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

## Versions and locations (override on the command line, e.g. `make build VERSION=v0.1.0`).
GOLANGCI_LINT_VERSION ?= v2.15.0
HELM_VERSION ?= v4.3.1
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
IMG ?= ghcr.io/latchkey-dev/latchkey:$(VERSION)

LOCALBIN := $(CURDIR)/bin
export LOCALBIN
KUBEBUILDER_ASSETS := $(LOCALBIN)/k8s
CONTROLLER_GEN := go tool controller-gen
GOLANGCI_LINT := $(LOCALBIN)/golangci-lint-$(GOLANGCI_LINT_VERSION)
HELM := $(LOCALBIN)/helm-$(HELM_VERSION)
KUBECTL ?= kubectl
DOCKER ?= docker

TEST_TIMEOUT ?= 30m
TEST_FLAGS ?=
FUZZ_TIME ?= 10s
BENCH_FLAGS ?=
# Flags of hack/loadtest (run once with -store memory, once with -store redis), e.g.
# LOADTEST_FLAGS="-duration 10s -algorithms ES256 -scenarios refresh". 5 s per row keeps the run bounded.
LOADTEST_FLAGS ?= -duration 5s
# `make soak` (hack/soak, not in CI): SOAK_DURATION of mixed load at SOAK_LOAD percent of the
# measured capacity against three replicas and redis-server; SOAK_FLAGS for more (-out DIR ...).
SOAK_DURATION ?= 10m
SOAK_LOAD ?= 80
SOAK_FLAGS ?=
RUN_ARGS ?=
# Debian packages the tests need, installed by `make test` when missing (curl runs the seed examples;
# chromium drives the login and consent pages in test/browser).
TEST_APT_PACKAGES ?= curl chromium redis-server slapd ldap-utils
# Node.js (20 or later) runs the independent OAuth clients of test/node (oauth4webapi,
# openid-client); these Debian packages are installed by `make test` when `node` is missing.
TEST_NODE_PACKAGES ?= nodejs npm

CHART := charts/latchkey
# Files written by `make generate manifests`; `make verify` fails when they differ from git.
GENERATED := api config/crd/bases config/rbac/role.yaml $(CHART)/templates/crds $(CHART)/templates/clusterrole.yaml $(CHART)/templates/oauthclientpolicy-admission.yaml

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make <target> [VAR=value ...]\n"} \
		/^[a-zA-Z0-9_-]+:.*?##/ { printf "  %-14s %s\n", $$1, $$2 } \
		/^##@/ { printf "\n%s\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Development

.PHONY: run
run: ## Run the server without a cluster on 127.0.0.1:8080: manifests from config/samples, memory store (RUN_ARGS=... adds flags).
	go run . serve --manifests config/samples --listen-address 127.0.0.1:8080 --issuer http://localhost:8080 $(RUN_ARGS)

.PHONY: run-cluster
run-cluster: envtest ## Start a local control plane from bin/k8s, apply CRDs and samples, run the operator against it.
	hack/run-cluster.sh $(RUN_ARGS)

.PHONY: generate
generate: ## Generate deepcopy code for api/ (controller-gen).
	$(CONTROLLER_GEN) object:headerFile=hack/boilerplate.go.txt paths=./api/...

.PHONY: manifests
manifests: ## Generate CRDs (config/crd/bases) and RBAC (config/rbac/role.yaml) and copy them into the chart.
	$(CONTROLLER_GEN) crd paths=./api/... output:crd:artifacts:config=config/crd/bases
	$(CONTROLLER_GEN) rbac:roleName=latchkey-manager-role paths=./controllers/... output:rbac:artifacts:config=config/rbac
	hack/chart-sync.sh

.PHONY: chart-crds
chart-crds: ## Copy the CRDs and the manager's RBAC rules from config/ into the chart's templates.
	hack/chart-sync.sh

.PHONY: fmt
fmt: $(GOLANGCI_LINT) ## Format the Go code (gofmt -s, goimports; the formatters of .golangci.yml).
	$(GOLANGCI_LINT) fmt

.PHONY: vet
vet: ## Run go vet.
	go vet ./...

.PHONY: lint
lint: $(GOLANGCI_LINT) ## Run golangci-lint with .golangci.yml.
	$(GOLANGCI_LINT) config verify
	$(GOLANGCI_LINT) run --allow-parallel-runners ./...

.PHONY: lint-fix
lint-fix: $(GOLANGCI_LINT) ## Run golangci-lint and apply its fixes.
	$(GOLANGCI_LINT) run --fix ./...

.PHONY: verify
verify: generate manifests ## Fail if generated files or formatting differ from what is committed.
	@unformatted="$$(git ls-files -co --exclude-standard -- '*.go' | xargs -r gofmt -s -l)"; \
	if [ -n "$$unformatted" ]; then \
		echo "verify: FAILED: not gofmt -s formatted (run 'make fmt'):"; echo "$$unformatted"; exit 1; \
	fi
	@if ! git diff --quiet -- $(GENERATED); then \
		echo "verify: FAILED: generated files differ from git. Run 'make generate manifests' and commit:"; \
		git --no-pager diff --stat -- $(GENERATED); exit 1; \
	fi
	@untracked="$$(git ls-files --others --exclude-standard -- $(GENERATED))"; \
	if [ -n "$$untracked" ]; then \
		echo "verify: FAILED: generated files are not committed (git add them):"; echo "$$untracked"; exit 1; \
	fi
	@echo "verify: generated files and formatting are up to date"

##@ Testing

.PHONY: envtest
envtest: ## Build kube-apiserver, kubectl and etcd into bin/k8s (skipped when present; ~6 min cold).
	hack/envtest-binaries.sh

.PHONY: test-deps
test-deps: ## Install the Debian packages the tests need (TEST_APT_PACKAGES) when missing, and Node.js (TEST_NODE_PACKAGES) when node is.
	@if [ -n "$(strip $(TEST_APT_PACKAGES))" ]; then hack/apt-install.sh $(TEST_APT_PACKAGES); fi
	@if ! command -v node >/dev/null 2>&1; then hack/apt-install.sh $(TEST_NODE_PACKAGES); fi

# Packages whose tests start a control plane, a browser, redis-server or the latchkey binary for
# the whole package (in TestMain); test-unit leaves them out.
SERVICE_PKGS ?= ./test/... ./controllers ./controllers/registration ./internal/harness/... ./server/store/redis

.PHONY: test-unit
test-unit: ## Run the tests that need no control plane, redis-server or browser (go test -short): the fast local loop.
	go test -short -count=1 $$(go list ./... | grep -vxFf <(go list $(SERVICE_PKGS)))

.PHONY: test
test: envtest test-deps ## Run every test against a real kube-apiserver and etcd (installs what it needs).
	KUBEBUILDER_ASSETS=$(KUBEBUILDER_ASSETS) go test ./... -count=1 -timeout $(TEST_TIMEOUT) $(TEST_FLAGS)

.PHONY: fuzz
fuzz: envtest ## Run every fuzz target for FUZZ_TIME each (default 10s).
	KUBEBUILDER_ASSETS=$(KUBEBUILDER_ASSETS) FUZZ_TIME=$(FUZZ_TIME) hack/fuzz.sh

.PHONY: bench
bench: envtest build ## Run the Go benchmarks (Redis ones included), then the loopback load run (client_credentials, refresh, introspection hit and miss) with the memory and the Redis store; with the memory store also the signing-path reference row and the tail latency table; then the embedded load time for LOADTIME_COUNTS clients.
	hack/apt-install.sh wrk redis-server
	KUBEBUILDER_ASSETS=$(KUBEBUILDER_ASSETS) go test -run '^$$' -bench . -benchmem $(BENCH_FLAGS) ./...
	go run ./hack/loadtest -binary bin/latchkey -store memory $(LOADTEST_FLAGS)
	go run ./hack/loadtest -binary bin/latchkey -store redis -reference=false -tail-rates= $(LOADTEST_FLAGS)
	hack/loadtime.sh bin/latchkey $(LOADTIME_COUNTS)

LOADTIME_COUNTS ?= 1000 10000 100000

.PHONY: bench-scale
bench-scale: envtest build ## Scale runs (minutes, several GB at 1M): embedded load time and RSS for 1k to 1M clients, client_credentials with 1k and with 1M clients loaded, operator start-up with 100k OAuthClients in the API server.
	GENCLIENTS_FLAGS=-json hack/loadtime.sh bin/latchkey 1000 10000 100000 1000000
	go run ./hack/loadtest -binary bin/latchkey -store memory -scenarios client_credentials -reference=false -tail-rates= -clients 1000
	go run ./hack/loadtest -binary bin/latchkey -store memory -scenarios client_credentials -reference=false -tail-rates= -clients 1000000
	KUBEBUILDER_ASSETS=$(KUBEBUILDER_ASSETS) go run ./hack/opstartup -binary bin/latchkey -clients 100000

.PHONY: soak
soak: build ## Soak (not in CI): SOAK_DURATION (10m) of mixed load on three replicas sharing redis-server, a replica SIGKILLed and Redis restarted midway; results in bin/soak/<UTC time>.
	hack/apt-install.sh redis-server
	go run ./hack/soak -binary bin/latchkey -duration $(SOAK_DURATION) -load $(SOAK_LOAD) $(SOAK_FLAGS)

##@ Build and deploy

.PHONY: build
build: ## Build a static binary to bin/latchkey.
	CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o bin/latchkey .

.PHONY: docker-build
docker-build: ## Build the container image IMG.
	$(DOCKER) build --build-arg VERSION=$(VERSION) -t $(IMG) .

.PHONY: docker-push
docker-push: ## Push the container image IMG.
	$(DOCKER) push $(IMG)

.PHONY: helm-lint
helm-lint: $(HELM) ## Lint and render the Helm chart for every ci/*.yaml; ci-invalid/*.yaml must fail.
	hack/chart-lint.sh $(HELM) $(CHART)
	@echo "helm-lint: chart lints and renders"

.PHONY: install
install: ## Install the CRDs into the cluster of the current kubeconfig.
	$(KUBECTL) apply --server-side -k config/crd

.PHONY: deploy
deploy: ## Deploy CRDs, RBAC and the operator (config/default) into the cluster of the current kubeconfig.
	$(KUBECTL) apply --server-side -k config/default

##@ Tools (built into bin/)

$(GOLANGCI_LINT):
	hack/go-install.sh golangci-lint github.com/golangci/golangci-lint/v2/cmd/golangci-lint $(GOLANGCI_LINT_VERSION)

$(HELM):
	hack/go-install.sh helm helm.sh/helm/v4/cmd/helm $(HELM_VERSION) "-X helm.sh/helm/v4/internal/version.version=$(HELM_VERSION)"

.PHONY: tools
tools: $(GOLANGCI_LINT) $(HELM) ## Build golangci-lint and helm into bin/.
