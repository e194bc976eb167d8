#!/usr/bin/env bash
# Sets up, builds and runs every test: GoogleTest unit tests, the mount-level
# integration tests (real FUSE mounts in temp dirs; needs root for /dev/fuse, tmpfs
# and the unprivileged-user cases) and the vyctl command-line tests.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
# Arrow JS for the Arrow tests (tests/arrow_js, pinned by its package-lock.json), installed
# while the build runs: `npm ci` mostly waits on the network. Same lock and marker as the
# tests' own install (tests/integration/arrow_fixture.h, tests/python/test_arrow.py), which
# find it done; if it failed, they run it again and report it.
js=tests/arrow_js
npm_pid=""
if command -v npm >/dev/null && command -v flock >/dev/null; then
  flock "$js/.install.lock" sh -c '[ -e "$1/node_modules/.vineyardfs-installed" ] ||
    { npm ci --prefix "$1" --no-audit --no-fund >/dev/null 2>&1 &&
      touch "$1/node_modules/.vineyardfs-installed"; }' sh "$js" &
  npm_pid=$!
fi
tools/build.sh
if [[ -n $npm_pid ]] && ! wait "$npm_pid"; then
  echo "test.sh: npm ci in $js failed; the Arrow tests will try again" >&2
fi
cd build
ctest --output-on-failure -j2 --timeout 600
