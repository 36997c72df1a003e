# upsproxy — build, test and demo. `make demo` and `make test` are all a
# fresh machine needs (Go, gcc for -race, curl for the demo).

GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT   ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
# The Dockerfile builds with exactly these flags (a test checks it).
LDFLAGS  := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
GOBUILD  := CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)"

.PHONY: test-deps all build release vaultdev test demo bench bench-go lint fmt tidy-check clean

all: build

## build: the static upsproxy binary at bin/upsproxy
build:
	$(GOBUILD) -o bin/upsproxy ./cmd/upsproxy

## release: static binaries for every target (same flags as build), archives and SHA256SUMS in dist/; publishes nothing
RELEASE_TARGETS := windows/amd64 linux/amd64 linux/arm64 darwin/arm64
# Archive entries carry the commit time, so a rebuild of a commit is byte-identical.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
release:
	rm -rf dist && mkdir -p dist
	@set -e; dirs=; for t in $(RELEASE_TARGETS); do \
	  os=$${t%/*}; arch=$${t#*/}; ext=; if [ $$os = windows ]; then ext=.exe; fi; \
	  d=dist/upsproxy_$(VERSION)_$${os}_$${arch}; mkdir -p $$d/config; \
	  echo "build $$t"; \
	  GOOS=$$os GOARCH=$$arch $(GOBUILD) -o $$d/upsproxy$$ext ./cmd/upsproxy; \
	  cp README.md $$d/; cp config/upsproxy.hcl config/vault-policy.hcl $$d/config/; \
	  dirs="$$dirs $$d"; \
	done; \
	$(GO) run ./tools/release -mtime $(SOURCE_DATE_EPOCH) $$dirs
	cd dist && ls -1 *.zip *.tar.gz SHA256SUMS

## vaultdev: the in-memory dev Vault (separate module; first build downloads a few GB)
vaultdev: bin/vaultdev

bin/vaultdev: $(wildcard tools/vaultdev/*.go) tools/vaultdev/go.mod tools/vaultdev/go.sum
	cd tools/vaultdev && $(GO) build -mod=mod -o ../../bin/vaultdev .

## test: formatting, vet, and every test with the race detector (real Vault, simulator)
test: vaultdev lint test-deps
	CGO_ENABLED=1 UPSPROXY_VAULTDEV=$(CURDIR)/bin/vaultdev $(GO) test -race -count=1 -timeout 20m ./...

## demo: the quick start — dev Vault, UPS simulator, proxy, login, a Rate request through the proxy
demo: build vaultdev
	./scripts/demo.sh

## bench: WAN latency, MITM, throughput vs nginx and scale, as one table and a chart (scripts/bench.sh)
bench:
	./scripts/bench.sh

## bench-go: the Go micro-benchmarks of the request path and the tokens
bench-go:
	$(GO) test -run '^$$' -bench . -benchmem ./internal/...

## test-deps: Chromium, node and npm for the browser and npm-client tests (apt-get, only when missing)
test-deps:
	./scripts/test-deps.sh

## lint: gofmt and go vet must be clean
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

## fmt: format the code
fmt:
	gofmt -w $$(git ls-files '*.go')

## tidy-check: go mod tidy must leave no diff
tidy-check:
	$(GO) mod tidy && git diff --exit-code go.mod go.sum

clean:
	rm -rf bin dist
