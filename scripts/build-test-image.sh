#!/usr/bin/env bash
# Build the local test image on the Docker Engine that DOCKER_HOST names (default: the local socket),
# unless that engine has it already: `docker import` of a tiny rootfs made of the host's static busybox.
# No registry is reachable here, so nothing is ever pulled. Used by scripts/setup-docker.sh and by tests
# that start an engine of their own (tests/private_docker_engine.py).
set -euo pipefail

image="${STYX_TEST_IMAGE:-styx-test/busybox:latest}"

log() { printf 'build-test-image: %s\n' "$*" >&2; }

if docker image inspect "$image" >/dev/null 2>&1; then
  log "image $image exists"
  exit 0
fi
log "building $image from /bin/busybox"
rootfs="$(mktemp -d)"
trap 'rm -rf "$rootfs"' EXIT
mkdir -p "$rootfs/bin" "$rootfs/tmp"
cp /bin/busybox "$rootfs/bin/busybox"
for applet in $("$rootfs/bin/busybox" --list); do
  [ "$applet" = busybox ] || ln -s busybox "$rootfs/bin/$applet"
done
# mktemp makes the root 0700, which would lock out non-root container users.
chmod 755 "$rootfs"
chmod 1777 "$rootfs/tmp"
tar -C "$rootfs" -c . | docker import \
  --change 'ENV PATH=/bin' --change 'CMD ["sh"]' - "$image" >/dev/null
log "built $image"
