# Multi-stage build: a static binary on a distroless base (about 20 MB).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=docker
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X github.com/domination/domination/internal/cli.Version=${VERSION}" -o /out/domination ./cmd/domination

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/domination /domination
EXPOSE 6066
USER nonroot:nonroot
ENTRYPOINT ["/domination"]
CMD ["worker", "-l", "info"]
