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

# Root filesystem stage: busybox (a shell and its tools) and the CA bundle, from Debian
# bookworm's packages, assembled by scripts/image-rootfs.sh, the script scripts/image-tree.sh
# runs on the same packages to measure and test the image without Docker (.ci/run).
FROM debian:bookworm-slim AS rootfs
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends busybox-static ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY scripts/image-rootfs.sh /usr/local/bin/image-rootfs.sh
RUN image-rootfs.sh / /rootfs

# Final stage, from scratch (docs/ci.md "The container"): the static zof; busybox as /bin/sh
# and its applets, because run steps and serve commands are /bin/sh -c and GitLab's docker
# executor needs sh in the job image; the CA bundle for HTTPS to GitHub, GitLab, zof serve and
# the suite's URLs; /tmp. No git: the action reads every change from GitHub's API. No Go
# toolchain, no package manager.
FROM scratch
COPY --from=rootfs /rootfs/ /
COPY --from=build /out/zof /usr/local/bin/zof
ENV PATH=/usr/local/bin:/bin
ENTRYPOINT ["/usr/local/bin/zof", "action"]
