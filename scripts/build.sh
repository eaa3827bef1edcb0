#!/bin/sh
# Builds the static zof binary: the one command both .ci/run (what is tested)
# and the Dockerfile's build stage (what ships) run.
#   scripts/build.sh [OUTPUT]      default OUTPUT: bin/zof
# VERSION comes from the environment, else `git describe`, else "dev".
set -eu
cd "$(dirname "$0")/.."
out="${1:-bin/zof}"
if [ -z "${VERSION:-}" ]; then
  VERSION=$(git describe --tags --always --dirty 2>/dev/null || true)
  VERSION="${VERSION:-dev}"
fi
export VERSION
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X github.com/zof-ai/zof-ci/internal/cli.version=${VERSION}" -o "$out" ./cmd/zof
