#!/bin/sh
# Assembles the zof image's root filesystem, everything but zof itself, from Debian bookworm's
# busybox-static and ca-certificates packages:
#   scripts/image-rootfs.sh SRC DEST
# SRC is where the packages' files are: / in the Dockerfile's rootfs stage (apt-get installed
# them), a `dpkg-deb -x` directory in scripts/image-tree.sh, which runs this same script so the
# tree measured and tested without Docker is the one that ships. DEST must not exist.
#
# The tree (docs/ci.md, "The container"):
#   /bin/busybox and a symlink per applet (/bin/sh among them): run steps are /bin/sh -c, and
#     GitLab's docker executor needs sh in the job image;
#   /etc/ssl/certs/ca-certificates.crt: HTTPS to GitHub, GitLab, zof serve and the suite's URLs;
#   /tmp, mode 1777;
#   /usr/local/bin, where the Dockerfile puts zof;
#   the two packages' copyright files (busybox is GPL-2.0: its notice ships with it).
# No git: the action reads every change from GitHub's API.
set -eu
export LC_ALL=C
if [ $# -ne 2 ]; then
  echo "usage: scripts/image-rootfs.sh SRC DEST" >&2
  exit 64
fi
src=$1 dest=$2
if [ -e "$dest" ]; then
  echo "image-rootfs.sh: $dest exists: give a directory that does not" >&2
  exit 1
fi
for f in bin/busybox usr/share/ca-certificates/mozilla; do
  if [ ! -e "$src/$f" ]; then
    echo "image-rootfs.sh: $src/$f is missing: install (or dpkg-deb -x) busybox-static and ca-certificates there" >&2
    exit 1
  fi
done

mkdir -p "$dest/bin" "$dest/etc/ssl/certs" "$dest/tmp" "$dest/usr/local/bin"
chmod 1777 "$dest/tmp"

cp "$src/bin/busybox" "$dest/bin/busybox"
# The links `busybox --install -s /bin` makes inside the image (/bin/NAME -> /bin/busybox),
# made from its applet list: run outside the image, --install would link to this build
# directory's path instead.
for applet in $("$dest/bin/busybox" --list); do
  [ "$applet" = busybox ] || ln -s /bin/busybox "$dest/bin/$applet"
done
if [ ! -L "$dest/bin/sh" ]; then
  echo "image-rootfs.sh: this busybox has no sh applet" >&2
  exit 1
fi

# The bundle update-ca-certificates writes from the package's default configuration (every
# Mozilla root, each ending in a newline), built here from the package's files so the
# measured tree, which no maintainer script ran on, holds the same bundle as the image.
for crt in "$src"/usr/share/ca-certificates/mozilla/*.crt; do
  sed -e '$a\' "$crt"
done >"$dest/etc/ssl/certs/ca-certificates.crt"
if ! grep -q 'BEGIN CERTIFICATE' "$dest/etc/ssl/certs/ca-certificates.crt"; then
  echo "image-rootfs.sh: no certificate in $src/usr/share/ca-certificates/mozilla" >&2
  exit 1
fi

for pkg in busybox-static ca-certificates; do
  mkdir -p "$dest/usr/share/doc/$pkg"
  cp "$src/usr/share/doc/$pkg/copyright" "$dest/usr/share/doc/$pkg/copyright"
done
