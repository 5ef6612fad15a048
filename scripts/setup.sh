#!/usr/bin/env bash
# Sets up everything peerless needs on a fresh (or reused) Debian machine:
# system packages, Node.js 24, a running Docker engine, npm dependencies and
# the runtime images. Safe to run again: every step checks before it acts.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '[setup] %s\n' "$*"; }
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"

need_pkgs=()
command -v dockerd >/dev/null 2>&1 || need_pkgs+=(docker.io)
[ -x /usr/bin/python3 ] || need_pkgs+=(python3)
command -v ip >/dev/null 2>&1 || need_pkgs+=(iproute2)
command -v curl >/dev/null 2>&1 || need_pkgs+=(curl)
command -v iptables >/dev/null 2>&1 || need_pkgs+=(iptables)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  log "installing ${need_pkgs[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if [ "$(node_major)" -lt 24 ]; then
  log "installing Node.js 24 (found $(node --version 2>/dev/null || echo none))"
  $SUDO npm install -g --force --loglevel=error node@24 >/dev/null
  hash -r
fi
[ "$(node_major)" -ge 24 ] || { echo "Node.js 24 is not on PATH after installing it" >&2; exit 1; }

engine_up() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }
if ! engine_up; then
  log "starting the Docker engine"
  # A wide address pool: every namespace gets a network, and the default pool holds only ~30.
  $SUDO setsid dockerd --default-address-pool base=10.210.0.0/16,size=24 >/var/log/dockerd.log 2>&1 < /dev/null &
  for _ in $(seq 1 60); do engine_up && break; sleep 0.5; done
  engine_up || { echo "the Docker engine did not start; see /var/log/dockerd.log" >&2; tail -20 /var/log/dockerd.log >&2; exit 1; }
fi
log "Docker engine $(docker version --format '{{.Server.Version}}')"

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "installing npm dependencies"
  npm ci --no-audit --no-fund --loglevel=error
fi
# `peerless` on PATH, pointing at this checkout.
if [ "$(readlink -f /usr/local/bin/peerless 2>/dev/null)" != "$(readlink -f cli/peerless.js)" ]; then
  $SUDO ln -sf "$PWD/cli/peerless.js" /usr/local/bin/peerless || log "could not link /usr/local/bin/peerless; use node cli/peerless.js"
fi

node cli/peerless.js images build | sed 's/^/[setup] image /'
log "ready"
