# syntax=docker/dockerfile:1
# Latchkey: a static binary on distroless, running as non-root.
#   docker build -t latchkey:dev .        (or `make docker-build IMG=...`)

FROM golang:1.26 AS build
WORKDIR /src
ARG VERSION=dev
ENV CGO_ENABLED=0 GOFLAGS=-trimpath
# Dependencies first, so editing code does not re-download modules.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go build -ldflags "-s -w -X main.version=${VERSION}" -o /out/latchkey .

FROM gcr.io/distroless/static:nonroot
LABEL org.opencontainers.image.title="latchkey" \
      org.opencontainers.image.description="Kubernetes-native OAuth 2.0 / OpenID Connect authorization server" \
      org.opencontainers.image.source="https://github.com/latchkey-dev/latchkey" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/latchkey /latchkey
USER 65532:65532
EXPOSE 8080 8081 9090
ENTRYPOINT ["/latchkey"]
CMD ["serve"]
