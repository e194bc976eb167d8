#!/usr/bin/env bash
# Sets up, builds and runs every test: GoogleTest unit tests, the mount-level
# integration tests (real FUSE mounts in temp dirs; needs root for /dev/fuse, tmpfs
# and the unprivileged-user cases) and the vyctl command-line tests.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
tools/build.sh
cd build
ctest --output-on-failure -j2 --timeout 600
