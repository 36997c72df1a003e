# syntax=docker/dockerfile:1
# Multi-stage build of the same static binary `make build` produces.
# Build: docker build --build-arg VERSION=$(git describe --tags --always) --build-arg COMMIT=$(git rev-parse --short HEAD) -t upsproxy .

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY cmd ./cmd
COPY internal ./internal
ARG VERSION=dev
ARG COMMIT=unknown
# Keep in step with the Makefile's GOBUILD/LDFLAGS (a test compares them).
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" -o /out/upsproxy ./cmd/upsproxy

# distroless/static: CA certificates and a nonroot user, no shell.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/upsproxy /usr/local/bin/upsproxy
USER nonroot:nonroot
EXPOSE 8080 9090
ENTRYPOINT ["/usr/local/bin/upsproxy"]
CMD ["serve", "--config", "/etc/upsproxy/upsproxy.hcl"]
