# The image of the GitHub Action (action.yml builds this file on the runner)
# and of the GitLab CI template (published as ghcr.io/zof-ai/zof-ci by
# .github/workflows/release.yml). It follows a run; it does not run the
# repository's own tests.

# Build stage: the same scripts/build.sh that .ci/run tests, so what is tested
# is what ships (CGO_ENABLED=0, -trimpath, version stamped).
FROM golang:1.25 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN VERSION="${VERSION}" GOFLAGS=-buildvcs=false scripts/build.sh /out/zof

# Final stage: the static binary, git (diffs, safe.directory) and CA
# certificates (HTTPS to GitHub, GitLab and zof serve). Nothing else.
FROM alpine:3.22
RUN apk add --no-cache git ca-certificates
COPY --from=build /out/zof /usr/local/bin/zof
ENTRYPOINT ["/usr/local/bin/zof", "action"]
