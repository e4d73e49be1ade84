#!/bin/sh
# Build the base image of Bazaar's container image from Debian packages, with no image registry.
#
#   deploy/build-base.sh [IMAGE]          (default IMAGE: localhost/bazaar-base:bookworm)
#
# debootstrap --variant=minbase bookworm (Python 3.11, venv, CA certificates) from the mirror of this machine's
# apt sources, then `tar | podman import`. The rootfs tarball is cached in $BAZAAR_CACHE (default
# ~/.cache/bazaar) and the image is not rebuilt when it exists. Needs root, debootstrap and podman.
set -eu
IMAGE="${1:-localhost/bazaar-base:bookworm}"
CACHE="${BAZAAR_CACHE:-$HOME/.cache/bazaar}"
HERE="$(cd "$(dirname "$0")" && pwd)"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$HERE/containers.conf}"

if podman image exists "$IMAGE"; then
    echo "base image $IMAGE exists (podman rmi $IMAGE to rebuild)"
    exit 0
fi

# the first Debian mirror of the machine's apt sources (one-line or deb822 format)
MIRROR="${DEBIAN_MIRROR:-$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources \
    2>/dev/null | sed -n -e 's/^deb \(\[[^]]*\] \)\{0,1\}\([^ ]*\/debian\)\/\{0,1\} .*/\2/p' \
    -e 's/^URIs: *\([^ ]*\/debian\)\/\{0,1\}$/\1/p' | head -n 1)}"
[ -n "$MIRROR" ] || { echo "error: no Debian mirror in /etc/apt/sources.list*; set DEBIAN_MIRROR" >&2; exit 2; }

mkdir -p "$CACHE"
TARBALL="$CACHE/bookworm-minbase.tar"
if [ ! -s "$TARBALL" ]; then
    ROOTFS="$(mktemp -d "$CACHE/rootfs.XXXXXX")"
    trap 'rm -rf "$ROOTFS"' EXIT
    echo "debootstrap bookworm from $MIRROR into $ROOTFS"
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$ROOTFS" "$MIRROR"
    rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/*
    tar -C "$ROOTFS" -cf "$TARBALL.tmp" .
    mv "$TARBALL.tmp" "$TARBALL"
fi
podman import --change 'CMD ["/bin/bash"]' "$TARBALL" "$IMAGE"
echo "built $IMAGE"
