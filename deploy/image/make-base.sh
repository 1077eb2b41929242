#!/usr/bin/env bash
# Makes a Debian bookworm base image from a Debian mirror, for a machine that reaches no
# container registry:
#
#   deploy/image/make-base.sh [TAG]      (default TAG: dcr-shim-base:bookworm)
#
# debootstrap --variant=minbase, the apt caches emptied, imported with `docker import`. Use it
# as the Dockerfile's runtime image:
#   deploy/release.sh --runtime-image dcr-shim-base:bookworm
#   docker build --target prebuilt --build-arg RUNTIME_IMAGE=dcr-shim-base:bookworm …
# It has what debian:bookworm-slim has that the image uses (glibc 2.36, useradd, sh), not
# ca-certificates (which `roots = "system"` in a tenant file needs).
#
# Needs root (debootstrap) and debootstrap (Debian: apt-get install debootstrap).
# Environment: DEBIAN_MIRROR (default: the machine's apt mirror for Debian, else
# http://deb.debian.org/debian), DOCKER (default: docker).
set -euo pipefail

tag=${1:-dcr-shim-base:bookworm}
DOCKER=${DOCKER:-docker}

[ "$(id -u)" = 0 ] || { echo "make-base: run as root (debootstrap)" >&2; exit 1; }
command -v debootstrap >/dev/null ||
    { echo "make-base: debootstrap not found (Debian: apt-get install debootstrap)" >&2; exit 1; }
"$DOCKER" info >/dev/null 2>&1 ||
    { echo "make-base: the Docker engine does not answer ('$DOCKER info' failed)" >&2; exit 1; }

mirror=${DEBIAN_MIRROR:-}
if [ -z "$mirror" ]; then
    # The first Debian archive (not security) in apt's sources, deb822 or one-line format.
    mirror=$( { grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{ print $2 }'
                grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list |
                    awk '{ for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; break } }'
              } | grep -v security | grep -E '/debian/?$' | head -1 || true)
fi
mirror=${mirror:-http://deb.debian.org/debian}

rootfs=$(mktemp -d "${TMPDIR:-/tmp}/dcr-shim-base.XXXXXX")
trap 'rm -rf "$rootfs"' EXIT
echo "make-base: debootstrap --variant=minbase bookworm from $mirror"
start=$(date +%s)
if ! debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$rootfs.log" 2>&1; then
    tail -20 "$rootfs.log" >&2
    echo "make-base: debootstrap failed (log: $rootfs.log)" >&2
    exit 1
fi
rm -f "$rootfs.log"
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log
tar -C "$rootfs" --numeric-owner -cf - . |
    "$DOCKER" import --change 'CMD ["/bin/bash"]' - "$tag" >/dev/null
echo "make-base: $tag ($("$DOCKER" image inspect --format '{{.Size}}' "$tag" | awk '{ printf "%.0f MB", $1 / 1e6 }')) in $(($(date +%s) - start)) s"
