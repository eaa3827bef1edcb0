#!/bin/sh
# Builds, without Docker, the file tree of the image the Dockerfile builds:
#   scripts/image-tree.sh DEST [ZOF]
# The same two Debian bookworm packages the Dockerfile's rootfs stage installs are fetched with
# `apt-get download` (the host must be Debian bookworm, as the CI machines are) and extracted
# with `dpkg-deb -x`; the same scripts/image-rootfs.sh assembles the tree; zof (ZOF, else built
# with scripts/build.sh like the Dockerfile's build stage) goes to /usr/local/bin/zof.
# DEST must not exist. scripts/image-size.sh measures the tree; .ci/run runs zof in it (chroot).
set -eu
export LC_ALL=C
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: scripts/image-tree.sh DEST [ZOF]" >&2
  exit 64
fi
repo=$(cd "$(dirname "$0")/.." && pwd)
dest=$1
zof=${2:-}
if [ -e "$dest" ]; then
  echo "image-tree.sh: $dest exists: give a directory that does not" >&2
  exit 1
fi
for cmd in apt-get dpkg-deb; do
  if ! command -v "$cmd" >/dev/null 2>&1; then
    echo "image-tree.sh: $cmd is not installed: this needs a Debian bookworm host (or build the Dockerfile)" >&2
    exit 1
  fi
done

# The packages the Dockerfile's rootfs stage installs (internal/ci/github's TestActionYAML
# checks the two lists agree).
packages="busybox-static ca-certificates"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/debs" "$work/src"

# apt-get download needs the package lists; a fresh machine may have none yet.
download() {
  # shellcheck disable=SC2086 # one word per package
  (cd "$work/debs" && apt-get download -q -o APT::Sandbox::User=root $packages) >"$work/apt.log" 2>&1
}
if ! download; then
  if ! apt-get update -qq >"$work/apt.log" 2>&1 || ! download; then
    cat "$work/apt.log" >&2
    echo "image-tree.sh: apt-get download $packages failed (above): a Debian mirror must be reachable" >&2
    exit 1
  fi
fi
for deb in "$work"/debs/*.deb; do
  dpkg-deb -x "$deb" "$work/src"
  echo "package: $(dpkg-deb -f "$deb" Package) $(dpkg-deb -f "$deb" Version) $(dpkg-deb -f "$deb" Architecture)"
done

"$repo/scripts/image-rootfs.sh" "$work/src" "$dest"

if [ -z "$zof" ]; then
  zof=$work/zof
  "$repo/scripts/build.sh" "$zof"
fi
cp "$zof" "$dest/usr/local/bin/zof"
chmod 0755 "$dest/usr/local/bin/zof"
