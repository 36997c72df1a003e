# upsproxy — build, test and demo. `make demo` and `make test` are all a
# fresh machine needs (Go, gcc for -race, curl for the demo).

GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT   ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
# The Dockerfile builds with exactly these flags (a test checks it).
LDFLAGS  := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
GOBUILD  := CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)"

.PHONY: all build vaultdev test test-short demo bench lint fmt tidy-check clean

all: build

## build: the static upsproxy binary at bin/upsproxy
build:
	$(GOBUILD) -o bin/upsproxy ./cmd/upsproxy

## vaultdev: the in-memory dev Vault (separate module; first build downloads a few GB)
vaultdev: bin/vaultdev

bin/vaultdev: $(wildcard tools/vaultdev/*.go) tools/vaultdev/go.mod tools/vaultdev/go.sum
	cd tools/vaultdev && $(GO) build -mod=mod -o ../../bin/vaultdev .

## test: formatting, vet, and every test with the race detector (real Vault, simulator)
test: vaultdev lint
	CGO_ENABLED=1 UPSPROXY_VAULTDEV=$(CURDIR)/bin/vaultdev $(GO) test -race -count=1 -timeout 20m ./...

## demo: the quick start — dev Vault, UPS simulator, proxy, login, a Rate request through the proxy
demo: build vaultdev
	./scripts/demo.sh

## bench: request-path and token benchmarks
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./internal/...

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
	rm -rf bin
