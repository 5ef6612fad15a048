#!/usr/bin/env bash
# Sets everything up, type-checks, and runs the whole test suite against the
# real Docker engine.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The dashboard test drives Debian's chromium headless (through playwright-core); only the tests need it.
if ! command -v chromium >/dev/null 2>&1; then
  echo "[test] installing chromium for the dashboard test"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
# The install test runs systemd as PID 1 in a Debian container it makes once with debootstrap.
if ! command -v debootstrap >/dev/null 2>&1; then
  echo "[test] installing debootstrap for the systemd install test"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi
echo "[test] type-check"
npx tsc -p tsconfig.json
echo "[test] lint and format (biome.jsonc)"
npx biome check .
echo "[test] no import cycles"
npx --yes madge@8.0.0 --circular --extensions ts --ts-config tsconfig.json daemon gossip sandbox cli sea
echo "[test] the single executable (dist/peerless)"
node scripts/build-binary.ts
echo "[test] vitest"
npx vitest run "$@"
