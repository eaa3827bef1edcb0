#!/bin/sh
# Measures the zof image without Docker:
#   scripts/image-size.sh [TREE]
# TREE is a tree from scripts/image-tree.sh; without it one is built in a temporary directory
# (zof built by scripts/build.sh). Prints the tree's files with their sizes, then each layer
# the Dockerfile's final stage makes (COPY --from=rootfs, then COPY zof) as a tar with sorted
# names, owner 0 and a fixed time (uncompressed: what the image takes on disk, give or take the
# filesystem's blocks), and that tar through gzip -n at its default level (what a registry
# stores and a job pulls; a builder's own gzip may differ by a few percent).
set -eu
export LC_ALL=C
repo=$(cd "$(dirname "$0")/.." && pwd)
if [ $# -gt 1 ]; then
  echo "usage: scripts/image-size.sh [TREE]" >&2
  exit 64
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tree=${1:-}
if [ -z "$tree" ]; then
  tree=$work/tree
  "$repo/scripts/image-tree.sh" "$tree"
fi
if [ ! -x "$tree/usr/local/bin/zof" ] || [ ! -e "$tree/bin/busybox" ]; then
  echo "image-size.sh: $tree is not an image tree (scripts/image-tree.sh makes one)" >&2
  exit 1
fi

echo "files (bytes, path):"
(cd "$tree" && find . -type f | sort | while IFS= read -r f; do
  printf '%10d  %s\n' "$(wc -c <"$f")" "${f#.}"
done)
links=$(cd "$tree" && find . -type l | wc -l)
echo "symlinks: $links, each /bin/NAME -> /bin/busybox:"
(cd "$tree" && find . -type l | sort | sed 's|^\./bin/||' | tr '\n' ' ' | fold -s -w 96 | sed 's/^/  /')
echo

# tar [-C DIR] ARGS: a layer as the Dockerfile's COPY makes it (sorted, owner 0, one time).
layer() {
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 --format=ustar -cf - "$@"
}
layer -C "$tree" --exclude=./usr/local/bin/zof . >"$work/rootfs.tar"
layer -C "$tree" ./usr/local/bin/zof >"$work/zof.tar"
total_tar=0
total_gz=0
for name in rootfs zof; do
  t=$(wc -c <"$work/$name.tar")
  g=$(gzip -n <"$work/$name.tar" | wc -c)
  total_tar=$((total_tar + t))
  total_gz=$((total_gz + g))
  printf 'layer %-7s tar %10d bytes   gzip %10d bytes\n' "$name" "$t" "$g"
done
printf 'image          tar %10d bytes   gzip %10d bytes   (%s MB uncompressed, %s MB compressed; MB = 10^6 bytes)\n' \
  "$total_tar" "$total_gz" \
  "$(awk "BEGIN{printf \"%.1f\", $total_tar/1e6}")" "$(awk "BEGIN{printf \"%.1f\", $total_gz/1e6}")"
