#!/usr/bin/env bash
# Make a Docker Engine answer and build the local test image. Idempotent: safe to run again and again
# (CI runs it before the tests; developers run it once per machine boot).
#
#   1. install docker.io and busybox-static with apt-get if they are missing;
#   2. start dockerd in the background, only if no engine answers `docker info`
#      (no bridge, no iptables, vfs storage: what works inside an unprivileged CI container);
#   3. wait for the engine, up to STYX_DOCKERD_START_TIMEOUT seconds (default 60);
#   4. build styx-test/busybox:latest with scripts/build-test-image.sh (`docker import` of a tiny busybox
#      rootfs), unless it exists. No registry is reachable here, so nothing is ever pulled.
#
# dockerd's log and pid file live in STYX_DOCKERD_DIR (default /var/run/styx-dockerd).
set -euo pipefail

image="${STYX_TEST_IMAGE:-styx-test/busybox:latest}"
state_dir="${STYX_DOCKERD_DIR:-/var/run/styx-dockerd}"
start_timeout="${STYX_DOCKERD_START_TIMEOUT:-60}"

log() { printf 'setup-docker: %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing_packages=()
command -v dockerd >/dev/null 2>&1 || missing_packages+=(docker.io)
command -v docker >/dev/null 2>&1 || missing_packages+=(docker.io)
# The test image needs a statically linked busybox: the dynamic one would need libc inside the image.
dpkg -s busybox-static >/dev/null 2>&1 || missing_packages+=(busybox-static)
if [ "${#missing_packages[@]}" -gt 0 ]; then
  log "installing ${missing_packages[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    $(printf '%s\n' "${missing_packages[@]}" | sort -u)
fi

engine_answers() { docker info >/dev/null 2>&1; }

if engine_answers; then
  log "a Docker Engine already answers"
else
  as_root mkdir -p "$state_dir"
  pid_file="$state_dir/dockerd.pid"
  if [ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null; then
    log "dockerd (pid $(cat "$pid_file")) is starting; waiting for it"
  else
    log "starting dockerd (log: $state_dir/dockerd.log)"
    # setsid + nohup: the engine outlives this script and the shell that ran it.
    as_root setsid nohup dockerd --iptables=false --bridge=none --storage-driver=vfs \
      --pidfile "$pid_file" >>"$state_dir/dockerd.log" 2>&1 </dev/null &
  fi
  deadline=$((SECONDS + start_timeout))
  until engine_answers; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "no Docker Engine answered within ${start_timeout}s; last lines of $state_dir/dockerd.log:"
      tail -n 20 "$state_dir/dockerd.log" >&2 || true
      exit 1
    fi
    sleep 0.2
  done
  log "Docker Engine is up"
fi

STYX_TEST_IMAGE="$image" bash "$(dirname "${BASH_SOURCE[0]}")/build-test-image.sh"
