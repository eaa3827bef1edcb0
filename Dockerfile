# The image of the GitHub Action and of the GitLab CI template, published as
# ghcr.io/zof-ai/zof-ci:vX.Y.Z and :vX by .github/workflows/release.yml;
# action.yml runs the published :v1, so no job builds this file. It follows a
# run; it does not run the repository's own tests.

# Build stage: the same scripts/build.sh that .ci/run tests, so what is tested
# is what ships (CGO_ENABLED=0, -trimpath, version stamped).
FROM golang:1.25 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN VERSION="${VERSION}" GOFLAGS=-buildvcs=false scripts/build.sh /out/zof

# Final stage: the static binary, CA certificates (HTTPS to GitHub, GitLab and
# zof serve) and git, which push and merge-group events need: their change is
# computed by git from the checkout (pull requests read theirs from the API).
# Nothing else: no shell tools, no Go toolchain.
FROM alpine:3.22
RUN apk add --no-cache git ca-certificates
COPY --from=build /out/zof /usr/local/bin/zof
ENTRYPOINT ["/usr/local/bin/zof", "action"]
