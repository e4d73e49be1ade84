#!/bin/sh
# Build Bazaar's container image (deploy/Dockerfile) with podman, on top of the base image from Debian packages.
#
#   deploy/build-image.sh [IMAGE]        (default IMAGE: localhost/bazaar:latest)
#
# BASE_IMAGE (default localhost/bazaar-base:bookworm, built by deploy/build-base.sh when missing) is the FROM.
# HOST_CA_DIR (default /usr/local/share/ca-certificates) is mounted read-only into the build so that pip can verify
# the package index behind a TLS-intercepting egress; it is not copied into the image (an image built that way
# is still for tests only).
set -eu
IMAGE="${1:-localhost/bazaar:latest}"
HERE="$(cd "$(dirname "$0")" && pwd)"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$HERE/containers.conf}"
BASE_IMAGE="${BASE_IMAGE:-localhost/bazaar-base:bookworm}"
HOST_CA_DIR="${HOST_CA_DIR:-/usr/local/share/ca-certificates}"

if [ "$BASE_IMAGE" = "localhost/bazaar-base:bookworm" ]; then
    "$HERE/build-base.sh" "$BASE_IMAGE"
fi
set -- --build-arg "BASE_IMAGE=$BASE_IMAGE" -f "$HERE/Dockerfile" -t "$IMAGE"
if [ -d "$HOST_CA_DIR" ]; then
    set -- "$@" -v "$HOST_CA_DIR:/run/host-ca:ro"
fi
podman build "$@" "$HERE/.."
