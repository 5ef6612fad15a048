#!/usr/bin/env bash
# Sets everything up, type-checks, and runs the whole test suite against the
# real Docker engine.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "[test] type-check"
npx tsc -p tsconfig.json
echo "[test] vitest"
npx vitest run "$@"
