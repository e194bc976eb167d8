#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/, with clang, into build/fuzz) and runs each for
# SECONDS (default 60):   tools/fuzz.sh [SECONDS] [TARGET...]
# Targets: create_meta batch record wire npy csv arrow. A crash fails the run and leaves its input
# in build/fuzz/artifacts/; once fixed, keep it in fuzz/regressions/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
tools/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVINEYARDFS_WERROR=ON >/dev/null
cmake --build build --target fuzzers
fuzz/run.sh build/fuzz "$seconds" "$@"
