#!/usr/bin/env bash
# Build gnomon's image on a machine that reaches no container registry: a Debian bookworm base
# from debootstrap (tarball cached in build/container), imported into podman, then the
# Containerfile with that base. Cached: a second run rebuilds only layers whose inputs changed.
#   scripts/container/build.sh            # tools, base, gnomon image
#   scripts/container/build.sh services   # also the postgres/redis stand-ins for compose.yaml
#   scripts/container/build.sh compose    # also podman-compose (pinned) in its own venv
# Exit 77: no container engine here and none can be installed.
# Prints the environment the tests use (CONTAINERS_CONF, image names) on stdout.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TOOLS=$ROOT/scripts/container
OUT=$ROOT/build/container
BASE_TAR=$OUT/bookworm-minbase.tar
BASE_IMAGE=localhost/gnomon-base:bookworm
IMAGE=${GNOMON_IMAGE:-localhost/gnomon:test}
SERVICES_IMAGE=localhost/gnomon-test-services:bookworm
PODMAN_COMPOSE_VERSION=1.6.0
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
mkdir -p "$OUT"

have() { command -v "$1" >/dev/null 2>&1; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }
log() { echo "container: $*" >&2; }

if ! have podman || ! have runc || ! have debootstrap; then
  log "installing podman, runc, debootstrap"
  if ! { as_root apt-get update -qq && DEBIAN_FRONTEND=noninteractive as_root apt-get install -y \
      -qq podman runc debootstrap; } >&2; then
    log "no container engine, and podman could not be installed here"
    exit 77
  fi
fi

# The runtime: runc through a wrapper that drops process.rlimits (some machines may not set them).
cat > "$OUT/containers.conf" <<CONF
[engine]
runtime = "runc-no-rlimits"
events_logger = "file"
cgroup_manager = "cgroupfs"
[engine.runtimes]
runc-no-rlimits = ["$TOOLS/runc-no-rlimits"]
CONF
export CONTAINERS_CONF=$OUT/containers.conf

if [ ! -s "$BASE_TAR" ]; then
  log "debootstrap bookworm (minbase) from $MIRROR"
  rootfs=$(mktemp -d "$OUT/rootfs.XXXXXX")
  trap 'rm -rf "$rootfs"' EXIT
  as_root debootstrap --variant=minbase bookworm "$rootfs" "$MIRROR" >"$OUT/debootstrap.log" 2>&1 \
    || { log "debootstrap failed, see $OUT/debootstrap.log"; exit 1; }
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -cf "$BASE_TAR.tmp" . && mv "$BASE_TAR.tmp" "$BASE_TAR"
  rm -rf "$rootfs"
  trap - EXIT
fi
if ! podman image exists "$BASE_IMAGE" || [ "$BASE_TAR" -nt "$OUT/base.imported" ]; then
  log "importing the base image"
  podman import --change 'CMD ["/bin/bash"]' "$BASE_TAR" "$BASE_IMAGE" >/dev/null
  touch "$OUT/base.imported"
fi

# A TLS-intercepting proxy's CA (if pip here trusts one) goes to pip in the build as a secret.
secret=()
cert=${PIP_CERT:-$(python3 -m pip config get global.cert 2>/dev/null || true)}
[ -n "$cert" ] && [ -s "$cert" ] && secret=(--secret "id=pip_cert,src=$cert")
index=()
[ -n "${PIP_INDEX_URL:-}" ] && index=(--build-arg "PIP_INDEX_URL=$PIP_INDEX_URL")

# Build, then drop the image a rebuild superseded (its unchanged layers stay as the cache).
previous() { podman image inspect --format '{{.Id}}' "$1" 2>/dev/null || true; }
superseded() {
  local now
  now=$(previous "$2")
  if [ -n "$1" ] && [ "$1" != "$now" ]; then podman rmi "$1" >/dev/null 2>&1 || true; fi
}

log "building $IMAGE"
before=$(previous "$IMAGE")
podman build -q --format docker --network host --build-arg "BASE=$BASE_IMAGE" "${secret[@]}" \
  "${index[@]}" -t "$IMAGE" -f "$ROOT/Containerfile" "$ROOT" >"$OUT/build.log" 2>&1 \
  || { tail -n 30 "$OUT/build.log" >&2; log "image build failed"; exit 1; }
superseded "$before" "$IMAGE"

for extra in "$@"; do
  case $extra in
    services)
      log "building $SERVICES_IMAGE"
      before=$(previous "$SERVICES_IMAGE")
      podman build -q --format docker --network host --build-arg "BASE=$BASE_IMAGE" \
        -t "$SERVICES_IMAGE" -f "$TOOLS/services.Containerfile" "$TOOLS" >"$OUT/services.log" 2>&1 \
        || { tail -n 30 "$OUT/services.log" >&2; log "services image build failed"; exit 1; }
      superseded "$before" "$SERVICES_IMAGE" ;;
    compose)
      venv=$OUT/compose-venv
      if ! "$venv/bin/podman-compose" version 2>/dev/null \
          | grep -q "podman-compose version $PODMAN_COMPOSE_VERSION"; then
        log "installing podman-compose $PODMAN_COMPOSE_VERSION"
        python3 -m venv "$venv"
        "$venv/bin/pip" install -q "podman-compose==$PODMAN_COMPOSE_VERSION" >&2
      fi
      echo "PODMAN_COMPOSE=$venv/bin/podman-compose" ;;
    *) log "unknown extra: $extra"; exit 2 ;;
  esac
done

echo "CONTAINERS_CONF=$CONTAINERS_CONF"
echo "GNOMON_IMAGE=$IMAGE"
echo "SERVICES_IMAGE=$SERVICES_IMAGE"
